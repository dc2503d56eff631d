//! `tally experiments`: after every config has run under every combination of the policies it
//! varies, write
//!
//! - `OUT_ROOT/matrix.md` and `matrix.csv`: every scenario × policy combination — for each
//!   charge set, at the scenario's key snapshot (and every other snapshot a program took) the
//!   bytes it pays per kind, its denials and what it pays for other domains; at `final`, its
//!   peaks per kind (see [`crate::matrix`]);
//! - per scenario `policies.svg` (the key snapshot's bars per charge set per combination),
//!   `causers.svg` (a payer × causer heat map per combination at the key snapshot),
//!   `comparison.md` (one table per snapshot: charge set × kind rows, one column per
//!   combination) and `comparison.csv` (every run's `report.csv` rows together);
//! - an index `experiments.md` of all runs.
//!
//! Each run's own files are in `OUT_ROOT/<scenario>/<combination>/` already (the runner wrote
//! them).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{Config, KINDS};
use crate::exit::Failure;
use crate::matrix::{self, Entry};
use crate::render::{self, Column, Figure};
use crate::report::Report;
use crate::size::human;
use crate::testing::{combo_dir, JobOutcome};

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
        for table in render::CsvTable::ALL {
            written.push(write(
                &dir.join(table.file_name(Some("comparison"))),
                &comparison_csv(table, &runs),
            )?);
        }
        written.extend(write_policies_chart(config, &runs, &dir)?);
    }
    written.push(write(
        &out_root.join("matrix.md"),
        &matrix_markdown(configs, outcomes),
    )?);
    for table in render::CsvTable::ALL {
        written.push(write(
            &out_root.join(table.file_name(Some("matrix"))),
            &matrix_csv(table, outcomes),
        )?);
    }
    written.push(write(&out_root.join("experiments.md"), &index(outcomes))?);
    Ok(written)
}

/// The runs of one scenario as matrix entries, with their titles and combination names.
struct Entries {
    titles: Vec<(String, String, Option<&'static str>)>,
}

impl Entries {
    fn new(runs: &[&JobOutcome]) -> Self {
        Entries {
            titles: runs
                .iter()
                .map(|run| {
                    (
                        combo_title(run),
                        combo_dir(&run.job.combo),
                        (!run.failures.is_empty()).then_some("FAIL"),
                    )
                })
                .collect(),
        }
    }

