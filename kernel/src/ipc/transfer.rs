//! The transfer itself: out-of-line regions mapped copy-on-write, then the receiver's pages
//! made present in one transaction with a transient buffer when source and destination
//! overlap, the copy; and the kernel buffer frames of two-stage messages.

use super::*;

impl Kernel {
    /// Allocates and charges `count` message-buffer frames (`msgbuf` policy).
    pub(super) fn allocate_buffers(
        &mut self,
        count: usize,
        sender: DomainId,
        receiver: DomainId,
    ) -> Result<[Frame; MESSAGE_FRAMES], Error> {
        let transaction = Transaction::<MESSAGE_FRAMES>::with_frames(&mut self.frames, count)
            .map_err(|e| e.to_abi())?;
        let frames = transaction.array();
        let books = &mut self.books;
        transaction
            .commit(|buffers, allocator| books.charge_msgbufs(buffers, sender, receiver, allocator))
            .map_err(|e| e.to_abi())?;
        Ok(frames)
    }
    pub(super) fn free_buffers(&mut self, frames: &[Frame]) {
        for &frame in frames {
            self.books.free(frame, &self.frames);
            self.frames.free(frame);
        }
    }

    /// Copies a message's data from the sender's memory into buffer frames.
    pub(super) fn fill_buffers(
        &mut self,
        slot: usize,
        address: usize,
        length: usize,
        frames: &[Frame],
    ) -> Result<(), Error> {
        for (i, frame) in frames.iter().enumerate() {
            let start = i * PAGE_BYTES;
            let chunk = (length - start).min(PAGE_BYTES);
            // SAFETY: a message-buffer frame owned by this transfer, mapped in the linear map.
            let buffer = unsafe { core::slice::from_raw_parts_mut(frame.virt() as *mut u8, chunk) };
            self.copy_from_user(slot, address + start, buffer)?;
        }
        Ok(())
    }

