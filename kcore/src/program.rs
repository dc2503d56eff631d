//! Program declarations: what a user program says about itself — what it does, the
//! capabilities it expects, the arguments it reads and their defaults, the snapshots it takes,
//! the domains it spawns and what its exit code says. A program writes its declaration with
//! `user::program!`, which places it in the ELF section [`SECTION`] of its image, outside every
//! loadable segment (the kernel never reads it). The host tool reads it from the built image
//! ([`from_image`]) to make the catalogue (`tally programs`, `docs/programs.md`) and to check a
//! config's `args` and `caps` against it ([`Declaration::check_domain`]).
//!
//! The format is text, one item a line, fields separated by single spaces, the last field of
//! each item free text running to the end of the line:
//!
//! ```text
//! tally.program 1
//! name NAME
//! description TEXT
//! cap INDEX KIND PURPOSE        KIND: set | dom | ep, or KIND(optional)
//! arg NAME DEFAULT MEANING      DEFAULT: decimal, at most 2^63 - 1, or `-` for none
//! snapshot LABEL WHEN
//! spawn PROGRAM DOMAIN ROLE
//! exit TEXT                     what the exit code says
//! ```
//!
//! A decoded declaration keeps these invariants, and every error names the line that breaks
//! one: exactly one `name` (a valid program name) and one `description`; capability indices
//! below [`MAX_CONFIG_CAPS`] and unique; argument names valid and unique, defaults at most
//! [`MAX_ARG_VALUE`]; snapshot labels valid and unique; every free text non-empty.

use core::fmt;

use heapless::Vec;

use crate::bootcfg::{is_valid_name, CapSpec, MAX_ARG_VALUE};
use crate::elf::{u16_at, u32_at, u64_at, ElfError};
use crate::limits::MAX_CONFIG_CAPS;

/// The ELF section holding a program's declaration.
pub const SECTION: &str = ".tally.program";
/// The declaration's first line: the format and its version.
pub const MAGIC: &str = "tally.program 1";
/// Most arguments a program may declare (a domain is given at most
/// [`crate::limits::MAX_DOMAIN_ARGS`] of them).
pub const MAX_DECLARED_ARGS: usize = 16;
/// Most snapshot labels a program may declare.
pub const MAX_DECLARED_SNAPSHOTS: usize = 16;
/// Most spawned programs a program may declare.
pub const MAX_DECLARED_SPAWNS: usize = 8;

/// What a capability refers to, as a config's `caps` names it (`set:`, `dom:`, `ep:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapKind {
    /// A charge set.
    Set,
    /// A domain.
    Domain,
    /// An endpoint.
    Endpoint,
}

impl CapKind {
    /// The config's prefix: `set`, `dom` or `ep`.
    pub const fn prefix(self) -> &'static str {
        match self {
            CapKind::Set => "set",
            CapKind::Domain => "dom",
            CapKind::Endpoint => "ep",
        }
    }

    /// The kind with this prefix.
    pub fn from_prefix(prefix: &str) -> Option<CapKind> {
        [CapKind::Set, CapKind::Domain, CapKind::Endpoint]
            .into_iter()
            .find(|kind| kind.prefix() == prefix)
    }

    /// The kind of a boot capability.
    pub fn of(cap: &CapSpec) -> CapKind {
        match cap {
            CapSpec::Set(_) => CapKind::Set,
            CapSpec::Domain(_) => CapKind::Domain,
            CapSpec::Endpoint(_) => CapKind::Endpoint,
        }
    }
}

/// A capability the program expects at an index of its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap<'a> {
    /// Its index (0 upward: a config's `caps` in order).
    pub index: usize,
    /// What it must refer to.
    pub kind: CapKind,
    /// Whether the program runs without it (it says when it uses it).
    pub optional: bool,
    /// What the program does with it.
    pub purpose: &'a str,
}

/// An argument the program reads (`args = { NAME = VALUE }`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arg<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its value when the config gives none; `None` when its absence means something of its
    /// own (the meaning says what).
    pub default: Option<u64>,
    /// What it means.
    pub meaning: &'a str,
}

