//! `policies.svg`: one scenario's key snapshot under each policy combination it ran with — a
//! group of horizontal bars per charge set, one bar per combination, a segment per frame kind
//! (KiB), the bar's total at its end, and a legend of the kinds. Horizontal bars keep every
//! label (set names, combinations) horizontal and whole.
//!
//! The same KiB axis serves every bar, so bars compare across sets and combinations.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::chart::KIND_COLOURS;
use crate::config::KINDS;
use crate::report::{KindBytes, Snapshot};
use crate::size::human;

/// Which figure of a set the bars show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// `current` bytes at the snapshot.
    Current,
    /// `peak` bytes (at `final`: the highest over the run), per kind.
    Peak,
}

/// One combination's bar source: its title and its snapshot (absent when the run did not
/// reach it; its bars are then left out).
#[derive(Debug, Clone, Copy)]
pub struct Column<'a> {
    /// `cow=holder release=stay`.
    pub title: &'a str,
    /// The snapshot to draw.
    pub snapshot: Option<&'a Snapshot>,
}

const ROW_PIXELS: u32 = 22;
const TOP_PIXELS: u32 = 84;
const AXIS_PIXELS: u32 = 48;
const PLOT_PIXELS: u32 = 560;
const CHAR_PIXELS: u32 = 7;
const LEGEND_SLOT_PIXELS: i32 = 110;
const FONT: &str = "sans-serif";

