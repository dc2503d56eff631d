//! Message decode: reading and checking a sender's message descriptor, its data, capabilities
//! and out-of-line regions, before anything changes.

use super::*;

impl Kernel {
    /// Reads and checks a message from `slot`'s memory into `out` (the decode half of a send;
    /// `out` is the caller's, so the message is never copied on its way to the transfer).
    pub(super) fn take_message(
        &mut self,
        slot: usize,
        address: usize,
        out: &mut Outgoing,
    ) -> Result<(), Error> {
        let message: Message = read_struct(self, slot, address)?;
        if message.data_length > MAX_MESSAGE_BYTES
            || message.cap_count > MAX_MESSAGE_CAPS
            || message.region_count > MAX_MESSAGE_REGIONS
        {
            return Err(Error::MessageTooLarge);
        }
        crate::memory::user::check_range(message.data_address, message.data_length)?;
        self.check_user_readable(slot, message.data_address, message.data_length)?;
        out.caps.clear();
        for &word in &message.caps[..message.cap_count] {
            let _ = out.caps.push(self.passed_capability(slot, word)?);
        }
        out.regions.clear();
        for region in &message.regions[..message.region_count] {
            if region.pages == 0
                || region.pages > abi::MAX_REGION_PAGES
                || !region.address.is_multiple_of(PAGE_BYTES)
            {
                return Err(Error::MessageTooLarge);
            }
            self.check_owned_writable(slot, region)?;
            let _ = out.regions.push(*region);
        }
        out.sender = self.slots[slot].account;
        out.data_address = message.data_address;
        out.length = message.data_length;
        out.buffered = None;
        Ok(())
    }

    /// The physical address backing user address `va` of `slot`, if present.
    pub(super) fn user_physical(&self, slot: usize, va: usize) -> Option<usize> {
        let dcb = self.slots[slot].dcb()?;
        let descriptor = dcb.tables.lookup(va & !(PAGE_BYTES - 1))?;
        Some(mmu::descriptor_address(descriptor) + va % PAGE_BYTES)
    }

    /// The physical address backing user address `va` of `slot`, if present and writable
    /// (not copy-on-write).
    fn writable_physical(&self, slot: usize, va: usize) -> Option<usize> {
        let dcb = self.slots[slot].dcb()?;
        let descriptor = dcb.tables.lookup(va & !(PAGE_BYTES - 1))?;
        (mmu::user_page_access(descriptor) == UserAccess::ReadWrite)
            .then(|| mmu::descriptor_address(descriptor) + va % PAGE_BYTES)
    }

    /// Whether the physical bytes of two user ranges of equal length overlap, counting only
    /// the pages of `b` that are writable now (the others become new or private pages before
    /// anything is written to them).
    pub(super) fn ranges_overlap(
        &self,
        a_slot: usize,
        a: usize,
        b_slot: usize,
        b: usize,
        length: usize,
    ) -> bool {
        let mut a_offset = 0;
        while a_offset < length {
            let a_chunk = (PAGE_BYTES - (a + a_offset) % PAGE_BYTES).min(length - a_offset);
            if let Some(a_pa) = self.user_physical(a_slot, a + a_offset) {
                let mut b_offset = 0;
                while b_offset < length {
                    let b_chunk = (PAGE_BYTES - (b + b_offset) % PAGE_BYTES).min(length - b_offset);
                    if let Some(b_pa) = self.writable_physical(b_slot, b + b_offset) {
                        if a_pa < b_pa + b_chunk && b_pa < a_pa + a_chunk {
                            return true;
                        }
                    }
                    b_offset += b_chunk;
                }
            }
            a_offset += a_chunk;
        }
        false
    }
}
