//! Reads and checks the loadable segments of an AArch64 ELF64 user program (ELF-64 Object File
//! Format 1.5, "Program header"). Checked like any other input: a malformed image is an error
//! that names the segment and what is wrong, never a fault. The kernel runs these checks before
//! it maps a program; the host tool runs the same ones on the built programs, so a config never
//! names a program the kernel would refuse.

use core::fmt;

use heapless::Vec;

/// Segment flag: executable.
pub const FLAG_EXECUTE: u32 = 1;
/// Segment flag: writable.
pub const FLAG_WRITE: u32 = 2;
/// Segment flag: readable.
pub const FLAG_READ: u32 = 4;
/// Most loadable segments a program may have.
pub const MAX_SEGMENTS: usize = 8;

const PAGE: usize = 4096;

/// The user stack's lowest address: no segment may reach it.
pub const STACK_START: usize = abi::USER_STACK_TOP - abi::USER_STACK_PAGES * PAGE;

/// One `PT_LOAD` segment.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Virtual address of the first byte.
    pub address: usize,
    /// Bytes in memory (the tail past `data` is zero).
    pub memory_bytes: usize,
    /// The bytes from the file.
    pub data: &'a [u8],
    /// `FLAG_*` bits.
    pub flags: u32,
}

impl Segment<'_> {
    /// The first page's address.
    pub fn page_start(&self) -> usize {
        self.address & !(PAGE - 1)
    }

    /// One past the last page (the segment was checked not to wrap).
    pub fn page_end(&self) -> usize {
        (self.address + self.memory_bytes + PAGE - 1) & !(PAGE - 1)
    }

    /// How many pages it covers.
    pub fn pages(&self) -> usize {
        (self.page_end() - self.page_start()) / PAGE
    }

    /// `r-x`, `rw-`, `r--`: for messages.
    pub fn access(&self) -> &'static str {
        if self.flags & FLAG_EXECUTE != 0 {
            "r-x"
        } else if self.flags & FLAG_WRITE != 0 {
            "rw-"
        } else {
            "r--"
        }
    }
}

/// A parsed, checked program.
#[derive(Debug)]
pub struct Program<'a> {
    /// Entry point.
    pub entry: usize,
    /// Loadable segments, in address order, none sharing a page with another.
    pub segments: Vec<Segment<'a>, MAX_SEGMENTS>,
}

/// Why a program image cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Not an ELF64 little-endian AArch64 executable.
    NotAnExecutable,
    /// A header or segment lies outside the file.
    Truncated,
    /// More than [`MAX_SEGMENTS`] loadable segments.
    TooManySegments,
    /// A segment with more file bytes than memory bytes.
    FileLargerThanMemory {
        /// The segment's index among the loadable ones.
        segment: usize,
    },
    /// A segment outside user space (below the null guard, into the stack, or wrapping).
    OutsideUserSpace {
        /// The segment's index among the loadable ones.
        segment: usize,
        /// Its first address.
        address: usize,
    },
    /// Two segments share a page: each page has one set of access rights.
    SharedPage {
        /// The earlier segment.
        first: usize,
        /// The later one.
        second: usize,
        /// The page they share.
        page: usize,
    },
    /// The entry point is not in an executable segment.
    BadEntry(usize),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            ElfError::NotAnExecutable => f.write_str("not an AArch64 ELF64 executable"),
            ElfError::Truncated => f.write_str("a header or segment lies outside the file"),
            ElfError::TooManySegments => {
                write!(f, "more than {MAX_SEGMENTS} loadable segments")
            }
            ElfError::FileLargerThanMemory { segment } => {
                write!(f, "segment {segment} has more file bytes than memory bytes")
            }
            ElfError::OutsideUserSpace { segment, address } => write!(
                f,
                "segment {segment} at {address:#x} is outside user space ({:#x}..{STACK_START:#x})",
                abi::USER_MIN_ADDRESS
            ),
            ElfError::SharedPage {
                first,
                second,
                page,
            } => write!(
                f,
                "segments {first} and {second} share the page at {page:#x} (each page has one set of access rights: page-align every segment in the linker script)"
            ),
            ElfError::BadEntry(entry) => {
                write!(f, "entry point {entry:#x} is not in an executable segment")
            }
        }
    }
}

