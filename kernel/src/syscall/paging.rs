//! The pager's system calls, decode then invoke: `page_out` (evict a page of a domain it
//! keeps into its own backing store) and `page_in` (bring it back). Decode checks everything
//! and makes every charge — the pager's store page (present and private, charged to the
//! pager's set), the page-in's new frame (charged as the domain's first touch would be) — so
//! invoke only copies, maps and releases. The paged-out state lives in the domain's level-3
//! entry ([`crate::memory::page_table::PAGED_OUT`]); what an access to it does is in
//! [`crate::memory::address_space`] and [`crate::ipc::keeper`].

use super::Call;
use crate::arch::aarch64::mmu::{self, UserAccess, PAGE_BYTES};
use crate::kernel::{asid, Kernel};
use crate::memory::frames::Frame;
use crate::memory::page_table::PAGED_OUT;
use crate::memory::user::check_range;
use abi::{Error, Rights, Syscall};
use accounting::PagingEvent;

impl Kernel {
    /// Decodes `page_out(domain_cap, va, store)` and `page_in(domain_cap, va, store)`.
    pub(super) fn decode_paging(
        &mut self,
        slot: usize,
        call: Syscall,
        args: [usize; 5],
    ) -> Result<Call, Error> {
        let target = self.domain_cap(slot, args[0], Rights::CONTROL)?;
        let (va, store) = (args[1], args[2]);
        if target == slot || !va.is_multiple_of(PAGE_BYTES) || !store.is_multiple_of(PAGE_BYTES) {
            return Err(Error::BadArgument);
        }
        check_range(va, PAGE_BYTES)?;
        let dcb = self.slots[target].dcb().ok_or(Error::BadArgument)?;
        let region = dcb.region(va).ok_or(Error::BadAddress)?;
        if call == Syscall::PageOut {
            let descriptor = dcb.tables.lookup(va).ok_or(Error::NotPresent)?;
            let frame = Frame(mmu::descriptor_address(descriptor));
            // Private anonymous memory only: not a region object's frame, not shared or
            // copy-on-write, not read-only.
            if region.access != UserAccess::ReadWrite
                || region.capability != 0
                || mmu::user_page_access(descriptor) != UserAccess::ReadWrite
                || self.books.mappers(frame, &self.frames) != 1
                || self.region_objects_hold(frame)
            {
                return Err(Error::NotPrivate);
            }
            self.prepare_user_write(slot, store, PAGE_BYTES)?;
            Ok(Call::PageOut {
                target,
                va,
                store,
                frame,
            })
        } else {
            if dcb.tables.lookup(va).is_some() || !dcb.keeper_supplies(va, &region) {
                return Err(Error::NotPagedOut);
            }
            self.check_user_readable(slot, store, PAGE_BYTES)?;
            // The last check and the one change: the new frame, charged and mapped (over the
            // paged-out entry) in one reservation, or refused whole.
            let frame = self
                .populate(target, va, region.access)
                .map_err(|e| e.to_abi())?;
            Ok(Call::PageIn {
                target,
                va,
                store,
                frame,
            })
        }
    }

    /// Whether a region object holds `frame`.
    fn region_objects_hold(&self, frame: Frame) -> bool {
        self.region_objects
            .iter()
            .flatten()
            .any(|object| object.get().frames.contains(&Some(frame)))
    }

    /// `page_out`: the page's contents to the caller's store (made writable by decode), the
    /// page paged out in `target`, its frame and charge released.
    pub(super) fn page_out(
        &mut self,
        slot: usize,
        target: usize,
        va: usize,
        store: usize,
        frame: Frame,
    ) -> usize {
        // SAFETY: a RAM frame mapped (privately, decode checked) by `target`, read through the
        // linear map before it leaves the tables; nothing writes it meanwhile.
        let contents =
            unsafe { core::slice::from_raw_parts(frame.virt() as *const u8, PAGE_BYTES) };
        self.copy_to_user(slot, store, contents);
        let account = self.slots[target].account;
        if let Some(dcb) = self.slots[target].dcb_mut() {
            dcb.tables.replace(va, PAGED_OUT);
            dcb.kept_pages = true;
        }
        mmu::invalidate_user_page(va, asid(target));
        if self.books.unmap(frame, account, &self.frames) {
            self.frames.free(frame);
        }
        self.books.note_paging(account, PagingEvent::Evict);
        log::info!(
            "page {va:#x} of '{}' paged out by '{}'",
            self.slots[target].name,
            self.slots[slot].name
        );
        0
    }

    /// `page_in`: the caller's store copied into the page's new frame (charged and mapped by
    /// decode).
    pub(super) fn page_in(
        &mut self,
        slot: usize,
        target: usize,
        va: usize,
        store: usize,
        frame: Frame,
    ) -> usize {
        // SAFETY: the new frame decode mapped for `target`, private to it; written through the
        // linear map before `target` runs again.
        let contents =
            unsafe { core::slice::from_raw_parts_mut(frame.virt() as *mut u8, PAGE_BYTES) };
        // Decode checked the store readable: this cannot fail.
        let _ = self.copy_from_user(slot, store, contents);
        let account = self.slots[target].account;
        self.books.note_paging(account, PagingEvent::PageIn);
        log::info!(
            "page {va:#x} of '{}' paged in by '{}'",
            self.slots[target].name,
            self.slots[slot].name
        );
        0
    }
}
