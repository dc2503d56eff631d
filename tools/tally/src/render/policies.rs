//! `policies.svg`: one scenario under each policy combination it ran with, as small multiples —
//! a panel per charge set, a row per combination (or, when the scenario ran under one
//! combination only, one panel with a row per set). Every panel shares one axis, in a unit
//! chosen from the largest figure, so bars compare across sets and combinations.
//!
//! A bar shows the key snapshot's `current` bytes by kind ([`Figure::Current`], with the
//! peaks of transient kinds beside it — a buffer freed before the snapshot still shows who
//! paid for it), `final`'s peaks ([`Figure::Peak`]), or the change from a baseline snapshot
//! ([`Figure::Delta`]). Causer strips, limits, sub-limits and denials are as in
//! [`super::bars`]. The heading lists the policies every run shared; a failed run's row has a
//! FAIL badge and its reason (in the cell when it has no snapshot to draw). Panels with
//! nothing to draw under any combination are left out and named in a footnote.

use std::path::Path;

use anyhow::Result;

use super::bars::{self, Bar, BarChart, Cell, Panel, RowLabel};
use super::chart::domain_note;
use crate::matrix::is_user_label;
use crate::report::{ChargeSetReport, Report, Snapshot};

/// Which figure of a set the bars show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure<'a> {
    /// `current` bytes at the snapshot.
    Current,
    /// `peak` bytes (at `final`: the highest over the run), per kind.
    Peak,
    /// `current` at the snapshot minus `current` at the snapshot labelled `baseline`.
    Delta {
        /// The baseline snapshot's label.
        baseline: &'a str,
    },
}

/// One combination's run: its title, its report (absent when the run produced none) and why
/// it failed (absent when it passed).
#[derive(Debug, Clone, Copy)]
pub struct Column<'a> {
    /// `cow=holder release=stay`.
    pub title: &'a str,
    /// The run's report.
    pub report: Option<&'a Report>,
    /// Why the run failed, for its FAIL badge.
    pub failure: Option<&'a str>,
}

impl<'a> Column<'a> {
    /// The snapshot labelled `label`, when the run has one.
    pub fn snapshot(&self, label: &str) -> Option<&'a Snapshot> {
        self.report.and_then(|report| report.snapshot(label))
    }
}

/// The baseline for a delta chart at snapshot `key`: the user snapshot just before `key`,
/// when every report that has `key` has the same one (pagetable-sprawl: `before` for
/// `after`). `None` when `key` is `start`/`final`, or some report has no such snapshot.
pub fn baseline_for(reports: &[&Report], key: &str) -> Option<String> {
    if !is_user_label(key) {
        return None;
    }
    let mut baseline: Option<&str> = None;
    for report in reports {
        let Some(position) = report.snapshots.iter().position(|s| s.label == key) else {
            continue;
        };
        let before = report.snapshots[..position]
            .iter()
            .rev()
            .find(|s| is_user_label(&s.label))?;
        match baseline {
            Some(label) if label != before.label => return None,
            _ => baseline = Some(&before.label),
        }
    }
    baseline.map(str::to_string)
}

/// `fixed: msgbuf=sender … transfer=direct`: the policies every report shares, and the keys
/// the rows vary.
pub(super) fn shared_policies(reports: &[&Report]) -> String {
    let policies = |report: &Report| -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = report
            .policy
            .iter()
            .map(|(key, value)| (key.clone(), value.as_str().unwrap_or("?").to_string()))
            .collect();
        if let Some(transfer) = report.transfer() {
            pairs.push(("transfer".to_string(), transfer.to_string()));
        }
        pairs
    };
    let Some(first) = reports.first() else {
        return String::new();
    };
    let (mut fixed, mut varied) = (Vec::new(), Vec::new());
    for (key, value) in policies(first) {
        let same = reports.iter().all(|report| {
            policies(report)
                .iter()
                .any(|(k, v)| *k == key && *v == value)
        });
        if same {
            fixed.push(format!("{key}={value}"));
        } else {
            varied.push(key);
        }
    }
    if varied.is_empty() {
        format!("policy: {}", fixed.join(" "))
    } else {
        format!(
            "fixed policy: {} · varied: {}",
            fixed.join(" "),
            varied.join(", ")
        )
    }
}

fn bar(figure: Figure<'_>, set: &ChargeSetReport, column: &Column<'_>) -> Bar {
    match figure {
        Figure::Current => Bar::current(set),
        Figure::Peak => Bar::peaks(set),
        Figure::Delta { baseline } => Bar::delta(
            set,
            column
                .snapshot(baseline)
                .and_then(|snapshot| snapshot.charge_set(&set.name)),
        ),
    }
}

