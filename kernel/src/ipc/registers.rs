//! Register-sized messages: `call_registers` and `reply_recv_registers` carry four words each
//! way in x1..x4, with no memory and no charges.

use super::*;

impl Kernel {
    /// Whether a blocked domain waits in a register-sized operation.
    pub(super) fn waits_for_registers(&self, slot: usize) -> bool {
        self.slots[slot].dcb().is_some_and(|d| d.ipc_registers)
    }

    /// `call_registers`: hands the four words in the caller's x1..x4 to a receiver waiting in
    /// `reply_recv_registers` (or queues the caller until one arrives), then the caller waits
    /// for the reply. No memory is touched and nothing is charged.
    pub fn call_registers(
        &mut self,
        slot: usize,
        endpoint: usize,
        frame: &TrapFrame,
    ) -> Result<usize, Error> {
        let generation = self.slots[slot].generation;
        let ep = self.endpoint(endpoint);
        match ep.receivers.front().copied().map(usize::from) {
            Some(receiver) if self.waits_for_registers(receiver) => {
                self.endpoint_mut(endpoint).receivers.pop_front();
                if let Some(dcb) = self.slots[receiver].dcb_mut() {
                    dcb.frame.x[1..5].copy_from_slice(&frame.x[1..5]);
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
    /// x1..x4, then takes the next register call from the endpoint, its words into x1..x4, or
    /// waits for one.
    pub fn reply_recv_registers(
        &mut self,
        slot: usize,
        endpoint: usize,
        frame: &mut TrapFrame,
    ) -> Result<usize, Error> {
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
                if let Some(dcb) = self.slots[caller].dcb_mut() {
                    dcb.frame.x[1..5].copy_from_slice(&frame.x[1..5]);
                    dcb.ipc_registers = false;
                }
                self.wake(caller, 0);
            }
        }
        self.receive_registers(slot, endpoint, frame)
    }

    /// The receiving half of `reply_recv_registers`: the next register call from the endpoint,
    /// its words into x1..x4, or a wait for one.
    pub(super) fn receive_registers(
        &mut self,
        slot: usize,
        endpoint: usize,
        frame: &mut TrapFrame,
    ) -> Result<usize, Error> {
        let ep = self.endpoint(endpoint);
        match ep.senders.front().copied().map(usize::from) {
            Some(sender) if self.waits_for_registers(sender) => {
                self.endpoint_mut(endpoint).senders.pop_front();
                let generation = self.slots[sender].generation;
                if let Some(dcb) = self.slots[sender].dcb() {
                    frame.x[1..5].copy_from_slice(&dcb.frame.x[1..5]);
                }
                self.slots[sender].state = RunState::Blocked(Block::Reply);
                if let Some(dcb) = self.slots[slot].dcb_mut() {
                    dcb.reply_to = Some((sender as u8, generation));
                }
                Ok(0)
            }
            Some(_) => {
                self.bounce_memory_senders(endpoint);
                self.receive_registers(slot, endpoint, frame)
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
