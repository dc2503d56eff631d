//! The chart of `tally diff`: two snapshots side by side (A and B, on one axis) and their
//! difference B − A (on an axis of its own, decreases left of zero), a row per charge set that
//! is charged, peaked or denied in either. Bars are as in [`super::bars`]; the difference
//! panel's text gives the net change and the figure B reached.

use std::path::Path;

use anyhow::Result;

use super::bars::{self, signed_text, Bar, BarChart, Cell, Panel, RowLabel};
use super::chart::domain_note;
use crate::config::KINDS;
use crate::report::{ChargeSetReport, Snapshot};

fn busy(set: &ChargeSetReport) -> bool {
    set.current.total() > 0 || set.peak.total() > 0 || set.denied.total() > 0
}

/// `cow: writer → holder`: the policies that differ between the snapshots (from the
/// `policy` each snapshot records), or every policy when they agree.
fn policy_difference(a: &Snapshot, b: &Snapshot) -> String {
    let policy = |s: &Snapshot| s.extra.get("policy").and_then(|p| p.as_object()).cloned();
    let (Some(pa), Some(pb)) = (policy(a), policy(b)) else {
        return String::new();
    };
    let name =
        |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).unwrap_or("-").to_string();
    let mut differ = Vec::new();
    let mut same = Vec::new();
    for key in pa.keys().chain(pb.keys().filter(|k| !pa.contains_key(*k))) {
        let (va, vb) = (name(pa.get(key)), name(pb.get(key)));
        if va == vb {
            same.push(format!("{key}={va}"));
        } else {
            differ.push(format!("{key}: {va} → {vb}"));
        }
    }
    if differ.is_empty() {
        format!("same policy: {}", same.join(" "))
    } else {
        format!(
            "policy A → B: {} · same: {}",
            differ.join(", "),
            same.join(" ")
        )
    }
}

/// The diff chart, laid out.
fn chart(a_title: &str, a: &Snapshot, b_title: &str, b: &Snapshot) -> BarChart {
    let mut sets: Vec<&str> = Vec::new();
    for set in a.charge_sets.iter().chain(&b.charge_sets) {
        if busy(set) && !sets.contains(&set.name.as_str()) {
            sets.push(&set.name);
        }
    }
    let side = |snapshot: &Snapshot| -> Vec<Cell> {
        sets.iter()
            .map(|name| match snapshot.charge_set(name) {
                Some(set) => Cell::Bar(Bar::current(set)),
                None => Cell::Note(format!("no set `{name}`")),
            })
            .collect()
    };
    let difference: Vec<Cell> = sets
        .iter()
        .map(|name| match (b.charge_set(name), a.charge_set(name)) {
            (Some(now), base) => {
                let mut bar = Bar::delta(now, base);
                // The A and B panels mark their denials; the difference has none of its own.
                bar.denied.clear();
                Cell::Bar(bar)
            }
            (None, Some(base)) => {
                let mut bar = Bar::delta(&zeroed(base), Some(base));
                bar.text = format!(
                    "{} (set absent in B)",
                    signed_text(-(base.current.total() as i64))
                );
                Cell::Bar(bar)
            }
            (None, None) => Cell::Note(String::new()),
        })
        .collect();
    let title_of =
        |side: &str, title: &str, s: &Snapshot| format!("{side}: {title} (`{}`)", s.label);
    let rows = sets
        .iter()
        .map(|name| RowLabel {
            text: name.to_string(),
            note: domain_note(b, name).or_else(|| domain_note(a, name)),
            failed: false,
        })
        .collect();
    let total = |s: &Snapshot| -> i64 {
        s.charge_sets
            .iter()
            .map(|set| set.current.total() as i64)
            .sum()
    };
    let mut changes: Vec<String> = Vec::new();
    for kind in KINDS {
        let sum = |s: &Snapshot| -> i64 {
            s.charge_sets
                .iter()
                .map(|set| set.current.get(kind) as i64)
                .sum()
        };
        let change = sum(b) - sum(a);
        if change != 0 {
            changes.push(format!("{kind} {}", signed_text(change)));
        }
    }
    let moved: i64 = sets
        .iter()
        .map(|name| {
            let figure = |s: &Snapshot| {
                s.charge_set(name)
                    .map_or(0, |set| set.current.total() as i64)
            };
            (figure(b) - figure(a)).max(0)
        })
        .sum();
    let footnotes = vec![
        format!(
            "All sets: A {}, B {}, B − A {}{}.",
            crate::size::human(total(a) as u64),
            crate::size::human(total(b) as u64),
            signed_text(total(b) - total(a)),
            if changes.is_empty() {
                String::new()
            } else {
                format!(" ({})", changes.join(", "))
            }
        ),
        format!(
            "Bytes that moved to a set that pays more in B: {}.",
            if moved == 0 {
                "none".to_string()
            } else {
                crate::size::human(moved as u64)
            }
        ),
    ];
    BarChart {
        title: format!("diff: {b_title} − {a_title}, by charge set and kind"),
        subtitles: vec![policy_difference(a, b)],
        failure: None,
        rows,
        panels: vec![
            Panel {
                title: title_of("A", a_title, a),
                scale: 0,
                cells: side(a),
            },
            Panel {
                title: title_of("B", b_title, b),
                scale: 0,
                cells: side(b),
            },
            Panel {
                title: "B − A".to_string(),
                scale: 1,
                cells: difference,
            },
        ],
        scales: vec!["charged".to_string(), "B − A".to_string()],
        footnotes,
    }
}