/// Writes the chart to `path`. `title` heads it; `label` is the snapshot drawn; `sets` are
/// the charge sets to draw, in order.
pub fn write_policies_svg(
    title: &str,
    label: &str,
    figure: Figure,
    columns: &[Column<'_>],
    sets: &[String],
    path: &Path,
) -> Result<()> {
    let plot = |error: &dyn std::fmt::Display| anyhow!("drawing {}: {error}", path.display());
    let rows = (sets.len() * (columns.len() + 1)).max(1);
    let longest = columns
        .iter()
        .map(|c| c.title.chars().count())
        .chain(sets.iter().map(|s| s.chars().count()))
        .max()
        .unwrap_or(8) as u32;
    let label_pixels = 24 + longest * CHAR_PIXELS;
    let width = (label_pixels + PLOT_PIXELS + 40).max(760);
    let height = TOP_PIXELS + rows as u32 * ROW_PIXELS + AXIS_PIXELS + 10;
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot(&e))?;

    let figures = |snapshot: &Snapshot, set: &str| -> Option<KindBytes> {
        let set = snapshot.charge_set(set)?;
        Some(match figure {
            Figure::Current => set.current.clone(),
            Figure::Peak => set.peak.clone(),
        })
    };
    let kib = |bytes: u64| bytes as f64 / 1024.0;
    let highest = columns
        .iter()
        .filter_map(|c| c.snapshot)
        .flat_map(|snapshot| sets.iter().filter_map(|set| figures(snapshot, set)))
        .map(|bytes| kib(bytes.total()))
        .fold(0.0_f64, f64::max);
    // Room at the right end for the totals written after the bars.
    let right = if highest > 0.0 { highest * 1.18 } else { 4.0 };

    let heading = TextStyle::from((FONT, 20).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    root.draw(&Text::new(
        title.to_string(),
        (width as i32 / 2, 10),
        heading,
    ))
    .map_err(|e| plot(&e))?;
    // The legend: a swatch and a name per kind, in one line under the title.
    let mut x = label_pixels as i32;
    for (kind, colour) in KINDS.iter().zip(KIND_COLOURS) {
        root.draw(&Rectangle::new([(x, 46), (x + 14, 60)], colour.filled()))
            .map_err(|e| plot(&e))?;
        let style = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(kind.to_string(), (x + 19, 53), style))
            .map_err(|e| plot(&e))?;
        x += LEGEND_SLOT_PIXELS;
    }

    let what = match figure {
        Figure::Current => format!("KiB charged at snapshot `{label}`"),
        Figure::Peak => format!("peak KiB over the run (snapshot `{label}`)"),
    };
    let mut chart = ChartBuilder::on(&root)
        .margin_top(TOP_PIXELS)
        .margin_right(30)
        .margin_bottom(10)
        .x_label_area_size(AXIS_PIXELS)
        .y_label_area_size(label_pixels)
        .build_cartesian_2d(0.0..right, 0.0..rows as f64)
        .map_err(|e| plot(&e))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .light_line_style(TRANSPARENT)
        .x_desc(what)
        .x_label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .x_label_formatter(&|value| {
            if value.fract() == 0.0 {
                format!("{value:.0}")
            } else {
                format!("{value:.1}")
            }
        })
        .draw()
        .map_err(|e| plot(&e))?;

    // Row r (0 = top) spans y from rows - r - 1 to rows - r.
    let top_of = |row: usize| (rows - row) as f64;
    let mut row = 0;
    for set in sets {
        let (_, y) = chart.backend_coord(&(0.0, top_of(row) - 0.5));
        let style = TextStyle::from((FONT, 15).into_font().style(FontStyle::Bold))
            .pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(format!("set `{set}`"), (12, y), style))
            .map_err(|e| plot(&e))?;
        row += 1;
        for column in columns {
            let (x0, y) = chart.backend_coord(&(0.0, top_of(row) - 0.5));
            let style =
                TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(column.title.to_string(), (x0 - 8, y), style))
                .map_err(|e| plot(&e))?;
            let bytes = column.snapshot.and_then(|snapshot| figures(snapshot, set));
            let Some(bytes) = bytes else {
                let style =
                    TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
                root.draw(&Text::new("(no snapshot)".to_string(), (x0 + 6, y), style))
                    .map_err(|e| plot(&e))?;
                row += 1;
                continue;
            };
            let mut left = 0.0;
            for (kind, colour) in KINDS.iter().zip(KIND_COLOURS) {
                let width = kib(bytes.get(kind));
                if width > 0.0 {
                    let mut bar = Rectangle::new(
                        [(left, top_of(row) - 1.0), (left + width, top_of(row))],
                        colour.filled(),
                    );
                    bar.set_margin(3, 3, 0, 0);
                    chart.plotting_area().draw(&bar).map_err(|e| plot(&e))?;
                    left += width;
                }
            }
            let (x_end, _) = chart.backend_coord(&(left, 0.0));
            let style =
                TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
            let total = bytes.total();
            let text = if total == 0 {
                "0".to_string()
            } else {
                human(total)
            };
            root.draw(&Text::new(text, (x_end + 5, y), style))
                .map_err(|e| plot(&e))?;
            row += 1;
        }
    }
    root.present().map_err(|e| plot(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{parse_console, tests::TRANSCRIPT};

    #[test]
    fn draws_a_bar_per_set_and_combination_with_legend_and_axis() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let shared = report.snapshot("shared");
        let columns = [
            Column {
                title: "cow=writer release=migrate",
                snapshot: shared,
            },
            Column {
                title: "cow=holder release=stay",
                snapshot: None,
            },
        ];
        let sets = ["parent".to_string(), "child".to_string()];
        let path = std::env::temp_dir().join(format!("tally-policies-{}.svg", std::process::id()));
        write_policies_svg(
            "cow-fork: who pays, by policy",
            "shared",
            Figure::Current,
            &columns,
            &sets,
            &path,
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        for text in [
            "cow-fork: who pays, by policy",
            "KiB charged at snapshot `shared`",
            "set `parent`",
            "set `child`",
            "cow=writer release=migrate",
            "cow=holder release=stay",
            "(no snapshot)",
            "68 KiB",
            "12 KiB",
            "anon",
            "pagetables",
            "msgbuf",
        ] {
            assert!(svg.contains(&format!("\n{text}\n")), "missing text {text}");
        }
        // parent's cow segment is drawn in the cow colour.
        assert!(svg.contains("#DB4437"));
    }
}
