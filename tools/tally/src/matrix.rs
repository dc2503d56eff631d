//! Policy matrices: one scenario's reports under several policy combinations, side by side —
//! the markdown tables of `results/matrix.md` and of a replay's `comparison.md`, and the tidy
//! rows of `results/matrix.csv` and a replay's `comparison.csv` (written by
//! [`crate::render::table_csv`]).
//!
//! Every table reads the same figures from the reports (nothing is recomputed): at a snapshot,
//! each charge set's `current` bytes per kind, its denials so far and what it pays for other
//! domains; at `final`, each set's peaks per kind (the highest figure over the whole run), its
//! denials and its cumulative charged bytes.

use std::fmt::Write as _;

use crate::config::KINDS;
use crate::render::{denials, paid_for};
use crate::report::Report;
use crate::size::human;

/// The label of the snapshot the kernel takes before any domain runs.
pub const START: &str = "start";
/// The label of the snapshot the kernel takes when every domain is done.
pub const FINAL: &str = "final";

/// One column of a matrix: a report and how to name it.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// `cow=holder release=stay`, `as configured`, …
    pub title: &'a str,
    /// The directory-style name of the combination (`cow-holder_release-stay`, `default`).
    pub combination: &'a str,
    /// The report.
    pub report: &'a Report,
    /// Shown after the title in markdown (e.g. `FAIL`, `replay: 2 diverging operations`).
    pub note: Option<&'a str>,
}

/// Whether a label is one a program chose (not `start` or `final`).
pub fn is_user_label(label: &str) -> bool {
    label != START && label != FINAL
}

/// The labels the programs chose, in order of first appearance over `reports`.
pub fn user_labels<'a>(reports: impl IntoIterator<Item = &'a Report>) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for report in reports {
        for snapshot in &report.snapshots {
            if is_user_label(&snapshot.label) && !labels.contains(&snapshot.label) {
                labels.push(snapshot.label.clone());
            }
        }
    }
    labels
}

/// The snapshot that shows a scenario best: among the snapshots the programs chose, the one
/// with the most bytes charged, summed over `reports` (the later one on a tie) — a program
/// takes its snapshot where the interesting memory is held, and `final` has everything
/// returned. `final` when no program took a snapshot.
pub fn key_snapshot(reports: &[&Report]) -> String {
    let mut best: Option<(u64, String)> = None;
    for label in user_labels(reports.iter().copied()) {
        let charged: u64 = reports
            .iter()
            .filter_map(|report| report.snapshot(&label))
            .map(|snapshot| snapshot.conservation.charged_bytes)
            .sum();
        if best.as_ref().is_none_or(|(most, _)| charged >= *most) {
            best = Some((charged, label));
        }
    }
    best.map_or_else(|| FINAL.to_string(), |(_, label)| label)
}

/// Charge sets worth a row: every set, in order of first appearance, except those whose
/// figures are zero in every snapshot of every report (the `kernel` reserve set under most
/// policies, for instance).
pub fn sets_that_matter(reports: &[&Report]) -> Vec<String> {
    let mut sets: Vec<String> = Vec::new();
    let mut all: Vec<String> = Vec::new();
    for report in reports {
        for snapshot in &report.snapshots {
            for set in &snapshot.charge_sets {
                if !all.contains(&set.name) {
                    all.push(set.name.clone());
                }
                let busy = set.current.total() > 0
                    || set.peak.total() > 0
                    || set.denied.total() > 0
                    || set.charged_total_bytes > 0;
                if busy && !sets.contains(&set.name) {
                    sets.push(set.name.clone());
                }
            }
        }
    }
    // Keep first-appearance order.
    all.retain(|name| sets.contains(name));
    all
}

/// Bytes for a table cell: `0`, `4 KiB`, `1.3 KiB`.
fn cell(bytes: u64) -> String {
    if bytes == 0 {
        "0".to_string()
    } else {
        human(bytes)
    }
}

fn title_cell(entry: &Entry<'_>) -> String {
    match entry.note {
        Some(note) => format!("{} ({note})", entry.title),
        None => entry.title.to_string(),
    }
}

fn table_header(out: &mut String, headers: &[String]) {
    let _ = writeln!(out, "| {} |", headers.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(headers.len()));
}

