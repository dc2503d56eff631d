//! Colours, patterns, units and axis ticks shared by every chart.
//!
//! Colours come from the Okabe–Ito palette, which stays distinguishable under the common forms
//! of colour blindness; the two transient kinds (`msgbuf`, `cow`) are also hatched, in opposite
//! directions, so that no kind is told from another by colour alone. Vermillion is kept for
//! what needs attention (FAIL badges, denials) and is never a kind's colour.

use plotters::style::RGBColor;

use crate::config::KINDS;

/// Okabe–Ito blue.
pub(super) const BLUE: RGBColor = RGBColor(0, 114, 178);
/// Okabe–Ito orange.
pub(super) const ORANGE: RGBColor = RGBColor(230, 159, 0);
/// Okabe–Ito bluish green.
pub(super) const GREEN: RGBColor = RGBColor(0, 158, 115);
/// Okabe–Ito reddish purple.
pub(super) const PURPLE: RGBColor = RGBColor(204, 121, 167);
/// Okabe–Ito vermillion: FAIL badges and denials only.
pub(super) const VERMILLION: RGBColor = RGBColor(213, 94, 0);
/// A neutral grey for the kernel-object kind.
pub(super) const GREY: RGBColor = RGBColor(153, 153, 153);
/// Dark grey: the "own domains" part of a causer strip, and secondary text.
pub(super) const DARK: RGBColor = RGBColor(80, 80, 80);
/// Light grey: grid lines.
pub(super) const GRID: RGBColor = RGBColor(225, 225, 225);
/// Alternate row banding.
pub(super) const BAND: RGBColor = RGBColor(246, 246, 246);

/// Segment colours, in [`KINDS`] order: anon, pagetables, kernel, msgbuf, cow.
pub(super) const KIND_COLOURS: [RGBColor; 5] = [BLUE, ORANGE, GREY, GREEN, PURPLE];

/// How a kind's segment is hatched on top of its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hatch {
    /// Plain colour.
    None,
    /// Lines rising to the right (`/`).
    Rising,
    /// Lines falling to the right (`\`).
    Falling,
}

/// Hatching per kind, in [`KINDS`] order: the transient kinds are hatched.
pub(super) const KIND_HATCHES: [Hatch; 5] = [
    Hatch::None,
    Hatch::None,
    Hatch::None,
    Hatch::Rising,
    Hatch::Falling,
];

/// Kinds whose frames come and go within a run, so that a snapshot may miss them: their peaks
/// are drawn beside the current figure.
pub(super) const TRANSIENT_KINDS: [&str; 2] = ["msgbuf", "cow"];

/// The index of `kind` in [`KINDS`].
pub(super) fn kind_index(kind: &str) -> Option<usize> {
    KINDS.iter().position(|k| *k == kind)
}

/// Whether white text reads better than black on `colour` (relative luminance below ~0.45).
pub(super) fn is_dark(colour: RGBColor) -> bool {
    let RGBColor(r, g, b) = colour;
    let luminance = 0.2126 * f64::from(r) + 0.7152 * f64::from(g) + 0.0722 * f64::from(b);
    luminance < 0.45 * 255.0
}

/// A byte unit for an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unit {
    /// `B`, `KiB`, `MiB` or `GiB`.
    pub name: &'static str,
    /// Bytes in one unit.
    pub bytes: u64,
}

const UNITS: [Unit; 4] = [
    Unit {
        name: "GiB",
        bytes: 1 << 30,
    },
    Unit {
        name: "MiB",
        bytes: 1 << 20,
    },
    Unit {
        name: "KiB",
        bytes: 1 << 10,
    },
    Unit {
        name: "B",
        bytes: 1,
    },
];

/// The unit an axis reaching `largest_bytes` is labelled in: the largest unit of which the
/// axis spans at least two (so 140000 KiB is read as 136.7 MiB, and 1.5 MiB as 1536 KiB).
pub(super) fn unit_for(largest_bytes: u64) -> Unit {
    UNITS
        .into_iter()
        .find(|unit| largest_bytes >= 2 * unit.bytes)
        .unwrap_or(UNITS[3])
}

/// Axis ticks for values from `low` to `high` (bytes, `low <= 0 <= high`), in `unit`: a step
/// of 1, 2 or 5 × 10^k units giving at most `most` intervals, and the axis rounded out to
/// whole steps. Returns (axis low, axis high, tick values), all in bytes.
pub(super) fn ticks(low: f64, high: f64, unit: Unit, most: usize) -> (f64, f64, Vec<f64>) {
    let unit_bytes = unit.bytes as f64;
    let (low_units, high_units) = (low / unit_bytes, high / unit_bytes);
    let span = (high_units - low_units).max(1.0);
    let raw = span / most.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| span / step <= most as f64)
        .unwrap_or(10.0 * magnitude);
    let first = (low_units / step).floor() * step;
    let last = ((high_units / step).ceil() * step).max(step);
    let count = ((last - first) / step).round() as usize;
    // Rounded to whole bytes, so that zero is exactly zero.
    let values = (0..=count)
        .map(|i| ((first + i as f64 * step) * unit_bytes).round())
        .collect();
    (first * unit_bytes, last * unit_bytes, values)
}

/// A tick label: the value in `unit`, without a fraction when it is whole.
pub(super) fn tick_label(bytes: f64, unit: Unit) -> String {
    let value = bytes / unit.bytes as f64;
    if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// Estimated width in pixels of `text` at `pixels` font size (sans-serif, as the SVG viewer
/// will lay it out; DejaVu Sans averages a little under 0.6 em per character).
pub(super) fn text_width(text: &str, pixels: f64) -> i32 {
    (text.chars().count() as f64 * pixels * 0.6).ceil() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_follow_the_largest_value() {
        assert_eq!(unit_for(0).name, "B");
        assert_eq!(unit_for(2047).name, "B");
        assert_eq!(unit_for(4096).name, "KiB");
        assert_eq!(unit_for(372 * 1024).name, "KiB");
        assert_eq!(unit_for(3 << 20).name, "MiB");
        // out-of-memory: 140000 KiB is an axis in MiB.
        assert_eq!(unit_for(140_000 * 1024).name, "MiB");
        assert_eq!(unit_for(5 << 30).name, "GiB");
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let kib = unit_for(372 * 1024);
        let (low, high, values) = ticks(0.0, 372.0 * 1024.0, kib, 5);
        assert_eq!(low, 0.0);
        assert_eq!(high, 400.0 * 1024.0);
        let labels: Vec<String> = values.iter().map(|v| tick_label(*v, kib)).collect();
        assert_eq!(labels, ["0", "100", "200", "300", "400"]);
        // A range across zero keeps zero as a tick.
        let (low, _, values) = ticks(-64.0 * 1024.0, 96.0 * 1024.0, kib, 5);
        assert!(low <= -64.0 * 1024.0);
        assert!(values.contains(&0.0));
    }

    #[test]
    fn no_two_kinds_share_a_colour_and_vermillion_is_not_a_kind() {
        for (i, a) in KIND_COLOURS.iter().enumerate() {
            assert_ne!(*a, VERMILLION);
            for b in &KIND_COLOURS[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(kind_index("msgbuf"), Some(3));
        assert_ne!(KIND_HATCHES[3], KIND_HATCHES[4]);
    }
}