/// A snapshot the program takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot<'a> {
    /// Its label in the report.
    pub label: &'a str,
    /// When the program takes it.
    pub when: &'a str,
}

/// A domain the program spawns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spawn<'a> {
    /// The program the new domain runs.
    pub program: &'a str,
    /// The new domain's name (for `[[expect]] domain = ...`).
    pub domain: &'a str,
    /// What it does there.
    pub role: &'a str,
}

/// A decoded program declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declaration<'a> {
    /// The program's name (its binary's).
    pub name: &'a str,
    /// What it does, in one paragraph.
    pub description: &'a str,
    /// The capabilities it expects, in the order declared.
    pub caps: Vec<Cap<'a>, MAX_CONFIG_CAPS>,
    /// The arguments it reads.
    pub args: Vec<Arg<'a>, MAX_DECLARED_ARGS>,
    /// The snapshots it takes.
    pub snapshots: Vec<Snapshot<'a>, MAX_DECLARED_SNAPSHOTS>,
    /// The domains it spawns.
    pub spawns: Vec<Spawn<'a>, MAX_DECLARED_SPAWNS>,
    /// What its exit code (`exit_code` in the report) says, if it declares it.
    pub exit: Option<&'a str>,
}

/// What is wrong with one line of a declaration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The line starts with no known keyword.
    UnknownKeyword,
    /// A field is missing (or a free text is empty).
    MissingField(&'static str),
    /// A name or label is not `[a-z0-9_-]{1,23}`.
    BadName(&'static str),
    /// A number is not plain decimal, or too large.
    BadNumber(&'static str),
    /// A capability kind is not `set`, `dom` or `ep` (optionally with `(optional)`).
    BadKind,
    /// A second item with the same index, name or label.
    Duplicate(&'static str),
    /// A second `name`, `description` or `exit`.
    Repeated(&'static str),
    /// More items of a kind than the decoder holds.
    TooMany {
        /// Which items.
        what: &'static str,
        /// How many it holds.
        limit: usize,
    },
}

/// Why a declaration cannot be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeclarationError {
    /// The section is not UTF-8 text.
    NotText,
    /// The first line is not [`MAGIC`].
    BadMagic,
    /// No `name` or no `description` line.
    Missing(&'static str),
    /// A line (counted from 1) is malformed.
    Line {
        /// The line number.
        line: usize,
        /// What is wrong with it.
        problem: Problem,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            Problem::UnknownKeyword => f.write_str(
                "unknown item (valid: name, description, cap, arg, snapshot, spawn, exit)",
            ),
            Problem::MissingField(field) => write!(f, "no {field}"),
            Problem::BadName(what) => write!(f, "{what} is not a name ([a-z0-9_-]{{1,23}})"),
            Problem::BadNumber(what) => write!(f, "{what} is not a decimal number in range"),
            Problem::BadKind => {
                f.write_str("capability kind is not set, dom or ep (or KIND(optional))")
            }
            Problem::Duplicate(what) => write!(f, "{what} declared twice"),
            Problem::Repeated(what) => write!(f, "a second `{what}` line"),
            Problem::TooMany { what, limit } => write!(f, "more than {limit} {what}"),
        }
    }
}

impl fmt::Display for DeclarationError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            DeclarationError::NotText => f.write_str("the declaration is not UTF-8 text"),
            DeclarationError::BadMagic => write!(f, "the declaration does not start `{MAGIC}`"),
            DeclarationError::Missing(what) => write!(f, "the declaration has no `{what}` line"),
            DeclarationError::Line { line, problem } => {
                write!(f, "declaration line {line}: {problem}")
            }
        }
    }
}

