//! `charges.svg`: one run's charges. A panel per snapshot in which some set other than the
//! `kernel` reserve is charged, then a panel of the peaks over the run (at the last snapshot);
//! a row per charge set that is charged somewhere in the run; one axis (unit chosen from the
//! largest figure) for every panel. The heading names the config and every policy; a run that
//! did not end well has a FAIL badge with its status and reason; a set's stopped domains and
//! non-zero exit codes are noted under its name.
//!
//! Each bar is stacked by kind, with the causer strip, transient peaks, limits, sub-limits and
//! denials described in [`super::bars`].

use std::path::Path;

use anyhow::Result;

use super::bars::{self, Bar, BarChart, Cell, Panel, RowLabel};
use crate::matrix::sets_that_matter;
use crate::report::{Report, Snapshot, STATUS_OK};

/// The name of the charge set the kernel reserve is charged to.
const KERNEL_SET: &str = "kernel";

/// Whether some set other than the kernel reserve is charged at `snapshot`.
pub(super) fn has_charges(snapshot: &Snapshot) -> bool {
    snapshot
        .charge_sets
        .iter()
        .any(|set| set.name != KERNEL_SET && set.current.total() > 0)
}

/// `hog stopped: over-limit`, `bss exited 7`: the domains of `set` that did not end well at
/// `snapshot`.
pub(super) fn domain_note(snapshot: &Snapshot, set: &str) -> Option<String> {
    let notes: Vec<String> = snapshot
        .domains
        .iter()
        .filter(|domain| domain.charge_set == set)
        .filter_map(|domain| {
            let exit_code = domain
                .extra
                .get("exit_code")
                .and_then(serde_json::Value::as_i64);
            match (domain.state.as_str(), &domain.stop_reason, exit_code) {
                ("stopped", _, _) => Some(format!(
                    "{} stopped: {}",
                    domain.name,
                    domain
                        .stop_explained()
                        .unwrap_or_else(|| "no reason".to_string())
                )),
                ("exited", _, Some(code)) if code != 0 => {
                    Some(format!("{} exited {code}", domain.name))
                }
                _ => None,
            }
        })
        .collect();
    (!notes.is_empty()).then(|| notes.join(", "))
}

/// The FAIL line of a report that did not end well: `status error: conservation failed`.
pub(super) fn failure(report: &Report) -> Option<String> {
    (report.status != STATUS_OK).then(|| match &report.reason {
        Some(reason) if reason != &report.status => format!("status {}: {reason}", report.status),
        _ => format!("status {}", report.status),
    })
}

