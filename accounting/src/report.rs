//! The `no_std` report serializer: one snapshot object of `tally.report/1`, written with
//! `core::fmt::Write`, no allocation.
//!
//! Invariants: the output is one line of valid JSON (strings escaped per RFC 8259); the fields
//! of the design brief keep their names and meanings; added fields are `recount`, `policy`, `subtree`,
//! `subtree_bytes`, `kind_limits` and `sharer_lists`. See `docs/report-format.md`.

use crate::ids::{DomainId, Kind, SetId, FRAME_BYTES};
use crate::ledger::Ledger;
use crate::model::{DomainState, PerKind, StopReason};
use crate::trace::TraceRecord;
use core::fmt::{self, Write};

/// What the caller knows about a snapshot that the ledger does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotHeader<'h> {
    /// The label: chosen by the program that asked for the snapshot, or `start` / `final`.
    pub label: &'h str,
    /// Guest instructions retired so far.
    pub instructions: u64,
    /// Frames of RAM.
    pub total_frames: u64,
    /// Free frames.
    pub free_frames: u64,
}

/// Writes `text` as a JSON string, quotes included.
pub fn write_json_string<W: Write>(out: &mut W, text: &str) -> fmt::Result {
    out.write_char('"')?;
    for character in text.chars() {
        match character {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            control if (control as u32) < 0x20 || control == '\u{7f}' => {
                write!(out, "\\u{:04x}", control as u32)?
            }
            other => out.write_char(other)?,
        }
    }
    out.write_char('"')
}

fn write_kinds<W: Write>(out: &mut W, values: &PerKind) -> fmt::Result {
    out.write_char('{')?;
    for kind in Kind::ALL {
        if kind.index() > 0 {
            out.write_char(',')?;
        }
        write!(out, "\"{}\":{}", kind.key(), values[kind.index()])?;
    }
    out.write_char('}')
}

fn write_optional<W: Write>(out: &mut W, value: Option<u64>) -> fmt::Result {
    match value {
        Some(value) => write!(out, "{value}"),
        None => out.write_str("null"),
    }
}

