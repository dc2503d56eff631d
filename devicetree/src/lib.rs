//! A minimal flattened-device-tree reader (Devicetree Specification v0.4, chapter 5): finds
//! the RAM (`/memory` nodes' `reg`) and `/chosen/bootargs`. Every read is bounds-checked;
//! a malformed tree is an error naming what is wrong, never a fault or a hang.
//!
//! Kept out of `kernel/` so that it is tested on the host with hand-built trees.
#![no_std]
#![forbid(unsafe_code)]

use heapless::{String, Vec};

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
/// Largest device tree we accept (QEMU's are a few KiB).
pub const MAX_TREE_BYTES: usize = 2 << 20;
/// Longest boot argument string we keep.
pub const MAX_BOOTARGS_BYTES: usize = 4096;

/// What the kernel needs from the device tree.
#[derive(Debug)]
pub struct BootInfo {
    /// RAM ranges `(physical start, bytes)`, in tree order.
    pub memory: Vec<(usize, usize), 4>,
    /// `/chosen/bootargs`, empty when absent.
    pub bootargs: String<MAX_BOOTARGS_BYTES>,
}

/// Why the tree could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtbError {
    /// `x0` was zero: QEMU passes no tree when booting an ELF with `-kernel`.
    Missing,
    /// The header magic is wrong.
    BadMagic(u32),
    /// A header field or a structure offset points outside the tree.
    Truncated(&'static str),
    /// An unknown structure token.
    BadToken(u32),
    /// No `/memory` node with a usable `reg`.
    NoMemory,
    /// `/chosen/bootargs` is not valid UTF-8 or too long.
    BadBootargs,
}

impl core::fmt::Display for DtbError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            DtbError::Missing => write!(
                f,
                "no device tree was passed in x0 (boot the raw image, not the ELF)"
            ),
            DtbError::BadMagic(m) => {
                write!(f, "bad device tree magic {m:#x} (expected {MAGIC:#x})")
            }
            DtbError::Truncated(what) => write!(f, "device tree truncated or inconsistent: {what}"),
            DtbError::BadToken(t) => write!(f, "unknown device tree structure token {t:#x}"),
            DtbError::NoMemory => write!(
                f,
                "the device tree has no /memory node with a usable reg property"
            ),
            DtbError::BadBootargs => write!(
                f,
                "/chosen/bootargs is not UTF-8 or longer than {MAX_BOOTARGS_BYTES} bytes"
            ),
        }
    }
}

fn be32(bytes: &[u8], offset: usize) -> Result<u32, DtbError> {
    let field = bytes
        .get(offset..offset + 4)
        .ok_or(DtbError::Truncated("32-bit field"))?;
    Ok(u32::from_be_bytes([field[0], field[1], field[2], field[3]]))
}

/// Reads the total size from a tree header (`header` is its first 8 bytes).
pub fn total_size(header: &[u8]) -> Result<usize, DtbError> {
    let magic = be32(header, 0)?;
    if magic != MAGIC {
        return Err(DtbError::BadMagic(magic));
    }
    let size = be32(header, 4)? as usize;
    if !(40..=MAX_TREE_BYTES).contains(&size) {
        return Err(DtbError::Truncated("totalsize"));
    }
    Ok(size)
}

fn read_cells(bytes: &[u8], cells: u32) -> Result<usize, DtbError> {
    match cells {
        1 => Ok(be32(bytes, 0)? as usize),
        2 => Ok(((be32(bytes, 0)? as usize) << 32) | be32(bytes, 4)? as usize),
        _ => Err(DtbError::Truncated(
            "#address-cells/#size-cells other than 1 or 2",
        )),
    }
}

fn c_string(bytes: &[u8], offset: usize) -> Result<&[u8], DtbError> {
    let rest = bytes
        .get(offset..)
        .ok_or(DtbError::Truncated("string offset"))?;
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(DtbError::Truncated("unterminated string"))?;
    Ok(&rest[..end])
}