/// The cell of `set` in `column`'s run at snapshot `label`.
fn cell(figure: Figure<'_>, label: &str, column: &Column<'_>, set: &str) -> Cell {
    let missing = |what: String| match column.failure {
        Some(reason) => Cell::Fail(reason.to_string()),
        None => Cell::Note(what),
    };
    let Some(report) = column.report else {
        return missing("no report".to_string());
    };
    let Some(snapshot) = report.snapshot(label) else {
        return missing(format!("no snapshot `{label}`"));
    };
    if let Figure::Delta { baseline } = figure {
        if report.snapshot(baseline).is_none() {
            return missing(format!("no snapshot `{baseline}`"));
        }
    }
    match snapshot.charge_set(set) {
        Some(charges) => Cell::Bar(bar(figure, charges, column)),
        None => Cell::Note(format!("no set `{set}`")),
    }
}

fn worth_drawing(cell: &Cell) -> bool {
    match cell {
        Cell::Bar(bar) => !bar.is_blank(),
        Cell::Fail(_) => true,
        Cell::Note(_) => false,
    }
}

/// Stopped domains and non-zero exits of a run, at its last snapshot.
fn run_note(column: &Column<'_>, sets: &[String]) -> Option<String> {
    let last = column.report?.snapshots.last()?;
    let notes: Vec<String> = sets
        .iter()
        .filter_map(|set| domain_note(last, set))
        .collect();
    (!notes.is_empty()).then(|| notes.join(", "))
}

