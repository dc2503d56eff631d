//! Register-sized messages: `call` and `reply_recv` with no descriptors (and their aliases
//! `call_registers`, `reply_recv_registers`) carry four words each way in x3..x6, with no
//! memory and no charges.

use super::*;

impl Kernel {
    /// The four message words in the saved registers of the domain in `slot`.
    #[inline]
    fn words(&self, slot: usize) -> [u64; 4] {
        self.registers(slot)
            .map_or([0; 4], |frame| frame.message_words())
    }

    /// Whether a blocked domain waits in a register-sized operation.
    pub(super) fn waits_for_registers(&self, slot: usize) -> bool {
        self.slots[slot].dcb().is_some_and(|d| d.ipc_registers)
    }

    /// `call_registers`: hands the four words in the caller's x3..x6 to a receiver waiting in
    /// `reply_recv_registers` (or queues the caller until one arrives), then the caller waits
    /// for the reply. No memory is touched and nothing is charged.
    pub fn call_registers(&mut self, slot: usize, endpoint: usize) -> Result<usize, Error> {
        let words = self.words(slot);
        let generation = self.slots[slot].generation;
        let ep = self.endpoint(endpoint);
        match ep.receivers.front().copied().map(usize::from) {
            Some(receiver) if self.waits_for_registers(receiver) => {
                self.endpoint_mut(endpoint).receivers.pop_front();
                if let Some(dcb) = self.slots[receiver].dcb_mut() {
                    dcb.frame.set_message_words(&words);
                    dcb.reply_to = Some((slot as u8, generation));
                    dcb.ipc_registers = false;
                }
                self.wake(receiver, 0);
                self.block_current(Block::Reply);
            }
            Some(_) => return Err(Error::BadArgument),
            None => {
                let _ = self.endpoint_mut(endpoint).senders.push_back(slot as u8);
                if let Some(dcb) = self.slots[slot].dcb_mut() {
                    dcb.ipc_calling = true;
                }
                self.block_current(Block::Send(endpoint as u8));
            }
        }
        if let Some(dcb) = self.slots[slot].dcb_mut() {
            dcb.ipc_registers = true;
        }
        Ok(0)
    }

    /// `reply_recv_registers`: answers the pending register call (if any) with the words in
    /// x3..x6, then takes the next register call from the endpoint, its words into x3..x6, or
    /// waits for one.
    pub fn reply_recv_registers(&mut self, slot: usize, endpoint: usize) -> Result<usize, Error> {
        if let Some((caller, generation)) = self.slots[slot].dcb().and_then(|d| d.reply_to) {
            let caller = caller as usize;
            let waiting = self.slots[caller].generation == generation
                && matches!(self.slots[caller].state, RunState::Blocked(Block::Reply));
            if waiting && !self.waits_for_registers(caller) {
                return Err(Error::BadArgument);
            }
            if let Some(dcb) = self.slots[slot].dcb_mut() {
                dcb.reply_to = None;
            }
            if waiting {
                let words = self.words(slot);
                if let Some(dcb) = self.slots[caller].dcb_mut() {
                    dcb.frame.set_message_words(&words);
                    dcb.ipc_registers = false;
                }
                self.wake(caller, 0);
            }
        }
        self.receive_registers(slot, endpoint)
    }

    /// The receiving half of `reply_recv_registers`: the next register call from the endpoint,
    /// its words into x3..x6, or a wait for one.
    pub(super) fn receive_registers(
        &mut self,
        slot: usize,
        endpoint: usize,
    ) -> Result<usize, Error> {
        let ep = self.endpoint(endpoint);
        match ep.senders.front().copied().map(usize::from) {
            Some(sender) if self.waits_for_registers(sender) => {
                self.endpoint_mut(endpoint).senders.pop_front();
                let generation = self.slots[sender].generation;
                let words = self.words(sender);
                if let Some(frame) = self.registers_mut(slot) {
                    frame.set_message_words(&words);
                }
                self.slots[sender].state = RunState::Blocked(Block::Reply);
                if let Some(dcb) = self.slots[slot].dcb_mut() {
                    dcb.reply_to = Some((sender as u8, generation));
                }
                Ok(0)
            }
            Some(_) => {
                self.bounce_memory_senders(endpoint);
                self.receive_registers(slot, endpoint)
            }
            None => {
                let _ = self.endpoint_mut(endpoint).receivers.push_back(slot as u8);
                if let Some(dcb) = self.slots[slot].dcb_mut() {
                    dcb.ipc_registers = true;
                }
                self.block_current(Block::Recv(endpoint as u8));
                Ok(0)
            }
        }
    }

    /// Senders with memory descriptors at the front of `endpoint`, where a register receiver
    /// waits, cannot be received in registers: each learns so (as `recv` bounces register
    /// calls) until a register call or nothing is first.
    #[cold]
    #[inline(never)]
    pub(super) fn bounce_memory_senders(&mut self, endpoint: usize) {
        while let Some(sender) = self.endpoint(endpoint).senders.front().copied() {
            let sender = usize::from(sender);
            if self.waits_for_registers(sender) {
                break;
            }
            self.endpoint_mut(endpoint).senders.pop_front();
            self.wake_with(sender, Err(Error::BadArgument));
        }
    }
}

