//! Copies between the kernel and a domain's memory, and the checks on user ranges.
//!
//! User pointers are allegations: every access translates the address through the domain's
//! own tables and regions in software and reaches the frame through the kernel's linear map,
//! so a bad pointer is an error code, never a kernel-mode fault. A page that is inside a region
//! but not yet populated reads as zeros without being allocated; writing to one needs it
//! prepared first ([`super::address_space`]). A page its pager evicted is neither: reading or
//! writing it is [`Error::PagedOut`], and the kernel remembers which page
//! ([`Kernel::missing_page`]) so that a keeper can be asked to bring it back.

use crate::arch::aarch64::mmu::{self, UserAccess, PAGE_BYTES};
use crate::kernel::Kernel;
use abi::Error;

pub fn page_of(va: usize) -> usize {
    va & !(PAGE_BYTES - 1)
}

/// Checks that `[va, va + len)` is a user range (no overflow, below the TTBR0 limit).
pub fn check_range(va: usize, len: usize) -> Result<(), Error> {
    let end = va.checked_add(len).ok_or(Error::BadAddress)?;
    if end > abi::USER_END_ADDRESS {
        return Err(Error::BadAddress);
    }
    Ok(())
}

impl Kernel {
    /// Copies `buffer.len()` bytes from the current domain's `va` into `buffer`.
    pub fn copy_from_user(
        &mut self,
        slot: usize,
        va: usize,
        buffer: &mut [u8],
    ) -> Result<(), Error> {
        check_range(va, buffer.len())?;
        let dcb = self.slots[slot].dcb().ok_or(Error::BadAddress)?;
        let mut done = 0;
        while done < buffer.len() {
            let address = va + done;
            let in_page = (PAGE_BYTES - address % PAGE_BYTES).min(buffer.len() - done);
            let chunk = &mut buffer[done..done + in_page];
            match dcb.tables.lookup(page_of(address)) {
                Some(descriptor) => {
                    let source = mmu::phys_to_virt(mmu::descriptor_address(descriptor))
                        + address % PAGE_BYTES;
                    // SAFETY: the descriptor maps a RAM frame of this domain, readable by EL0
                    // (every user mapping is), and the chunk stays inside that page.
                    unsafe {
                        core::ptr::copy_nonoverlapping(
                            source as *const u8,
                            chunk.as_mut_ptr(),
                            in_page,
                        )
                    };
                }
                None if dcb.kept_pages
                    && dcb
                        .region(address)
                        .is_some_and(|r| dcb.keeper_supplies(page_of(address), &r)) =>
                {
                    self.missing_page.set(Some((slot as u8, page_of(address))));
                    return Err(Error::PagedOut);
                }
                None if dcb.region(address).is_some() => chunk.fill(0),
                None => return Err(Error::BadAddress),
            }
            done += in_page;
        }
        Ok(())
    }

    /// Checks that `region` lies inside one writable region of `slot`: the rule for memory a
    /// domain shares copy-on-write (spawn) or sends out of line (it must own it, writable).
    pub fn check_owned_writable(
        &self,
        slot: usize,
        region: &abi::SharedRegion,
    ) -> Result<(), Error> {
        let bytes = region
            .pages
            .checked_mul(PAGE_BYTES)
            .ok_or(Error::BadArgument)?;
        check_range(region.address, bytes)?;
        let dcb = self.slots[slot].dcb().ok_or(Error::BadAddress)?;
        let inside = dcb.region(region.address).is_some_and(|r| {
            r.access == UserAccess::ReadWrite && region.address + bytes <= r.end()
        });
        if inside {
            Ok(())
        } else {
            Err(Error::BadAddress)
        }
    }

    /// Checks that every byte of `[va, va + len)` is readable by the domain (present, or
    /// inside one of its regions, reading as zeros), without copying anything.
    pub fn check_user_readable(&self, slot: usize, va: usize, len: usize) -> Result<(), Error> {
        check_range(va, len)?;
        if len == 0 {
            return Ok(());
        }
        let dcb = self.slots[slot].dcb().ok_or(Error::BadAddress)?;
        let mut page = page_of(va);
        while page < va + len {
            if dcb.tables.lookup(page).is_none() {
                let Some(region) = dcb.region(page) else {
                    return Err(Error::BadAddress);
                };
                if dcb.keeper_supplies(page, &region) {
                    self.missing_page.set(Some((slot as u8, page)));
                    return Err(Error::PagedOut);
                }
            }
            page += PAGE_BYTES;
        }
        Ok(())
    }

    /// Copies `bytes` to `va` in a range [`prepare_user_write`](Self::prepare_user_write)
    /// accepted. Cannot fail.
    pub fn copy_to_user(&mut self, slot: usize, va: usize, bytes: &[u8]) {
        let Some(dcb) = self.slots[slot].dcb() else {
            return;
        };
        let mut done = 0;
        while done < bytes.len() {
            let address = va + done;
            let in_page = (PAGE_BYTES - address % PAGE_BYTES).min(bytes.len() - done);
            if let Some(descriptor) = dcb.tables.lookup(page_of(address)) {
                let target =
                    mmu::phys_to_virt(mmu::descriptor_address(descriptor)) + address % PAGE_BYTES;
                // SAFETY: prepare_user_write made this page present, private and writable for
                // this domain; the chunk stays inside it.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        bytes[done..].as_ptr(),
                        target as *mut u8,
                        in_page,
                    )
                };
            }
            done += in_page;
        }
    }
}
