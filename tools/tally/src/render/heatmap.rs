//! `causers.svg`: who paid for whom. One heat map per policy combination (small multiples), each
//! a matrix of payer charge sets (rows) × causer domains (columns), a cell's shade the bytes
//! that set pays for frames that domain caused.
//!
//! The matrix is built from each set's `paid_for` (bytes it pays that domains of other sets
//! caused): what remains of its `current` total (`current − Σ paid_for`) was caused by its own
//! domains, and is attributed to them together — one column named after them (`parent`, or
//! `a+b` for a set with two domains, or `(no domain)` for a set without any, such as the
//! `kernel` reserve). Those "own" cells are outlined in orange, so everything off the outline is a set
//! paying for someone else. [`write_heatmap_svg`] takes the matrix as plain (payer, causer,
//! bytes) triples, so a finer source (a per-kind payer × causer table) can feed it unchanged.
//!
//! Invariants: every panel has the same rows and columns in the same order (the union over
//! all panels, without rows or columns that are zero everywhere), and one colour scale.

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;
use plotters::style::RGBColor;

use super::canvas::{fit, Anchor, Canvas, BADGE_WIDTH};
use super::palette::{text_width, DARK, ORANGE, VERMILLION};
use super::policies::{shared_policies, Column};
use crate::report::{Causer, Report, Snapshot};
use crate::size::human;

/// The causer column of charges no domain caused (a set without domains).
pub const NO_DOMAIN: &str = "(no domain)";

/// Bytes one charge set pays that one domain (or group of own domains) caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    /// The charge set that pays.
    pub payer: String,
    /// The domain that caused the charge (or the payer's own domains together).
    pub causer: String,
    /// Bytes.
    pub bytes: u64,
    /// Whether the causer is the payer's own (its domains, or none).
    pub own: bool,
}

/// The payer × causer matrix of `snapshot`, from [`ChargeSetReport::attribution`]: each causer
/// domain in a column of its own, what no domain caused under [`NO_DOMAIN`]; for a report
/// without the `caused` table, the set's own domains together in one column.
///
/// [`ChargeSetReport::attribution`]: crate::report::ChargeSetReport::attribution
pub fn causer_matrix(snapshot: &Snapshot) -> Vec<Attribution> {
    let mut cells = Vec::new();
    for set in &snapshot.charge_sets {
        for entry in set.attribution() {
            let causer = match entry.causer {
                Causer::Domain(name) => name.to_string(),
                Causer::OwnDomains if !set.domains.is_empty() => set.domains.join("+"),
                Causer::OwnDomains | Causer::NoDomain => NO_DOMAIN.to_string(),
            };
            cells.push(Attribution {
                payer: set.name.clone(),
                causer,
                bytes: entry.bytes,
                own: entry.own,
            });
        }
    }
    cells
}

/// One heat map of the small multiples.
#[derive(Debug, Clone, Default)]
pub struct HeatPanel {
    /// Its heading (the policy combination).
    pub title: String,
    /// Why its run failed (a FAIL badge).
    pub failure: Option<String>,
    /// Why there is no matrix (`no snapshot `x``), when there is none.
    pub note: Option<String>,
    /// The matrix.
    pub cells: Vec<Attribution>,
}

const MARGIN: i32 = 16;
const CELL_HEIGHT: i32 = 24;
const MAX_WIDTH: i32 = 1800;
/// The lightest and darkest shades (ColorBrewer "Blues", readable with colour blindness).
const LIGHT: RGBColor = RGBColor(222, 235, 247);
const DEEP: RGBColor = RGBColor(8, 48, 107);

/// The shade of `bytes` on a scale up to `most` (square root, so small figures still show).
fn shade(bytes: u64, most: u64) -> (RGBColor, bool) {
    let t = (bytes as f64 / most.max(1) as f64).sqrt().clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    (
        RGBColor(
            mix(LIGHT.0, DEEP.0),
            mix(LIGHT.1, DEEP.1),
            mix(LIGHT.2, DEEP.2),
        ),
        t > 0.5,
    )
}