fn table_row(out: &mut String, cells: &[String]) {
    let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

/// A markdown table with a row per (combination, charge set) of snapshot `label`: the
/// combination (on its first row), the set's name, then `cells(set)` under `columns`. A report
/// without the snapshot gets one row saying so.
fn per_set_table(
    entries: &[Entry<'_>],
    label: &str,
    columns: impl IntoIterator<Item = String>,
    cells: impl Fn(&crate::report::ChargeSetReport) -> Vec<String>,
) -> String {
    let reports: Vec<&Report> = entries.iter().map(|e| e.report).collect();
    let sets = sets_that_matter(&reports);
    let mut headers = vec!["policies".to_string(), "charge set".to_string()];
    headers.extend(columns);
    let mut out = String::new();
    table_header(&mut out, &headers);
    for entry in entries {
        let Some(snapshot) = entry.report.snapshot(label) else {
            let mut row = vec![title_cell(entry), format!("(no snapshot `{label}`)")];
            row.extend((2..headers.len()).map(|_| String::new()));
            table_row(&mut out, &row);
            continue;
        };
        let mut first = true;
        for name in &sets {
            let Some(set) = snapshot.charge_set(name) else {
                continue;
            };
            let mut row = vec![
                if first {
                    title_cell(entry)
                } else {
                    String::new()
                },
                set.name.clone(),
            ];
            first = false;
            row.extend(cells(set));
            table_row(&mut out, &row);
        }
    }
    out
}

/// The markdown table of snapshot `label`: a row per (combination, charge set) with the set's
/// current bytes per kind and in total, its denials so far and what it paid for others. A
/// report without the snapshot gets one row saying so.
pub fn current_table(entries: &[Entry<'_>], label: &str) -> String {
    let columns = KINDS
        .iter()
        .map(|k| k.to_string())
        .chain(["total", "denied so far", "paid for others"].map(String::from));
    per_set_table(entries, label, columns, |set| {
        let mut row: Vec<String> = KINDS
            .iter()
            .map(|kind| cell(set.current.get(kind)))
            .collect();
        row.push(format!("**{}**", cell(set.current.total())));
        row.push(denials(&set.denied));
        row.push(paid_for(set));
        row
    })
}

/// The markdown table of `final`'s peaks: a row per (combination, charge set) with the set's
/// highest bytes per kind over the run, its denials over the run, and its cumulative charges.
pub fn peaks_table(entries: &[Entry<'_>]) -> String {
    let columns = KINDS
        .iter()
        .map(|k| format!("peak {k}"))
        .chain(["denied", "charged in all"].map(String::from));
    per_set_table(entries, FINAL, columns, |set| {
        let mut row: Vec<String> = KINDS.iter().map(|kind| cell(set.peak.get(kind))).collect();
        row.push(denials(&set.denied));
        row.push(cell(set.charged_total_bytes));
        row
    })
}

/// The role of a snapshot in a matrix: `start`, `key` (the snapshot the charts show), `user`
/// (another one a program chose) or `final`.
pub fn role(label: &str, key: &str) -> &'static str {
    if label == key && is_user_label(label) {
        "key"
    } else if label == START {
        "start"
    } else if label == FINAL {
        "final"
    } else {
        "user"
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::KindBytes;
    use crate::report::{parse_console, tests::TRANSCRIPT};

    pub(crate) fn report_with(cow: &str, child_cow: u64) -> Report {
        let mut report = parse_console(TRANSCRIPT).unwrap();
        report
            .policy
            .insert("cow".into(), serde_json::Value::from(cow));
        report.snapshots[1].charge_sets[2].current.cow = child_cow;
        report
    }

    #[test]
    fn the_key_snapshot_is_the_fullest_user_snapshot_else_final() {
        let report = parse_console(TRANSCRIPT).unwrap();
        assert_eq!(key_snapshot(&[&report]), "shared");
        let mut two = report.clone();
        let mut extra = two.snapshots[1].clone();
        extra.label = "later".into();
        extra.conservation.charged_bytes = 4096;
        two.snapshots.insert(2, extra);
        // `shared` holds more than `later`.
        assert_eq!(key_snapshot(&[&two]), "shared");
        assert_eq!(user_labels([&two]), ["shared", "later"]);
        two.snapshots[2].conservation.charged_bytes = 114688;
        // A tie goes to the later one.
        assert_eq!(key_snapshot(&[&two]), "later");
        let mut none = report.clone();
        none.snapshots.remove(1);
        assert_eq!(key_snapshot(&[&none]), "final");
        assert_eq!(role("shared", "shared"), "key");
        assert_eq!(role("final", "final"), "final");
        assert_eq!(role("start", "shared"), "start");
        assert_eq!(role("later", "shared"), "user");
    }

    #[test]
    fn tables_show_each_combination_and_set() {
        let writer = report_with("writer", 65536);
        let holder = report_with("holder", 0);
        let entries = [
            Entry {
                title: "cow=writer",
                combination: "cow-writer",
                report: &writer,
                note: None,
            },
            Entry {
                title: "cow=holder",
                combination: "cow-holder",
                report: &holder,
                note: Some("FAIL"),
            },
        ];
        let table = current_table(&entries, "shared");
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "| policies | charge set | anon | pagetables | kernel | msgbuf | cow | total | denied so far | paid for others |");
        assert_eq!(lines.len(), 2 + 2 * 3);
        assert!(
            table.contains("| cow=writer | kernel | 0 | 0 | 32 KiB | 0 | 0 | **32 KiB** | 0 | - |"),
            "{table}"
        );
        assert!(table.contains("|  | parent | 40 KiB | 8 KiB | 4 KiB | 0 | 16 KiB | **68 KiB** | 1 (cow:1) | child: 16 KiB |"), "{table}");
        assert!(
            table.contains("|  | child | 0 | 8 KiB | 4 KiB | 0 | 64 KiB | **76 KiB** | 0 | - |"),
            "{table}"
        );
        assert!(table.contains("| cow=holder (FAIL) | kernel |"), "{table}");
        let missing = current_table(&entries, "nowhere");
        assert!(
            missing.contains("| cow=writer | (no snapshot `nowhere`) |"),
            "{missing}"
        );

        let peaks = peaks_table(&entries);
        assert!(peaks.starts_with("| policies | charge set | peak anon | peak pagetables | peak kernel | peak msgbuf | peak cow | denied | charged in all |"), "{peaks}");
        assert!(
            peaks.contains(
                "|  | parent | 40 KiB | 8 KiB | 4 KiB | 0 | 16 KiB | 1 (cow:1) | 68 KiB |"
            ),
            "{peaks}"
        );
    }

    #[test]
    fn sets_without_any_charge_are_left_out() {
        let mut report = parse_console(TRANSCRIPT).unwrap();
        for snapshot in &mut report.snapshots {
            for set in &mut snapshot.charge_sets {
                if set.name == "kernel" {
                    set.current = KindBytes::default();
                    set.peak = KindBytes::default();
                    set.charged_total_bytes = 0;
                }
            }
        }
        assert_eq!(sets_that_matter(&[&report]), ["parent", "child"]);
    }
}