/// The fast path (seL4's design): the two register-sized operations in the common case — the
/// other party already waiting, nothing else runnable — completed without decode, invoke or the
/// run queue, with exactly the outcome of the ordinary path. Every check is made before
/// anything changes; any failed check returns `false` and the ordinary path runs unchanged.
/// Both parties' control blocks are borrowed together once (`get_disjoint_mut`), and the one
/// switched to is entered with what was read from it on the way. The vector (vectors.s) calls
/// them only for a register-sized call: number 18 or 19, or 13 or 15 with x1 = x2 = 0. They run
/// with the recount on too: they never touch the books, so the recount the ordinary path
/// makes after a system call would find them as the last one left them (and the scenario
/// suite, which runs with the recount on, exercises the fast paths).
impl Kernel {
    /// `call_registers` when a register receiver waits at the endpoint's front: the words go
    /// to it, the caller waits for the reply, and the receiver runs next.
    pub fn fastpath_call(&mut self) -> bool {
        if !self.run_queue_empty() {
            return declined();
        }
        let Some(slot) = self.current else {
            return declined();
        };
        let Some(cap) = self.registers(slot).map(|frame| frame.argument(0)) else {
            return declined();
        };
        let Some(endpoint) = self.endpoint_index(slot, cap, Rights::SEND) else {
            return declined();
        };
        let Some(ep) = self.endpoints[endpoint].as_mut().map(ObjectFrame::get_mut) else {
            return declined();
        };
        let Some(receiver) = ep.receivers.front().copied().map(usize::from) else {
            return declined();
        };
        let Ok([caller, callee]) = self.slots.get_disjoint_mut([slot, receiver]) else {
            return declined();
        };
        if !matches!(callee.state, RunState::Blocked(Block::Recv(_))) || callee.suspended {
            return declined();
        }
        let generation = caller.generation;
        let (Some(from), Some(to)) = (caller.dcb_mut(), callee.dcb_mut()) else {
            return declined();
        };
        if !to.ipc_registers {
            return declined();
        }
        // Commit: as call_registers, the result written by system_call, and switch.
        ep.receivers.pop_front();
        to.frame.set_result(0);
        to.frame.copy_message_from(&from.frame);
        to.reply_to = Some((slot as u8, generation));
        to.ipc_registers = false;
        from.frame.set_result(0);
        from.ipc_registers = true;
        let (root, frame) = (to.tables.root().address(), &raw mut to.frame);
        callee.state = RunState::Runnable;
        caller.state = RunState::Blocked(Block::Reply);
        self.enter_prepared(receiver, root, frame);
        true
    }

    /// `reply_recv_registers` when the caller it answers waits for a register reply and no
    /// sender waits at the endpoint: the words go to the caller, this domain waits at the
    /// endpoint, and the caller runs next.
    pub fn fastpath_reply_recv(&mut self) -> bool {
        if !self.run_queue_empty() {
            return declined();
        }
        let Some(slot) = self.current else {
            return declined();
        };
        let Some((cap, Some((caller, generation)))) = self.slots[slot]
            .dcb()
            .map(|dcb| (dcb.frame.argument(0), dcb.reply_to))
        else {
            return declined();
        };
        let caller = usize::from(caller);
        let Some(endpoint) = self.endpoint_index(slot, cap, Rights::RECEIVE) else {
            return declined();
        };
        let Some(ep) = self.endpoints[endpoint].as_mut().map(ObjectFrame::get_mut) else {
            return declined();
        };
        if !ep.senders.is_empty() || ep.receivers.is_full() {
            return declined();
        }
        let Ok([server, client]) = self.slots.get_disjoint_mut([slot, caller]) else {
            return declined();
        };
        if client.generation != generation
            || !matches!(client.state, RunState::Blocked(Block::Reply))
            || client.suspended
        {
            return declined();
        }
        let (Some(from), Some(to)) = (server.dcb_mut(), client.dcb_mut()) else {
            return declined();
        };
        if !to.ipc_registers {
            return declined();
        }
        // Commit: as reply_recv_registers, receive_registers with no sender, the result
        // written by system_call, and switch.
        let _ = ep.receivers.push_back(slot as u8);
        to.frame.set_result(0);
        to.frame.copy_message_from(&from.frame);
        to.ipc_registers = false;
        from.frame.set_result(0);
        from.reply_to = None;
        from.ipc_registers = true;
        let (root, frame) = (to.tables.root().address(), &raw mut to.frame);
        client.state = RunState::Runnable;
        server.state = RunState::Blocked(Block::Recv(endpoint as u8));
        self.enter_prepared(caller, root, frame);
        true
    }
}