/// Parses a whole tree.
pub fn parse(tree: &[u8]) -> Result<BootInfo, DtbError> {
    let size = total_size(tree)?;
    let tree = tree
        .get(..size)
        .ok_or(DtbError::Truncated("totalsize beyond the buffer"))?;
    let structure_offset = be32(tree, 8)? as usize;
    let strings_offset = be32(tree, 12)? as usize;
    let structure_size = be32(tree, 36)? as usize;
    let structure = tree
        .get(structure_offset..structure_offset.saturating_add(structure_size))
        .ok_or(DtbError::Truncated("structure block"))?;
    let strings = tree
        .get(strings_offset..)
        .ok_or(DtbError::Truncated("strings block"))?;

    let mut info = BootInfo {
        memory: Vec::new(),
        bootargs: String::new(),
    };
    let (mut address_cells, mut size_cells) = (2u32, 1u32);
    let mut depth = 0usize;
    // Which depth-1 node we are in.
    let (mut in_memory, mut in_chosen) = (false, false);
    let mut offset = 0usize;
    loop {
        let token = be32(structure, offset)?;
        offset += 4;
        match token {
            BEGIN_NODE => {
                let name = c_string(structure, offset)?;
                offset += (name.len() + 1 + 3) & !3;
                depth += 1;
                if depth == 2 {
                    in_memory = name == b"memory" || name.starts_with(b"memory@");
                    in_chosen = name == b"chosen";
                }
            }
            END_NODE => {
                if depth == 0 {
                    return Err(DtbError::Truncated("unbalanced END_NODE"));
                }
                depth -= 1;
                if depth < 2 {
                    in_memory = false;
                    in_chosen = false;
                }
            }
            PROP => {
                let length = be32(structure, offset)? as usize;
                let name_offset = be32(structure, offset + 4)? as usize;
                offset += 8;
                let value = structure
                    .get(offset..offset + length)
                    .ok_or(DtbError::Truncated("property value"))?;
                offset += (length + 3) & !3;
                let name = c_string(strings, name_offset)?;
                match (depth, name) {
                    (1, b"#address-cells") => address_cells = be32(value, 0)?,
                    (1, b"#size-cells") => size_cells = be32(value, 0)?,
                    (2, b"reg") if in_memory => {
                        let entry = 4 * (address_cells + size_cells) as usize;
                        for chunk in value.chunks_exact(entry) {
                            let start = read_cells(chunk, address_cells)?;
                            let bytes =
                                read_cells(&chunk[4 * address_cells as usize..], size_cells)?;
                            if bytes > 0 {
                                let _ = info.memory.push((start, bytes));
                            }
                        }
                    }
                    (2, b"bootargs") if in_chosen => {
                        let text = value.strip_suffix(&[0]).unwrap_or(value);
                        let text = core::str::from_utf8(text).map_err(|_| DtbError::BadBootargs)?;
                        info.bootargs
                            .push_str(text)
                            .map_err(|_| DtbError::BadBootargs)?;
                    }
                    _ => {}
                }
            }
            NOP => {}
            END => break,
            other => return Err(DtbError::BadToken(other)),
        }
    }
    if info.memory.is_empty() {
        return Err(DtbError::NoMemory);
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Builds a flattened device tree from `(depth-changing) tokens`.
    struct Builder {
        structure: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Builder {
        fn new() -> Self {
            Builder {
                structure: Vec::new(),
                strings: Vec::new(),
            }
        }

        fn word(&mut self, value: u32) -> &mut Self {
            self.structure.extend_from_slice(&value.to_be_bytes());
            self
        }

        fn begin(&mut self, name: &str) -> &mut Self {
            self.word(BEGIN_NODE);
            self.structure.extend_from_slice(name.as_bytes());
            self.structure.push(0);
            while !self.structure.len().is_multiple_of(4) {
                self.structure.push(0);
            }
            self
        }

        fn end(&mut self) -> &mut Self {
            self.word(END_NODE)
        }

        fn property(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let name_offset = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            self.word(PROP).word(value.len() as u32).word(name_offset);
            self.structure.extend_from_slice(value);
            while !self.structure.len().is_multiple_of(4) {
                self.structure.push(0);
            }
            self
        }

        fn build(&mut self) -> Vec<u8> {
            self.word(END);
            let structure_offset = 40u32;
            let strings_offset = structure_offset + self.structure.len() as u32;
            let total = strings_offset + self.strings.len() as u32;
            let mut tree = Vec::new();
            for value in [
                MAGIC,
                total,
                structure_offset,
                strings_offset,
                40,
                17,
                16,
                0,
                self.strings.len() as u32,
                self.structure.len() as u32,
            ] {
                tree.extend_from_slice(&value.to_be_bytes());
            }
            tree.extend_from_slice(&self.structure);
            tree.extend_from_slice(&self.strings);
            tree
        }
    }

    fn cells(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    fn virt_tree(bootargs: Option<&[u8]>) -> Vec<u8> {
        let mut builder = Builder::new();
        builder
            .begin("")
            .property("#address-cells", &cells(&[2]))
            .property("#size-cells", &cells(&[2]))
            .begin("memory@40000000")
            .property("device_type", b"memory\0")
            .property("reg", &cells(&[0, 0x4000_0000, 0, 0x0800_0000]))
            .end();
        builder.begin("chosen");
        if let Some(text) = bootargs {
            builder.property("bootargs", text);
        }
        builder.end().end();
        builder.build()
    }

    #[test]
    fn reads_memory_and_bootargs_of_a_virt_like_tree() {
        let info = parse(&virt_tree(Some(b"tally=1 config=x\0"))).unwrap();
        assert_eq!(info.memory.as_slice(), &[(0x4000_0000, 0x0800_0000)]);
        assert_eq!(info.bootargs.as_str(), "tally=1 config=x");
    }

    #[test]
    fn missing_bootargs_are_empty() {
        let info = parse(&virt_tree(None)).unwrap();
        assert_eq!(info.bootargs.as_str(), "");
    }

    #[test]
    fn a_tree_without_memory_is_an_error() {
        let mut builder = Builder::new();
        builder.begin("").begin("chosen").end().end();
        assert_eq!(parse(&builder.build()).unwrap_err(), DtbError::NoMemory);
    }

    #[test]
    fn bad_magic_is_an_error() {
        let mut tree = virt_tree(None);
        tree[0] = 0;
        assert!(matches!(parse(&tree), Err(DtbError::BadMagic(_))));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let tree = virt_tree(Some(b"tally=1\0"));
        for length in 0..tree.len() {
            let mut cut = tree[..length].to_vec();
            // Keep the header's claimed size consistent with the cut, as a corrupt tree might.
            if cut.len() >= 8 {
                cut[4..8].copy_from_slice(&(length as u32).to_be_bytes());
            }
            assert!(parse(&cut).is_err(), "length {length}");
        }
    }

    #[test]
    fn corrupt_bytes_never_panic() {
        let tree = virt_tree(Some(b"tally=1\0"));
        for position in 40..tree.len() {
            for value in [0u8, 0xff, 0x03, 0x09] {
                let mut bad = tree.clone();
                bad[position] = value;
                let _ = parse(&bad);
            }
        }
    }

    #[test]
    fn unknown_tokens_and_bad_utf8_are_errors() {
        let mut builder = Builder::new();
        builder.begin("").word(7).end();
        assert_eq!(parse(&builder.build()).unwrap_err(), DtbError::BadToken(7));
        assert_eq!(
            parse(&virt_tree(Some(&[0xff, 0xfe, 0]))).unwrap_err(),
            DtbError::BadBootargs
        );
    }

    #[test]
    fn messages_say_what_is_wrong() {
        let text = std::format!("{}", DtbError::Missing);
        assert!(text.contains("no device tree"));
        let text = std::format!("{}", DtbError::NoMemory);
        assert!(text.contains("/memory"));
    }
}
