//! The fast path of memory-descriptor messages (direct transfer): a `call` or `reply_recv`
//! whose message carries only data, with the other party already waiting and nothing else
//! runnable, and every page involved present — the sender's descriptor and data readable, the
//! receiver's descriptor and buffer privately writable, each inside one page. Then the message
//! is delivered as the ordinary path would deliver it (`take_message`, `transfer`,
//! `after_delivery` / `ipc_reply` + `block_receiver`, `switch`) but reading only the descriptor
//! words it needs, translating each user buffer once, testing overlap on the frames already
//! translated, and switching straight to the other party. Every check is made before anything
//! changes; when one fails nothing has changed and the ordinary path runs. Nothing here
//! allocates or charges: a message that needs a transient buffer (overlapping frames), a
//! page made present, a copy-on-write copy, capabilities or regions takes the ordinary path.
//! So it runs with the recount on too (the books are as the last recount found them).
//!
//! The vector (vectors.s) calls these for `call` / `reply_recv` with a descriptor pointer
//! that is not 0.

use super::*;
use core::mem::offset_of;

/// Where one user range lies: in one present page, at this kernel (linear-map) address.
#[derive(Clone, Copy)]
struct Placed {
    address: usize,
}

/// Whether `[va, va + length)` lies in one page (`va` a user address).
#[inline(always)]
fn in_one_page(va: usize, length: usize) -> bool {
    va < abi::USER_END_ADDRESS && va % PAGE_BYTES + length <= PAGE_BYTES
}

impl Placed {
    /// Another range of the same domain: placed from this one when it lies in the same page
    /// as `at` (one translation for both), else by `place`.
    #[inline(always)]
    fn near(
        self,
        va: usize,
        at: usize,
        length: usize,
        place: impl FnOnce() -> Option<Placed>,
    ) -> Option<Placed> {
        if (va ^ at) < PAGE_BYTES && va % PAGE_BYTES + length <= PAGE_BYTES {
            Some(Placed {
                address: self.address - at % PAGE_BYTES + va % PAGE_BYTES,
            })
        } else {
            place()
        }
    }
}

impl Kernel {
    /// Where `[va, va + length)` of `slot` is in the linear map, when it lies in one present
    /// page (privately writable when `write`: a write would change nothing in the tables).
    #[inline(always)]
    fn placed(&self, slot: usize, va: usize, length: usize, write: bool) -> Option<Placed> {
        if !in_one_page(va, length) {
            return None;
        }
        let descriptor = self.slots[slot]
            .dcb()?
            .tables
            .lookup_inline(va & !(PAGE_BYTES - 1))?;
        if write && !mmu::is_user_writable(descriptor) {
            return None;
        }
        Some(Placed {
            address: mmu::phys_to_virt(mmu::descriptor_address(descriptor)) + va % PAGE_BYTES,
        })
    }

    /// The receive descriptor of `slot`, blocked in a memory-descriptor wait (not a
    /// register-sized one). A domain waiting on its keeper has none (0, which no domain maps:
    /// `placed` refuses it, and the ordinary path answers the fault).
    #[inline(always)]
    fn memory_wait(&self, slot: usize) -> Option<usize> {
        self.slots[slot]
            .dcb()
            .filter(|dcb| !dcb.ipc_registers)
            .map(|dcb| dcb.ipc_receive)
    }

    /// One word of user memory at a placed address.
    #[inline(always)]
    fn word_at(place: Placed, offset: usize) -> usize {
        // SAFETY: `place` is a present user page (8-byte aligned descriptors: the offset is
        // inside the struct that `placed` found in one page), read through the linear map.
        unsafe { core::ptr::read((place.address + offset) as *const usize) }
    }

    /// Stores one word at a placed (privately writable) address.
    #[inline(always)]
    fn set_word_at(place: Placed, offset: usize, value: usize) {
        // SAFETY: as `word_at`; the page is this domain's own, writable, not shared.
        unsafe { core::ptr::write((place.address + offset) as *mut usize, value) }
    }