/// A copy of `set` with nothing charged (the B side of a set that only A has).
fn zeroed(set: &ChargeSetReport) -> ChargeSetReport {
    ChargeSetReport {
        current: Default::default(),
        peak: Default::default(),
        denied: Default::default(),
        paid_for: Default::default(),
        ..set.clone()
    }
}

/// Writes the diff chart of snapshot `a` (titled `a_title`, e.g. `cow=writer`) against `b` to
/// `path`: a panel for each, on one axis, and a panel of `b − a` per charge set and kind.
pub fn write_diff_svg(
    a_title: &str,
    a: &Snapshot,
    b_title: &str,
    b: &Snapshot,
    path: &Path,
) -> Result<()> {
    bars::write(&chart(a_title, a, b_title, b), path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{parse_console, tests::TRANSCRIPT};

    #[test]
    fn draws_both_sides_and_their_difference() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let mut a = report.snapshot("shared").unwrap().clone();
        let policy = serde_json::json!({"cow": "holder", "msgbuf": "sender"});
        a.extra.insert("policy".into(), policy);
        // B: the child pays for its own copies (cow=writer).
        let mut b = a.clone();
        b.charge_sets[1].current.cow = 0;
        b.charge_sets[1].paid_for.clear();
        b.charge_sets[2].current.cow = 16384;
        b.extra["policy"]["cow"] = "writer".into();
        let path = std::env::temp_dir().join(format!("tally-diff-{}.svg", std::process::id()));
        write_diff_svg("cow=holder", &a, "cow=writer", &b, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        let has = |text: &str| svg.contains(&format!("\n{text}\n"));
        for text in [
            "diff: cow=writer − cow=holder, by charge set and kind",
            "A: cow=holder (`shared`)",
            "B: cow=writer (`shared`)",
            "B − A",
            "KiB charged",
            "KiB B − A",
            "−16 KiB (to 52 KiB)",
            "+16 KiB (to 28 KiB)",
            "±0 (to 32 KiB)",
            "All sets: A 112 KiB, B 112 KiB, B − A ±0.",
            "Bytes that moved to a set that pays more in B: 16 KiB.",
        ] {
            assert!(has(text), "missing text {text}");
        }
        assert!(svg.contains("policy A → B: cow: holder → writer"));
    }
}