/// Splits off the first space-separated field.
fn field<'a>(rest: &mut &'a str, what: &'static str) -> Result<&'a str, Problem> {
    let (first, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    if first.is_empty() {
        return Err(Problem::MissingField(what));
    }
    *rest = tail;
    Ok(first)
}

/// The rest of the line, which must not be empty.
fn text<'a>(rest: &'a str, what: &'static str) -> Result<&'a str, Problem> {
    if rest.trim().is_empty() {
        Err(Problem::MissingField(what))
    } else {
        Ok(rest)
    }
}

fn name_field<'a>(rest: &mut &'a str, what: &'static str) -> Result<&'a str, Problem> {
    let name = field(rest, what)?;
    if is_valid_name(name) {
        Ok(name)
    } else {
        Err(Problem::BadName(what))
    }
}

fn number_field(rest: &mut &str, what: &'static str, max: u64) -> Result<u64, Problem> {
    let digits = field(rest, what)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::BadNumber(what));
    }
    digits
        .parse::<u64>()
        .ok()
        .filter(|value| *value <= max)
        .ok_or(Problem::BadNumber(what))
}

fn push<T, const N: usize>(
    list: &mut Vec<T, N>,
    item: T,
    what: &'static str,
) -> Result<(), Problem> {
    list.push(item)
        .map_err(|_| Problem::TooMany { what, limit: N })
}

/// Decodes a declaration's text (trailing NUL bytes, which a section may be padded with, are
/// ignored).
pub fn parse(text: &str) -> Result<Declaration<'_>, DeclarationError> {
    let text = text.trim_end_matches('\0');
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(DeclarationError::BadMagic);
    }
    let mut name = None;
    let mut description = None;
    let mut declaration = Declaration {
        name: "",
        description: "",
        caps: Vec::new(),
        args: Vec::new(),
        snapshots: Vec::new(),
        spawns: Vec::new(),
        exit: None,
    };
    for (number, line) in lines.enumerate() {
        parse_line(line, &mut name, &mut description, &mut declaration).map_err(|problem| {
            DeclarationError::Line {
                line: number + 2,
                problem,
            }
        })?;
    }
    declaration.name = name.ok_or(DeclarationError::Missing("name"))?;
    declaration.description = description.ok_or(DeclarationError::Missing("description"))?;
    Ok(declaration)
}

fn parse_line<'a>(
    line: &'a str,
    name: &mut Option<&'a str>,
    description: &mut Option<&'a str>,
    declaration: &mut Declaration<'a>,
) -> Result<(), Problem> {
    let mut rest = line;
    let keyword = field(&mut rest, "keyword").map_err(|_| Problem::UnknownKeyword)?;
    match keyword {
        "name" => {
            if name.is_some() {
                return Err(Problem::Repeated("name"));
            }
            let value = name_field(&mut rest, "program name")?;
            if !rest.is_empty() {
                return Err(Problem::BadName("program name"));
            }
            *name = Some(value);
        }
        "description" => {
            if description.is_some() {
                return Err(Problem::Repeated("description"));
            }
            *description = Some(text(rest, "description")?);
        }
        "cap" => {
            let index =
                number_field(&mut rest, "capability index", MAX_CONFIG_CAPS as u64 - 1)? as usize;
            let kind_text = field(&mut rest, "capability kind")?;
            let (kind_text, optional) = match kind_text.strip_suffix("(optional)") {
                Some(kind) => (kind, true),
                None => (kind_text, false),
            };
            let kind = CapKind::from_prefix(kind_text).ok_or(Problem::BadKind)?;
            let purpose = text(rest, "capability purpose")?;
            if declaration.caps.iter().any(|cap| cap.index == index) {
                return Err(Problem::Duplicate("capability index"));
            }
            let cap = Cap {
                index,
                kind,
                optional,
                purpose,
            };
            push(&mut declaration.caps, cap, "capabilities")?;
        }
        "arg" => {
            let arg_name = name_field(&mut rest, "argument name")?;
            let default = if rest.starts_with("- ") {
                rest = &rest[2..];
                None
            } else {
                Some(number_field(&mut rest, "argument default", MAX_ARG_VALUE)?)
            };
            let meaning = text(rest, "argument meaning")?;
            if declaration.args.iter().any(|arg| arg.name == arg_name) {
                return Err(Problem::Duplicate("argument"));
            }
            let arg = Arg {
                name: arg_name,
                default,
                meaning,
            };
            push(&mut declaration.args, arg, "arguments")?;
        }
        "snapshot" => {
            let label = name_field(&mut rest, "snapshot label")?;
            let when = text(rest, "snapshot description")?;
            if declaration.snapshots.iter().any(|s| s.label == label) {
                return Err(Problem::Duplicate("snapshot label"));
            }
            push(
                &mut declaration.snapshots,
                Snapshot { label, when },
                "snapshots",
            )?;
        }
        "spawn" => {
            let program = name_field(&mut rest, "spawned program")?;
            let domain = name_field(&mut rest, "spawned domain name")?;
            let role = text(rest, "spawned domain's role")?;
            let spawn = Spawn {
                program,
                domain,
                role,
            };
            push(&mut declaration.spawns, spawn, "spawned programs")?;
        }
        "exit" => {
            if declaration.exit.is_some() {
                return Err(Problem::Repeated("exit"));
            }
            declaration.exit = Some(text(rest, "exit code meaning")?);
        }
        _ => return Err(Problem::UnknownKeyword),
    }
    Ok(())
}