    /// The message of `sender` at `message` and the receive descriptor of `receiver` at
    /// `receive`, checked for the fast path: data only, both sides placed, no overlap. Returns
    /// what the copy needs: source, destination, length, and the receive descriptor.
    #[inline(always)]
    fn fast_delivery(
        &self,
        sender: usize,
        message: usize,
        receiver: usize,
        receive: usize,
    ) -> Option<(Placed, Placed, usize, Placed)> {
        if !message.is_multiple_of(8) || !receive.is_multiple_of(8) {
            return None;
        }
        let descriptor = self.placed(sender, message, core::mem::size_of::<Message>(), false)?;
        let length = Self::word_at(descriptor, offset_of!(Message, data_length));
        if Self::word_at(descriptor, offset_of!(Message, cap_count)) != 0
            || Self::word_at(descriptor, offset_of!(Message, region_count)) != 0
            || length > PAGE_BYTES
        {
            return None;
        }
        let data = Self::word_at(descriptor, offset_of!(Message, data_address));
        let source = descriptor.near(data, message, length, || {
            self.placed(sender, data, length, false)
        })?;
        let answer = self.placed(receiver, receive, core::mem::size_of::<Receive>(), true)?;
        let buffer = Self::word_at(answer, offset_of!(Receive, buffer_address));
        if length > Self::word_at(answer, offset_of!(Receive, buffer_capacity)) {
            return None;
        }
        // The receive descriptor's page is privately writable, so a buffer in it is too.
        let destination = answer.near(buffer, receive, length, || {
            self.placed(receiver, buffer, length, true)
        })?;
        // Overlapping frames need a transient buffer: the ordinary path's case; so does a
        // buffer over the receive descriptor (the ordinary path writes the descriptor back
        // whole, over the bytes).
        let overlaps = |a: Placed, a_length: usize, b: Placed, b_length: usize| {
            a.address < b.address + b_length && b.address < a.address + a_length
        };
        if length > 0
            && (overlaps(source, length, destination, length)
                || overlaps(destination, length, answer, core::mem::size_of::<Receive>()))
        {
            return None;
        }
        Some((source, destination, length, answer))
    }

    /// The delivery `fast_delivery` checked: the bytes, then the receive descriptor's answer
    /// (as `transfer` writes it back: no capabilities, no regions).
    #[inline(always)]
    fn deliver_fast(source: Placed, destination: Placed, length: usize, answer: Placed) {
        // SAFETY: both ranges are inside present pages of live domains (checked), do not
        // overlap (checked), and are reached through the linear map.
        unsafe {
            core::ptr::copy_nonoverlapping(
                source.address as *const u8,
                destination.address as *mut u8,
                length,
            )
        };
        Self::set_word_at(answer, offset_of!(Receive, data_length), length);
        Self::set_word_at(answer, offset_of!(Receive, cap_count), 0);
        Self::set_word_at(answer, offset_of!(Receive, region_count), 0);
    }

