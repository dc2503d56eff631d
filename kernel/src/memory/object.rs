//! A kernel object in a frame of its own: the one owner of that frame's contents.
//!
//! Control blocks, capability tables, endpoints and region objects each live in a frame that is
//! charged `kernel`. An [`ObjectFrame<T>`] is the only way to reach such an object: it is
//! created once per frame (an `unsafe` constructor whose caller promises the frame is fresh and
//! used for nothing else), it is neither `Copy` nor `Clone`, and it hands out `&T` through `&self`
//! and `&mut T` through `&mut self`, so the borrow checker sees every access and no two live
//! mutable references to one object can exist. Giving the frame back ([`ObjectFrame::into_frame`])
//! consumes the handle.

use core::marker::PhantomData;
use core::ptr::NonNull;

use super::frames::Frame;
use crate::arch::aarch64::mmu::{self, PAGE_BYTES};

/// The object of type `T` stored in a frame; owns the frame's contents. Holds the object's
/// kernel virtual address (the frame's through the linear map), so reaching the object costs
/// no address translation, and an `Option<ObjectFrame<T>>` is one word (null for none).
pub struct ObjectFrame<T> {
    object: NonNull<T>,
    _object: PhantomData<T>,
}

// SAFETY: an ObjectFrame owns its object as a Box would; sending or sharing the handle is
// sending or sharing the T.
unsafe impl<T: Send> Send for ObjectFrame<T> {}
// SAFETY: as above: `&ObjectFrame<T>` hands out only `&T`.
unsafe impl<T: Sync> Sync for ObjectFrame<T> {}

impl<T> ObjectFrame<T> {
    /// Writes `value` into `frame` and takes ownership of it.
    ///
    /// # Safety
    ///
    /// `frame` is a RAM frame reached through the linear map that the caller owns and that
    /// nothing else reads or writes until [`into_frame`](Self::into_frame) gives it back; no
    /// other `ObjectFrame` is ever made for it meanwhile.
    pub unsafe fn new(frame: Frame, value: T) -> Self {
        const { assert!(core::mem::size_of::<T>() <= PAGE_BYTES) };
        const { assert!(core::mem::align_of::<T>() <= PAGE_BYTES) };
        // SAFETY: the caller owns the page-aligned frame (so aligned for T, which fits in it).
        unsafe { (frame.virt() as *mut T).write(value) };
        Self::at(frame)
    }

    /// Zeroes the first `size_of::<T>()` bytes of `frame` and takes ownership of it: an
    /// object whose empty state is all zero bytes, made in place (no copy through the stack).
    ///
    /// # Safety
    ///
    /// As for [`new`](Self::new); and all-zero bytes are a valid `T`.
    pub unsafe fn zeroed(frame: Frame) -> Self {
        const { assert!(core::mem::size_of::<T>() <= PAGE_BYTES) };
        const { assert!(core::mem::align_of::<T>() <= PAGE_BYTES) };
        // SAFETY: as in `new` (a whole page the caller owns); the caller promises zero bytes
        // are a valid T.
        unsafe {
            crate::arch::aarch64::cpu::zero_page_prefix(
                frame.virt() as *mut u8,
                core::mem::size_of::<T>(),
            )
        };
        Self::at(frame)
    }

    /// The handle of the object in `frame` (initialised by the caller).
    #[inline(always)]
    fn at(frame: Frame) -> Self {
        ObjectFrame {
            // The linear map never maps a frame at address zero.
            object: NonNull::new(frame.virt() as *mut T).unwrap_or(NonNull::dangling()),
            _object: PhantomData,
        }
    }

    /// The object.
    pub fn get(&self) -> &T {
        // SAFETY: `new` initialised the frame with a T that this handle alone owns; the shared
        // borrow of the handle rules out a mutable one for as long as the reference lives.
        unsafe { self.object.as_ref() }
    }

    /// The object, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: as for `get`; the mutable borrow of the (unique) handle makes this the only
        // reference to the object while it lives.
        unsafe { self.object.as_mut() }
    }

    /// Gives the frame back; the object is gone (its types own no other resources).
    pub fn into_frame(self) -> Frame {
        Frame(mmu::virt_to_phys(self.object.as_ptr() as usize))
    }
}