/// The bytes of the ELF section called `name` in `image`, if it has one (ELF-64 Object File
/// Format 1.5, "Sections"). The image need not be a valid program otherwise.
pub fn section<'a>(image: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, ElfError> {
    if image.get(0..4) != Some(b"\x7fELF") || image.get(4..6) != Some(&[2, 1]) {
        return Err(ElfError::NotAnExecutable);
    }
    let table = u64_at(image, 40)?;
    let entry_size = usize::from(u16_at(image, 58)?);
    let count = usize::from(u16_at(image, 60)?);
    let names_index = usize::from(u16_at(image, 62)?);
    if table == 0 || count == 0 {
        return Ok(None);
    }
    // A section header is 64 bytes; each one must lie wholly inside the image, so the field
    // offsets added to it below cannot overflow.
    let header = |index: usize| -> Result<usize, ElfError> {
        index
            .checked_mul(entry_size)
            .and_then(|offset| offset.checked_add(table))
            .filter(|at| index < count && entry_size >= 64 && image.len().saturating_sub(*at) >= 64)
            .ok_or(ElfError::Truncated)
    };
    let bytes_of = |header: usize| -> Result<&'a [u8], ElfError> {
        let offset = u64_at(image, header + 24)?;
        let size = u64_at(image, header + 32)?;
        let end = offset.checked_add(size).ok_or(ElfError::Truncated)?;
        image.get(offset..end).ok_or(ElfError::Truncated)
    };
    let names = bytes_of(header(names_index)?)?;
    for index in 0..count {
        let at = header(index)?;
        let name_at = u32_at(image, at)? as usize;
        let Some(tail) = names.get(name_at..) else {
            return Err(ElfError::Truncated);
        };
        let end = tail
            .iter()
            .position(|b| *b == 0)
            .ok_or(ElfError::Truncated)?;
        if &tail[..end] == name.as_bytes() {
            // SHT_NOBITS (8) has no bytes in the file.
            if u32_at(image, at + 4)? == 8 {
                return Ok(Some(&[]));
            }
            return bytes_of(at).map(Some);
        }
    }
    Ok(None)
}

/// Why a program image gives no declaration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// The image is not an ELF file whose section table can be read.
    Elf(ElfError),
    /// It has no [`SECTION`]: the program does not use `user::program!`.
    NoDeclaration,
    /// The section does not decode.
    Declaration(DeclarationError),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ImageError::Elf(error) => write!(f, "{error}"),
            ImageError::NoDeclaration => write!(
                f,
                "no declaration (section {SECTION}): the program does not use user::program!"
            ),
            ImageError::Declaration(error) => write!(f, "{error}"),
        }
    }
}

/// The declaration in a built program image.
pub fn from_image(image: &[u8]) -> Result<Declaration<'_>, ImageError> {
    let bytes = section(image, SECTION)
        .map_err(ImageError::Elf)?
        .ok_or(ImageError::NoDeclaration)?;
    let text = core::str::from_utf8(bytes)
        .map_err(|_| ImageError::Declaration(DeclarationError::NotText))?;
    parse(text).map_err(ImageError::Declaration)
}