    /// `call(endpoint, message, receive)` when a memory receiver waits at the endpoint's front.
    pub fn fastpath_call_memory(&mut self) -> bool {
        if self.config.transfer != Transfer::Direct || !self.run_queue_empty() {
            return declined();
        }
        let Some(slot) = self.current else {
            return declined();
        };
        let Some((cap, message, reply_receive)) = self
            .registers(slot)
            .map(|frame| (frame.argument(0), frame.argument(1), frame.argument(2)))
        else {
            return declined();
        };
        if message == 0 || reply_receive == 0 || !reply_receive.is_multiple_of(8) {
            return declined();
        }
        let Some(endpoint) = self.endpoint_index(slot, cap, Rights::SEND) else {
            return declined();
        };
        let Some(receiver) = self.endpoints[endpoint]
            .as_ref()
            .and_then(|ep| ep.get().receivers.front().copied())
        else {
            return declined();
        };
        let receiver = usize::from(receiver);
        // A suspended receiver takes the message but must not run: the ordinary path.
        if receiver == slot
            || !matches!(self.slots[receiver].state, RunState::Blocked(_))
            || self.slots[receiver].suspended
        {
            return declined();
        }
        let Some(receive) = self.memory_wait(receiver) else {
            return declined();
        };
        let Some((source, destination, length, answer)) =
            self.fast_delivery(slot, message, receiver, receive)
        else {
            return declined();
        };
        // Commit: as ipc_send + transfer + after_delivery, the result written by
        // system_call, and switch.
        Self::deliver_fast(source, destination, length, answer);
        if let Some(ep) = self.endpoints[endpoint].as_mut() {
            ep.get_mut().receivers.pop_front();
        }
        let generation = self.slots[slot].generation;
        let Ok([caller, callee]) = self.slots.get_disjoint_mut([slot, receiver]) else {
            return declined();
        };
        let (Some(from), Some(to)) = (caller.dcb_mut(), callee.dcb_mut()) else {
            return declined();
        };
        to.frame.set_result(0);
        to.reply_to = Some((slot as u8, generation));
        from.frame.set_result(0);
        from.ipc_receive = reply_receive;
        from.ipc_registers = false;
        let (root, frame) = (to.tables.root().address(), &raw mut to.frame);
        callee.state = RunState::Runnable;
        caller.state = RunState::Blocked(Block::Reply);
        self.enter_prepared(receiver, root, frame);
        true
    }

    /// `reply_recv(endpoint, message, receive)` when the caller waits for a memory reply and
    /// no sender waits at the endpoint.
    pub fn fastpath_reply_recv_memory(&mut self) -> bool {
        if self.config.transfer != Transfer::Direct || !self.run_queue_empty() {
            return declined();
        }
        let Some(slot) = self.current else {
            return declined();
        };
        let Some((cap, message, next_receive, Some((caller, generation)))) =
            self.slots[slot].dcb().map(|dcb| {
                (
                    dcb.frame.argument(0),
                    dcb.frame.argument(1),
                    dcb.frame.argument(2),
                    dcb.reply_to,
                )
            })
        else {
            return declined();
        };
        if message == 0 || next_receive == 0 || !next_receive.is_multiple_of(8) {
            return declined();
        }
        let caller = usize::from(caller);
        if caller == slot
            || self.slots[caller].generation != generation
            || !matches!(self.slots[caller].state, RunState::Blocked(Block::Reply))
            || self.slots[caller].suspended
        {
            return declined();
        }
        let Some(receive) = self.memory_wait(caller) else {
            return declined();
        };
        let Some(endpoint) = self.endpoint_index(slot, cap, Rights::RECEIVE) else {
            return declined();
        };
        let Some(queue) = self.endpoints[endpoint].as_ref().map(ObjectFrame::get) else {
            return declined();
        };
        if !queue.senders.is_empty() || queue.receivers.is_full() {
            return declined();
        }
        let Some((source, destination, length, answer)) =
            self.fast_delivery(slot, message, caller, receive)
        else {
            return declined();
        };
        // Commit: as ipc_reply (transfer, wake the caller), then ipc_recv finding no sender
        // (block_receiver), the result written by system_call, and switch.
        Self::deliver_fast(source, destination, length, answer);
        if let Some(ep) = self.endpoints[endpoint].as_mut() {
            let _ = ep.get_mut().receivers.push_back(slot as u8);
        }
        let Ok([server, client]) = self.slots.get_disjoint_mut([slot, caller]) else {
            return declined();
        };
        let (Some(from), Some(to)) = (server.dcb_mut(), client.dcb_mut()) else {
            return declined();
        };
        to.frame.set_result(0);
        from.frame.set_result(0);
        from.reply_to = None;
        from.ipc_receive = next_receive;
        from.ipc_registers = false;
        let (root, frame) = (to.tables.root().address(), &raw mut to.frame);
        client.state = RunState::Runnable;
        server.state = RunState::Blocked(Block::Recv(endpoint as u8));
        self.enter_prepared(caller, root, frame);
        true
    }
}
