//! The event trace: one text record per ledger operation, encoded with `core::fmt` and parsed
//! back without allocation, so a run can be replayed under other policies.
//!
//! Format: one record per line, fields separated by single spaces, numbers in decimal, `-` for
//! "none". The kernel prints each as `@tally/1 trace <record>`.
//!
//! | record | meaning |
//! |---|---|
//! | `ledger FRAMES` | the ledger's frame count (first record) |
//! | `policies cow=N msgbuf=N pagetable=N release=N kernel=N move=N` | the policies of the run (informational; `move=N` is absent in traces older than the `move` key, read as `stay`) |
//! | `boot FIRST COUNT` | frames `FIRST..FIRST+COUNT` are the kernel's own |
//! | `set ID NAME PARENT\|- LIMIT\|-` | a charge set was created with id `ID` |
//! | `limit SET BYTES\|-` | a set's limit changed |
//! | `kind-limit SET KIND BYTES\|-` | a set's per-kind sub-limit changed |
//! | `high SET BYTES\|-` | a set's `high` bound changed |
//! | `paging DOM evict\|in` | a pager evicted a page of `DOM`, or brought one back |
//! | `paging DOM high SET` | `DOM`'s keeper was asked to reclaim: `SET` was above its `high` |
//! | `dom ID NAME SET` | a domain was created with id `ID`, bound to `SET` |
//! | `state DOM running\|blocked\|exited\|stopped:REASON` | a domain changed state |
//! | `plan N` | the next `N` operation records form one atomic plan (only for `N >= 2`) |
//! | `anon FRAME DOM` | new anonymous frame mapped by `DOM` |
//! | `pagetable FRAME OWNER CAUSER` | new page-table frame in `OWNER`'s space, made necessary by `CAUSER` |
//! | `kernel FRAME SET CAUSER\|-` | new kernel-object frame bound to `SET` |
//! | `domobj FRAME DOMAIN SPAWNER\|-` | new kernel object of `DOMAIN`'s own, paid per the `kernel` policy |
//! | `forget ID` | the last domain created is forgotten (its creation failed) |
//! | `refused PAYER KIND LIMIT_SET set\|kind CAUSER\|- BYTES` | a batch (a spawn's plans, reserved together) was refused: the denial counted, nothing charged |
//! | `msgbuf FRAME SENDER RECEIVER` | new message-buffer frame |
//! | `share FRAME DOM` | `DOM` maps the frame too (copy-on-write) |
//! | `share-many DOM COUNT` | `DOM` maps `COUNT` frames, listed by the following `frames` records |
//! | `frames F F ...` | up to 16 frames of the preceding `share-many` |
//! | `cow ORIGINAL COPY WRITER` | write fault: `COPY` is `WRITER`'s private copy of `ORIGINAL` |
//! | `unmap FRAME DOM` | `DOM` unmaps the frame (also on exit) |
//! | `free FRAME` | a page-table, kernel-object or message-buffer frame is freed |
//! | `move DOM SET` | `DOM` moves to charge set `SET`; the `move` policy decides what happens to the charges it holds (also written when the move is denied) |
//! | `snapshot INSTRUCTIONS TOTAL FREE IN_USE LABEL` | a report snapshot was taken |
//!
//! Operation records are written when an operation commits *and* when it is denied (the denial
//! counters changed), so a replay under the same policies reproduces the run exactly.
//! The snapshot label is the rest of the line, with `%`, control bytes and bytes ≥ 0x7f written
//! as `%XX`.
//!
//! Invariant: `parse(format(record)) == record` for every record (tested).

use crate::ids::{DomainId, FrameIndex, Kind, Name, SetId, LABEL_BYTES};
use crate::model::{DomainState, KeeperChoice, PagingEvent};
use core::fmt;
use core::str::FromStr;

/// Most frames in one `frames` record.
pub const FRAMES_PER_RECORD: usize = 16;

/// A snapshot label as kept in a trace record.
pub type Label = heapless::String<LABEL_BYTES>;

/// A policy name as kept in a trace record.
pub type PolicyName = heapless::String<16>;

