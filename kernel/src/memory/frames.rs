//! The physical frame allocator over all RAM the device tree reports.
//!
//! Frames below `bump` that are not on the free list are in use; frames at or above `bump` have
//! never been handed out. Freed frames form a LIFO list threaded through their first word
//! (reached through the linear map). Both operations are O(1) and boot costs nothing per
//! frame, which keeps boot with 4 GiB well inside its instruction budget.
//!
//! Invariant: `free_frames() + in_use_frames() + boot_frames == total_frames`.

use crate::arch::aarch64::mmu::{phys_to_virt, PAGE_BYTES};

/// A physical frame, by address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Frame(pub usize);

impl Frame {
    /// The frame's physical address.
    #[inline]
    pub fn address(self) -> usize {
        self.0
    }

    /// The frame's kernel virtual address.
    #[inline]
    pub fn virt(self) -> usize {
        phys_to_virt(self.0)
    }

    /// Fills the frame with zeros.
    #[inline]
    pub fn zero(self) {
        // SAFETY: the frame is a whole RAM page owned by the caller, mapped in the linear map
        // as normal memory.
        unsafe { crate::arch::aarch64::cpu::zero_page(self.virt() as *mut u8) };
    }

    /// Copies the whole content of `source`, a different frame, into this frame.
    #[inline]
    pub fn copy_from(self, source: Frame) {
        debug_assert!(self != source);
        // SAFETY: both are whole, distinct RAM pages mapped in the linear map.
        unsafe {
            crate::arch::aarch64::cpu::copy_whole_page(
                self.virt() as *mut u8,
                source.virt() as *const u8,
            )
        };
    }
}

/// The allocator.
pub struct FrameAllocator {
    ram_start: usize,
    ram_end: usize,
    bump: usize,
    free_list: usize,
    free_list_frames: usize,
    boot_frames: usize,
}

const LIST_END: usize = 0;

impl FrameAllocator {
    /// An allocator over no RAM (before boot sets it up).
    pub const EMPTY: FrameAllocator = FrameAllocator {
        ram_start: 0,
        ram_end: 0,
        bump: 0,
        free_list: LIST_END,
        free_list_frames: 0,
        boot_frames: 0,
    };

    /// An allocator over `[ram_start, ram_end)` whose first `first_free - ram_start` bytes are
    /// the kernel's own (`boot`).
    pub fn new(ram_start: usize, ram_end: usize, first_free: usize) -> Self {
        FrameAllocator {
            ram_start,
            ram_end,
            bump: first_free,
            free_list: LIST_END,
            free_list_frames: 0,
            boot_frames: (first_free - ram_start) / PAGE_BYTES,
        }
    }

    /// Hands out a frame (its content is undefined), or `None` when RAM is exhausted.
    pub fn allocate(&mut self) -> Option<Frame> {
        if self.free_list != LIST_END {
            let frame = Frame(self.free_list);
            // SAFETY: a frame on the free list is unused RAM whose first word holds the next
            // link, written by `free`.
            self.free_list = unsafe { (frame.virt() as *const usize).read() };
            self.free_list_frames -= 1;
            return Some(frame);
        }
        if self.bump < self.ram_end {
            let frame = Frame(self.bump);
            self.bump += PAGE_BYTES;
            return Some(frame);
        }
        None
    }

    /// Fills every element of `frames` with a fresh frame, or takes none: when RAM runs out
    /// half-way, the frames already taken go back and `None` is returned.
    pub fn allocate_all(&mut self, frames: &mut [Frame]) -> Option<()> {
        for i in 0..frames.len() {
            match self.allocate() {
                Some(frame) => frames[i] = frame,
                None => {
                    self.free_all(&frames[..i]);
                    return None;
                }
            }
        }
        Some(())
    }

    /// Returns every frame of `frames`.
    pub fn free_all(&mut self, frames: &[Frame]) {
        for frame in frames {
            self.free(*frame);
        }
    }

    /// Returns a frame. The caller must no longer use it.
    pub fn free(&mut self, frame: Frame) {
        debug_assert!(
            frame.0 >= self.ram_start && frame.0 < self.bump && frame.0.is_multiple_of(PAGE_BYTES)
        );
        // SAFETY: the frame is RAM the caller gives up; its first word becomes the link.
        unsafe { (frame.virt() as *mut usize).write(self.free_list) };
        self.free_list = frame.0;
        self.free_list_frames += 1;
    }

    /// Frames of RAM in all.
    pub fn total_frames(&self) -> usize {
        (self.ram_end - self.ram_start) / PAGE_BYTES
    }

    /// Frames available to `allocate`.
    pub fn free_frames(&self) -> usize {
        (self.ram_end - self.bump) / PAGE_BYTES + self.free_list_frames
    }

    /// Frames the kernel keeps for itself (image, frame table, boot stack).
    pub fn boot_frames(&self) -> usize {
        self.boot_frames
    }

    /// The ledger index of a frame.
    #[inline]
    pub fn index(&self, frame: Frame) -> u32 {
        ((frame.0 - self.ram_start) / PAGE_BYTES) as u32
    }
}