/// The chart, laid out.
pub(super) fn chart(
    title: &str,
    label: &str,
    figure: Figure<'_>,
    columns: &[Column<'_>],
    sets: &[String],
) -> BarChart {
    let reports: Vec<&Report> = columns.iter().filter_map(|c| c.report).collect();
    let axis = match figure {
        Figure::Current => format!("charged at snapshot `{label}`"),
        Figure::Peak => format!("peak over the run (at `{label}`)"),
        Figure::Delta { baseline } => format!("change from `{baseline}` to `{label}`"),
    };
    let mut footnotes: Vec<String> = columns
        .iter()
        .filter_map(|c| {
            c.failure
                .map(|reason| format!("FAIL {}: {reason}", c.title))
        })
        .collect();
    let mut failure = None;
    let (rows, mut panels) = if let [column] = columns {
        // One combination: one panel, a row per set.
        failure = column.failure.map(str::to_string);
        footnotes.clear();
        let last = column.report.and_then(|r| r.snapshots.last());
        let rows = sets
            .iter()
            .map(|set| RowLabel {
                text: set.clone(),
                note: last.and_then(|snapshot| domain_note(snapshot, set)),
                failed: false,
            })
            .collect();
        let panel = Panel {
            title: column.title.to_string(),
            scale: 0,
            cells: sets
                .iter()
                .map(|set| cell(figure, label, column, set))
                .collect(),
        };
        (rows, vec![panel])
    } else {
        let rows = columns
            .iter()
            .map(|column| RowLabel {
                text: column.title.to_string(),
                note: run_note(column, sets),
                failed: column.failure.is_some(),
            })
            .collect();
        let panels = sets
            .iter()
            .map(|set| Panel {
                title: format!("set `{set}`"),
                scale: 0,
                cells: columns
                    .iter()
                    .map(|column| cell(figure, label, column, set))
                    .collect(),
            })
            .collect();
        (rows, panels)
    };
    let before = panels.len();
    let mut dropped = Vec::new();
    panels.retain(|panel| {
        let keep = panel.cells.iter().any(worth_drawing);
        if !keep {
            dropped.push(panel.title.clone());
        }
        keep
    });
    if !dropped.is_empty() && before > 1 {
        footnotes.push(format!(
            "Not drawn (nothing to show under any policy): {}.",
            dropped.join(", ")
        ));
    }
    if panels.is_empty() {
        footnotes.push(format!("Nothing to draw at snapshot `{label}`."));
    }
    BarChart {
        title: title.to_string(),
        subtitles: vec![shared_policies(&reports)],
        failure,
        rows,
        panels,
        scales: vec![axis],
        footnotes,
    }
}

/// Writes the chart to `path`. `title` heads it; `label` is the snapshot drawn; `sets` are the
/// charge sets to draw, in order.
pub fn write_policies_svg(
    title: &str,
    label: &str,
    figure: Figure<'_>,
    columns: &[Column<'_>],
    sets: &[String],
    path: &Path,
) -> Result<()> {
    bars::write(&chart(title, label, figure, columns, sets), path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{parse_console, tests::TRANSCRIPT};

    fn render(
        figure: Figure<'_>,
        label: &str,
        columns: &[Column<'_>],
        sets: &[String],
        name: &str,
    ) -> String {
        let path =
            std::env::temp_dir().join(format!("tally-policies-{name}-{}.svg", std::process::id()));
        write_policies_svg(
            "cow-fork: who pays, by policy",
            label,
            figure,
            columns,
            sets,
            &path,
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        svg
    }

    fn has(svg: &str, text: &str) -> bool {
        svg.contains(&format!("\n{text}\n"))
    }

    #[test]
    fn draws_a_panel_per_set_and_a_row_per_combination() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let mut other = report.clone();
        other.policy.insert("cow".into(), "writer".into());
        let columns = [
            Column {
                title: "cow=holder",
                report: Some(&report),
                failure: None,
            },
            Column {
                title: "cow=writer",
                report: Some(&other),
                failure: Some("QEMU timed out after 60 s"),
            },
            Column {
                title: "cow=split",
                report: None,
                failure: Some("the kernel did not boot"),
            },
        ];
        let sets = [
            "kernel".to_string(),
            "parent".to_string(),
            "child".to_string(),
        ];
        let svg = render(Figure::Current, "shared", &columns, &sets, "current");
        for text in [
            "cow-fork: who pays, by policy",
            "fixed policy: msgbuf=sender pagetable=owner release=migrate kernel=self transfer=direct · varied: cow",
            "KiB charged at snapshot `shared`",
            "set `parent`",
            "set `child`",
            "set `kernel`",
            "cow=holder",
            "cow=writer",
            "68 KiB",
            "12 KiB",
            "paid 16 KiB for child",
            "1 denied (cow)",
            "FAIL",
            "the kernel did not boot",
            "FAIL cow=writer: QEMU timed out after 60 s",
            "child stopped: over limit: cow",
        ] {
            assert!(has(&svg, text), "missing text {text}");
        }
        assert!(!svg.contains("(no snapshot)"));
    }

    #[test]
    fn panels_with_nothing_to_draw_are_left_out() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let columns = [
            Column {
                title: "cow=holder",
                report: Some(&report),
                failure: None,
            },
            Column {
                title: "cow=holder again",
                report: Some(&report),
                failure: None,
            },
        ];
        let sets = ["parent".to_string(), "child".to_string()];
        // At `final` every set is back to zero: only `parent`'s denial is left to show; `child`
        // has no panel, and a footnote says so.
        let svg = render(Figure::Current, "final", &columns, &sets, "empty");
        assert!(has(&svg, "set `parent`"));
        assert!(has(&svg, "1 denied (cow)"));
        assert!(!has(&svg, "set `child`"));
        assert!(has(
            &svg,
            "Not drawn (nothing to show under any policy): set `child`."
        ));
        // Its peaks are there.
        let svg = render(Figure::Peak, "final", &columns, &sets, "peak");
        assert!(has(&svg, "set `parent`"));
        assert!(has(&svg, "KiB peak over the run (at `final`)"));
    }

    #[test]
    fn a_delta_chart_draws_the_change_from_the_baseline() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let mut grown = report.clone();
        // Rename `shared` to `before` and add an `after` 16 page-table frames later.
        grown.snapshots[1].label = "before".into();
        let mut after = grown.snapshots[1].clone();
        after.label = "after".into();
        after.charge_sets[1].current.pagetables += 16 * 4096;
        grown.snapshots.insert(2, after);
        assert_eq!(baseline_for(&[&grown], "after").as_deref(), Some("before"));
        assert_eq!(baseline_for(&[&grown], "before"), None);
        assert_eq!(
            baseline_for(&[&grown, &report], "after").as_deref(),
            Some("before")
        );
        let columns = [Column {
            title: "as configured",
            report: Some(&grown),
            failure: None,
        }];
        let sets = ["parent".to_string(), "child".to_string()];
        let svg = render(
            Figure::Delta { baseline: "before" },
            "after",
            &columns,
            &sets,
            "delta",
        );
        assert!(has(&svg, "KiB change from `before` to `after`"));
        assert!(has(&svg, "+64 KiB (to 132 KiB)"));
        assert!(has(&svg, "±0 (to 12 KiB)"));
        // One combination: one panel titled by it, a row per set.
        assert!(has(&svg, "as configured"));
        assert!(has(&svg, "parent"));
    }

    #[test]
    fn transient_peaks_show_who_paid_for_a_freed_buffer() {
        // ipc-overlap: the buffer is freed before `after`; only its peak tells the policies apart.
        let report = parse_console(TRANSCRIPT).unwrap();
        let mut sender_pays = report.clone();
        sender_pays.snapshots[1].charge_sets[1].peak.msgbuf = 4096;
        let columns = [
            Column {
                title: "msgbuf=sender",
                report: Some(&sender_pays),
                failure: None,
            },
            Column {
                title: "msgbuf=receiver",
                report: Some(&report),
                failure: None,
            },
        ];
        let sets = ["parent".to_string()];
        let svg = render(Figure::Current, "shared", &columns, &sets, "ghost");
        assert_eq!(svg.matches("\nmsgbuf peak 4 KiB\n").count(), 1);
        assert!(has(
            &svg,
            "peak of a transient kind above its current figure"
        ));
    }
}