/// One trace record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceRecord {
    /// `ledger FRAMES`.
    Ledger {
        /// Frames in the ledger.
        frames: u32,
    },
    /// `policies cow=N msgbuf=N pagetable=N release=N kernel=N move=N`.
    Policies {
        /// Names of the cow, msgbuf, pagetable, release, kernel and move policies.
        names: [PolicyName; 6],
    },
    /// `boot FIRST COUNT`.
    Boot {
        /// First boot frame.
        first: FrameIndex,
        /// Number of boot frames.
        count: u32,
    },
    /// `set ID NAME PARENT|- LIMIT|-`.
    Set {
        /// Id the set got.
        id: SetId,
        /// Its name.
        name: Name,
        /// Its parent.
        parent: Option<SetId>,
        /// Its limit.
        limit_bytes: Option<u64>,
    },
    /// `limit SET BYTES|-`.
    Limit {
        /// The set.
        set: SetId,
        /// The new limit.
        limit_bytes: Option<u64>,
    },
    /// `kind-limit SET KIND BYTES|-`.
    KindLimit {
        /// The set.
        set: SetId,
        /// The kind.
        kind: Kind,
        /// The new sub-limit.
        limit_bytes: Option<u64>,
    },
    /// `high SET BYTES|-`.
    High {
        /// The set.
        set: SetId,
        /// The new bound.
        high_bytes: Option<u64>,
    },
    /// `paging DOM evict|in|high SET`.
    Paging {
        /// The domain whose memory it is.
        domain: DomainId,
        /// What happened.
        event: PagingEvent,
    },
    /// `dom ID NAME SET`.
    Domain {
        /// Id the domain got.
        id: DomainId,
        /// Its name.
        name: Name,
        /// Its set.
        set: SetId,
    },
    /// `state DOM STATE`.
    State {
        /// The domain.
        domain: DomainId,
        /// Its new state.
        state: DomainState,
    },
    /// `keeper DOM 0|1`: the domain sent a fault to its keeper (1: a restarted system call).
    KeeperFault {
        /// The domain.
        domain: DomainId,
        /// Whether it was a system call to run again from the beginning.
        restart: bool,
    },
    /// `choice DOM cow|msgbuf answered SET|timeout|wrong|none`, `choice DOM clear`: how the
    /// domain's next keeper-decided charge of that kind is decided (`clear`: the pending
    /// choice was used or dropped).
    KeeperChoice {
        /// The domain.
        domain: DomainId,
        /// The kind of charge (`Cow` or `Msgbuf`) and the choice; `None` for `clear`.
        choice: Option<(Kind, KeeperChoice)>,
    },
    /// `plan N`: the next `N` operation records are one plan.
    Plan {
        /// Operations in the plan.
        ops: u16,
    },
    /// `anon FRAME DOM`.
    Anon {
        /// The frame.
        frame: FrameIndex,
        /// The mapping domain.
        domain: DomainId,
    },
    /// `pagetable FRAME OWNER CAUSER`.
    PageTable {
        /// The frame.
        frame: FrameIndex,
        /// Owner of the address space.
        owner: DomainId,
        /// The domain whose action made the table necessary.
        causer: DomainId,
    },
    /// `kernel FRAME SET CAUSER|-`.
    Kernel {
        /// The frame.
        frame: FrameIndex,
        /// The set the object is bound to.
        set: SetId,
        /// The causing domain.
        causer: Option<DomainId>,
    },
    /// `refused PAYER KIND LIMIT_SET set|kind CAUSER|- BYTES`: a batch of plans (see
    /// [`crate::Batch`]) was refused by a limit before any of it was committed; only the
    /// denial was counted. (A batch's plans are written as they commit; a refused one has
    /// none.)
    Refused {
        /// The denial counted.
        denial: crate::error::Denial,
    },
    /// `forget ID`: a domain whose creation failed is forgotten (it was the last created).
    ForgetDomain {
        /// Its id.
        id: DomainId,
    },
    /// `domobj FRAME DOMAIN SPAWNER|-`: a domain's own kernel object.
    DomainObject {
        /// The frame.
        frame: FrameIndex,
        /// The domain it belongs to.
        domain: DomainId,
        /// The domain that spawned it.
        spawner: Option<DomainId>,
    },
    /// `msgbuf FRAME SENDER RECEIVER`.
    Msgbuf {
        /// The frame.
        frame: FrameIndex,
        /// The sender.
        sender: DomainId,
        /// The receiver.
        receiver: DomainId,
    },
    /// `share FRAME DOM`.
    Share {
        /// The frame.
        frame: FrameIndex,
        /// The new sharer.
        domain: DomainId,
    },
    /// `share-many DOM COUNT`.
    ShareMany {
        /// The new sharer.
        domain: DomainId,
        /// Frames that follow in `frames` records.
        count: u32,
    },
    /// `frames F F ...`.
    Frames {
        /// Up to [`FRAMES_PER_RECORD`] frames.
        frames: heapless::Vec<FrameIndex, FRAMES_PER_RECORD>,
    },
    /// `cow ORIGINAL COPY WRITER`.
    Cow {
        /// The shared frame written to.
        original: FrameIndex,
        /// The private copy.
        copy: FrameIndex,
        /// The writing domain.
        writer: DomainId,
    },
    /// `unmap FRAME DOM`.
    Unmap {
        /// The frame.
        frame: FrameIndex,
        /// The departing domain.
        domain: DomainId,
    },
    /// `free FRAME`.
    Free {
        /// The frame.
        frame: FrameIndex,
    },
    /// `move DOM SET`: a domain moves to another charge set.
    Move {
        /// The moving domain.
        domain: DomainId,
        /// The set it moves to.
        set: SetId,
    },
    /// `snapshot INSTRUCTIONS TOTAL FREE IN_USE LABEL`.
    Snapshot {
        /// Guest instructions retired so far.
        instructions: u64,
        /// Frames of RAM.
        total_frames: u64,
        /// Free frames, as the kernel counted them.
        free_frames: u64,
        /// Frames in use in the ledger.
        in_use_frames: u64,
        /// The label (cut to [`LABEL_BYTES`]).
        label: Label,
    },
}