    /// The entries of the runs that have a report.
    fn of<'a>(&'a self, runs: &[&'a JobOutcome]) -> Vec<Entry<'a>> {
        runs.iter()
            .zip(&self.titles)
            .filter_map(|(run, (title, combination, note))| {
                run.report.as_ref().map(|report| Entry {
                    title,
                    combination,
                    report,
                    note: *note,
                })
            })
            .collect()
    }
}

/// `policies.svg`: the scenario's key snapshot, a bar per charge set per combination (at
/// `final`'s peaks when no program took a snapshot of its own, as the change from the snapshot
/// before it when every run took the same one); `causers.svg`: who paid for whom there.
fn write_policies_chart(
    config: &Config,
    runs: &[&JobOutcome],
    dir: &Path,
) -> Result<Vec<PathBuf>, Failure> {
    let reports: Vec<&Report> = runs.iter().filter_map(|r| r.report.as_ref()).collect();
    let key = matrix::key_snapshot(&reports);
    let baseline = render::baseline_for(&reports, &key);
    let figure = match &baseline {
        Some(baseline) => Figure::Delta { baseline },
        None if matrix::is_user_label(&key) => Figure::Current,
        None => Figure::Peak,
    };
    let titles: Vec<(String, String)> = runs
        .iter()
        .map(|run| (combo_title(run), run.failures.join("; ")))
        .collect();
    let columns: Vec<Column<'_>> = runs
        .iter()
        .zip(&titles)
        .map(|(run, (title, failure))| Column {
            title,
            report: run.report.as_ref(),
            failure: (!run.failures.is_empty()).then_some(failure.as_str()),
        })
        .collect();
    let title = match figure {
        Figure::Current => format!("{}: who pays at snapshot `{key}`, by policy", config.name),
        Figure::Peak => format!("{}: peak charges over the run, by policy", config.name),
        Figure::Delta { baseline } => format!(
            "{}: what changed from `{baseline}` to `{key}`, by policy",
            config.name
        ),
    };
    let policies = dir.join("policies.svg");
    let sets = matrix::sets_that_matter(&reports);
    render::write_policies_svg(&title, &key, figure, &columns, &sets, &policies)
        .map_err(Failure::environment)?;
    let causers = dir.join("causers.svg");
    let title = format!("{}: who paid for whom at `{key}`, by policy", config.name);
    render::write_causers_svg(&title, &key, &columns, &causers).map_err(Failure::environment)?;
    Ok(vec![policies, causers])
}

/// `matrix.md`: per scenario, a table of the key snapshot (and of every other snapshot a
/// program took), then `final`'s peaks; a row per combination × charge set.
pub fn matrix_markdown(configs: &[Config], outcomes: &[JobOutcome]) -> String {
    let mut out = String::from("# Policy matrix\n\n");
    let failed = outcomes.iter().filter(|o| !o.failures.is_empty()).count();
    let _ = writeln!(
        out,
        "Every scenario under every combination of the policies it varies (`tally experiments`): \
         {} runs, {} passed, {failed} failed. For each scenario, the charge sets at the snapshot that \
         shows it best (*key*: the one its programs took with the most bytes charged), at every \
         other snapshot the programs took, and `final`'s peaks over the whole run. Cells are the \
         bytes a set pays (`current`), by kind; `denied` counts refused charges by kind; \
         *paid for others* (`paid_for` in JSON and CSV) is what a set pays that a domain of another set caused. Exact bytes \
         are in [matrix.csv](matrix.csv); each run's files are in `<scenario>/<combination>/`.\n",
        outcomes.len(),
        outcomes.len() - failed
    );
    for config in configs {
        let runs: Vec<&JobOutcome> = outcomes
            .iter()
            .filter(|o| o.job.config.name == config.name)
            .collect();
        let titles = Entries::new(&runs);
        let entries = titles.of(&runs);
        let reports: Vec<&Report> = entries.iter().map(|e| e.report).collect();
        let key = matrix::key_snapshot(&reports);
        let _ = writeln!(out, "## {}\n", config.name);
        if let Some(description) = &config.description {
            let _ = writeln!(out, "{description}.\n");
        }
        let fixed = config.fixed_policies();
        let failed = runs.iter().filter(|r| !r.failures.is_empty()).count();
        let _ = writeln!(
            out,
            "Varied: {}. Fixed: {}. {} run{}{}. Chart: [{name}/policies.svg]({name}/policies.svg).\n",
            if config.vary.is_empty() {
                "nothing".to_string()
            } else {
                config.vary.join(", ")
            },
            fixed.join(" "),
            runs.len(),
            if runs.len() == 1 { "" } else { "s" },
            if failed == 0 {
                String::new()
            } else {
                format!(", {failed} FAILED")
            },
            name = config.name,
        );
        if entries.is_empty() {
            let _ = writeln!(out, "No run produced a report.\n");
            continue;
        }
        let labels = matrix::user_labels(reports.iter().copied());
        for label in labels.iter().filter(|l| **l == key) {
            let _ = writeln!(out, "### Snapshot `{label}` (key)\n");
            out.push_str(&matrix::current_table(&entries, label));
            out.push('\n');
        }
        for label in labels.iter().filter(|l| **l != key) {
            let _ = writeln!(out, "### Snapshot `{label}`\n");
            out.push_str(&matrix::current_table(&entries, label));
            out.push('\n');
        }
        let _ = writeln!(out, "### `{}`: peaks over the run\n", matrix::FINAL);
        out.push_str(&matrix::peaks_table(&entries));
        out.push('\n');
    }
    out
}

/// `matrix.csv` (and its attribution and domains tables): every run's rows under one header;
/// the `role` column marks each scenario's key snapshot.
pub fn matrix_csv(table: render::CsvTable, outcomes: &[JobOutcome]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for outcome in outcomes {
        if !names.contains(&outcome.job.config.name.as_str()) {
            names.push(&outcome.job.config.name);
        }
    }
    let scenarios: Vec<Vec<&JobOutcome>> = names
        .iter()
        .map(|name| {
            outcomes
                .iter()
                .filter(|o| o.job.config.name == *name)
                .collect()
        })
        .collect();
    let titles: Vec<Entries> = scenarios.iter().map(|runs| Entries::new(runs)).collect();
    let mut rows = Vec::new();
    let mut keys = Vec::new();
    for (runs, titles) in scenarios.iter().zip(&titles) {
        let entries = titles.of(runs);
        let reports: Vec<&Report> = entries.iter().map(|e| e.report).collect();
        keys.push((entries, matrix::key_snapshot(&reports)));
    }
    for (name, (entries, key)) in names.iter().zip(&keys) {
        for entry in entries {
            rows.push(render::CsvRows::of(name, entry, key, Vec::new()));
        }
    }
    render::table_csv(table, &[], &rows)
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

/// One scenario's runs in one table (`comparison.csv` and its attribution and domains tables).
pub fn comparison_csv(table: render::CsvTable, runs: &[&JobOutcome]) -> String {
    let titles = Entries::new(runs);
    let entries = titles.of(runs);
    let reports: Vec<&Report> = entries.iter().map(|e| e.report).collect();
    let key = matrix::key_snapshot(&reports);
    let rows: Vec<render::CsvRows> = entries
        .iter()
        .map(|entry| render::CsvRows::of(&entry.report.config, entry, &key, Vec::new()))
        .collect();
    render::table_csv(table, &[], &rows)
}

/// One table per snapshot label: rows are (charge set, kind) with a non-zero current figure in
/// some run, plus each set's total; columns are the runs.
pub fn comparison_markdown(config: &Config, runs: &[&JobOutcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}: policies compared\n", config.name);
    if let Some(description) = &config.description {
        let _ = writeln!(out, "{description}\n");
    }
    let _ = writeln!(
        out,
        "Varied: {}. Fixed: {}.\n",
        if config.vary.is_empty() {
            "nothing".to_string()
        } else {
            config.vary.join(", ")
        },
        config.fixed_policies().join(" "),
    );
    let _ = writeln!(out, "| run | result | files |\n|---|---|---|");
    for run in runs {
        let _ = writeln!(
            out,
            "| {} | {} | [{dir}/]({dir}/) |",
            combo_title(run),
            if run.failures.is_empty() {
                "pass".to_string()
            } else {
                format!("FAIL: {}", run.failures.join("; ").replace('|', "\\|"))
            },
            // Relative to this file (`<scenario>/comparison.md`), so the link works wherever
            // the results are copied or merged.
            dir = combo_dir(&run.job.combo)
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
        "# Experiments\n\nThe policy matrix of every scenario is in [matrix.md](matrix.md) \
         ([matrix.csv](matrix.csv)); each scenario's chart is `<scenario>/policies.svg`.\n\n\
         | scenario | run | result | comparison |\n|---|---|---|---|\n",
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
