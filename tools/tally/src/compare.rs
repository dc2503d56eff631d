//! Comparing outcomes: `tally diff A B` (two runs, or two policy combinations of one scenario's
//! results), and the grouping of policy combinations that give identical outcomes (replay
//! summaries).
//!
//! An *outcome* is what the books say, not how long it took: for every snapshot, each charge
//! set's current and peak bytes per kind, its denials per kind, what it paid for others, and
//! each domain's state. Instruction counts are left out (a replay keeps the recorded ones; two
//! real runs under different policies differ in them for reasons that are not the charges).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{PolicyOverrides, KINDS};
use crate::exit::{self, Failure};
use crate::report::{ChargeSetReport, Report, Snapshot};
use crate::size::human;

/// The outcome of a report as comparable text (see the module comment).
pub fn fingerprint(report: &Report) -> String {
    let mut out = String::new();
    for snapshot in &report.snapshots {
        let _ = write!(out, "[{}]", snapshot.label);
        for set in &snapshot.charge_sets {
            let _ = write!(out, "{}:", set.name);
            for figures in [&set.current, &set.peak, &set.denied] {
                for kind in KINDS {
                    let _ = write!(out, "{},", figures.get(kind));
                }
            }
            for (causer, bytes) in &set.paid_for {
                let _ = write!(out, "{causer}={bytes},");
            }
            out.push(';');
        }
        for domain in &snapshot.domains {
            let _ = write!(out, "{}={};", domain.name, domain.state);
        }
    }
    out
}

/// Indices of `reports` grouped by identical outcome, groups in order of their first member.
pub fn identical_groups(reports: &[&Report]) -> Vec<Vec<usize>> {
    let prints: Vec<String> = reports.iter().map(|r| fingerprint(r)).collect();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (index, print) in prints.iter().enumerate() {
        match groups.iter_mut().find(|g| prints[g[0]] == *print) {
            Some(group) => group.push(index),
            None => groups.push(vec![index]),
        }
    }
    groups
}