/// A malformed trace record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The record type is unknown.
    UnknownRecord,
    /// A field is missing.
    MissingField,
    /// A field is malformed (number, name, kind, state).
    BadField,
    /// There are fields left over.
    ExtraField,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::UnknownRecord => "unknown trace record",
            ParseError::MissingField => "trace record lacks a field",
            ParseError::BadField => "malformed field in trace record",
            ParseError::ExtraField => "extra field in trace record",
        })
    }
}

struct Optional<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for Optional<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("-"),
        }
    }
}

fn set(id: Option<SetId>) -> Optional<u16> {
    Optional(id.map(|id| id.0))
}

/// Copies `label` into a [`Label`], cut at a character boundary if too long.
pub fn label(text: &str) -> Label {
    let mut label = Label::new();
    for character in text.chars() {
        if label.push(character).is_err() {
            break;
        }
    }
    label
}

fn write_label(f: &mut fmt::Formatter<'_>, label: &str) -> fmt::Result {
    for byte in label.bytes() {
        if byte == b'%' || !(0x20..0x7f).contains(&byte) {
            write!(f, "%{byte:02X}")?;
        } else {
            f.write_str(core::str::from_utf8(&[byte]).unwrap_or("?"))?;
        }
    }
    Ok(())
}

impl fmt::Display for TraceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceRecord::Ledger { frames } => write!(f, "ledger {frames}"),
            TraceRecord::Policies { names } => write!(
                f,
                "policies cow={} msgbuf={} pagetable={} release={} kernel={} move={}",
                names[0], names[1], names[2], names[3], names[4], names[5]
            ),
            TraceRecord::Boot { first, count } => write!(f, "boot {} {count}", first.0),
            TraceRecord::Set {
                id,
                name,
                parent,
                limit_bytes,
            } => write!(
                f,
                "set {} {name} {} {}",
                id.0,
                set(*parent),
                Optional(*limit_bytes)
            ),
            TraceRecord::Limit { set, limit_bytes } => {
                write!(f, "limit {} {}", set.0, Optional(*limit_bytes))
            }
            TraceRecord::High { set, high_bytes } => {
                write!(f, "high {} {}", set.0, Optional(*high_bytes))
            }
            TraceRecord::Paging { domain, event } => match event {
                PagingEvent::Evict => write!(f, "paging {} evict", domain.0),
                PagingEvent::PageIn => write!(f, "paging {} in", domain.0),
                PagingEvent::OverHigh(set) => write!(f, "paging {} high {}", domain.0, set.0),
            },
            TraceRecord::KindLimit {
                set,
                kind,
                limit_bytes,
            } => write!(f, "kind-limit {} {kind} {}", set.0, Optional(*limit_bytes)),
            TraceRecord::Domain { id, name, set } => write!(f, "dom {} {name} {}", id.0, set.0),
            TraceRecord::ForgetDomain { id } => write!(f, "forget {}", id.0),
            TraceRecord::Refused { denial } => write!(
                f,
                "refused {} {} {} {} {} {}",
                denial.payer.0,
                denial.kind,
                denial.limit_set.0,
                if denial.kind_limit { "kind" } else { "set" },
                Optional(denial.causer.map(|causer| causer.0)),
                denial.bytes
            ),
            TraceRecord::State { domain, state } => write!(f, "state {} {state}", domain.0),
            TraceRecord::KeeperChoice { domain, choice } => match choice {
                None => write!(f, "choice {} clear", domain.0),
                Some((kind, KeeperChoice::Answered(set))) => {
                    write!(f, "choice {} {} answered {}", domain.0, kind.key(), set.0)
                }
                Some((kind, choice)) => {
                    write!(f, "choice {} {} {}", domain.0, kind.key(), choice.name())
                }
            },
            TraceRecord::KeeperFault { domain, restart } => {
                write!(f, "keeper {} {}", domain.0, u8::from(*restart))
            }
            TraceRecord::Plan { ops } => write!(f, "plan {ops}"),
            TraceRecord::Anon { frame, domain } => write!(f, "anon {} {}", frame.0, domain.0),
            TraceRecord::PageTable {
                frame,
                owner,
                causer,
            } => write!(f, "pagetable {} {} {}", frame.0, owner.0, causer.0),
            TraceRecord::Kernel { frame, set, causer } => write!(
                f,
                "kernel {} {} {}",
                frame.0,
                set.0,
                Optional(causer.map(|causer| causer.0))
            ),
            TraceRecord::DomainObject {
                frame,
                domain,
                spawner,
            } => write!(
                f,
                "domobj {} {} {}",
                frame.0,
                domain.0,
                Optional(spawner.map(|spawner| spawner.0))
            ),
            TraceRecord::Msgbuf {
                frame,
                sender,
                receiver,
            } => write!(f, "msgbuf {} {} {}", frame.0, sender.0, receiver.0),
            TraceRecord::Share { frame, domain } => write!(f, "share {} {}", frame.0, domain.0),
            TraceRecord::ShareMany { domain, count } => {
                write!(f, "share-many {} {count}", domain.0)
            }
            TraceRecord::Frames { frames } => {
                f.write_str("frames")?;
                for frame in frames {
                    write!(f, " {}", frame.0)?;
                }
                Ok(())
            }
            TraceRecord::Cow {
                original,
                copy,
                writer,
            } => write!(f, "cow {} {} {}", original.0, copy.0, writer.0),
            TraceRecord::Unmap { frame, domain } => write!(f, "unmap {} {}", frame.0, domain.0),
            TraceRecord::Free { frame } => write!(f, "free {}", frame.0),
            TraceRecord::Move { domain, set } => write!(f, "move {} {}", domain.0, set.0),
            TraceRecord::Snapshot {
                instructions,
                total_frames,
                free_frames,
                in_use_frames,
                label,
            } => {
                write!(
                    f,
                    "snapshot {instructions} {total_frames} {free_frames} {in_use_frames} "
                )?;
                write_label(f, label)
            }
        }
    }
}

