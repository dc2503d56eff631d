//! Reads the loadable segments of the ELF64 user programs embedded in the kernel (ELF-64
//! Object File Format 1.5, "Program header"). Checked like any other input: a malformed image
//! is an error, never a fault.

use heapless::Vec;

/// Segment flag: executable.
pub const FLAG_EXECUTE: u32 = 1;
/// Segment flag: writable.
pub const FLAG_WRITE: u32 = 2;

/// One `PT_LOAD` segment.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    /// Virtual address of the first byte.
    pub address: usize,
    /// Bytes in memory (the tail past `file_bytes` is zero).
    pub memory_bytes: usize,
    /// The bytes from the file.
    pub data: &'static [u8],
    /// `FLAG_*` bits.
    pub flags: u32,
}

/// A parsed program.
#[derive(Debug)]
pub struct Program {
    /// Entry point.
    pub entry: usize,
    /// Loadable segments.
    pub segments: Vec<Segment, 8>,
}

fn u16_at(image: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        image.get(offset..offset + 2)?.try_into().ok()?,
    ))
}

fn u32_at(image: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        image.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

fn u64_at(image: &[u8], offset: usize) -> Option<usize> {
    Some(u64::from_le_bytes(image.get(offset..offset + 8)?.try_into().ok()?) as usize)
}

/// Parses an AArch64 ELF64 executable; `None` if anything is malformed.
pub fn parse(image: &'static [u8]) -> Option<Program> {
    if image.get(0..4)? != b"\x7fELF" || image[4] != 2 || image[5] != 1 {
        return None;
    }
    if u16_at(image, 16)? != 2 || u16_at(image, 18)? != 183 {
        return None; // not ET_EXEC for EM_AARCH64
    }
    let entry = u64_at(image, 24)?;
    let header_offset = u64_at(image, 32)?;
    let header_size = u16_at(image, 54)? as usize;
    let header_count = u16_at(image, 56)? as usize;
    let mut segments = Vec::new();
    for i in 0..header_count {
        let header = header_offset.checked_add(i.checked_mul(header_size)?)?;
        if u32_at(image, header)? != 1 {
            continue; // not PT_LOAD
        }
        let flags = u32_at(image, header + 4)?;
        let offset = u64_at(image, header + 8)?;
        let address = u64_at(image, header + 16)?;
        let file_bytes = u64_at(image, header + 32)?;
        let memory_bytes = u64_at(image, header + 40)?;
        if file_bytes > memory_bytes || memory_bytes == 0 {
            if memory_bytes == 0 {
                continue;
            }
            return None;
        }
        let data = image.get(offset..offset.checked_add(file_bytes)?)?;
        segments
            .push(Segment {
                address,
                memory_bytes,
                data,
                flags,
            })
            .ok()?;
    }
    Some(Program { entry, segments })
}