/// The policy keys that never change the outcome: for every pair of combinations that differ
/// in that key alone, the outcomes are identical (and at least one such pair exists).
pub fn indifferent_keys(combos: &[Vec<(String, String)>], reports: &[&Report]) -> Vec<String> {
    let prints: Vec<String> = reports.iter().map(|r| fingerprint(r)).collect();
    let keys: Vec<String> = combos
        .first()
        .map(|c| c.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    keys.into_iter()
        .filter(|key| {
            let mut pairs = 0;
            for i in 0..combos.len() {
                for j in i + 1..combos.len() {
                    let differ: Vec<&String> = combos[i]
                        .iter()
                        .zip(&combos[j])
                        .filter(|(a, b)| a.1 != b.1)
                        .map(|(a, _)| &a.0)
                        .collect();
                    if differ == [key] {
                        pairs += 1;
                        if prints[i] != prints[j] {
                            return false;
                        }
                    }
                }
            }
            pairs > 0
        })
        .collect()
}

/// A group of combinations in few words: per key, its one value, `any` (every value the
/// sweep used), or `{a,b}`; when the group is exactly the product of those choices, e.g.
/// `cow={holder,holder-else-writer} pagetable=owner kernel=self (msgbuf, release: any)`;
/// otherwise each combination, separated by `; `.
pub fn describe_group(group: &[&[(String, String)]], all: &[Vec<(String, String)>]) -> String {
    let Some(first) = group.first() else {
        return String::new();
    };
    let values = |set: &mut dyn Iterator<Item = &[(String, String)]>, key: usize| {
        let mut out: Vec<String> = Vec::new();
        for combo in set {
            if !out.contains(&combo[key].1) {
                out.push(combo[key].1.clone());
            }
        }
        out
    };
    let mut product = 1usize;
    let mut fixed: Vec<String> = Vec::new();
    let mut any: Vec<String> = Vec::new();
    for (index, (key, _)) in first.iter().enumerate() {
        let here = values(&mut group.iter().copied(), index);
        let everywhere = values(&mut all.iter().map(Vec::as_slice), index);
        product = product.saturating_mul(here.len());
        if here.len() == everywhere.len() && here.len() > 1 {
            any.push(key.clone());
        } else {
            fixed.push(if here.len() == 1 {
                format!("{key}={}", here[0])
            } else {
                format!("{key}={{{}}}", here.join(","))
            });
        }
    }
    if product != group.len() {
        return group
            .iter()
            .map(|combo| {
                combo
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    match (fixed.is_empty(), any.is_empty()) {
        (_, true) => fixed.join(" "),
        (true, false) => format!("any {}", any.join(", ")),
        (false, false) => format!("{} ({}: any)", fixed.join(" "), any.join(", ")),
    }
}

/// One side of a diff: a title and its report.
#[derive(Debug, Clone)]
pub struct Side {
    /// `cow=writer release=stay` or the run directory.
    pub title: String,
    /// Where it was read from.
    pub dir: PathBuf,
    /// The report.
    pub report: Report,
}

/// Reads a run: its directory (with `report.json`) or the `report.json` itself.
pub fn read_run(path: &Path) -> Result<Side, Failure> {
    let file = if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| {
        Failure::environment(format!(
            "cannot read {}: {e} (give a run directory with a report.json, or the file)",
            file.display()
        ))
    })?;
    let report: Report = serde_json::from_str(&text).map_err(|e| {
        Failure::new(
            exit::RUN_FAILED,
            format!("{}: not a Tally report: {e}", file.display()),
        )
    })?;
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(Side {
        title: dir.display().to_string(),
        dir,
        report,
    })
}

/// The run of a scenario's results directory (`results/cow-fork/`) whose policies include
/// every pair of `selector` (`cow=writer release=stay`); exactly one must match.
pub fn select_run(scenario_dir: &Path, selector: &str) -> Result<Side, Failure> {
    let wanted = PolicyOverrides::parse(selector).map_err(Failure::config)?;
    let mut matches: Vec<Side> = Vec::new();
    let entries = std::fs::read_dir(scenario_dir).map_err(|e| {
        Failure::environment(format!("cannot list {}: {e}", scenario_dir.display()))
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("report.json").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let side = read_run(&dir)?;
        let fits = wanted.0.iter().all(|(key, name)| {
            if key == PolicyOverrides::TRANSFER {
                side.report.transfer() == Some(name.as_str())
            } else if key == PolicyOverrides::PRESET {
                side.report.preset() == Some(name.as_str())
            } else {
                side.report.policy_name(key) == Some(name.as_str())
            }
        });
        if fits {
            matches.push(side);
        }
    }
    match matches.len() {
        1 => {
            let mut side = matches.remove(0);
            side.title = selector.trim().to_string();
            Ok(side)
        }
        0 => Err(Failure::config(format!(
            "no run under {} has the policies `{selector}`",
            scenario_dir.display()
        ))),
        _ => Err(Failure::config(format!(
            "`{selector}` matches {} runs under {}; name more keys: {}",
            matches.len(),
            scenario_dir.display(),
            matches
                .iter()
                .map(|s| s.dir.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// One differing figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Snapshot label.
    pub snapshot: String,
    /// Charge set.
    pub set: String,
    /// `current.cow`, `denied.anon`, `paid_for.child`, `state.child`, ...
    pub field: String,
    /// A's value (bytes, a count, or a state).
    pub a: String,
    /// B's value.
    pub b: String,
    /// B − A for numeric figures.
    pub delta: Option<i128>,
}

fn figures(set: &ChargeSetReport) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for (name, figures) in [
        ("current", &set.current),
        ("peak", &set.peak),
        ("denied", &set.denied),
    ] {
        for kind in KINDS {
            out.push((format!("{name}.{kind}"), figures.get(kind)));
        }
    }
    for (causer, bytes) in &set.paid_for {
        out.push((format!("paid_for.{causer}"), *bytes));
    }
    out
}

/// Every figure that differs between the two snapshots (sets and fields of either side).
pub fn differences(a: &Snapshot, b: &Snapshot) -> Vec<Difference> {
    let mut sets: Vec<&str> = a.charge_sets.iter().map(|s| s.name.as_str()).collect();
    for set in &b.charge_sets {
        if !sets.contains(&set.name.as_str()) {
            sets.push(&set.name);
        }
    }
    let mut out = Vec::new();
    for name in sets {
        let fa = a.charge_set(name).map(figures).unwrap_or_default();
        let fb = b.charge_set(name).map(figures).unwrap_or_default();
        let mut fields: Vec<&String> = fa.iter().map(|(f, _)| f).collect();
        for (field, _) in &fb {
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
        for field in fields {
            let va = fa.iter().find(|(f, _)| f == field).map_or(0, |(_, v)| *v);
            let vb = fb.iter().find(|(f, _)| f == field).map_or(0, |(_, v)| *v);
            if va != vb {
                let bytes = !field.starts_with("denied.");
                let show = |v: u64| if bytes { human(v) } else { v.to_string() };
                out.push(Difference {
                    snapshot: a.label.clone(),
                    set: name.to_string(),
                    field: field.clone(),
                    a: show(va),
                    b: show(vb),
                    delta: Some(i128::from(vb) - i128::from(va)),
                });
            }
        }
    }
    for domain in &a.domains {
        let other = b.domain(&domain.name).map(|d| d.state.as_str());
        if other != Some(domain.state.as_str()) {
            out.push(Difference {
                snapshot: a.label.clone(),
                set: domain.charge_set.clone(),
                field: format!("state.{}", domain.name),
                a: domain.state.clone(),
                b: other.unwrap_or("-").to_string(),
                delta: None,
            });
        }
    }
    out
}

/// The labels both reports have, in A's order.
pub fn common_labels(a: &Report, b: &Report) -> Vec<String> {
    a.snapshots
        .iter()
        .filter(|s| b.snapshot(&s.label).is_some())
        .map(|s| s.label.clone())
        .collect()
}

fn signed_bytes(delta: i128, bytes: bool) -> String {
    let magnitude = u64::try_from(delta.unsigned_abs()).unwrap_or(u64::MAX);
    let text = if bytes {
        human(magnitude)
    } else {
        magnitude.to_string()
    };
    match delta.signum() {
        1 => format!("+{text}"),
        -1 => format!("−{text}"),
        _ => text,
    }
}

/// The diff as Markdown: the two sides, then a table per snapshot label of every differing
/// figure (A, B, B − A), or a line saying the outcomes are identical.
pub fn markdown(a: &Side, b: &Side, labels: &[String]) -> (String, usize) {
    let mut out = String::new();
    let _ = writeln!(out, "# {} vs {}\n", a.title, b.title);
    for (name, side) in [("A", a), ("B", b)] {
        let _ = writeln!(
            out,
            "- **{name}**: `{}` — {} ({}), status `{}`",
            side.title,
            side.report.config,
            side.report.policy_line(),
            side.report.status
        );
    }
    let mut total = 0;
    for label in labels {
        let (Some(sa), Some(sb)) = (a.report.snapshot(label), b.report.snapshot(label)) else {
            continue;
        };
        let found = differences(sa, sb);
        total += found.len();
        let _ = writeln!(out, "\n## Snapshot `{label}`\n");
        if found.is_empty() {
            let _ = writeln!(out, "Identical charges, denials and domain states.");
            continue;
        }
        let _ = writeln!(
            out,
            "| charge set | figure | A | B | B − A |\n|---|---|---:|---:|---:|"
        );
        for d in &found {
            let delta = d.delta.map_or("-".to_string(), |v| {
                signed_bytes(v, !d.field.starts_with("denied."))
            });
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                d.set, d.field, d.a, d.b, delta
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{}.",
        if total == 0 {
            "The outcomes are identical".to_string()
        } else {
            format!(
                "{} {}",
                crate::words::count(total, "figure"),
                if total == 1 { "differs" } else { "differ" }
            )
        }
    );
    (out, total)
}

/// The diff as CSV: `snapshot, charge_set, field, a, b, delta` with raw integers.
pub fn csv(a: &Side, b: &Side, labels: &[String]) -> String {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(["snapshot", "charge_set", "field", "a", "b", "delta"]);
    for label in labels {
        let (Some(sa), Some(sb)) = (a.report.snapshot(label), b.report.snapshot(label)) else {
            continue;
        };
        let raw = |snapshot: &Snapshot, set: &str, field: &str| -> String {
            if let Some(domain) = field.strip_prefix("state.") {
                return snapshot
                    .domain(domain)
                    .map_or(String::new(), |d| d.state.clone());
            }
            snapshot
                .charge_set(set)
                .and_then(|s| figures(s).into_iter().find(|(f, _)| f == field))
                .map_or("0".to_string(), |(_, v)| v.to_string())
        };
        for d in differences(sa, sb) {
            let _ = writer.write_record([
                label.clone(),
                d.set.clone(),
                d.field.clone(),
                raw(sa, &d.set, &d.field),
                raw(sb, &d.set, &d.field),
                d.delta.map_or(String::new(), |v| v.to_string()),
            ]);
        }
    }
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{parse_console, tests::TRANSCRIPT};

    #[test]
    fn a_report_equals_itself_and_a_changed_figure_is_found() {
        let a = parse_console(TRANSCRIPT).unwrap();
        let mut b = a.clone();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.snapshots[1].charge_sets[1].current.cow = 0;
        assert_ne!(fingerprint(&a), fingerprint(&b));
        let found = differences(&a.snapshots[1], &b.snapshots[1]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].field, "current.cow");
        assert_eq!(found[0].delta, Some(-16384));
        // Instruction counts are not part of an outcome.
        let mut c = a.clone();
        c.snapshots[1].instructions += 1;
        assert_eq!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn identical_outcomes_group_and_indifferent_keys_are_named() {
        let base = parse_console(TRANSCRIPT).unwrap();
        let mut other = base.clone();
        other.snapshots[1].charge_sets[1].current.cow = 0;
        let combo = |cow: &str, msgbuf: &str| {
            vec![
                ("cow".to_string(), cow.to_string()),
                ("msgbuf".to_string(), msgbuf.to_string()),
            ]
        };
        let combos = [
            combo("writer", "sender"),
            combo("writer", "receiver"),
            combo("holder", "sender"),
            combo("holder", "receiver"),
        ];
        let reports = [&base, &base, &other, &other];
        assert_eq!(identical_groups(&reports), [vec![0, 1], vec![2, 3]]);
        assert_eq!(indifferent_keys(&combos, &reports), ["msgbuf"]);
        let group: Vec<&[(String, String)]> = vec![&combos[2], &combos[3]];
        assert_eq!(describe_group(&group, &combos), "cow=holder (msgbuf: any)");
        let odd: Vec<&[(String, String)]> = vec![&combos[0], &combos[3]];
        assert_eq!(
            describe_group(&odd, &combos),
            "cow=writer msgbuf=sender; cow=holder msgbuf=receiver"
        );
    }

    #[test]
    fn the_markdown_lists_each_difference_with_its_sign() {
        let a = parse_console(TRANSCRIPT).unwrap();
        let mut b = a.clone();
        b.snapshots[1].charge_sets[1].current.cow = 0;
        let side = |title: &str, report: &Report| Side {
            title: title.to_string(),
            dir: PathBuf::new(),
            report: report.clone(),
        };
        let (text, count) = markdown(&side("A", &a), &side("B", &b), &common_labels(&a, &b));
        assert_eq!(count, 1);
        assert!(
            text.contains("| parent | current.cow | 16 KiB | 0 B | −16 KiB |"),
            "{text}"
        );
        assert!(text.contains("Identical charges"), "{text}");
        let table = csv(&side("A", &a), &side("B", &b), &common_labels(&a, &b));
        assert!(
            table.contains("shared,parent,current.cow,16384,0,-16384"),
            "{table}"
        );
    }
}
