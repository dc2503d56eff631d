//! Tables of charge sets: the terminal summary of the final snapshot, and `summary.md` with one
//! table per snapshot. Both share the same cells.

use std::fmt::Write as _;

use super::{cell, current_and_peak, denials, limit, paid_for};
use crate::config::KINDS;
use crate::report::{Causer, Report, Snapshot};
use crate::size::human;

/// Whether terminal output may use ANSI colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// Plain text (not a terminal, `NO_COLOR`, `TERM=dumb`, ...).
    Off,
    /// ANSI colour.
    On,
}

impl Colour {
    /// What `anstream` decides for stdout: colour on a terminal unless `NO_COLOR` is set or
    /// `TERM=dumb`; forced with `CLICOLOR_FORCE` (the conventions of no-color.org and
    /// bixense.com/clicolors).
    pub fn for_stdout() -> Self {
        match anstream::AutoStream::choice(&std::io::stdout()) {
            anstream::ColorChoice::Never => Colour::Off,
            _ => Colour::On,
        }
    }

    /// `text` in `style` when colour is on.
    pub fn style(self, style: anstyle::Style, text: &str) -> String {
        match self {
            Colour::On => format!("{}{text}{}", style.render(), style.render_reset()),
            Colour::Off => text.to_string(),
        }
    }

    /// `text` in bold.
    pub fn bold(self, text: &str) -> String {
        self.style(anstyle::Style::new().bold(), text)
    }

    /// `text` in red (failures, denials), bold when `strong`.
    pub fn red(self, text: &str, strong: bool) -> String {
        let style = anstyle::Style::new().fg_color(Some(anstyle::AnsiColor::Red.into()));
        self.style(if strong { style.bold() } else { style }, text)
    }

    /// `text` in bold green (a pass).
    pub fn green(self, text: &str) -> String {
        self.style(
            anstyle::Style::new()
                .bold()
                .fg_color(Some(anstyle::AnsiColor::Green.into())),
            text,
        )
    }
}

/// Column headers shared by both tables (after the charge-set name).
fn kind_headers() -> Vec<String> {
    KINDS
        .iter()
        .map(|kind| format!("{kind} cur/peak"))
        .collect()
}

/// One row of cells per charge set: name, each kind, total, limit, denials, paid for.
fn rows(snapshot: &Snapshot) -> Vec<Vec<String>> {
    snapshot
        .charge_sets
        .iter()
        .map(|set| {
            let mut row = vec![set.name.clone()];
            row.extend(
                KINDS
                    .iter()
                    .map(|kind| current_and_peak(set.current.get(kind), set.peak.get(kind))),
            );
            row.push(cell(set.current.total()));
            row.push(limit(set));
            row.push(denials(&set.denied));
            row.push(paid_for(set));
            row
        })
        .collect()
}

fn headers() -> Vec<String> {
    let mut headers = vec!["charge set".to_string()];
    headers.extend(kind_headers());
    headers.extend(["total", "limit", "denials", "paid for others"].map(String::from));
    headers
}

fn policy_line(report: &Report) -> String {
    report.policy_line()
}

/// The terminal summary: the last snapshot a program asked for (the state the experiment is
/// about: who pays for what while it runs), if any, then the final snapshot (every set back to
/// zero, with the peaks). Empty when there is no snapshot.
pub fn terminal_summary(report: &Report, colour: Colour) -> String {
    let Some(last) = report.snapshots.last() else {
        return String::new();
    };
    let program_snapshot = report
        .snapshots
        .iter()
        .rev()
        .find(|s| s.label != "start" && s.label != "final" && !std::ptr::eq(*s, last));
    let mut out = String::new();
    if let Some(snapshot) = program_snapshot {
        out.push_str(&snapshot_table(report, snapshot, colour));
        out.push('\n');
    }
    out.push_str(&snapshot_table(report, last, colour));
    out
}