/// Where a domain's config disagrees with its program's declaration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch<'d, 'c> {
    /// The config gives an argument the program never reads.
    UndeclaredArg {
        /// The config's argument name.
        arg: &'c str,
        /// The declared argument it most likely means, if one is close.
        suggestion: Option<&'d str>,
    },
    /// The capability at `index` is not of the kind the program expects.
    CapKind {
        /// Its index.
        index: usize,
        /// What the config gives.
        given: CapKind,
        /// What the program declares.
        expected: Cap<'d>,
    },
    /// The config gives fewer capabilities than the program needs.
    MissingCap(Cap<'d>),
}

impl fmt::Display for Mismatch<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Mismatch::UndeclaredArg { arg, suggestion } => {
                write!(f, "the program reads no argument `{arg}`")?;
                if let Some(name) = suggestion {
                    write!(f, " (did you mean `{name}`?)")?;
                }
                Ok(())
            }
            Mismatch::CapKind {
                index,
                given,
                expected,
            } => write!(
                f,
                "capability {index} is `{}:`, but the program expects `{}:` there ({})",
                given.prefix(),
                expected.kind.prefix(),
                expected.purpose
            ),
            Mismatch::MissingCap(cap) => write!(
                f,
                "no capability {}; the program expects `{}:` there ({})",
                cap.index,
                cap.kind.prefix(),
                cap.purpose
            ),
        }
    }
}

impl<'d> Declaration<'d> {
    /// The declared argument called `name`.
    pub fn arg(&self, name: &str) -> Option<&Arg<'d>> {
        self.args.iter().find(|arg| arg.name == name)
    }

    /// Calls `report` for every way a domain given `caps` (in index order) and arguments
    /// named `args` disagrees with this declaration: an argument the program does not read, a
    /// capability of another kind than declared, a required capability missing. Capabilities
    /// beyond the declared ones are not checked (programs may pass them on).
    pub fn check_domain<'c>(
        &self,
        caps: impl IntoIterator<Item = CapKind>,
        args: impl IntoIterator<Item = &'c str>,
        mut report: impl FnMut(Mismatch<'d, 'c>),
    ) {
        for arg in args {
            if self.arg(arg).is_none() {
                let suggestion = self
                    .args
                    .iter()
                    .map(|declared| (edit_distance(arg, declared.name), declared.name))
                    .filter(|(distance, name)| *distance <= 2.max(name.len() / 3))
                    .min_by_key(|(distance, _)| *distance)
                    .map(|(_, name)| name);
                report(Mismatch::UndeclaredArg { arg, suggestion });
            }
        }
        let mut given = 0;
        for (index, kind) in caps.into_iter().enumerate() {
            given = index + 1;
            if let Some(expected) = self.caps.iter().find(|cap| cap.index == index) {
                if expected.kind != kind {
                    report(Mismatch::CapKind {
                        index,
                        given: kind,
                        expected: *expected,
                    });
                }
            }
        }
        for cap in self.caps.iter().filter(|cap| cap.index >= given) {
            if !cap.optional {
                report(Mismatch::MissingCap(*cap));
            }
        }
    }
}