/// The fields of a record, in order.
struct Fields<'t> {
    rest: &'t str,
}

impl<'t> Fields<'t> {
    fn next_text(&mut self) -> Result<&'t str, ParseError> {
        if self.rest.is_empty() {
            return Err(ParseError::MissingField);
        }
        let (field, rest) = self.rest.split_once(' ').unwrap_or((self.rest, ""));
        self.rest = rest;
        if field.is_empty() {
            return Err(ParseError::BadField);
        }
        Ok(field)
    }

    fn number<T: FromStr>(&mut self) -> Result<T, ParseError> {
        let text = self.next_text()?;
        if !text.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(ParseError::BadField);
        }
        text.parse().map_err(|_| ParseError::BadField)
    }

    fn optional<T: FromStr>(&mut self) -> Result<Option<T>, ParseError> {
        if self.rest == "-" || self.rest.starts_with("- ") {
            self.next_text()?;
            return Ok(None);
        }
        self.number().map(Some)
    }

    fn frame(&mut self) -> Result<FrameIndex, ParseError> {
        self.number().map(FrameIndex)
    }

    fn domain(&mut self) -> Result<DomainId, ParseError> {
        self.number().map(DomainId)
    }

    fn set(&mut self) -> Result<SetId, ParseError> {
        self.number().map(SetId)
    }

    fn name(&mut self) -> Result<Name, ParseError> {
        let text = self.next_text()?;
        if !crate::ids::valid_name(text) {
            return Err(ParseError::BadField);
        }
        Name::try_from(text).map_err(|_| ParseError::BadField)
    }

    fn policy(&mut self, key: &str) -> Result<PolicyName, ParseError> {
        let text = self.next_text()?;
        let name = text
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
            .ok_or(ParseError::BadField)?;
        PolicyName::try_from(name).map_err(|_| ParseError::BadField)
    }

    fn end(self) -> Result<(), ParseError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ParseError::ExtraField)
        }
    }
}

