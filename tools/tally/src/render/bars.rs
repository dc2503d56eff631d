//! The engine behind `charges.svg`, `policies.svg` and the diff chart: small multiples of
//! horizontal bars. A chart is a grid of rows (charge sets or policy combinations, labelled on
//! the left) × panels (snapshots, charge sets or the two sides of a diff, each with a header
//! and its own axis); every cell is one bar, a note, or a FAIL badge.
//!
//! A bar is stacked by kind in [`KINDS`] order (positive figures to the right of zero, negative
//! ones — a delta's decreases — to the left), followed by dashed "ghost" segments for the peaks
//! of transient kinds above their current figure. Under it, when the set pays for domains of
//! other sets, a thin strip splits the same total into "own domains" (solid) and each causer
//! (hatched, named at the right). A black tick marks the set's limit, a dashed tick in a kind's
//! colour its sub-limit for that kind (measured from where the kind's segment starts), and a
//! vermillion cross its denials.
//!
//! Invariants: panels with the same scale index share one axis (unit chosen from the largest
//! figure, so bars compare across them); a limit or sub-limit widens the axis only when it lies
//! within half as much again as the largest figure, otherwise the text after the bar names it
//! (`of 4 MiB`); every text that might not fit is cut with an ellipsis, never overlapping the
//! next panel.

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use super::canvas::{fit, Anchor, Canvas, BADGE_WIDTH};
use super::palette::{
    is_dark, kind_index, text_width, tick_label, ticks, unit_for, Hatch, BAND, DARK, GRID,
    KIND_COLOURS, KIND_HATCHES, TRANSIENT_KINDS, VERMILLION,
};
use crate::config::KINDS;
use crate::report::ChargeSetReport;
use crate::size::human;

/// A whole chart.
#[derive(Debug, Clone, Default)]
pub(super) struct BarChart {
    /// The heading.
    pub title: String,
    /// Lines under the heading (the policy, what the bars are).
    pub subtitles: Vec<String>,
    /// A FAIL badge and its reason under the heading.
    pub failure: Option<String>,
    /// The rows, top to bottom.
    pub rows: Vec<RowLabel>,
    /// The panels, left to right (wrapped into lines of at most three).
    pub panels: Vec<Panel>,
    /// Per scale index: what the axis measures, after its unit (`charged at snapshot x`).
    pub scales: Vec<String>,
    /// Lines under the chart.
    pub footnotes: Vec<String>,
}

/// A row's label.
#[derive(Debug, Clone, Default)]
pub(super) struct RowLabel {
    /// The name.
    pub text: String,
    /// A smaller second line (stopped domains, exit codes).
    pub note: Option<String>,
    /// Whether a FAIL badge goes before it.
    pub failed: bool,
}

/// One panel: a header and a cell per row.
#[derive(Debug, Clone)]
pub(super) struct Panel {
    /// The header.
    pub title: String,
    /// Which of [`BarChart::scales`] its axis is.
    pub scale: usize,
    /// One per row.
    pub cells: Vec<Cell>,
}

/// What a cell shows.
#[derive(Debug, Clone)]
pub(super) enum Cell {
    /// A bar.
    Bar(Bar),
    /// A grey note instead of a bar (`no snapshot`).
    Note(String),
    /// A FAIL badge and the reason instead of a bar.
    Fail(String),
}

/// One bar's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Bar {
    /// Bytes per kind, in [`KINDS`] order (negative in a delta).
    pub kinds: [i64; 5],
    /// Peaks of transient kinds above their current figure: (kind index, bytes above current).
    pub ghosts: Vec<(usize, u64)>,
    /// The split by causer, when some of the bar was caused by other sets' domains.
    pub strip: Option<Strip>,
    /// The set's limit.
    pub limit: Option<u64>,
    /// Sub-limits: (kind index, bytes).
    pub kind_limits: Vec<(usize, u64)>,
    /// The set's `high` bound (reclaim asked above it).
    pub high: Option<u64>,
    /// Denied charges: (kind index, count).
    pub denied: Vec<(usize, u64)>,
    /// The text after the bar (its total).
    pub text: String,
    /// Peak figures of the ghosts, for their note: (kind index, peak bytes).
    pub ghost_peaks: Vec<(usize, u64)>,
}

/// A bar's total split by who caused it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Strip {
    /// Bytes the set's own domains (or no domain) caused.
    pub own: u64,
    /// Bytes caused by domains of other sets, by domain name.
    pub causers: Vec<(String, u64)>,
}