/// Levenshtein distance between two short ASCII names (at most 23 bytes each; longer inputs
/// count their excess as edits).
pub fn edit_distance(a: &str, b: &str) -> usize {
    const MAX: usize = 24;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let excess = a.len().saturating_sub(MAX - 1) + b.len().saturating_sub(MAX - 1);
    let (a, b) = (&a[..a.len().min(MAX - 1)], &b[..b.len().min(MAX - 1)]);
    let mut previous = [0usize; MAX];
    let mut current = [0usize; MAX];
    for (j, slot) in previous.iter_mut().enumerate().take(b.len() + 1) {
        *slot = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()] + excess
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec as StdVec;

    const GOOD: &str = "tally.program 1\n\
        name cow_share\n\
        description Maps `pages` pages and shares them.\n\
        cap 0 set the child's set\n\
        cap 1 set(optional) its own set, for `headroom`\n\
        arg pages 64 pages to map\n\
        arg writes 16 pages the child writes\n\
        arg headroom - when given, lowers its limit\n\
        snapshot after once the child has ended\n\
        spawn cow_write child writes the pages\n\
        exit 0, or 1 when the spawn was refused\n";

    #[test]
    fn a_declaration_decodes_every_item() {
        let declaration = parse(GOOD).unwrap();
        assert_eq!(declaration.name, "cow_share");
        assert_eq!(
            declaration.description,
            "Maps `pages` pages and shares them."
        );
        assert_eq!(declaration.caps.len(), 2);
        assert_eq!(
            declaration.caps[1],
            Cap {
                index: 1,
                kind: CapKind::Set,
                optional: true,
                purpose: "its own set, for `headroom`"
            }
        );
        assert_eq!(declaration.arg("writes").unwrap().default, Some(16));
        assert_eq!(declaration.arg("headroom").unwrap().default, None);
        assert_eq!(declaration.snapshots[0].label, "after");
        assert_eq!(declaration.spawns[0].domain, "child");
        assert_eq!(declaration.exit, Some("0, or 1 when the spawn was refused"));
    }

    fn error_of(text: &str) -> DeclarationError {
        parse(text).unwrap_err()
    }

    fn with(line: &str) -> String {
        let mut text = GOOD.to_string();
        text.push_str(line);
        text.push('\n');
        text
    }

    #[test]
    fn every_malformed_line_is_named() {
        assert_eq!(
            error_of("tally.program 2\nname x\n"),
            DeclarationError::BadMagic
        );
        assert_eq!(
            error_of("tally.program 1\ndescription d\n"),
            DeclarationError::Missing("name")
        );
        assert_eq!(
            error_of("tally.program 1\nname x\n"),
            DeclarationError::Missing("description")
        );
        let line = GOOD.lines().count() + 1;
        let cases: [(&str, Problem); 12] = [
            ("bogus x", Problem::UnknownKeyword),
            ("name other", Problem::Repeated("name")),
            ("cap 0 ep again", Problem::Duplicate("capability index")),
            ("cap 16 ep too far", Problem::BadNumber("capability index")),
            ("cap 2 endpoint x", Problem::BadKind),
            ("cap 2 ep", Problem::MissingField("capability purpose")),
            ("arg Pages 1 x", Problem::BadName("argument name")),
            ("arg pages 1 x", Problem::Duplicate("argument")),
            (
                "arg big 9223372036854775808 x",
                Problem::BadNumber("argument default"),
            ),
            ("arg hex 0x10 x", Problem::BadNumber("argument default")),
            ("snapshot after again", Problem::Duplicate("snapshot label")),
            ("exit again", Problem::Repeated("exit")),
        ];
        for (text, problem) in cases {
            assert_eq!(
                error_of(&with(text)),
                DeclarationError::Line { line, problem },
                "{text}"
            );
        }
        let message = std::format!("{}", error_of(&with("cap 2 endpoint x")));
        assert!(message.contains(&std::format!("line {line}")), "{message}");
    }

    #[test]
    fn capacities_are_errors_not_truncations() {
        let mut text = String::from("tally.program 1\nname x\ndescription d\n");
        for i in 0..=MAX_DECLARED_ARGS {
            text.push_str(&std::format!("arg a{i} 0 m\n"));
        }
        assert!(matches!(
            error_of(&text),
            DeclarationError::Line {
                problem: Problem::TooMany {
                    what: "arguments",
                    limit: MAX_DECLARED_ARGS
                },
                ..
            }
        ));
    }

    #[test]
    fn a_config_is_checked_against_the_declaration() {
        let declaration = parse(GOOD).unwrap();
        let mut found = StdVec::new();
        declaration.check_domain([CapKind::Set], ["pages", "page", "colour"], |m| {
            found.push(m)
        });
        assert_eq!(
            found,
            [
                Mismatch::UndeclaredArg {
                    arg: "page",
                    suggestion: Some("pages")
                },
                Mismatch::UndeclaredArg {
                    arg: "colour",
                    suggestion: None
                },
            ]
        );
        let mut found = StdVec::new();
        declaration.check_domain(
            [CapKind::Endpoint, CapKind::Set, CapKind::Domain],
            [],
            |m| found.push(m.to_string()),
        );
        assert_eq!(found.len(), 1);
        assert!(
            found[0].contains("capability 0 is `ep:`, but the program expects `set:` there"),
            "{}",
            found[0]
        );
        let mut found = StdVec::new();
        declaration.check_domain([], [], |m| found.push(m));
        assert_eq!(found, [Mismatch::MissingCap(declaration.caps[0])]);
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("pages", "pages"), 0);
        assert_eq!(edit_distance("page", "pages"), 1);
        assert_eq!(edit_distance("wirtes", "writes"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance(&"a".repeat(40), "a"), 39);
    }

    /// An ELF header with a section table: a null section, `names` (the section-name table)
    /// and the given sections (name, bytes).
    fn elf_with_sections(sections: &[(&str, &[u8])]) -> StdVec<u8> {
        let mut names = StdVec::from(&b"\0.shstrtab\0"[..]);
        let mut name_offsets = StdVec::new();
        for (name, _) in sections {
            name_offsets.push(names.len() as u32);
            names.extend_from_slice(name.as_bytes());
            names.push(0);
        }
        let mut image = StdVec::from(&b"\x7fELF\x02\x01\x01\0"[..]);
        image.resize(64, 0);
        let mut data = StdVec::new();
        let mut placed = StdVec::new();
        let data_start = 64u64;
        placed.push((data_start, names.len() as u64));
        data.extend_from_slice(&names);
        for (_, bytes) in sections {
            placed.push((data_start + data.len() as u64, bytes.len() as u64));
            data.extend_from_slice(bytes);
        }
        image.extend_from_slice(&data);
        let table = image.len() as u64;
        let count = 2 + sections.len();
        image[40..48].copy_from_slice(&table.to_le_bytes());
        image[58..60].copy_from_slice(&64u16.to_le_bytes());
        image[60..62].copy_from_slice(&(count as u16).to_le_bytes());
        image[62..64].copy_from_slice(&1u16.to_le_bytes());
        image.extend_from_slice(&[0u8; 64]); // the null section
        let mut header = |name: u32, kind: u32, (offset, size): (u64, u64)| {
            let mut entry = [0u8; 64];
            entry[0..4].copy_from_slice(&name.to_le_bytes());
            entry[4..8].copy_from_slice(&kind.to_le_bytes());
            entry[24..32].copy_from_slice(&offset.to_le_bytes());
            entry[32..40].copy_from_slice(&size.to_le_bytes());
            image.extend_from_slice(&entry);
        };
        header(1, 3, placed[0]);
        for (i, offset) in name_offsets.iter().enumerate() {
            header(*offset, 1, placed[i + 1]);
        }
        image
    }

    #[test]
    fn the_declaration_is_found_by_section_name() {
        let image = elf_with_sections(&[(".text", b"code"), (SECTION, GOOD.as_bytes())]);
        assert_eq!(section(&image, ".text").unwrap(), Some(&b"code"[..]));
        assert_eq!(from_image(&image).unwrap().name, "cow_share");
        let image = elf_with_sections(&[(".text", b"code")]);
        assert_eq!(from_image(&image).unwrap_err(), ImageError::NoDeclaration);
        let image = elf_with_sections(&[(SECTION, b"tally.program 1\nname x\n\0\0")]);
        assert_eq!(
            from_image(&image).unwrap_err(),
            ImageError::Declaration(DeclarationError::Missing("description"))
        );
        assert_eq!(
            from_image(b"nope").unwrap_err(),
            ImageError::Elf(ElfError::NotAnExecutable)
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let good = elf_with_sections(&[(SECTION, GOOD.as_bytes())]);
        let mut state = 0x9e37_79b9u64;
        for _ in 0..3000 {
            let mut bytes = good.clone();
            for _ in 0..6 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let at = (state >> 33) as usize % bytes.len();
                bytes[at] = (state >> 20) as u8;
            }
            let _ = from_image(&bytes);
        }
        let mut text = GOOD.as_bytes().to_vec();
        for _ in 0..3000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = (state >> 33) as usize % text.len();
            text[at] = b" \n0a-_(x"[(state >> 20) as usize % 8];
            if let Ok(text) = core::str::from_utf8(&text) {
                let _ = parse(text);
            }
        }
    }
}
