//! A minimal flattened-device-tree reader (Devicetree Specification v0.4, chapter 5): finds
//! the RAM (`/memory` nodes' `reg`) and `/chosen/bootargs`. Every read is bounds-checked;
//! a malformed tree is an error naming what is wrong, never a fault or a hang.

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
