//! A thin layer over plotters' SVG backend in pixel coordinates: rectangles, lines, dashed
//! lines, hatching, text and badges, each returning an `anyhow` error naming the file.
//!
//! The charts lay themselves out in pixels (small multiples with their own axes), so they draw
//! on the root drawing area rather than through plotters' single-chart coordinate systems.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::palette::{text_width, Hatch, VERMILLION};

/// The font family of every chart.
pub(super) const FONT: &str = "sans-serif";

/// An SVG drawing surface of a fixed size.
pub(super) struct Canvas<'a> {
    area: DrawingArea<SVGBackend<'a>, Shift>,
    path: String,
}

/// Where a text's anchor point is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Anchor {
    /// Left end, vertically centred.
    Left,
    /// Right end, vertically centred.
    Right,
    /// Centre.
    Centre,
}

impl<'a> Canvas<'a> {
    /// A white canvas of `width` × `height` pixels that writes to `path` when finished.
    pub(super) fn new(path: &'a Path, width: i32, height: i32) -> Result<Self> {
        let area =
            SVGBackend::new(path, (width.max(1) as u32, height.max(1) as u32)).into_drawing_area();
        let canvas = Canvas {
            area,
            path: path.display().to_string(),
        };
        canvas.area.fill(&WHITE).map_err(|e| canvas.error(&e))?;
        Ok(canvas)
    }

    fn error(&self, error: &dyn std::fmt::Display) -> anyhow::Error {
        anyhow!("drawing {}: {error}", self.path)
    }

    /// A filled rectangle.
    pub(super) fn fill(&self, x0: i32, y0: i32, x1: i32, y1: i32, colour: RGBAColor) -> Result<()> {
        self.area
            .draw(&Rectangle::new([(x0, y0), (x1, y1)], colour.filled()))
            .map_err(|e| self.error(&e))
    }

    /// A rectangle's outline.
    pub(super) fn outline(
        &self,
        x0: i32,
        y0: i32,
        x1: i32,
        y1: i32,
        colour: RGBAColor,
        width: u32,
    ) -> Result<()> {
        self.area
            .draw(&Rectangle::new(
                [(x0, y0), (x1, y1)],
                colour.stroke_width(width),
            ))
            .map_err(|e| self.error(&e))
    }

    /// A straight line.
    pub(super) fn line(
        &self,
        from: (i32, i32),
        to: (i32, i32),
        colour: RGBAColor,
        width: u32,
    ) -> Result<()> {
        self.area
            .draw(&PathElement::new(
                vec![from, to],
                colour.stroke_width(width),
            ))
            .map_err(|e| self.error(&e))
    }

    /// A dashed straight line.
    pub(super) fn dashed(
        &self,
        from: (i32, i32),
        to: (i32, i32),
        colour: RGBAColor,
        width: u32,
    ) -> Result<()> {
        self.area
            .draw(&plotters::element::DashedPathElement::new(
                vec![from, to],
                4,
                3,
                colour.stroke_width(width),
            ))
            .map_err(|e| self.error(&e))
    }

    /// A dashed rectangle outline.
    pub(super) fn dashed_outline(
        &self,
        x0: i32,
        y0: i32,
        x1: i32,
        y1: i32,
        colour: RGBAColor,
    ) -> Result<()> {
        for (from, to) in [
            ((x0, y0), (x1, y0)),
            ((x1, y0), (x1, y1)),
            ((x1, y1), (x0, y1)),
            ((x0, y1), (x0, y0)),
        ] {
            self.dashed(from, to, colour, 1)?;
        }
        Ok(())
    }

    /// Diagonal lines `spacing` pixels apart inside a rectangle.
    pub(super) fn hatch(
        &self,
        (x0, y0, x1, y1): (i32, i32, i32, i32),
        hatch: Hatch,
        spacing: i32,
        colour: RGBAColor,
    ) -> Result<()> {
        let spacing = spacing.max(2);
        match hatch {
            Hatch::None => {}
            // x + y = c, rising to the right on screen.
            Hatch::Rising => {
                let mut c = x0 + y0 + spacing;
                while c < x1 + y1 {
                    let low = x0.max(c - y1);
                    let high = x1.min(c - y0);
                    if low < high {
                        self.line((low, c - low), (high, c - high), colour, 1)?;
                    }
                    c += spacing;
                }
            }
            // x - y = c, falling to the right on screen.
            Hatch::Falling => {
                let mut c = x0 - y1 + spacing;
                while c < x1 - y0 {
                    let low = x0.max(y0 + c);
                    let high = x1.min(y1 + c);
                    if low < high {
                        self.line((low, low - c), (high, high - c), colour, 1)?;
                    }
                    c += spacing;
                }
            }
        }
        Ok(())
    }

    /// Text of `pixels` size at `at`.
    pub(super) fn text(
        &self,
        text: &str,
        at: (i32, i32),
        pixels: f64,
        anchor: Anchor,
        colour: RGBColor,
        bold: bool,
    ) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let pos = match anchor {
            Anchor::Left => Pos::new(HPos::Left, VPos::Center),
            Anchor::Right => Pos::new(HPos::Right, VPos::Center),
            Anchor::Centre => Pos::new(HPos::Center, VPos::Center),
        };
        // The SVG backend writes font-size = size / 1.24.
        let mut font = (FONT, pixels * 1.24).into_font();
        if bold {
            font = font.style(FontStyle::Bold);
        }
        let style = TextStyle::from(font).color(&colour).pos(pos);
        self.area
            .draw(&Text::new(text.to_string(), at, style))
            .map_err(|e| self.error(&e))
    }

    /// A vermillion `FAIL` badge whose left end is at `at`; returns its width.
    pub(super) fn fail_badge(&self, at: (i32, i32)) -> Result<i32> {
        let width = BADGE_WIDTH;
        let (x, y) = at;
        self.fill(x, y - 8, x + width, y + 8, VERMILLION.to_rgba())?;
        self.text(
            "FAIL",
            (x + width / 2, y),
            11.0,
            Anchor::Centre,
            WHITE,
            true,
        )?;
        Ok(width)
    }

    /// A small vermillion cross centred at `at` (a denial marker).
    pub(super) fn cross(&self, at: (i32, i32)) -> Result<()> {
        let (x, y) = at;
        let colour = VERMILLION.to_rgba();
        self.line((x - 4, y - 4), (x + 4, y + 4), colour, 2)?;
        self.line((x - 4, y + 4), (x + 4, y - 4), colour, 2)
    }

    /// Writes the SVG file.
    pub(super) fn finish(self) -> Result<()> {
        self.area.present().map_err(|e| self.error(&e))
    }
}

/// Width of a `FAIL` badge.
pub(super) const BADGE_WIDTH: i32 = 38;

/// `text` cut to about `pixels` wide at `size`, with an ellipsis when cut.
pub(super) fn fit(text: &str, pixels: i32, size: f64) -> String {
    if text_width(text, size) <= pixels {
        return text.to_string();
    }
    let keep = ((pixels as f64 / (size * 0.6)) as usize).saturating_sub(1);
    format!("{}…", text.chars().take(keep).collect::<String>())
}