/// One snapshot as a terminal table (laid out by `comfy-table`): a heading and one row per
/// charge set, names left-aligned and figures right-aligned, the header bold and denials red
/// when `colour` is on.
fn snapshot_table(report: &Report, snapshot: &crate::report::Snapshot, colour: Colour) -> String {
    use comfy_table::{presets::NOTHING, CellAlignment, ContentArrangement, Table};
    let headers = headers();
    let last = headers.len() - 1;
    let denials_column = headers.len() - 2;
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| colour.bold(h)));
    for row in rows(snapshot) {
        table.add_row(row.iter().enumerate().map(|(column, text)| {
            if column == denials_column && text != "0" {
                colour.red(text, false)
            } else {
                text.clone()
            }
        }));
    }
    for (index, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, 2));
        column.set_cell_alignment(if index == 0 || index == last {
            CellAlignment::Left
        } else {
            CellAlignment::Right
        });
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        colour.bold(&format!(
            "{}: snapshot `{}` at {} instructions{} ({})",
            report.config,
            snapshot.label,
            snapshot.instructions,
            if report.trace.is_empty() {
                ""
            } else {
                ", tracing included"
            },
            policy_line(report)
        ))
    );
    for line in table.to_string().lines() {
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for line in caused_lines(snapshot) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Per charge set that pays anything, who caused it (the `caused` table): `  parent pays for:
/// parent 276 KiB (anon 264 KiB, pagetables 12 KiB), child 64 KiB (cow)`. Empty for a report
/// without the table.
fn caused_lines(snapshot: &Snapshot) -> Vec<String> {
    let mut lines = Vec::new();
    for set in &snapshot.charge_sets {
        if set.caused.as_ref().is_none_or(|caused| caused.is_empty()) || set.current.total() == 0 {
            continue;
        }
        let parts: Vec<String> = set
            .attribution()
            .iter()
            .filter_map(|entry| {
                let kinds = entry.kinds.as_ref()?;
                Some(format!(
                    "{} {}",
                    causer_name(entry.causer),
                    by_kind(entry.bytes, |k| kinds.get(k))
                ))
            })
            .collect();
        lines.push(format!("  {} pays for: {}", set.name, parts.join(", ")));
    }
    if !lines.is_empty() {
        lines.insert(0, "caused by:".to_string());
    }
    lines
}

/// A causer as the tables name it: the domain, or `no domain`.
fn causer_name(causer: Causer<'_>) -> &str {
    match causer {
        Causer::Domain(name) => name,
        Causer::OwnDomains => "own domains",
        Causer::NoDomain => "no domain",
    }
}

/// `276 KiB (anon 264 KiB, pagetables 12 KiB)`, or `64 KiB (cow)` when one kind is all of it.
fn by_kind(total: u64, get: impl Fn(&str) -> u64) -> String {
    let kinds: Vec<(&str, u64)> = KINDS
        .iter()
        .map(|kind| (*kind, get(kind)))
        .filter(|(_, bytes)| *bytes > 0)
        .collect();
    match kinds.as_slice() {
        [(kind, _)] => format!("{} ({kind})", human(total)),
        _ => format!(
            "{} ({})",
            human(total),
            kinds
                .iter()
                .map(|(kind, bytes)| format!("{kind} {}", human(*bytes)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The payer × causer table of a snapshot (a row per set and causer domain, bytes per kind),
/// and the sets' event counters, when the report has them.
fn attribution_markdown(out: &mut String, snapshot: &Snapshot) {
    let sets: Vec<&crate::report::ChargeSetReport> = snapshot
        .charge_sets
        .iter()
        .filter(|set| set.caused.is_some() && set.current.total() > 0)
        .collect();
    if sets
        .iter()
        .any(|set| set.caused.as_ref().is_some_and(|caused| !caused.is_empty()))
    {
        let _ = writeln!(
            out,
            "\nWho caused what each set pays (`caused`):\n\n| charge set | caused by | {} | total |\n|---|---|{}---|",
            KINDS.join(" | "),
            "---|".repeat(KINDS.len())
        );
        for set in &sets {
            for entry in set.attribution() {
                let Some(kinds) = &entry.kinds else { continue };
                let own = match entry.causer {
                    Causer::Domain(_) if entry.own => " (own)",
                    _ => "",
                };
                let cells: Vec<String> = KINDS.iter().map(|k| super::cell(kinds.get(k))).collect();
                let _ = writeln!(
                    out,
                    "| {} | {}{own} | {} | {} |",
                    set.name,
                    causer_name(entry.causer),
                    cells.join(" | "),
                    super::cell(entry.bytes)
                );
            }
        }
    }
    let counted: Vec<String> = snapshot
        .charge_sets
        .iter()
        .filter_map(|set| {
            let events = set.events.as_ref()?;
            let parts: Vec<String> = crate::report::EVENTS
                .iter()
                .filter_map(|e| {
                    events
                        .get(*e)
                        .filter(|n| **n > 0)
                        .map(|n| format!("{e} {n}"))
                })
                .collect();
            (!parts.is_empty()).then(|| format!("`{}`: {}", set.name, parts.join(", ")))
        })
        .collect();
    if !counted.is_empty() {
        let _ = writeln!(out, "\nEvents so far: {}.", counted.join("; "));
    }
}

/// `summary.md`: the run's settings and a table per snapshot.
pub fn summary_markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", report.config);
    let _ = writeln!(out, "- policy: `{}`", policy_line(report));
    let _ = writeln!(
        out,
        "- kernel {}, {} guest RAM",
        if report.kernel_version.is_empty() {
            "(unknown version)"
        } else {
            &report.kernel_version
        },
        report.mem_bytes.map_or_else(|| "?".to_string(), human)
    );
    if !report.trace.is_empty() {
        let _ = writeln!(
            out,
            "- traced (`trace=on`): the instruction counts include writing the trace, so they \
             compare only with other traced runs; byte figures are unaffected"
        );
    }
    let _ = write!(out, "- status: `{}`", report.status);
    if let Some(reason) = report.reason.as_ref().filter(|_| report.status != "ok") {
        let _ = write!(out, " ({reason})");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "\nCells are current/peak bytes; denials are counts by kind; paid for others (`paid_for`) is what a set pays that a domain of another set caused.\n"
    );
    let headers = headers();
    for snapshot in &report.snapshots {
        let c = &snapshot.conservation;
        let problems = snapshot.conservation_problems();
        let _ = writeln!(
            out,
            "## Snapshot `{}` ({} instructions)\n",
            snapshot.label, snapshot.instructions
        );
        let _ = writeln!(
            out,
            "Frames: {} total, {} free, {} boot, {} in use. Conservation: **{}** (charged {} bytes, in use {} bytes).\n",
            snapshot.frames.total,
            snapshot.frames.free,
            snapshot.frames.boot,
            snapshot.frames.in_use,
            if problems.is_empty() { "ok" } else { "FAILED" },
            c.charged_bytes,
            c.in_use_bytes
        );
        for problem in &problems {
            let _ = writeln!(out, "- {problem}");
        }
        if !problems.is_empty() {
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "| {} |", headers.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(headers.len()));
        for row in rows(snapshot) {
            let cells: Vec<String> = row.iter().map(|cell| cell.replace('|', "\\|")).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        attribution_markdown(&mut out, snapshot);
        if !snapshot.domains.is_empty() {
            let _ = writeln!(
                out,
                "\n| domain | charge set | state | stop reason |\n|---|---|---|---|"
            );
            for domain in &snapshot.domains {
                let reason = domain.stop_explained().unwrap_or_else(|| "-".to_string());
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    domain.name, domain.charge_set, domain.state, reason
                );
            }
        }
        let _ = writeln!(out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{parse_console, tests::TRANSCRIPT};

    #[test]
    fn the_terminal_table_shows_the_final_snapshot() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let text = terminal_summary(&report, Colour::Off);
        // The program's own snapshot comes first, then a blank line and the final one.
        assert!(text.starts_with("cow-fork: snapshot `shared`"), "{text}");
        let (_, text) = text.split_once("\n\n").unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("cow-fork: snapshot `final` at 90000 instructions"));
        assert!(lines[0].contains(
            "cow=holder msgbuf=sender pagetable=owner release=migrate kernel=self move=stay transfer=direct"
        ));
        assert!(lines[1].starts_with("charge set"));
        assert_eq!(lines.len(), 2 + 3);
        let parent = lines.iter().find(|l| l.starts_with("parent")).unwrap();
        assert!(parent.contains("0/40 KiB"), "{parent}");
        assert!(parent.contains("1 MiB"), "{parent}");
        assert!(parent.contains("1 (cow:1)"), "{parent}");
        assert!(!text.contains('\x1b'));
        // Every row is as wide as the header (columns line up).
        let kernel = lines.iter().find(|l| l.starts_with("kernel")).unwrap();
        assert_eq!(
            kernel.find("0/32 KiB").map(|at| at + 8),
            lines[1].find("kernel cur/peak").map(|at| at + 15)
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let text = terminal_summary(&report, Colour::On);
        assert!(text.contains("\x1b[1m"));
        assert!(text.contains("\x1b[31m"));
    }

    #[test]
    fn markdown_has_a_table_per_snapshot() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let md = summary_markdown(&report);
        assert!(md.starts_with("# cow-fork\n"));
        assert_eq!(md.matches("## Snapshot").count(), 3);
        assert!(md.contains("| parent | 40 KiB/40 KiB | 8 KiB/8 KiB | 4 KiB/4 KiB | 0 | 16 KiB/16 KiB | 68 KiB | 1 MiB | 1 (cow:1) | child: 16 KiB |"), "{md}");
        assert!(md.contains("| child | child | stopped | over limit: cow |"));
        assert!(md.contains("Conservation: **ok**"));
    }
}