/// Writes the heat maps to `path`: `title` and `subtitle` head them.
pub fn write_heatmap_svg(
    title: &str,
    subtitle: &str,
    panels: &[HeatPanel],
    path: &Path,
) -> Result<()> {
    let mut payers: Vec<&str> = Vec::new();
    for cell in panels.iter().flat_map(|p| &p.cells).filter(|c| c.bytes > 0) {
        if !payers.contains(&cell.payer.as_str()) {
            payers.push(&cell.payer);
        }
    }
    // Columns: each payer's own causer first, in row order, then the others.
    let mut causers: Vec<&str> = Vec::new();
    let live = || panels.iter().flat_map(|p| &p.cells).filter(|c| c.bytes > 0);
    for payer in &payers {
        for cell in live().filter(|c| c.own && c.payer == *payer) {
            if !causers.contains(&cell.causer.as_str()) {
                causers.push(&cell.causer);
            }
        }
    }
    for cell in live() {
        if !causers.contains(&cell.causer.as_str()) {
            causers.push(&cell.causer);
        }
    }
    let most = live().map(|c| c.bytes).max().unwrap_or(0);

    let value_pixels = live()
        .map(|c| text_width(&human(c.bytes), 11.0))
        .max()
        .unwrap_or(0);
    let cell_pixels = causers
        .iter()
        .map(|c| text_width(c, 11.0))
        .max()
        .unwrap_or(0)
        .max(value_pixels)
        .clamp(46, 110)
        + 10;
    let label_pixels = payers
        .iter()
        .map(|p| text_width(p, 12.0))
        .max()
        .unwrap_or(0)
        .clamp(30, 200)
        + 14;
    let panel_pixels = (label_pixels + causers.len().max(1) as i32 * cell_pixels + 28).max(
        panels
            .iter()
            .map(|p| text_width(&p.title, 13.0) + BADGE_WIDTH + 20)
            .max()
            .unwrap_or(0)
            .min(420),
    );
    let per_line = ((MAX_WIDTH - 2 * MARGIN) / panel_pixels).clamp(1, 4) as usize;
    let per_line = per_line.min(panels.len().max(1));
    let panel_height = 24 + 20 + payers.len().max(1) as i32 * CELL_HEIGHT + 26;
    let lines = panels.len().div_ceil(per_line).max(1) as i32;
    let explanation = "rows: the charge set that pays · columns: the domain whose action caused the charge · orange outline: the set's own domains";
    let width = (2 * MARGIN + per_line as i32 * panel_pixels)
        .max(2 * MARGIN + text_width(title, 17.0))
        .max(2 * MARGIN + text_width(explanation, 11.0))
        .max(2 * MARGIN + text_width(subtitle, 12.0))
        .max(560);
    let top = MARGIN + 28 + 17 + 18 + 26;
    let empty = payers.is_empty();
    let height = top + if empty { 40 } else { lines * panel_height } + MARGIN;

    let canvas = Canvas::new(path, width, height)?;
    canvas.text(
        title,
        (width / 2, MARGIN + 10),
        17.0,
        Anchor::Centre,
        BLACK,
        true,
    )?;
    canvas.text(
        &fit(subtitle, width - 2 * MARGIN, 12.0),
        (width / 2, MARGIN + 32),
        12.0,
        Anchor::Centre,
        DARK,
        false,
    )?;
    canvas.text(
        explanation,
        (width / 2, MARGIN + 49),
        11.0,
        Anchor::Centre,
        DARK,
        false,
    )?;
    // The colour scale: a gradient from 0 to the largest cell.
    let legend_y = MARGIN + 70;
    let legend_x = width / 2 - 150;
    for step in 0..60 {
        let bytes = (most as f64 * (step as f64 / 59.0).powi(2)) as u64;
        let (colour, _) = shade(bytes, most);
        let x = legend_x + 40 + step * 4;
        canvas.fill(x, legend_y - 6, x + 4, legend_y + 6, colour.to_rgba())?;
    }
    canvas.text(
        "0",
        (legend_x + 34, legend_y),
        11.0,
        Anchor::Right,
        BLACK,
        false,
    )?;
    canvas.text(
        &if most == 0 {
            "0".to_string()
        } else {
            human(most)
        },
        (legend_x + 40 + 240 + 6, legend_y),
        11.0,
        Anchor::Left,
        BLACK,
        false,
    )?;
    if empty {
        canvas.text(
            "Nothing is charged at this snapshot under any policy: no payer or causer to show.",
            (width / 2, top + 14),
            12.0,
            Anchor::Centre,
            DARK,
            false,
        )?;
        return canvas.finish();
    }

    for (index, panel) in panels.iter().enumerate() {
        let x0 = MARGIN + (index % per_line) as i32 * panel_pixels;
        let y0 = top + (index / per_line) as i32 * panel_height;
        let mut title_x = x0 + 4;
        if panel.failure.is_some() {
            title_x += canvas.fail_badge((title_x, y0 + 10))? + 6;
        }
        canvas.text(
            &fit(&panel.title, panel_pixels - (title_x - x0) - 12, 13.0),
            (title_x, y0 + 10),
            13.0,
            Anchor::Left,
            BLACK,
            true,
        )?;
        let grid_x = x0 + label_pixels;
        let grid_y = y0 + 44;
        if panel.cells.is_empty() {
            let (text, colour) = match (&panel.failure, &panel.note) {
                (Some(reason), _) => (reason.as_str(), VERMILLION),
                (None, Some(note)) => (note.as_str(), DARK),
                (None, None) => ("nothing charged", DARK),
            };
            canvas.text(
                &fit(text, panel_pixels - 20, 11.0),
                (x0 + 4, grid_y + 10),
                11.0,
                Anchor::Left,
                colour,
                false,
            )?;
            continue;
        }
        for (column, causer) in causers.iter().enumerate() {
            canvas.text(
                &fit(causer, cell_pixels - 4, 11.0),
                (
                    grid_x + column as i32 * cell_pixels + cell_pixels / 2,
                    grid_y - 10,
                ),
                11.0,
                Anchor::Centre,
                BLACK,
                false,
            )?;
        }
        for (row, payer) in payers.iter().enumerate() {
            let cy = grid_y + row as i32 * CELL_HEIGHT;
            canvas.text(
                &fit(payer, label_pixels - 10, 12.0),
                (grid_x - 6, cy + CELL_HEIGHT / 2),
                12.0,
                Anchor::Right,
                BLACK,
                false,
            )?;
            for (column, causer) in causers.iter().enumerate() {
                let cx = grid_x + column as i32 * cell_pixels;
                let found: Vec<&Attribution> = panel
                    .cells
                    .iter()
                    .filter(|c| c.payer == *payer && c.causer == *causer)
                    .collect();
                let bytes: u64 = found.iter().map(|c| c.bytes).sum();
                let own = found.iter().any(|c| c.own);
                let (x1, y1) = (cx + cell_pixels - 2, cy + CELL_HEIGHT - 2);
                let centre = (cx + cell_pixels / 2, cy + CELL_HEIGHT / 2);
                if bytes == 0 {
                    canvas.outline(cx, cy, x1, y1, RGBColor(230, 230, 230).to_rgba(), 1)?;
                    canvas.text(
                        "·",
                        centre,
                        11.0,
                        Anchor::Centre,
                        RGBColor(170, 170, 170),
                        false,
                    )?;
                    continue;
                }
                let (colour, dark) = shade(bytes, most);
                canvas.fill(cx, cy, x1, y1, colour.to_rgba())?;
                if own {
                    // Orange reads on both the lightest and the darkest shade.
                    canvas.outline(cx + 1, cy + 1, x1 - 1, y1 - 1, ORANGE.to_rgba(), 3)?;
                }
                canvas.text(
                    &human(bytes),
                    centre,
                    11.0,
                    Anchor::Centre,
                    if dark { WHITE } else { BLACK },
                    own,
                )?;
            }
        }
        let total: u64 = panel.cells.iter().map(|c| c.bytes).sum();
        let others: u64 = panel.cells.iter().filter(|c| !c.own).map(|c| c.bytes).sum();
        canvas.text(
            &format!(
                "paid for domains of other sets: {} of {}",
                if others == 0 {
                    "0".to_string()
                } else {
                    human(others)
                },
                human(total)
            ),
            (grid_x, grid_y + payers.len() as i32 * CELL_HEIGHT + 9),
            10.0,
            Anchor::Left,
            DARK,
            false,
        )?;
    }
    canvas.finish()
}