    /// Delivers `message` from `sender_slot` (None when it is buffered and its sender may be
    /// gone) to `receiver`, whose receive descriptor is at `receive_address`.
    pub(super) fn transfer(
        &mut self,
        sender_slot: Option<usize>,
        message: &Outgoing,
        receiver: usize,
        receive_address: usize,
    ) -> Result<(), Error> {
        let mut receive: Receive = read_struct(self, receiver, receive_address)?;
        if message.length > receive.buffer_capacity {
            return Err(Error::ReceiverTooSmall);
        }
        let caps = self.slots[receiver].caps().ok_or(Error::BadArgument)?;
        if !message.caps.is_empty()
            && caps.caps.iter().filter(|c| c.is_empty()).count() < message.caps.len()
        {
            return Err(Error::ReceiverTooSmall);
        }
        let receiver_dcb = self.slots[receiver].dcb().ok_or(Error::BadArgument)?;
        for (i, region) in message.regions.iter().enumerate() {
            let start = receive.region_addresses[i];
            let end = start
                .checked_add(region.pages * PAGE_BYTES)
                .ok_or(Error::BadAddress)?;
            if !start.is_multiple_of(PAGE_BYTES)
                || start < abi::USER_MIN_ADDRESS
                || end > abi::USER_END_ADDRESS
            {
                return Err(Error::BadAddress);
            }
            if receiver_dcb.regions.iter().any(|r| r.overlaps(start, end)) {
                return Err(Error::RegionOverlap);
            }
        }
        if receiver_dcb.regions.len() + message.regions.len() > crate::object::domain::MAX_REGIONS {
            return Err(Error::ReceiverTooSmall);
        }
        // The pages the transfer writes: in writable regions of the receiver (checked before
        // the out-of-line regions add any), and whether any needs work.
        let writes = [
            (receive_address, core::mem::size_of::<Receive>()),
            (receive.buffer_address, message.length),
        ];
        let needs_work = self.needs_work(receiver, &writes)?;
        // A transient buffer only when the two ranges share physical bytes (the receiver's
        // pages that are writable now: any other page of its buffer becomes a new or private
        // one below, which the sender cannot map).
        let bounce_count = match (sender_slot, message.buffered) {
            (Some(sender), None)
                if self.ranges_overlap(
                    sender,
                    message.data_address,
                    receiver,
                    receive.buffer_address,
                    message.length,
                ) =>
            {
                message.length.div_ceil(PAGE_BYTES)
            }
            _ => 0,
        };

        // The out-of-line regions first: each is undone if a later one, or the receive
        // pages, cannot be had.
        let undo_regions = |k: &mut Kernel, count: usize| {
            for (j, done) in message.regions.iter().enumerate().take(count) {
                k.remove_region(receiver, receive.region_addresses[j], done.pages);
            }
        };
        for (i, region) in message.regions.iter().enumerate() {
            let Some(sender) = sender_slot else { break };
            let destination = receive.region_addresses[i];
            if let Err(e) = self.share_region_at(sender, receiver, region, destination) {
                undo_regions(self, i);
                return Err(e);
            }
        }
        // The receiver's descriptor and buffer pages and the transient buffer: one
        // transaction, all of it or nothing.
        let mut bounce_frames = [Frame(0); MESSAGE_FRAMES];
        if let Err(e) = self.prepare_checked_writes(
            receiver,
            &writes,
            needs_work,
            &mut bounce_frames[..bounce_count],
            message.sender,
        ) {
            undo_regions(self, message.regions.len());
            return Err(e);
        }
        let bounce = (bounce_count > 0).then_some(bounce_frames);

        // Nothing can fail from here on.
        let source_frames = message.buffered.or(bounce);
        if let (Some(sender), Some(frames)) = (sender_slot, bounce) {
            // The sender's range was checked readable: this cannot fail.
            let _ = self.fill_buffers(
                sender,
                message.data_address,
                message.length,
                &frames[..bounce_count],
            );
        }
        match (source_frames, sender_slot) {
            (Some(frames), _) => {
                let count = message.length.div_ceil(PAGE_BYTES);
                for (i, frame) in frames.iter().enumerate().take(count) {
                    let start = i * PAGE_BYTES;
                    let chunk = (message.length - start).min(PAGE_BYTES);
                    // SAFETY: a message-buffer frame of this transfer.
                    let bytes =
                        unsafe { core::slice::from_raw_parts(frame.virt() as *const u8, chunk) };
                    self.copy_to_user(receiver, receive.buffer_address + start, bytes);
                }
            }
            (None, Some(sender)) => self.copy_user_to_user(
                sender,
                message.data_address,
                receiver,
                receive.buffer_address,
                message.length,
            ),
            (None, None) => {}
        }
        if let Some(frames) = bounce {
            self.free_buffers(&frames[..bounce_count]);
        }
        receive.cap_count = message.caps.len();
        for (i, cap) in message.caps.iter().enumerate() {
            // The receiver's copy is derived from the sender's (revoking that reaches it).
            let copy = self.derived(*cap);
            let caps = self.slots[receiver].caps_mut().ok_or(Error::BadArgument)?;
            // Room for every one was checked before anything changed.
            receive.caps[i] = caps
                .insert(copy)
                .unwrap_or_else(|_| crate::panic::kernel_bug("no room for a checked capability"));
        }
        receive.data_length = message.length;
        receive.region_count = message.regions.len();
        for (i, region) in message.regions.iter().enumerate() {
            receive.region_pages[i] = region.pages;
        }
        write_struct(self, receiver, receive_address, &receive);
        Ok(())
    }

    /// Copies `length` bytes between two domains' (present, checked) memory, page by page
    /// through the linear map.
    pub(super) fn copy_user_to_user(
        &mut self,
        from: usize,
        from_va: usize,
        to: usize,
        to_va: usize,
        length: usize,
    ) {
        let mut done = 0;
        while done < length {
            let from_chunk = PAGE_BYTES - (from_va + done) % PAGE_BYTES;
            let to_chunk = PAGE_BYTES - (to_va + done) % PAGE_BYTES;
            let chunk = from_chunk.min(to_chunk).min(length - done);
            if let Some(target) = self.user_physical(to, to_va + done) {
                match self.user_physical(from, from_va + done) {
                    // SAFETY: both are RAM pages of live domains through the linear map; the
                    // ranges do not overlap (checked by ranges_overlap), the chunk stays in both.
                    Some(source) => unsafe {
                        core::ptr::copy_nonoverlapping(
                            mmu::phys_to_virt(source) as *const u8,
                            mmu::phys_to_virt(target) as *mut u8,
                            chunk,
                        )
                    },
                    // SAFETY: as above, for the target alone; an unpopulated source reads as zeros.
                    None => unsafe {
                        core::ptr::write_bytes(mmu::phys_to_virt(target) as *mut u8, 0, chunk)
                    },
                }
            }
            done += chunk;
        }
    }
}
