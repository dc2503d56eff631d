//! `charges.svg`: for each snapshot a panel of stacked bars, one bar per charge set, one
//! segment per frame kind (current bytes, in KiB), with a legend and labelled axes.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::config::KINDS;
use crate::report::{Report, Snapshot};

const PANEL_WIDTH: u32 = 560;
const PANEL_HEIGHT: u32 = 400;
const MAX_COLUMNS: usize = 3;

/// Segment colours, in [`KINDS`] order.
pub(super) const KIND_COLOURS: [RGBColor; 5] = [
    RGBColor(66, 133, 244),  // anon
    RGBColor(244, 160, 0),   // pagetables
    RGBColor(128, 128, 128), // kernel
    RGBColor(15, 157, 88),   // msgbuf
    RGBColor(219, 68, 55),   // cow
];

/// Writes the chart for every snapshot of `report` to `path`.
pub fn write_svg(report: &Report, path: &Path) -> Result<()> {
    let panels = report.snapshots.len().max(1);
    let columns = panels.min(MAX_COLUMNS);
    let rows = panels.div_ceil(MAX_COLUMNS);
    let size = (
        PANEL_WIDTH * columns as u32,
        PANEL_HEIGHT * rows as u32 + 40,
    );
    let root = SVGBackend::new(path, size).into_drawing_area();
    let plot = |error: &dyn std::fmt::Display| anyhow!("drawing {}: {error}", path.display());
    root.fill(&WHITE).map_err(|e| plot(&e))?;
    let title = format!("{}: current charges by charge set and kind", report.config);
    let root = root
        .titled(&title, ("sans-serif", 22))
        .map_err(|e| plot(&e))?;
    let areas = root.split_evenly((rows, columns));
    for (snapshot, area) in report.snapshots.iter().zip(areas.iter()) {
        draw_panel(snapshot, area).map_err(|e| plot(&e))?;
    }
    root.present().map_err(|e| plot(&e))?;
    Ok(())
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw_panel(
    snapshot: &Snapshot,
    area: &Area<'_>,
) -> Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>> {
    let names: Vec<&str> = snapshot
        .charge_sets
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let kib = |bytes: u64| bytes as f64 / 1024.0;
    let highest = snapshot
        .charge_sets
        .iter()
        .map(|set| kib(set.current.total()))
        .fold(0.0_f64, f64::max);
    // Headroom above the tallest bar keeps the legend (upper right) off the bars.
    let top = if highest > 0.0 { highest * 1.45 } else { 4.0 };
    // A chart needs at least one category, even for a snapshot without charge sets.
    let categories: Vec<&str> = if names.is_empty() {
        vec![""]
    } else {
        names.clone()
    };

    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "snapshot `{}` ({} instructions)",
                snapshot.label, snapshot.instructions
            ),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(categories[..].into_segmented(), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("charge set")
        .y_desc("KiB (current)")
        .x_labels(categories.len())
        .x_label_formatter(&|value| match value {
            SegmentValue::CenterOf(name) | SegmentValue::Exact(name) => name.to_string(),
            SegmentValue::Last => String::new(),
        })
        .y_label_formatter(&|value| {
            if value.fract() == 0.0 {
                format!("{value:.0}")
            } else {
                format!("{value:.1}")
            }
        })
        .draw()?;

    for (kind_index, kind) in KINDS.iter().enumerate() {
        let colour = KIND_COLOURS[kind_index];
        let segments: Vec<Rectangle<(SegmentValue<&&str>, f64)>> = snapshot
            .charge_sets
            .iter()
            .enumerate()
            .filter(|(_, set)| set.current.get(kind) > 0)
            .map(|(index, set)| {
                let below: u64 = KINDS[..kind_index].iter().map(|k| set.current.get(k)).sum();
                let bottom = kib(below);
                let height = kib(set.current.get(kind));
                // A bar spans its category, from its left edge to the next one's.
                let right = categories
                    .get(index + 1)
                    .map_or(SegmentValue::Last, SegmentValue::Exact);
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(&categories[index]), bottom),
                        (right, bottom + height),
                    ],
                    colour.filled(),
                );
                bar.set_margin(0, 0, 10, 10);
                bar
            })
            .collect();
        chart
            .draw_series(segments)?
            .label(*kind)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{parse_console, tests::TRANSCRIPT};

    #[test]
    fn draws_a_panel_per_snapshot_with_legend_and_axes() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let path = std::env::temp_dir().join(format!("tally-chart-{}.svg", std::process::id()));
        write_svg(&report, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        for text in [
            "KiB (current)",
            "charge set",
            "snapshot `shared` (52000 instructions)",
            "snapshot `final` (90000 instructions)",
            "cow",
            "anon",
            "parent",
        ] {
            assert!(svg.contains(&format!("\n{text}\n")), "missing text {text}");
        }
        // The cow segment of `parent` in `shared` is drawn in the cow colour.
        assert!(svg.contains("#DB4437"));
    }
}