/// `causers.svg` of a scenario: a heat map per combination at snapshot `label` (the same
/// columns as its `policies.svg`).
pub fn write_causers_svg(
    title: &str,
    label: &str,
    columns: &[Column<'_>],
    path: &Path,
) -> Result<()> {
    let reports: Vec<&Report> = columns.iter().filter_map(|c| c.report).collect();
    let panels: Vec<HeatPanel> = columns
        .iter()
        .map(|column| {
            let snapshot = column.snapshot(label);
            HeatPanel {
                title: column.title.to_string(),
                failure: column.failure.map(str::to_string),
                note: snapshot.is_none().then(|| format!("no snapshot `{label}`")),
                cells: snapshot.map(causer_matrix).unwrap_or_default(),
            }
        })
        .collect();
    write_heatmap_svg(
        title,
        &format!("{} · at snapshot `{label}`", shared_policies(&reports)),
        &panels,
        path,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{parse_console, tests::TRANSCRIPT};

    #[test]
    fn the_matrix_splits_each_total_into_own_and_paid_for() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let cells = causer_matrix(report.snapshot("shared").unwrap());
        let triple = |c: &Attribution| (c.payer.clone(), c.causer.clone(), c.bytes, c.own);
        let cells: Vec<_> = cells.iter().map(triple).collect();
        assert_eq!(
            cells,
            [
                ("kernel".into(), NO_DOMAIN.into(), 32768, true),
                ("parent".into(), "parent".into(), 69632 - 16384, true),
                ("parent".into(), "child".into(), 16384, false),
                ("child".into(), "child".into(), 12288, true),
            ]
        );
        assert!(causer_matrix(report.snapshot("final").unwrap()).is_empty());
    }

    #[test]
    fn draws_a_heat_map_per_combination() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let columns = [
            Column {
                title: "cow=holder",
                report: Some(&report),
                failure: None,
            },
            Column {
                title: "cow=writer",
                report: None,
                failure: Some("no end record"),
            },
        ];
        let path = std::env::temp_dir().join(format!("tally-causers-{}.svg", std::process::id()));
        write_causers_svg("cow-fork: who paid for whom", "shared", &columns, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        let has = |text: &str| svg.contains(&format!("\n{text}\n"));
        for text in [
            "cow-fork: who paid for whom",
            "policy: cow=holder msgbuf=sender pagetable=owner release=migrate kernel=self transfer=direct · at snapshot `shared`",
            "cow=holder",
            "cow=writer",
            "FAIL",
            "no end record",
            "parent",
            "child",
            NO_DOMAIN,
            "52 KiB",
            "16 KiB",
            "12 KiB",
            "32 KiB",
            "paid for domains of other sets: 16 KiB of 112 KiB",
        ] {
            assert!(has(text), "missing text {text}");
        }
        // Nothing charged at `final`: one note, no matrix.
        write_causers_svg("cow-fork: who paid for whom", "final", &columns, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.contains("Nothing is charged at this snapshot under any policy"));
        assert!(!svg.contains("\n52 KiB\n"));
    }
}