fn parse_label(text: &str) -> Result<Label, ParseError> {
    let mut bytes: heapless::Vec<u8, LABEL_BYTES> = heapless::Vec::new();
    let raw = text.as_bytes();
    let mut index = 0;
    while index < raw.len() {
        let byte = if raw[index] == b'%' {
            let hex = text.get(index + 1..index + 3).ok_or(ParseError::BadField)?;
            index += 3;
            u8::from_str_radix(hex, 16).map_err(|_| ParseError::BadField)?
        } else {
            index += 1;
            raw[index - 1]
        };
        bytes.push(byte).map_err(|_| ParseError::BadField)?;
    }
    let text = core::str::from_utf8(&bytes).map_err(|_| ParseError::BadField)?;
    Label::try_from(text).map_err(|_| ParseError::BadField)
}

impl TraceRecord {
    /// Parses one record (without the `@tally/1 trace ` prefix or the line end).
    pub fn parse(line: &str) -> Result<TraceRecord, ParseError> {
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        let mut fields = Fields { rest };
        let record = match kind {
            "ledger" => TraceRecord::Ledger {
                frames: fields.number()?,
            },
            "policies" => TraceRecord::Policies {
                names: [
                    fields.policy("cow")?,
                    fields.policy("msgbuf")?,
                    fields.policy("pagetable")?,
                    fields.policy("release")?,
                    fields.policy("kernel")?,
                    // Absent in traces written before the `move` key: its default.
                    if fields.rest.is_empty() {
                        PolicyName::try_from("stay").map_err(|_| ParseError::BadField)?
                    } else {
                        fields.policy("move")?
                    },
                ],
            },
            "boot" => TraceRecord::Boot {
                first: fields.frame()?,
                count: fields.number()?,
            },
            "set" => TraceRecord::Set {
                id: fields.set()?,
                name: fields.name()?,
                parent: fields.optional()?.map(SetId),
                limit_bytes: fields.optional()?,
            },
            "limit" => TraceRecord::Limit {
                set: fields.set()?,
                limit_bytes: fields.optional()?,
            },
            "high" => TraceRecord::High {
                set: fields.set()?,
                high_bytes: fields.optional()?,
            },
            "paging" => TraceRecord::Paging {
                domain: fields.domain()?,
                event: match fields.next_text()? {
                    "evict" => PagingEvent::Evict,
                    "in" => PagingEvent::PageIn,
                    "high" => PagingEvent::OverHigh(fields.set()?),
                    _ => return Err(ParseError::BadField),
                },
            },
            "kind-limit" => TraceRecord::KindLimit {
                set: fields.set()?,
                kind: Kind::from_key(fields.next_text()?).ok_or(ParseError::BadField)?,
                limit_bytes: fields.optional()?,
            },
            "dom" => TraceRecord::Domain {
                id: fields.domain()?,
                name: fields.name()?,
                set: fields.set()?,
            },
            "state" => TraceRecord::State {
                domain: fields.domain()?,
                state: DomainState::parse(fields.next_text()?).ok_or(ParseError::BadField)?,
            },
            "keeper" => TraceRecord::KeeperFault {
                domain: fields.domain()?,
                restart: match fields.next_text()? {
                    "0" => false,
                    "1" => true,
                    _ => return Err(ParseError::BadField),
                },
            },
            "choice" => {
                let domain = fields.domain()?;
                let kind = match fields.next_text()? {
                    "clear" => {
                        return Ok(TraceRecord::KeeperChoice {
                            domain,
                            choice: None,
                        })
                    }
                    "cow" => Kind::Cow,
                    "msgbuf" => Kind::Msgbuf,
                    _ => return Err(ParseError::BadField),
                };
                let choice = match fields.next_text()? {
                    "answered" => KeeperChoice::Answered(fields.set()?),
                    "timeout" => KeeperChoice::Timeout,
                    "wrong" => KeeperChoice::Wrong,
                    "none" => KeeperChoice::NoKeeper,
                    _ => return Err(ParseError::BadField),
                };
                TraceRecord::KeeperChoice {
                    domain,
                    choice: Some((kind, choice)),
                }
            }
            "plan" => TraceRecord::Plan {
                ops: fields.number()?,
            },
            "anon" => TraceRecord::Anon {
                frame: fields.frame()?,
                domain: fields.domain()?,
            },
            "pagetable" => TraceRecord::PageTable {
                frame: fields.frame()?,
                owner: fields.domain()?,
                causer: fields.domain()?,
            },
            "kernel" => TraceRecord::Kernel {
                frame: fields.frame()?,
                set: fields.set()?,
                causer: fields.optional()?.map(DomainId),
            },
            "forget" => TraceRecord::ForgetDomain {
                id: fields.domain()?,
            },
            "refused" => TraceRecord::Refused {
                denial: crate::error::Denial {
                    payer: fields.set()?,
                    kind: Kind::from_key(fields.next_text()?).ok_or(ParseError::BadField)?,
                    limit_set: fields.set()?,
                    kind_limit: match fields.next_text()? {
                        "kind" => true,
                        "set" => false,
                        _ => return Err(ParseError::BadField),
                    },
                    causer: fields.optional()?.map(DomainId),
                    bytes: fields.number()?,
                },
            },
            "domobj" => TraceRecord::DomainObject {
                frame: fields.frame()?,
                domain: fields.domain()?,
                spawner: fields.optional()?.map(DomainId),
            },
            "msgbuf" => TraceRecord::Msgbuf {
                frame: fields.frame()?,
                sender: fields.domain()?,
                receiver: fields.domain()?,
            },
            "share" => TraceRecord::Share {
                frame: fields.frame()?,
                domain: fields.domain()?,
            },
            "share-many" => TraceRecord::ShareMany {
                domain: fields.domain()?,
                count: fields.number()?,
            },
            "frames" => {
                let mut frames = heapless::Vec::new();
                while !fields.rest.is_empty() {
                    frames
                        .push(fields.frame()?)
                        .map_err(|_| ParseError::ExtraField)?;
                }
                if frames.is_empty() {
                    return Err(ParseError::MissingField);
                }
                TraceRecord::Frames { frames }
            }
            "cow" => TraceRecord::Cow {
                original: fields.frame()?,
                copy: fields.frame()?,
                writer: fields.domain()?,
            },
            "unmap" => TraceRecord::Unmap {
                frame: fields.frame()?,
                domain: fields.domain()?,
            },
            "free" => TraceRecord::Free {
                frame: fields.frame()?,
            },
            "move" => TraceRecord::Move {
                domain: fields.domain()?,
                set: fields.set()?,
            },
            "snapshot" => {
                let instructions = fields.number()?;
                let total_frames = fields.number()?;
                let free_frames = fields.number()?;
                let in_use_frames = fields.number()?;
                let label = parse_label(fields.rest)?;
                fields.rest = "";
                TraceRecord::Snapshot {
                    instructions,
                    total_frames,
                    free_frames,
                    in_use_frames,
                    label,
                }
            }
            _ => return Err(ParseError::UnknownRecord),
        };
        fields.end()?;
        Ok(record)
    }
}