impl Ledger<'_> {
    /// Writes one snapshot object of `tally.report/1` (one line, no trailing newline) and, if
    /// a trace hook is set, emits the `snapshot` trace record first.
    pub fn write_snapshot<W: Write>(
        &self,
        out: &mut W,
        header: &SnapshotHeader<'_>,
    ) -> fmt::Result {
        if let Some(hook) = self.trace_hook() {
            hook(&TraceRecord::Snapshot {
                instructions: header.instructions,
                total_frames: header.total_frames,
                free_frames: header.free_frames,
                in_use_frames: self.frames_in_use,
                label: crate::trace::label(header.label),
            });
        }
        self.write_snapshot_json(out, header)
    }

    /// Writes the snapshot object without emitting a trace record.
    pub fn write_snapshot_json<W: Write>(
        &self,
        out: &mut W,
        header: &SnapshotHeader<'_>,
    ) -> fmt::Result {
        let conservation = self.conservation();
        out.write_str("{\"label\":")?;
        write_json_string(out, header.label)?;
        write!(
            out,
            ",\"instructions\":{},\"frames\":{{\"total\":{},\"free\":{},\"boot\":{},\"in_use\":{}}}",
            header.instructions,
            header.total_frames,
            header.free_frames,
            self.boot_frames,
            self.frames_in_use
        )?;
        write!(
            out,
            ",\"conservation\":{{\"charged_bytes\":{},\"in_use_bytes\":{},\"ok\":{}}}",
            conservation.charged_bytes, conservation.in_use_bytes, conservation.ok
        )?;
        let allocated = header
            .total_frames
            .saturating_sub(header.free_frames)
            .saturating_sub(self.boot_frames);
        match self.recount(allocated) {
            Ok(()) => out.write_str(",\"recount\":{\"ok\":true,\"error\":null}")?,
            Err(why) => write!(out, ",\"recount\":{{\"ok\":false,\"error\":\"{why}\"}}")?,
        }
        write!(
            out,
            ",\"policy\":{{\"cow\":\"{}\",\"msgbuf\":\"{}\",\"pagetable\":\"{}\",\"release\":\"{}\",\"kernel\":\"{}\",\"move\":\"{}\"}}",
            self.policies.cow.name(),
            self.policies.msgbuf.name(),
            self.policies.pagetable.name(),
            self.policies.release.name(),
            self.policies.kernel.name(),
            self.policies.moves.name()
        )?;
        out.write_str(",\"charge_sets\":[")?;
        for (index, set) in self.sets.iter().enumerate() {
            if index > 0 {
                out.write_char(',')?;
            }
            out.write_str("{\"name\":")?;
            write_json_string(out, &set.name)?;
            out.write_str(",\"parent\":")?;
            match set.parent {
                Some(parent) => write_json_string(out, &self.sets[parent.index()].name)?,
                None => out.write_str("null")?,
            }
            out.write_str(",\"limit_bytes\":")?;
            write_optional(out, set.limit_bytes)?;
            out.write_str(",\"domains\":[")?;
            let mut first = true;
            for domain in self
                .domains
                .iter()
                .filter(|domain| domain.set == SetId(index as u16))
            {
                if !first {
                    out.write_char(',')?;
                }
                first = false;
                write_json_string(out, &domain.name)?;
            }
            out.write_str("],\"current\":")?;
            write_kinds(out, &set.current)?;
            out.write_str(",\"peak\":")?;
            write_kinds(out, &set.peak())?;
            write!(
                out,
                ",\"charged_total_bytes\":{},\"uncharged_total_bytes\":{},\"denied\":",
                set.charged_total_bytes(),
                set.uncharged_total_bytes
            )?;
            write_kinds(out, &set.denied)?;
            out.write_str(",\"paid_for\":{")?;
            let mut first = true;
            // `paid_for`: what domains bound to other sets caused (derived from `caused`).
            for (domain, kinds) in set.caused.iter().enumerate() {
                let bytes = kinds.iter().sum::<u64>();
                if bytes == 0 {
                    continue;
                }
                let Ok(domain) = self.domain(DomainId(domain as u16)) else {
                    continue;
                };
                if domain.set == SetId(index as u16) {
                    continue;
                }
                if !first {
                    out.write_char(',')?;
                }
                first = false;
                write_json_string(out, &domain.name)?;
                write!(out, ":{bytes}")?;
            }
            out.write_str("},\"caused\":{")?;
            let mut first = true;
            for (domain, kinds) in set.caused.iter().enumerate() {
                if kinds.iter().all(|bytes| *bytes == 0) {
                    continue;
                }
                let Ok(domain) = self.domain(DomainId(domain as u16)) else {
                    continue;
                };
                if !first {
                    out.write_char(',')?;
                }
                first = false;
                write_json_string(out, &domain.name)?;
                out.write_char(':')?;
                write_kinds(out, kinds)?;
            }
            out.write_str("},\"charged\":")?;
            write_kinds(out, &set.charged())?;
            out.write_str(",\"uncharged\":")?;
            write_kinds(out, &set.uncharged)?;
            out.write_str(",\"limit_hits\":")?;
            write_kinds(out, &set.limit_hits)?;
            out.write_str(",\"moved_in\":")?;
            write_kinds(out, &set.moved_in)?;
            out.write_str(",\"moved_out\":")?;
            write_kinds(out, &set.moved_out)?;
            write!(
                out,
                ",\"moved_in_bytes\":{},\"moved_out_bytes\":{}",
                set.moved_in.iter().sum::<u64>(),
                set.moved_out.iter().sum::<u64>()
            )?;
            out.write_str(",\"events\":{")?;
            write!(
                out,
                "\"denied\":{},\"limit_hit\":{}",
                set.denied.iter().sum::<u64>(),
                set.limit_hits.iter().sum::<u64>()
            )?;
            for reason in StopReason::ALL {
                write!(out, ",\"{}\":{}", reason.key(), set.stops[reason.index()])?;
            }
            write!(
                out,
                ",\"high\":{},\"evictions\":{},\"page_ins\":{}",
                set.high_events, set.evictions, set.page_ins
            )?;
            out.write_str("},\"high_bytes\":")?;
            match set.high_bytes {
                Some(bytes) => write!(out, "{bytes}")?,
                None => out.write_str("null")?,
            }
            out.write_str(",\"subtree\":")?;
            write_kinds(out, &set.subtree())?;
            write!(
                out,
                ",\"subtree_bytes\":{},\"kind_limits\":{{",
                set.subtree_bytes()
            )?;
            let mut first = true;
            for kind in Kind::ALL {
                if let Some(limit) = set.kind_limit_bytes[kind.index()] {
                    if !first {
                        out.write_char(',')?;
                    }
                    first = false;
                    write!(out, "\"{}\":{limit}", kind.key())?;
                }
            }
            out.write_str("}}")?;
        }
        out.write_str("],\"domains\":[")?;
        for (index, domain) in self.domains.iter().enumerate() {
            if index > 0 {
                out.write_char(',')?;
            }
            out.write_str("{\"name\":")?;
            write_json_string(out, &domain.name)?;
            out.write_str(",\"charge_set\":")?;
            write_json_string(out, &self.sets[domain.set.index()].name)?;
            write!(
                out,
                ",\"state\":\"{}\",\"stop_reason\":",
                domain.state.name()
            )?;
            match domain.state.stop_reason() {
                Some(reason) => write!(out, "\"{}\"", reason.name())?,
                None => out.write_str("null")?,
            }
            match domain.state {
                DomainState::Exited => write!(out, ",\"exit_code\":{}", domain.exit_code)?,
                _ => out.write_str(",\"exit_code\":null")?,
            }
            write!(
                out,
                ",\"keeper_faults\":{},\"restarts\":{}",
                domain.keeper_faults, domain.restarts
            )?;
            let choices = &domain.keeper_choices;
            write!(
                out,
                ",\"keeper_choices\":{{\"answered\":{},\"timeout\":{},\"wrong\":{},\"none\":{}}}",
                choices.answered, choices.timeout, choices.wrong, choices.none
            )?;
            out.write_str(",\"last_denial\":")?;
            match &domain.last_denial {
                Some(denial) => {
                    out.write_str("{\"kind\":")?;
                    write_json_string(out, denial.kind.key())?;
                    out.write_str(",\"payer\":")?;
                    write_json_string(out, &self.sets[denial.payer.index()].name)?;
                    out.write_str(",\"limit_set\":")?;
                    write_json_string(out, &self.sets[denial.limit_set.index()].name)?;
                    write!(
                        out,
                        ",\"limit\":\"{}\",\"bytes\":{}}}}}",
                        if denial.kind_limit { "kind" } else { "total" },
                        denial.bytes
                    )?;
                }
                None => out.write_str("null}")?,
            }
        }
        write!(
            out,
            "],\"sharer_lists\":{},\"frame_bytes\":{}}}",
            self.sharer_lists_in_use(),
            FRAME_BYTES
        )
    }
}