pub(crate) fn u16_at(image: &[u8], offset: usize) -> Result<u16, ElfError> {
    let bytes = image.get(offset..offset.checked_add(2).ok_or(ElfError::Truncated)?);
    Ok(u16::from_le_bytes(
        bytes
            .and_then(|b| b.try_into().ok())
            .ok_or(ElfError::Truncated)?,
    ))
}

pub(crate) fn u32_at(image: &[u8], offset: usize) -> Result<u32, ElfError> {
    let bytes = image.get(offset..offset.checked_add(4).ok_or(ElfError::Truncated)?);
    Ok(u32::from_le_bytes(
        bytes
            .and_then(|b| b.try_into().ok())
            .ok_or(ElfError::Truncated)?,
    ))
}

pub(crate) fn u64_at(image: &[u8], offset: usize) -> Result<usize, ElfError> {
    let bytes = image.get(offset..offset.checked_add(8).ok_or(ElfError::Truncated)?);
    let value = u64::from_le_bytes(
        bytes
            .and_then(|b| b.try_into().ok())
            .ok_or(ElfError::Truncated)?,
    );
    usize::try_from(value).map_err(|_| ElfError::Truncated)
}

/// Parses and checks an AArch64 ELF64 executable.
pub fn parse(image: &[u8]) -> Result<Program<'_>, ElfError> {
    if image.get(0..4) != Some(b"\x7fELF") || image.get(4..6) != Some(&[2, 1]) {
        return Err(ElfError::NotAnExecutable);
    }
    if u16_at(image, 16)? != 2 || u16_at(image, 18)? != 183 {
        return Err(ElfError::NotAnExecutable); // not ET_EXEC for EM_AARCH64
    }
    let entry = u64_at(image, 24)?;
    let header_offset = u64_at(image, 32)?;
    let header_size = usize::from(u16_at(image, 54)?);
    let header_count = usize::from(u16_at(image, 56)?);
    let mut segments: Vec<Segment, MAX_SEGMENTS> = Vec::new();
    for i in 0..header_count {
        let header = i
            .checked_mul(header_size)
            .and_then(|o| o.checked_add(header_offset))
            .ok_or(ElfError::Truncated)?;
        if u32_at(image, header)? != 1 {
            continue; // not PT_LOAD
        }
        let flags = u32_at(image, header + 4)?;
        let offset = u64_at(image, header + 8)?;
        let address = u64_at(image, header + 16)?;
        let file_bytes = u64_at(image, header + 32)?;
        let memory_bytes = u64_at(image, header + 40)?;
        if memory_bytes == 0 {
            continue;
        }
        let index = segments.len();
        if file_bytes > memory_bytes {
            return Err(ElfError::FileLargerThanMemory { segment: index });
        }
        let in_user_space = address >= abi::USER_MIN_ADDRESS
            && address
                .checked_add(memory_bytes)
                .and_then(|end| end.checked_add(PAGE - 1))
                .is_some_and(|end| end & !(PAGE - 1) <= STACK_START);
        if !in_user_space {
            return Err(ElfError::OutsideUserSpace {
                segment: index,
                address,
            });
        }
        let end = offset.checked_add(file_bytes).ok_or(ElfError::Truncated)?;
        let data = image.get(offset..end).ok_or(ElfError::Truncated)?;
        segments
            .push(Segment {
                address,
                memory_bytes,
                data,
                flags,
            })
            .map_err(|_| ElfError::TooManySegments)?;
    }
    if !segments
        .windows(2)
        .all(|pair| pair[0].address <= pair[1].address)
    {
        segments.sort_unstable_by_key(|s| s.address);
    }
    for (first, pair) in segments.windows(2).enumerate() {
        if pair[1].page_start() < pair[0].page_end() {
            return Err(ElfError::SharedPage {
                first,
                second: first + 1,
                page: pair[1].page_start(),
            });
        }
    }
    let entry_ok = segments.iter().any(|s| {
        s.flags & FLAG_EXECUTE != 0 && (s.address..s.address + s.memory_bytes).contains(&entry)
    });
    if !entry_ok {
        return Err(ElfError::BadEntry(entry));
    }
    Ok(Program { entry, segments })
}

