//! `tally experiments`: after every config has run under every combination of the policies it
//! varies, write per scenario `comparison.md` (one table per snapshot: charge set × kind rows,
//! one column per policy combination) and `comparison.csv` (every run's tidy rows together),
//! and an index `experiments.md` of all runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{Config, KINDS};
use crate::exit::Failure;
use crate::render;
use crate::report::Report;
use crate::size::human;
use crate::testing::JobOutcome;

/// Writes the comparisons; returns the files written.
pub fn write_comparisons(
    configs: &[Config],
    outcomes: &[JobOutcome],
    out_root: &Path,
) -> Result<Vec<PathBuf>, Failure> {
    let mut written = Vec::new();
    for config in configs {
        let runs: Vec<&JobOutcome> = outcomes
            .iter()
            .filter(|o| o.job.config.name == config.name)
            .collect();
        let dir = out_root.join(&config.name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Failure::environment(format!("cannot create {}: {e}", dir.display())))?;
        written.push(write(
            &dir.join("comparison.md"),
            &comparison_markdown(config, &runs),
        )?);
        written.push(write(&dir.join("comparison.csv"), &comparison_csv(&runs))?);
    }
    written.push(write(&out_root.join("experiments.md"), &index(outcomes))?);
    Ok(written)
}

fn write(path: &Path, text: &str) -> Result<PathBuf, Failure> {
    std::fs::write(path, text)
        .map_err(|e| Failure::environment(format!("cannot write {}: {e}", path.display())))?;
    Ok(path.to_path_buf())
}

fn combo_title(outcome: &JobOutcome) -> String {
    if outcome.job.combo.is_empty() {
        "as configured".to_string()
    } else {
        outcome
            .job
            .combo
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Every run's `report.csv` rows under one header.
pub fn comparison_csv(runs: &[&JobOutcome]) -> String {
    let mut out = String::new();
    for report in runs.iter().filter_map(|run| run.report.as_ref()) {
        let csv = render::to_csv(report);
        let mut lines = csv.lines();
        let header = lines.next().unwrap_or_default();
        if out.is_empty() {
            out.push_str(header);
            out.push('\n');
        }
        for line in lines {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// One table per snapshot label: rows are (charge set, kind) with a non-zero current figure in
/// some run, plus each set's total; columns are the runs.
pub fn comparison_markdown(config: &Config, runs: &[&JobOutcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}: policies compared\n", config.name);
    if let Some(description) = &config.description {
        let _ = writeln!(out, "{description}\n");
    }
    let fixed: Vec<String> = config
        .policy
        .iter()
        .filter(|(key, _)| !config.vary.contains(key))
        .map(|(key, name)| format!("{key}={name}"))
        .collect();
    let _ = writeln!(
        out,
        "Varied: {}. Fixed: {}, transfer={}.\n",
        if config.vary.is_empty() {
            "nothing".to_string()
        } else {
            config.vary.join(", ")
        },
        fixed.join(" "),
        config.transfer
    );
    let _ = writeln!(out, "| run | result | files |\n|---|---|---|");
    for run in runs {
        let _ = writeln!(
            out,
            "| {} | {} | `{}` |",
            combo_title(run),
            if run.failures.is_empty() {
                "pass".to_string()
            } else {
                format!("FAIL: {}", run.failures.join("; ").replace('|', "\\|"))
            },
            run.job.out_dir.display()
        );
    }
    let reports: Vec<(&JobOutcome, &Report)> = runs
        .iter()
        .filter_map(|run| run.report.as_ref().map(|report| (*run, report)))
        .collect();
    let mut labels: Vec<&str> = Vec::new();
    for (_, report) in &reports {
        for snapshot in &report.snapshots {
            if !labels.contains(&snapshot.label.as_str()) {
                labels.push(&snapshot.label);
            }
        }
    }
    for label in labels {
        let _ = writeln!(out, "\n## Snapshot `{label}`: current bytes\n");
        let mut header = vec!["charge set".to_string(), "kind".to_string()];
        header.extend(reports.iter().map(|(run, _)| combo_title(run)));
        let _ = writeln!(
            out,
            "| {} |\n|{}",
            header.join(" | "),
            "---|".repeat(header.len())
        );
        let mut sets: Vec<&str> = Vec::new();
        for (_, report) in &reports {
            for set in report.snapshot(label).iter().flat_map(|s| &s.charge_sets) {
                if !sets.contains(&set.name.as_str()) {
                    sets.push(&set.name);
                }
            }
        }
        for set_name in sets {
            let figure = |report: &Report, kind: Option<&str>| -> Option<u64> {
                let set = report.snapshot(label)?.charge_set(set_name)?;
                Some(kind.map_or_else(|| set.current.total(), |kind| set.current.get(kind)))
            };
            let kinds = KINDS
                .iter()
                .filter(|kind| {
                    reports
                        .iter()
                        .any(|(_, r)| figure(r, Some(kind)).unwrap_or(0) > 0)
                })
                .map(|kind| Some(*kind))
                .chain([None]);
            for kind in kinds {
                let mut row = vec![
                    set_name.to_string(),
                    kind.unwrap_or("**total**").to_string(),
                ];
                row.extend(reports.iter().map(|(_, report)| {
                    figure(report, kind).map_or_else(
                        || "-".to_string(),
                        |bytes| {
                            if bytes == 0 {
                                "0".to_string()
                            } else {
                                human(bytes)
                            }
                        },
                    )
                }));
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
        }
    }
    out
}

fn index(outcomes: &[JobOutcome]) -> String {
    let mut out = String::from(
        "# Experiments\n\n| scenario | run | result | comparison |\n|---|---|---|---|\n",
    );
    for outcome in outcomes {
        let _ = writeln!(
            out,
            "| {} | {} | {} | [{}/comparison.md]({}/comparison.md) |",
            outcome.job.config.name,
            combo_title(outcome),
            if outcome.failures.is_empty() {
                "pass"
            } else {
                "FAIL"
            },
            outcome.job.config.name,
            outcome.job.config.name
        );
    }
    let failed = outcomes.iter().filter(|o| !o.failures.is_empty()).count();
    let _ = writeln!(out, "\n{} passed, {failed} failed", outcomes.len() - failed);
    out
}
