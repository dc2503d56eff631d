//! Turning a [`Report`] into files and terminal output: the CSV tables (`report.csv`,
//! `attribution.csv`, `domains.csv`; see [`csv`]), `summary.md`
//! (a table per snapshot), `charges.svg` (stacked bars per charge set), `policies.svg` (a
//! scenario's charge sets under each policy combination), `causers.svg` (payer × causer heat
//! maps per combination), the diff chart of `tally diff` and the terminal summary.

mod bars;
mod canvas;
mod chart;
mod csv;
mod diff_chart;
#[cfg(test)]
mod gallery;
mod heatmap;
mod palette;
mod policies;
mod table;

pub use chart::write_svg;
pub use csv::{run_files as csv_files, table_csv, to_csv, Rows as CsvRows, Table as CsvTable};
pub use diff_chart::write_diff_svg;
pub use heatmap::{
    causer_matrix, write_causers_svg, write_heatmap_svg, Attribution, HeatPanel, NO_DOMAIN,
};
pub use policies::{baseline_for, write_policies_svg, Column, Figure};
pub use table::{summary_markdown, terminal_summary, Colour};

use crate::report::{ChargeSetReport, KindBytes};
use crate::size::human;

/// Bytes in human units for a table cell; zero is a bare `0` so that the eye skips it.
fn cell(bytes: u64) -> String {
    if bytes == 0 {
        "0".to_string()
    } else {
        human(bytes)
    }
}

/// `current/peak` in human units, or `0` when both are zero.
fn current_and_peak(current: u64, peak: u64) -> String {
    if current == 0 && peak == 0 {
        "0".to_string()
    } else {
        format!("{}/{}", cell(current), cell(peak))
    }
}

/// Total denials and the kinds they were in: `2 (cow:1, anon:1)`, or `0`.
pub(crate) fn denials(denied: &KindBytes) -> String {
    let parts: Vec<String> = crate::config::KINDS
        .iter()
        .filter(|kind| denied.get(kind) > 0)
        .map(|kind| format!("{kind}:{}", denied.get(kind)))
        .collect();
    if parts.is_empty() {
        "0".to_string()
    } else {
        format!("{} ({})", denied.total(), parts.join(", "))
    }
}

/// Bytes paid for other domains, by causer: `child: 16 KiB`, or `-`.
pub(crate) fn paid_for(set: &ChargeSetReport) -> String {
    let parts: Vec<String> = set
        .paid_for
        .iter()
        .filter(|(_, bytes)| **bytes > 0)
        .map(|(causer, bytes)| format!("{causer}: {}", human(*bytes)))
        .collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    }
}

fn limit(set: &ChargeSetReport) -> String {
    set.limit_bytes.map_or_else(|| "-".to_string(), human)
}