/// What creating a domain that runs a program charges, in frames, before its first
/// instruction: its kernel objects, its root table, the page tables its image needs and the
/// image's pages. (The stack is demand-zero: its first page is charged at its first use.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct StartCost {
    /// `anon` frames: the program image's pages.
    pub anon: u64,
    /// `pagetables` frames: the root and the level-2 and level-3 tables the image needs.
    pub pagetables: u64,
    /// `kernel` frames: the control block and the capability table.
    pub kernel: u64,
}

impl StartCost {
    /// All frames.
    pub fn frames(&self) -> u64 {
        self.anon + self.pagetables + self.kernel
    }
}

impl Program<'_> {
    /// What starting this program costs (see [`StartCost`]).
    pub fn start_cost(&self) -> StartCost {
        // Distinct 1 GiB slots (each a level-2 table) and 2 MiB slots (each a level-3 table)
        // the image's pages fall in; segments are sorted and disjoint, so slots come in order.
        let mut level2 = 0;
        let mut level3 = 0;
        let mut last_1g = usize::MAX;
        let mut last_2m = usize::MAX;
        let mut anon = 0;
        for segment in &self.segments {
            let mut page = segment.page_start();
            while page < segment.page_end() {
                if page >> 30 != last_1g {
                    last_1g = page >> 30;
                    level2 += 1;
                }
                if page >> 21 != last_2m {
                    last_2m = page >> 21;
                    level3 += 1;
                }
                anon += 1;
                page += PAGE;
            }
        }
        StartCost {
            anon,
            pagetables: 1 + level2 + level3,
            kernel: crate::limits::KERNEL_FRAMES_PER_DOMAIN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec as StdVec;

    /// An ELF image with the given (flags, address, file bytes, memory bytes) segments.
    fn image(entry: u64, segments: &[(u32, u64, u64, u64)]) -> StdVec<u8> {
        let mut out = StdVec::new();
        out.extend_from_slice(b"\x7fELF\x02\x01\x01\0");
        out.resize(16, 0);
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&183u16.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&entry.to_le_bytes());
        out.extend_from_slice(&64u64.to_le_bytes()); // program headers at 64
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&64u16.to_le_bytes());
        out.extend_from_slice(&56u16.to_le_bytes());
        out.extend_from_slice(&(segments.len() as u16).to_le_bytes());
        out.resize(64, 0);
        let data_at = 64 + 56 * segments.len() as u64;
        for &(flags, address, file, memory) in segments {
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&data_at.to_le_bytes());
            out.extend_from_slice(&address.to_le_bytes());
            out.extend_from_slice(&address.to_le_bytes());
            out.extend_from_slice(&file.to_le_bytes());
            out.extend_from_slice(&memory.to_le_bytes());
            out.extend_from_slice(&4096u64.to_le_bytes());
        }
        out.resize(data_at as usize + 0x3000, 0xaa);
        out
    }

    const RX: u32 = FLAG_READ | FLAG_EXECUTE;
    const R: u32 = FLAG_READ;
    const RW: u32 = FLAG_READ | FLAG_WRITE;

    #[test]
    fn a_page_aligned_program_parses_and_costs_what_it_maps() {
        let elf = image(
            0x40_0000,
            &[
                (RX, 0x40_0000, 0x1d14, 0x1d14),
                (R, 0x40_2000, 0x2a6, 0x2a6),
                (RW, 0x40_3000, 0, 0x2000),
            ],
        );
        let program = parse(&elf).unwrap();
        assert_eq!(program.segments.len(), 3);
        assert_eq!(program.segments[2].access(), "rw-");
        assert_eq!(
            program.start_cost(),
            StartCost {
                anon: 5,
                pagetables: 3,
                kernel: 2
            }
        );
    }

    #[test]
    fn bss_sharing_a_page_with_rodata_is_refused_naming_both_segments() {
        let elf = image(
            0x40_0000,
            &[
                (RX, 0x40_0000, 0x100, 0x100),
                (R, 0x40_1000, 0x2a6, 0x2a6),
                (RW, 0x40_12b0, 0, 0x1000),
            ],
        );
        let error = parse(&elf).unwrap_err();
        assert_eq!(
            error,
            ElfError::SharedPage {
                first: 1,
                second: 2,
                page: 0x40_1000
            }
        );
        assert!(std::format!("{error}").contains("segments 1 and 2 share the page at 0x401000"));
    }

    #[test]
    fn a_program_crossing_table_boundaries_needs_a_table_per_slot() {
        // 0x3ff000..0x401000 spans two 2 MiB slots; 0x4000_0000 is another 1 GiB slot.
        let elf = image(
            0x3f_f000,
            &[
                (RX, 0x3f_f000, 0x2000, 0x2000),
                (RW, 0x4000_0000, 0, 0x1000),
            ],
        );
        let cost = parse(&elf).unwrap().start_cost();
        assert_eq!(
            cost,
            StartCost {
                anon: 3,
                pagetables: 1 + 2 + 3,
                kernel: 2
            }
        );
    }

    #[test]
    fn malformed_images_get_their_own_errors() {
        assert_eq!(parse(b"nope").unwrap_err(), ElfError::NotAnExecutable);
        let mut elf = image(0x40_0000, &[(RX, 0x40_0000, 0x100, 0x100)]);
        elf.truncate(80);
        assert_eq!(parse(&elf).unwrap_err(), ElfError::Truncated);
        let elf = image(0x40_0000, &[(RX, 0x40_0000, 0x200, 0x100)]);
        assert_eq!(
            parse(&elf).unwrap_err(),
            ElfError::FileLargerThanMemory { segment: 0 }
        );
        let elf = image(
            0x40_0000,
            &[(RX, 0x40_0000, 0x100, 0x100), (RW, 0, 0, 0x100)],
        );
        assert_eq!(
            parse(&elf).unwrap_err(),
            ElfError::OutsideUserSpace {
                segment: 1,
                address: 0
            }
        );
        let elf = image(
            0x40_0000,
            &[
                (RX, 0x40_0000, 0x100, 0x100),
                (RW, STACK_START as u64 - 0x800, 0, 0x1000),
            ],
        );
        assert!(matches!(
            parse(&elf).unwrap_err(),
            ElfError::OutsideUserSpace { segment: 1, .. }
        ));
        let elf = image(
            0x40_0000,
            &[(RX, 0x40_0000, 0x100, 0x100), (RW, u64::MAX - 10, 0, 0x100)],
        );
        assert!(matches!(
            parse(&elf).unwrap_err(),
            ElfError::OutsideUserSpace { .. }
        ));
        let elf = image(0x50_0000, &[(RX, 0x40_0000, 0x100, 0x100)]);
        assert_eq!(parse(&elf).unwrap_err(), ElfError::BadEntry(0x50_0000));
        let elf = image(0x40_0000, &[(RW, 0x40_0000, 0x100, 0x100)]);
        assert_eq!(parse(&elf).unwrap_err(), ElfError::BadEntry(0x40_0000));
        let many: StdVec<(u32, u64, u64, u64)> = (0..9)
            .map(|i| (RX, 0x40_0000 + i * 0x1000, 0x10, 0x10))
            .collect();
        assert_eq!(
            parse(&image(0x40_0000, &many)).unwrap_err(),
            ElfError::TooManySegments
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x1234_5678u64;
        let good = image(
            0x40_0000,
            &[(RX, 0x40_0000, 0x100, 0x100), (R, 0x40_1000, 0x10, 0x10)],
        );
        for _ in 0..2000 {
            let mut bytes = good.clone();
            for _ in 0..8 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let at = (state >> 33) as usize % 200;
                bytes[at] = (state >> 20) as u8;
            }
            let _ = parse(&bytes);
        }
    }
}
