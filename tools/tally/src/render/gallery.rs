//! Renders every chart from the real runs in `results/` (read-only) and checks facts about each:
//! the policy in the heading, no bare "(no snapshot)", an axis unit that fits the figures.
//! With `TALLY_CHART_DIR` set the charts are kept there for looking at (render them to PNG);
//! without it they go to a temporary directory that is removed.

use std::path::{Path, PathBuf};

use super::*;
use crate::matrix::{is_user_label, key_snapshot, sets_that_matter};
use crate::report::Report;

/// `cow-holder_release-stay` → `cow=holder release=stay`; `default` → `as configured`.
fn combo_title(dir: &str) -> String {
    if dir == "default" {
        return "as configured".to_string();
    }
    dir.split('_')
        .map(|part| part.replacen('-', "=", 1))
        .collect::<Vec<_>>()
        .join(" ")
}

fn scenarios(results: &Path) -> Vec<(String, Vec<(String, Report)>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(results) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs.into_iter().filter(|d| d.is_dir()) {
        let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("report.json").is_file())
            .collect();
        runs.sort();
        let runs: Vec<(String, Report)> = runs
            .iter()
            .map(|run| {
                let json = std::fs::read_to_string(run.join("report.json")).unwrap();
                let report: Report = serde_json::from_str(&json)
                    .unwrap_or_else(|e| panic!("{}: {e}", run.display()));
                let name = run.file_name().unwrap().to_string_lossy().to_string();
                (combo_title(&name), report)
            })
            .collect();
        if !runs.is_empty() {
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            out.push((name, runs));
        }
    }
    out
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn has(svg: &str, text: &str) -> bool {
    svg.contains(&format!("\n{text}\n"))
}

/// The policies, causers, charges and diff charts of one scenario, as `tally experiments`
/// and `tally diff` would draw them; `failed` marks a made-up failed run (no report).
fn draw_scenario(
    name: &str,
    runs: &[(String, Report)],
    failed: Option<(&str, &str)>,
    out: &Path,
) -> Vec<PathBuf> {
    let reports: Vec<&Report> = runs.iter().map(|(_, r)| r).collect();
    let key = key_snapshot(&reports);
    let baseline = baseline_for(&reports, &key);
    let figure = match &baseline {
        Some(baseline) => Figure::Delta { baseline },
        None if is_user_label(&key) => Figure::Current,
        None => Figure::Peak,
    };
    let mut columns: Vec<Column<'_>> = runs
        .iter()
        .map(|(title, report)| Column {
            title,
            report: Some(report),
            failure: None,
        })
        .collect();
    if let Some((title, reason)) = failed {
        columns.push(Column {
            title,
            report: None,
            failure: Some(reason),
        });
    }
    let title = format!("{name}: who pays at `{key}`, by policy");
    let policies = out.join(format!("{name}-policies.svg"));
    write_policies_svg(
        &title,
        &key,
        figure,
        &columns,
        &sets_that_matter(&reports),
        &policies,
    )
    .unwrap();
    let causers = out.join(format!("{name}-causers.svg"));
    write_causers_svg(
        &format!("{name}: who paid for whom at `{key}`, by policy"),
        &key,
        &columns,
        &causers,
    )
    .unwrap();
    let mut written = vec![policies, causers];
    for (title, report) in runs {
        let path = out.join(format!(
            "{name}-{}-charges.svg",
            title.replace([' ', '='], "_")
        ));
        write_svg(report, &path).unwrap();
        written.push(path);
    }
    if let [(a_title, a), (b_title, b), ..] = runs {
        if let (Some(a), Some(b)) = (a.snapshot(&key), b.snapshot(&key)) {
            let path = out.join(format!("{name}-diff.svg"));
            write_diff_svg(a_title, a, b_title, b, &path).unwrap();
            written.push(path);
        }
    }
    written
}

#[test]
fn every_chart_of_the_real_runs_names_its_policy_and_has_no_empty_panel() {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results");
    let scenarios = scenarios(&results);
    let keep = std::env::var_os("TALLY_CHART_DIR").map(PathBuf::from);
    let out = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("tally-gallery-{}", std::process::id()))
    });
    std::fs::create_dir_all(&out).unwrap();
    for (name, runs) in &scenarios {
        let written = draw_scenario(name, runs, None, &out);
        let policies = text(&written[0]);
        assert!(policies.contains(&format!("\n{name}: who pays")), "{name}");
        assert!(
            policies.contains("\nfixed policy: ") || policies.contains("\npolicy: "),
            "{name}: no policy line"
        );
        assert!(!policies.contains("(no snapshot)"), "{name}");
        for charges in &written[2..2 + runs.len()] {
            let svg = text(charges);
            assert!(
                svg.contains("\npolicy: cow=") || svg.contains("\npolicy: preset="),
                "{}",
                charges.display()
            );
            // Every drawn panel has a bar with something in it: `start` never is one.
            assert!(!svg.contains("snapshot `start`"), "{}", charges.display());
        }
    }
    if let Some((_, runs)) = scenarios.iter().find(|(name, _)| name == "out-of-memory") {
        // 30 MiB of anon pages: an axis in MiB, not 140000 KiB.
        let written = draw_scenario("out-of-memory", runs, None, &out);
        assert!(has(
            &text(&written[0]),
            "MiB peak over the run (at `final`)"
        ));
        assert!(has(&text(&written[2]), "MiB charged"));
    }
    if let Some((_, runs)) = scenarios
        .iter()
        .find(|(name, _)| name == "pagetable-sprawl")
    {
        // The 16 page-table frames between `before` and `after` are the chart.
        let policies = text(&draw_scenario("pagetable-sprawl", runs, None, &out)[0]);
        assert!(has(&policies, "KiB change from `before` to `after`"));
        assert!(has(&policies, "+96 KiB (to 140 KiB)"));
    }
    if let Some((_, runs)) = scenarios.iter().find(|(name, _)| name == "ipc-overlap") {
        // The buffer is freed before `after`: its peak shows who paid, differently per policy.
        let policies = text(&draw_scenario("ipc-overlap", runs, None, &out)[0]);
        assert!(policies.matches("\nmsgbuf peak 4 KiB\n").count() >= 3);
        assert!(has(&policies, "msgbuf peak 2 KiB"));
    }
    if let Some((_, runs)) = scenarios.iter().find(|(name, _)| name == "cow-fork") {
        let written = draw_scenario(
            "cow-fork-failed",
            runs,
            Some(("cow=made-up", "QEMU timed out after 60 s")),
            &out,
        );
        let policies = text(&written[0]);
        assert!(has(&policies, "FAIL"));
        assert!(has(
            &policies,
            "FAIL cow=made-up: QEMU timed out after 60 s"
        ));
        assert!(has(&text(&written[1]), "QEMU timed out after 60 s"));
    }
    if keep.is_none() {
        std::fs::remove_dir_all(&out).unwrap();
    }
}