/// A function the ledger calls with each trace record (a plain function pointer, so it needs
/// no allocation and no context: the kernel's prints `@tally/1 trace <record>`).
pub type TraceHook = fn(&TraceRecord);

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::model::StopReason;
    use std::string::ToString;

    fn name(text: &str) -> Name {
        Name::try_from(text).unwrap()
    }

    #[test]
    fn every_record_round_trips() {
        let mut frames = heapless::Vec::new();
        for index in 0..FRAMES_PER_RECORD as u32 {
            frames.push(FrameIndex(index * 7)).unwrap();
        }
        let records = [
            TraceRecord::Ledger { frames: 32768 },
            TraceRecord::Policies {
                names: [
                    PolicyName::try_from("split").unwrap(),
                    PolicyName::try_from("kernel").unwrap(),
                    PolicyName::try_from("causer").unwrap(),
                    PolicyName::try_from("stay").unwrap(),
                    PolicyName::try_from("spawner").unwrap(),
                    PolicyName::try_from("migrate").unwrap(),
                ],
            },
            TraceRecord::Boot {
                first: FrameIndex(0),
                count: 300,
            },
            TraceRecord::Set {
                id: SetId(1),
                name: name("parent"),
                parent: None,
                limit_bytes: Some(1 << 20),
            },
            TraceRecord::Set {
                id: SetId(2),
                name: name("child_1-x"),
                parent: Some(SetId(1)),
                limit_bytes: None,
            },
            TraceRecord::Limit {
                set: SetId(2),
                limit_bytes: Some(0),
            },
            TraceRecord::Limit {
                set: SetId(2),
                limit_bytes: None,
            },
            TraceRecord::High {
                set: SetId(2),
                high_bytes: Some(16384),
            },
            TraceRecord::High {
                set: SetId(1),
                high_bytes: None,
            },
            TraceRecord::Paging {
                domain: DomainId(3),
                event: PagingEvent::Evict,
            },
            TraceRecord::Paging {
                domain: DomainId(3),
                event: PagingEvent::PageIn,
            },
            TraceRecord::Paging {
                domain: DomainId(3),
                event: PagingEvent::OverHigh(SetId(1)),
            },
            TraceRecord::KindLimit {
                set: SetId(1),
                kind: Kind::Msgbuf,
                limit_bytes: Some(49152),
            },
            TraceRecord::ForgetDomain { id: DomainId(4) },
            TraceRecord::Refused {
                denial: crate::error::Denial {
                    payer: SetId(6),
                    kind: Kind::Kernel,
                    limit_set: SetId(5),
                    kind_limit: false,
                    causer: Some(DomainId(5)),
                    bytes: 4096,
                },
            },
            TraceRecord::Refused {
                denial: crate::error::Denial {
                    payer: SetId(2),
                    kind: Kind::Anon,
                    limit_set: SetId(2),
                    kind_limit: true,
                    causer: None,
                    bytes: 8192,
                },
            },
            TraceRecord::Domain {
                id: DomainId(0),
                name: name("parent"),
                set: SetId(1),
            },
            TraceRecord::State {
                domain: DomainId(0),
                state: DomainState::Stopped(StopReason::OverLimit),
            },
            TraceRecord::State {
                domain: DomainId(0),
                state: DomainState::Blocked,
            },
            TraceRecord::Plan { ops: 3 },
            TraceRecord::Anon {
                frame: FrameIndex(9),
                domain: DomainId(1),
            },
            TraceRecord::PageTable {
                frame: FrameIndex(10),
                owner: DomainId(1),
                causer: DomainId(2),
            },
            TraceRecord::Kernel {
                frame: FrameIndex(11),
                set: SetId::KERNEL,
                causer: None,
            },
            TraceRecord::Kernel {
                frame: FrameIndex(11),
                set: SetId(3),
                causer: Some(DomainId(4)),
            },
            TraceRecord::Msgbuf {
                frame: FrameIndex(12),
                sender: DomainId(1),
                receiver: DomainId(2),
            },
            TraceRecord::Share {
                frame: FrameIndex(9),
                domain: DomainId(2),
            },
            TraceRecord::ShareMany {
                domain: DomainId(2),
                count: 1024,
            },
            TraceRecord::Frames { frames },
            TraceRecord::Cow {
                original: FrameIndex(9),
                copy: FrameIndex(13),
                writer: DomainId(2),
            },
            TraceRecord::Unmap {
                frame: FrameIndex(9),
                domain: DomainId(2),
            },
            TraceRecord::Free {
                frame: FrameIndex(10),
            },
            TraceRecord::Move {
                domain: DomainId(2),
                set: SetId(3),
            },
            TraceRecord::Snapshot {
                instructions: 123456,
                total_frames: 32768,
                free_frames: 30000,
                in_use_frames: 12,
                label: label("after fork: 100% é\n"),
            },
        ];
        for record in records {
            let text = record.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert_eq!(TraceRecord::parse(&text), Ok(record), "{text}");
        }
    }

    #[test]
    fn a_policies_record_without_move_reads_as_stay() {
        let record = TraceRecord::parse(
            "policies cow=writer msgbuf=sender pagetable=owner release=migrate kernel=self",
        )
        .unwrap();
        let TraceRecord::Policies { names } = record else {
            panic!("not a policies record");
        };
        assert_eq!(names[5].as_str(), "stay");
        assert_eq!(TraceRecord::parse("move 1"), Err(ParseError::MissingField));
    }

    #[test]
    fn label_escapes_are_exact() {
        let record = TraceRecord::Snapshot {
            instructions: 0,
            total_frames: 1,
            free_frames: 1,
            in_use_frames: 0,
            label: label("a b%c"),
        };
        assert_eq!(record.to_string(), "snapshot 0 1 1 0 a b%25c");
    }

    #[test]
    fn malformed_records_are_errors() {
        assert_eq!(TraceRecord::parse("fly 1"), Err(ParseError::UnknownRecord));
        assert_eq!(TraceRecord::parse("anon 1"), Err(ParseError::MissingField));
        assert_eq!(
            TraceRecord::parse("anon 1 2 3"),
            Err(ParseError::ExtraField)
        );
        assert_eq!(TraceRecord::parse("anon x 2"), Err(ParseError::BadField));
        assert_eq!(TraceRecord::parse("anon -1 2"), Err(ParseError::BadField));
        assert_eq!(TraceRecord::parse("anon 1  2"), Err(ParseError::BadField));
        assert_eq!(
            TraceRecord::parse("anon 99999999999 2"),
            Err(ParseError::BadField)
        );
        assert_eq!(
            TraceRecord::parse("set 1 Bad - -"),
            Err(ParseError::BadField)
        );
        assert_eq!(
            TraceRecord::parse("state 1 stopped:bored"),
            Err(ParseError::BadField)
        );
        assert_eq!(TraceRecord::parse("frames"), Err(ParseError::MissingField));
        assert_eq!(
            TraceRecord::parse("snapshot 1 2 3 4 bad%zz"),
            Err(ParseError::BadField)
        );
        assert_eq!(TraceRecord::parse(""), Err(ParseError::UnknownRecord));
    }
}