fn kind_bytes(figures: &crate::report::KindBytes) -> [i64; 5] {
    let mut out = [0i64; 5];
    for (slot, kind) in out.iter_mut().zip(KINDS) {
        *slot = figures.get(kind) as i64;
    }
    out
}

/// A set's `high` bound, from its report (`high_bytes`; absent in reports before it).
pub(super) fn high_bound(set: &ChargeSetReport) -> Option<u64> {
    set.extra
        .get("high_bytes")
        .and_then(serde_json::Value::as_u64)
}

/// A set's sub-limits from its `kind_limits` object: (kind index, bytes).
pub(super) fn kind_limits(set: &ChargeSetReport) -> Vec<(usize, u64)> {
    set.extra
        .get("kind_limits")
        .and_then(serde_json::Value::as_object)
        .map(|limits| {
            limits
                .iter()
                .filter_map(|(kind, bytes)| Some((kind_index(kind)?, bytes.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn denied(set: &ChargeSetReport) -> Vec<(usize, u64)> {
    KINDS
        .iter()
        .enumerate()
        .map(|(index, kind)| (index, set.denied.get(kind)))
        .filter(|(_, count)| *count > 0)
        .collect()
}

fn bytes_text(bytes: u64) -> String {
    if bytes == 0 {
        "0".to_string()
    } else {
        human(bytes)
    }
}

/// `+96 KiB`, `−16 KiB`, `±0`.
pub(super) fn signed_text(bytes: i64) -> String {
    match bytes {
        0 => "±0".to_string(),
        b if b > 0 => format!("+{}", human(b as u64)),
        b => format!("−{}", human(b.unsigned_abs())),
    }
}

impl Bar {
    /// A set's `current` figures, with ghosts for transient peaks and its causer strip.
    pub(super) fn current(set: &ChargeSetReport) -> Bar {
        let mut ghosts = Vec::new();
        let mut ghost_peaks = Vec::new();
        for kind in TRANSIENT_KINDS {
            let (current, peak) = (set.current.get(kind), set.peak.get(kind));
            if let (true, Some(index)) = (peak > current, kind_index(kind)) {
                ghosts.push((index, peak - current));
                ghost_peaks.push((index, peak));
            }
        }
        let total = set.current.total();
        let causers: Vec<(String, u64)> = set
            .paid_for
            .iter()
            .filter(|(_, bytes)| **bytes > 0)
            .map(|(causer, bytes)| (causer.clone(), *bytes))
            .collect();
        let others: u64 = causers.iter().map(|(_, bytes)| bytes).sum();
        let strip = (!causers.is_empty()).then(|| Strip {
            own: total.saturating_sub(others),
            causers,
        });
        Bar {
            kinds: kind_bytes(&set.current),
            ghosts,
            ghost_peaks,
            strip,
            limit: set.limit_bytes,
            kind_limits: kind_limits(set),
            high: high_bound(set),
            denied: denied(set),
            text: bytes_text(total),
        }
    }

    /// A set's `peak` figures per kind (the highest of each over the run; `paid_for` is a
    /// current figure, so there is no strip).
    pub(super) fn peaks(set: &ChargeSetReport) -> Bar {
        Bar {
            kinds: kind_bytes(&set.peak),
            limit: set.limit_bytes,
            kind_limits: kind_limits(set),
            high: high_bound(set),
            denied: denied(set),
            text: bytes_text(set.peak.total()),
            ..Bar::default()
        }
    }

    /// `now` minus `base` (a set absent at the baseline counts as zero): the change per kind,
    /// the new denials, and the total change with the figure it reached.
    pub(super) fn delta(now: &ChargeSetReport, base: Option<&ChargeSetReport>) -> Bar {
        let mut kinds = kind_bytes(&now.current);
        let mut denied = denied(now);
        if let Some(base) = base {
            for (slot, before) in kinds.iter_mut().zip(kind_bytes(&base.current)) {
                *slot -= before;
            }
            for (index, count) in &mut denied {
                *count = count.saturating_sub(base.denied.get(KINDS[*index]));
            }
            denied.retain(|(_, count)| *count > 0);
        }
        let change: i64 = kinds.iter().sum();
        Bar {
            kinds,
            denied,
            text: format!(
                "{} (to {})",
                signed_text(change),
                bytes_text(now.current.total())
            ),
            ..Bar::default()
        }
    }

    fn positive(&self) -> u64 {
        self.kinds
            .iter()
            .filter(|b| **b > 0)
            .map(|b| *b as u64)
            .sum()
    }

    fn negative(&self) -> u64 {
        self.kinds
            .iter()
            .filter(|b| **b < 0)
            .map(|b| b.unsigned_abs())
            .sum()
    }

    fn ghost_total(&self) -> u64 {
        self.ghosts.iter().map(|(_, bytes)| bytes).sum()
    }

    /// Whether the bar shows anything beyond a zero.
    pub(super) fn is_blank(&self) -> bool {
        self.kinds.iter().all(|b| *b == 0) && self.ghosts.is_empty() && self.denied.is_empty()
    }

    /// Where the kind at `index` starts (bytes from zero), on the positive side.
    fn kind_start(&self, index: usize) -> u64 {
        self.kinds[..index]
            .iter()
            .filter(|b| **b > 0)
            .map(|b| *b as u64)
            .sum()
    }

    fn ghost_note(&self) -> String {
        self.ghost_peaks
            .iter()
            .map(|(index, peak)| format!("{} peak {}", KINDS[*index], human(*peak)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn denied_note(&self) -> String {
        let total: u64 = self.denied.iter().map(|(_, count)| count).sum();
        let kinds: Vec<String> = self
            .denied
            .iter()
            .map(|(index, count)| {
                if self.denied.len() == 1 {
                    KINDS[*index].to_string()
                } else {
                    format!("{} {count}", KINDS[*index])
                }
            })
            .collect();
        format!("{total} denied ({})", kinds.join(", "))
    }

    fn strip_note(&self) -> String {
        self.strip.as_ref().map_or_else(String::new, |strip| {
            let parts: Vec<String> = strip
                .causers
                .iter()
                .map(|(causer, bytes)| format!("{} for {causer}", human(*bytes)))
                .collect();
            format!("paid {}", parts.join(", "))
        })
    }

    /// Estimated width of everything written after the bar.
    fn annotation_width(&self) -> i32 {
        let mut width = text_width(&self.text, TOTAL_PIXELS);
        if let Some(limit) = self.limit {
            width += GAP + text_width(&format!("of {}", human(limit)), NOTE_PIXELS);
        }
        if !self.ghost_peaks.is_empty() {
            width += GAP + text_width(&self.ghost_note(), NOTE_PIXELS);
        }
        if !self.denied.is_empty() {
            width += GAP + 12 + text_width(&self.denied_note(), NOTE_PIXELS);
        }
        width.max(text_width(&self.strip_note(), STRIP_PIXELS))
    }
}

const MARGIN: i32 = 16;
const PLOT_PIXELS: i32 = 320;
const BAR_PIXELS: i32 = 16;
const STRIP_HEIGHT: i32 = 7;
const HEADER_PIXELS: i32 = 26;
const AXIS_PIXELS: i32 = 46;
const PANEL_GAP: i32 = 22;
const MAX_PANELS_PER_LINE: usize = 3;
const MAX_WIDTH: i32 = 2000;
const TOTAL_PIXELS: f64 = 12.0;
const NOTE_PIXELS: f64 = 11.0;
const STRIP_PIXELS: f64 = 10.0;
const GAP: i32 = 8;
const LIMIT_SLACK: f64 = 1.5;

/// One axis: its range in bytes, its ticks and its unit.
struct Scale {
    low: f64,
    high: f64,
    ticks: Vec<f64>,
    unit: super::palette::Unit,
}

impl Scale {
    fn new(cells: &[&Bar]) -> Scale {
        let data_high = cells
            .iter()
            .map(|bar| bar.positive() + bar.ghost_total())
            .max()
            .unwrap_or(0) as f64;
        let low = -(cells.iter().map(|bar| bar.negative()).max().unwrap_or(0) as f64);
        // Limits near the data widen the axis; far ones are named after the bar instead.
        let mut high = data_high;
        for bar in cells {
            let reaches = bar
                .limit
                .into_iter()
                .chain(bar.high)
                .map(|limit| limit as f64)
                .chain(
                    bar.kind_limits
                        .iter()
                        .map(|(index, limit)| (bar.kind_start(*index) + limit) as f64),
                );
            for reach in reaches {
                if reach <= data_high * LIMIT_SLACK {
                    high = high.max(reach);
                }
            }
        }
        if high <= 0.0 && low >= 0.0 {
            high = 4096.0;
        }
        let unit = unit_for(high.max(-low) as u64);
        let (low, high, ticks) = ticks(low, high, unit, 5);
        Scale {
            low,
            high,
            ticks,
            unit,
        }
    }

    /// The x pixel of `bytes` in a plot starting at `x0`.
    fn x(&self, x0: i32, bytes: f64) -> i32 {
        let span = (self.high - self.low).max(1.0);
        x0 + ((bytes - self.low) / span * PLOT_PIXELS as f64).round() as i32
    }
}

/// `of 4 MiB`: the limit of a bar whose limit lies beyond the axis (so it has no tick).
fn far_limit_note(bar: &Bar, scale: &Scale) -> Option<String> {
    bar.limit
        .filter(|limit| *limit as f64 > scale.high)
        .map(|limit| format!("of {}", human(limit)))
}

/// What the legend explains, in order.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Legend {
    Kind(usize),
    Ghost,
    Own,
    Others,
    Limit,
    SubLimit,
    High,
    Denied,
}

impl Legend {
    fn text(self) -> &'static str {
        match self {
            Legend::Kind(index) => KINDS[index],
            Legend::Ghost => "peak of a transient kind above its current figure",
            Legend::Own => "caused by the set's own domains",
            Legend::Others => "paid for another set's domain",
            Legend::Limit => "limit (\"of N\" after a total: a limit beyond the axis)",
            Legend::SubLimit => "sub-limit of a kind",
            Legend::High => "high bound (above it, reclaim is asked)",
            Legend::Denied => "denied charges",
        }
    }

    fn width(self) -> i32 {
        16 + 6 + text_width(self.text(), 12.0) + 18
    }
}

/// Draws `chart` to `path`.
pub(super) fn write(chart: &BarChart, path: &Path) -> Result<()> {
    let bars: Vec<(usize, &Bar)> = chart
        .panels
        .iter()
        .flat_map(|panel| {
            panel.cells.iter().filter_map(move |cell| match cell {
                Cell::Bar(bar) => Some((panel.scale, bar)),
                _ => None,
            })
        })
        .collect();
    let scale_count = chart
        .panels
        .iter()
        .map(|p| p.scale + 1)
        .max()
        .unwrap_or(0)
        .max(chart.scales.len());
    let scales: Vec<Scale> = (0..scale_count)
        .map(|index| {
            let cells: Vec<&Bar> = bars
                .iter()
                .filter(|(scale, _)| *scale == index)
                .map(|(_, bar)| *bar)
                .collect();
            Scale::new(&cells)
        })
        .collect();
    let any_strip = bars.iter().any(|(_, bar)| bar.strip.is_some());
    let row_pixels = if any_strip { 40 } else { 30 };

    // Horizontal layout: the label column, then panels of plot + annotation room.
    let any_failed = chart.rows.iter().any(|row| row.failed);
    let label_pixels = chart
        .rows
        .iter()
        .map(|row| {
            text_width(&row.text, 13.0).max(row.note.as_deref().map_or(0, |n| text_width(n, 10.0)))
        })
        .max()
        .unwrap_or(40)
        .clamp(40, 340)
        + 20
        + if any_failed { BADGE_WIDTH + 6 } else { 0 };
    let note_pixels = chart
        .panels
        .iter()
        .flat_map(|panel| &panel.cells)
        .map(|cell| match cell {
            Cell::Bar(bar) => bar.annotation_width(),
            Cell::Note(text) => text_width(text, NOTE_PIXELS) - PLOT_PIXELS,
            Cell::Fail(_) => 0,
        })
        .max()
        .unwrap_or(0)
        .clamp(50, 330)
        + 12;
    let panel_pixels = PLOT_PIXELS + note_pixels + PANEL_GAP;
    let mut per_line = chart.panels.len().clamp(1, MAX_PANELS_PER_LINE);
    while per_line > 1 && label_pixels + per_line as i32 * panel_pixels + 2 * MARGIN > MAX_WIDTH {
        per_line -= 1;
    }
    let mut legend: Vec<Legend> = (0..KINDS.len()).map(Legend::Kind).collect();
    let mut uses = |item: Legend, used: bool| {
        if used {
            legend.push(item);
        }
    };
    uses(
        Legend::Ghost,
        bars.iter().any(|(_, bar)| !bar.ghosts.is_empty()),
    );
    uses(Legend::Own, any_strip);
    uses(Legend::Others, any_strip);
    uses(
        Legend::Limit,
        bars.iter().any(|(_, bar)| bar.limit.is_some()),
    );
    uses(
        Legend::SubLimit,
        bars.iter().any(|(_, bar)| !bar.kind_limits.is_empty()),
    );
    uses(Legend::High, bars.iter().any(|(_, bar)| bar.high.is_some()));
    uses(
        Legend::Denied,
        bars.iter().any(|(_, bar)| !bar.denied.is_empty()),
    );

    let width = (2 * MARGIN + label_pixels + per_line as i32 * panel_pixels)
        .max(2 * MARGIN + text_width(&chart.title, 17.0))
        .max(
            chart
                .subtitles
                .iter()
                .map(|line| 2 * MARGIN + text_width(line, 12.0))
                .max()
                .unwrap_or(0),
        )
        .max(640);
    let legend_lines = {
        let mut lines = 1;
        let mut x = 0;
        for item in &legend {
            if x + item.width() > width - 2 * MARGIN {
                lines += 1;
                x = 0;
            }
            x += item.width();
        }
        lines
    };
    let lines = chart.panels.len().div_ceil(per_line).max(1);
    let rows = chart.rows.len().max(1) as i32;
    let line_pixels = HEADER_PIXELS + rows * row_pixels + AXIS_PIXELS;
    let top = MARGIN
        + 28
        + 17 * chart.subtitles.len() as i32
        + if chart.failure.is_some() { 24 } else { 0 }
        + 22 * legend_lines
        + 6;
    let height = top + lines as i32 * line_pixels + 16 * chart.footnotes.len() as i32 + MARGIN;

    let canvas = Canvas::new(path, width, height)?;
    canvas.text(
        &chart.title,
        (width / 2, MARGIN + 10),
        17.0,
        Anchor::Centre,
        BLACK,
        true,
    )?;
    let mut y = MARGIN + 32;
    for subtitle in &chart.subtitles {
        canvas.text(
            &fit(subtitle, width - 2 * MARGIN, 12.0),
            (width / 2, y),
            12.0,
            Anchor::Centre,
            DARK,
            false,
        )?;
        y += 17;
    }
    if let Some(reason) = &chart.failure {
        y += 3;
        let badge = canvas.fail_badge((MARGIN, y))?;
        canvas.text(
            &fit(reason, width - 3 * MARGIN - badge, 12.0),
            (MARGIN + badge + 8, y),
            12.0,
            Anchor::Left,
            VERMILLION,
            true,
        )?;
        y += 21;
    }
    y += 6;
    let mut x = MARGIN;
    for item in &legend {
        if x + item.width() > width - MARGIN {
            x = MARGIN;
            y += 22;
        }
        draw_legend_item(&canvas, *item, (x, y))?;
        x += item.width();
    }

    for (line, panels) in chart.panels.chunks(per_line).enumerate() {
        let line_top = top + line as i32 * line_pixels;
        let rows_top = line_top + HEADER_PIXELS;
        for (row_index, row) in chart.rows.iter().enumerate() {
            let row_top = rows_top + row_index as i32 * row_pixels;
            if row_index % 2 == 1 {
                canvas.fill(
                    MARGIN,
                    row_top,
                    width - MARGIN,
                    row_top + row_pixels,
                    BAND.to_rgba(),
                )?;
            }
            draw_row_label(&canvas, row, (MARGIN, row_top), label_pixels)?;
        }
        for (column, panel) in panels.iter().enumerate() {
            let plot_x = MARGIN + label_pixels + column as i32 * panel_pixels + 6;
            let scale = &scales[panel.scale];
            let axis_y = rows_top + rows * row_pixels + 2;
            for tick in &scale.ticks {
                let tx = scale.x(plot_x, *tick);
                let colour = if tick.abs() < 0.5 && scale.low < 0.0 {
                    DARK
                } else {
                    GRID
                };
                canvas.line((tx, rows_top), (tx, axis_y), colour.to_rgba(), 1)?;
                canvas.line((tx, axis_y), (tx, axis_y + 4), BLACK.to_rgba(), 1)?;
                canvas.text(
                    &tick_label(*tick, scale.unit),
                    (tx, axis_y + 12),
                    11.0,
                    Anchor::Centre,
                    BLACK,
                    false,
                )?;
            }
            canvas.line(
                (plot_x, axis_y),
                (plot_x + PLOT_PIXELS, axis_y),
                BLACK.to_rgba(),
                1,
            )?;
            let what = chart.scales.get(panel.scale).map_or("", String::as_str);
            canvas.text(
                &fit(
                    &format!("{} {what}", scale.unit.name),
                    PLOT_PIXELS + note_pixels,
                    12.0,
                ),
                (plot_x + PLOT_PIXELS / 2, axis_y + 30),
                12.0,
                Anchor::Centre,
                DARK,
                false,
            )?;
            canvas.text(
                &fit(&panel.title, panel_pixels - PANEL_GAP, 13.0),
                (plot_x + PLOT_PIXELS / 2, line_top + HEADER_PIXELS / 2),
                13.0,
                Anchor::Centre,
                BLACK,
                true,
            )?;
            for (row_index, cell) in panel.cells.iter().enumerate().take(chart.rows.len()) {
                let row_top = rows_top + row_index as i32 * row_pixels;
                let room = PLOT_PIXELS + note_pixels;
                match cell {
                    Cell::Bar(bar) => draw_bar(&canvas, bar, scale, plot_x, row_top)?,
                    Cell::Note(text) => canvas.text(
                        &fit(text, room, NOTE_PIXELS),
                        (plot_x + 4, row_top + 6 + BAR_PIXELS / 2),
                        NOTE_PIXELS,
                        Anchor::Left,
                        DARK,
                        false,
                    )?,
                    Cell::Fail(reason) => {
                        let centre = row_top + 6 + BAR_PIXELS / 2;
                        let badge = canvas.fail_badge((plot_x, centre))?;
                        canvas.text(
                            &fit(reason, room - badge - 8, NOTE_PIXELS),
                            (plot_x + badge + 6, centre),
                            NOTE_PIXELS,
                            Anchor::Left,
                            VERMILLION,
                            false,
                        )?;
                    }
                }
            }
        }
    }
    let mut y = top + lines as i32 * line_pixels + 4;
    for footnote in &chart.footnotes {
        canvas.text(
            &fit(footnote, width - 2 * MARGIN, 11.0),
            (MARGIN, y),
            11.0,
            Anchor::Left,
            DARK,
            false,
        )?;
        y += 16;
    }
    canvas.finish()
}

fn draw_row_label(canvas: &Canvas<'_>, row: &RowLabel, at: (i32, i32), pixels: i32) -> Result<()> {
    let (x, row_top) = at;
    let centre = row_top + 6 + BAR_PIXELS / 2;
    let mut text_room = pixels - 14;
    if row.failed {
        canvas.fail_badge((x, centre))?;
        text_room -= BADGE_WIDTH + 6;
    }
    let right = x + pixels - 8;
    match &row.note {
        Some(note) => {
            canvas.text(
                &fit(&row.text, text_room, 13.0),
                (right, centre - 4),
                13.0,
                Anchor::Right,
                BLACK,
                false,
            )?;
            // A stopped domain (see `chart::domain_note`) is worth the alarm colour; an exit
            // code is not.
            let ink = if note.contains(" stopped") {
                VERMILLION
            } else {
                DARK
            };
            canvas.text(
                &fit(note, text_room, 10.0),
                (right, centre + 10),
                10.0,
                Anchor::Right,
                ink,
                false,
            )
        }
        None => canvas.text(
            &fit(&row.text, text_room, 13.0),
            (right, centre),
            13.0,
            Anchor::Right,
            BLACK,
            false,
        ),
    }
}

/// A kind's segment: colour, hatching and (when it fits) its name.
fn draw_segment(
    canvas: &Canvas<'_>,
    kind: usize,
    (x0, y0, x1, y1): (i32, i32, i32, i32),
    ghost: bool,
) -> Result<()> {
    let colour = KIND_COLOURS[kind];
    if ghost {
        canvas.fill(x0, y0, x1, y1, colour.mix(0.25))?;
        canvas.hatch((x0, y0, x1, y1), KIND_HATCHES[kind], 5, colour.mix(0.6))?;
        return canvas.dashed_outline(x0, y0, x1, y1, colour.to_rgba());
    }
    canvas.fill(x0, y0, x1, y1, colour.to_rgba())?;
    canvas.hatch((x0, y0, x1, y1), KIND_HATCHES[kind], 5, WHITE.mix(0.55))?;
    let name = KINDS[kind];
    if x1 - x0 >= text_width(name, 10.0) + 6 {
        let ink = if is_dark(colour) { WHITE } else { BLACK };
        canvas.text(
            name,
            ((x0 + x1) / 2, (y0 + y1) / 2),
            10.0,
            Anchor::Centre,
            ink,
            true,
        )?;
    }
    Ok(())
}

fn draw_bar(
    canvas: &Canvas<'_>,
    bar: &Bar,
    scale: &Scale,
    plot_x: i32,
    row_top: i32,
) -> Result<()> {
    let (y0, y1) = (row_top + 6, row_top + 6 + BAR_PIXELS);
    let x = |bytes: f64| scale.x(plot_x, bytes);
    let span = |from: f64, to: f64| {
        let (a, b) = (x(from), x(to));
        // A figure too small for a pixel still gets one.
        if a == b {
            (a, a + 1)
        } else {
            (a.min(b), a.max(b))
        }
    };
    let mut right = 0.0;
    let mut left = 0.0;
    for (kind, bytes) in bar.kinds.iter().enumerate() {
        let bytes = *bytes as f64;
        if bytes > 0.0 {
            let (a, b) = span(right, right + bytes);
            draw_segment(canvas, kind, (a, y0, b, y1), false)?;
            right += bytes;
        } else if bytes < 0.0 {
            let (a, b) = span(left + bytes, left);
            draw_segment(canvas, kind, (a, y0, b, y1), false)?;
            left += bytes;
        }
    }
    let mut end = right;
    for (kind, bytes) in &bar.ghosts {
        let (a, b) = span(end, end + *bytes as f64);
        draw_segment(canvas, *kind, (a, y0, b, y1), true)?;
        end += *bytes as f64;
    }
    let mut text_x = x(end.max(0.0));
    if let Some(strip) = &bar.strip {
        let (s0, s1) = (y1 + 3, y1 + 3 + STRIP_HEIGHT);
        let mut at = 0.0;
        if strip.own > 0 {
            let (a, b) = span(0.0, strip.own as f64);
            canvas.fill(a, s0, b, s1, DARK.to_rgba())?;
            at = strip.own as f64;
        }
        for (index, (_, bytes)) in strip.causers.iter().enumerate() {
            let (a, b) = span(at, at + *bytes as f64);
            canvas.fill(a, s0, b, s1, WHITE.to_rgba())?;
            let hatch = if index % 2 == 0 {
                Hatch::Rising
            } else {
                Hatch::Falling
            };
            canvas.hatch((a, s0, b, s1), hatch, 3, BLACK.to_rgba())?;
            canvas.outline(a, s0, b, s1, BLACK.to_rgba(), 1)?;
            at += *bytes as f64;
        }
        text_x = text_x.max(x(at));
    }
    // Limits: a black tick at the set's limit, dashed ticks at sub-limits (not on an empty
    // bar, where they would stand alone).
    let empty = right == 0.0 && left == 0.0 && bar.ghosts.is_empty();
    let tick_bottom = if bar.strip.is_some() {
        y1 + 3 + STRIP_HEIGHT
    } else {
        y1
    } + 3;
    if let (Some(limit), false) = (bar.limit, empty) {
        if limit as f64 <= scale.high {
            let lx = x(limit as f64);
            canvas.line((lx, y0 - 4), (lx, tick_bottom), BLACK.to_rgba(), 2)?;
            text_x = text_x.max(lx);
        }
    }
    if let (Some(high), false) = (bar.high, empty) {
        if high as f64 <= scale.high {
            let hx = x(high as f64);
            canvas.dashed((hx, y0 - 5), (hx, tick_bottom + 1), BLACK.mix(0.45), 2)?;
            text_x = text_x.max(hx);
        }
    }
    for (kind, limit) in bar.kind_limits.iter().filter(|_| !empty) {
        let reach = (bar.kind_start(*kind) + limit) as f64;
        if reach <= scale.high {
            let lx = x(reach);
            let colour = KIND_COLOURS[*kind];
            canvas.dashed((lx, y0 - 5), (lx, tick_bottom + 1), colour.to_rgba(), 2)?;
            canvas.dashed(
                (lx + 2, y0 - 5),
                (lx + 2, tick_bottom + 1),
                BLACK.mix(0.7),
                1,
            )?;
            text_x = text_x.max(lx + 2);
        }
    }
    // The total, the transient peaks and the denials, in a line after the bar.
    let centre = (y0 + y1) / 2;
    let mut at = text_x + 6;
    canvas.text(
        &bar.text,
        (at, centre),
        TOTAL_PIXELS,
        Anchor::Left,
        BLACK,
        false,
    )?;
    at += text_width(&bar.text, TOTAL_PIXELS) + GAP;
    if let (Some(note), false) = (far_limit_note(bar, scale), empty) {
        canvas.text(
            &note,
            (at - 3, centre),
            NOTE_PIXELS,
            Anchor::Left,
            DARK,
            false,
        )?;
        at += text_width(&note, NOTE_PIXELS) + GAP;
    }
    if !bar.ghost_peaks.is_empty() {
        let note = bar.ghost_note();
        canvas.text(&note, (at, centre), NOTE_PIXELS, Anchor::Left, DARK, false)?;
        at += text_width(&note, NOTE_PIXELS) + GAP;
    }
    if !bar.denied.is_empty() {
        canvas.cross((at + 4, centre))?;
        canvas.text(
            &bar.denied_note(),
            (at + 12, centre),
            NOTE_PIXELS,
            Anchor::Left,
            VERMILLION,
            true,
        )?;
    }
    if bar.strip.is_some() {
        canvas.text(
            &bar.strip_note(),
            (text_x + 6, y1 + 3 + STRIP_HEIGHT / 2 + 1),
            STRIP_PIXELS,
            Anchor::Left,
            DARK,
            false,
        )?;
    }
    Ok(())
}

fn draw_legend_item(canvas: &Canvas<'_>, item: Legend, (x, y): (i32, i32)) -> Result<()> {
    let (x0, y0, x1, y1) = (x, y - 7, x + 16, y + 7);
    match item {
        Legend::Kind(kind) => {
            canvas.fill(x0, y0, x1, y1, KIND_COLOURS[kind].to_rgba())?;
            canvas.hatch((x0, y0, x1, y1), KIND_HATCHES[kind], 5, WHITE.mix(0.55))?;
        }
        Legend::Ghost => {
            canvas.fill(x0, y0, x1, y1, KIND_COLOURS[3].mix(0.25))?;
            canvas.dashed_outline(x0, y0, x1, y1, KIND_COLOURS[3].to_rgba())?;
        }
        Legend::Own => canvas.fill(x0, y - 3, x1, y + 4, DARK.to_rgba())?,
        Legend::Others => {
            canvas.hatch((x0, y - 3, x1, y + 4), Hatch::Rising, 3, BLACK.to_rgba())?;
            canvas.outline(x0, y - 3, x1, y + 4, BLACK.to_rgba(), 1)?;
        }
        Legend::Limit => canvas.line((x + 8, y0), (x + 8, y1), BLACK.to_rgba(), 2)?,
        Legend::SubLimit => {
            canvas.dashed((x + 7, y0), (x + 7, y1), KIND_COLOURS[3].to_rgba(), 2)?;
            canvas.dashed((x + 9, y0), (x + 9, y1), BLACK.mix(0.7), 1)?;
        }
        Legend::High => canvas.dashed((x + 8, y0), (x + 8, y1), BLACK.mix(0.45), 2)?,
        Legend::Denied => canvas.cross((x + 8, y))?,
    }
    canvas.text(item.text(), (x + 22, y), 12.0, Anchor::Left, BLACK, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{parse_console, tests::TRANSCRIPT};

    #[test]
    fn a_bar_carries_ghosts_strip_limits_and_denials() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let mut parent = report.snapshot("shared").unwrap().charge_sets[1].clone();
        parent.peak.msgbuf = 8192;
        parent
            .extra
            .insert("kind_limits".into(), serde_json::json!({"msgbuf": 49152}));
        assert_eq!(Bar::current(&parent).high, None);
        parent
            .extra
            .insert("high_bytes".into(), serde_json::json!(65536));
        let bar = Bar::current(&parent);
        assert_eq!(bar.high, Some(65536));
        assert_eq!(Bar::peaks(&parent).high, Some(65536));
        assert_eq!(bar.kinds, [40960, 8192, 4096, 0, 16384]);
        assert_eq!(bar.ghosts, [(3, 8192)]);
        assert_eq!(
            bar.strip,
            Some(Strip {
                own: 69632 - 16384,
                causers: vec![("child".to_string(), 16384)],
            })
        );
        assert_eq!(bar.limit, Some(1 << 20));
        assert_eq!(bar.kind_limits, [(3, 49152)]);
        assert_eq!(bar.denied, [(4, 1)]);
        assert_eq!(bar.text, "68 KiB");
        assert_eq!(bar.denied_note(), "1 denied (cow)");
        assert_eq!(bar.ghost_note(), "msgbuf peak 8 KiB");
        // The delta from `start` (where the set did not exist) is the whole figure.
        let delta = Bar::delta(&parent, None);
        assert_eq!(delta.text, "+68 KiB (to 68 KiB)");
        let base = parent.clone();
        let mut now = parent.clone();
        now.current.pagetables += 65536;
        now.current.anon -= 4096;
        let delta = Bar::delta(&now, Some(&base));
        assert_eq!(delta.kinds, [-4096, 65536, 0, 0, 0]);
        assert!(delta.denied.is_empty());
        assert_eq!(delta.text, "+60 KiB (to 128 KiB)");
    }

    #[test]
    fn a_far_limit_does_not_stretch_the_axis() {
        let near = Bar {
            kinds: [100 << 10, 0, 0, 0, 0],
            limit: Some(128 << 10),
            ..Bar::default()
        };
        let far = Bar {
            limit: Some(4 << 20),
            ..near.clone()
        };
        assert_eq!(Scale::new(&[&near]).high, 150.0 * 1024.0);
        assert_eq!(Scale::new(&[&far]).high, 100.0 * 1024.0);
        assert_eq!(Scale::new(&[&far]).unit.name, "KiB");
    }
}