/// The chart of `report`, laid out.
pub(super) fn chart(report: &Report) -> BarChart {
    let sets = sets_that_matter(&[report]);
    let mut panels: Vec<Panel> = report
        .snapshots
        .iter()
        .filter(|snapshot| has_charges(snapshot))
        .map(|snapshot| Panel {
            title: format!(
                "snapshot `{}` ({} instructions)",
                snapshot.label, snapshot.instructions
            ),
            scale: 0,
            cells: sets
                .iter()
                .map(|name| match snapshot.charge_set(name) {
                    Some(set) => Cell::Bar(Bar::current(set)),
                    None => Cell::Note(format!("no set `{name}` yet")),
                })
                .collect(),
        })
        .collect();
    if let Some(last) = report.snapshots.last() {
        let cells: Vec<Cell> = sets
            .iter()
            .map(|name| match last.charge_set(name) {
                Some(set) => Cell::Bar(Bar::peaks(set)),
                None => Cell::Note(format!("no set `{name}`")),
            })
            .collect();
        let any = cells
            .iter()
            .any(|cell| matches!(cell, Cell::Bar(bar) if !bar.is_blank()));
        if any {
            panels.push(Panel {
                title: format!("peaks over the run (at `{}`)", last.label),
                scale: 0,
                cells,
            });
        }
    }
    let last = report.snapshots.last();
    let rows = sets
        .iter()
        .map(|name| RowLabel {
            text: name.clone(),
            note: last.and_then(|snapshot| domain_note(snapshot, name)),
            failed: false,
        })
        .collect();
    let mut footnotes = Vec::new();
    let dropped: Vec<&str> = report
        .snapshots
        .iter()
        .filter(|snapshot| !has_charges(snapshot))
        .map(|snapshot| snapshot.label.as_str())
        .collect();
    if !dropped.is_empty() {
        footnotes.push(format!(
            "Not drawn: snapshot{} {} (nothing charged to any set but `{KERNEL_SET}`).",
            if dropped.len() == 1 { "" } else { "s" },
            dropped
                .iter()
                .map(|label| format!("`{label}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if panels.is_empty() {
        footnotes.push(if report.snapshots.is_empty() {
            "The run wrote no snapshot.".to_string()
        } else {
            "Nothing was charged in any snapshot.".to_string()
        });
    }
    BarChart {
        title: format!("{}: who pays, by charge set and kind", report.config),
        subtitles: vec![format!("policy: {}", report.policy_line())],
        failure: failure(report),
        rows,
        panels,
        scales: vec!["charged".to_string()],
        footnotes,
    }
}

/// Writes the chart of `report` to `path`.
pub fn write_svg(report: &Report, path: &Path) -> Result<()> {
    bars::write(&chart(report), path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{parse_console, tests::TRANSCRIPT};

    fn render(report: &Report, name: &str) -> String {
        let path =
            std::env::temp_dir().join(format!("tally-chart-{name}-{}.svg", std::process::id()));
        write_svg(report, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        svg
    }

    fn has(svg: &str, text: &str) -> bool {
        svg.contains(&format!("\n{text}\n"))
    }

    #[test]
    fn names_the_policy_and_draws_only_snapshots_with_charges() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let svg = render(&report, "policy");
        for text in [
            "cow-fork: who pays, by charge set and kind",
            "policy: cow=holder msgbuf=sender pagetable=owner release=migrate kernel=self move=stay transfer=direct",
            "snapshot `shared` (52000 instructions)",
            "peaks over the run (at `final`)",
            "KiB charged",
            "parent",
            "child",
            "68 KiB",
            "paid 16 KiB for child",
            "1 denied (cow)",
            "child stopped: over limit: cow",
        ] {
            assert!(has(&svg, text), "missing text {text}");
        }
        assert!(!svg.contains("snapshot `start`"));
        assert!(!svg.contains("snapshot `final` ("));
        assert!(has(
            &svg,
            "Not drawn: snapshots `start`, `final` (nothing charged to any set but `kernel`)."
        ));
        assert!(!svg.contains("FAIL"));
        // cow is drawn in Okabe–Ito reddish purple, never in the old red.
        assert!(svg.contains("#CC79A7"));
        assert!(!svg.contains("#DB4437"));
    }

    #[test]
    fn a_failed_run_has_a_badge_with_its_reason() {
        let failed = TRANSCRIPT.replace(
            r#"{"status":"ok"}"#,
            r#"{"status":"error","reason":"conservation failed"}"#,
        );
        let svg = render(&parse_console(&failed).unwrap(), "failed");
        assert!(has(&svg, "FAIL"));
        assert!(has(&svg, "status error: conservation failed"));
        // A run cut short before any snapshot still gets a chart that says so.
        let cut = TRANSCRIPT.split("@tally/1 snapshot").next().unwrap();
        let svg = render(&parse_console(cut).unwrap(), "cut");
        assert!(has(&svg, "status incomplete"));
        assert!(has(&svg, "The run wrote no snapshot."));
    }

    #[test]
    fn a_run_charged_only_between_snapshots_shows_its_peaks() {
        // over-limit: nothing is held at `start` or `final`, but `capped` peaked at its limit.
        let mut report = parse_console(TRANSCRIPT).unwrap();
        report.snapshots.remove(1);
        let svg = render(&report, "peaks");
        assert!(!svg.contains("snapshot `shared`"));
        assert!(has(&svg, "peaks over the run (at `final`)"));
        assert!(has(&svg, "68 KiB"));
    }

    #[test]
    fn the_axis_unit_follows_the_largest_figure() {
        let mut report = parse_console(TRANSCRIPT).unwrap();
        report.snapshots[1].charge_sets[1].current.anon = 140_000 * 1024;
        let svg = render(&report, "units");
        assert!(has(&svg, "MiB charged"));
        assert!(!has(&svg, "KiB charged"));
    }
}
