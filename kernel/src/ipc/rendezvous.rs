//! `send`, `recv`, `call`, `reply` with memory descriptors: the direct (KeyKOS/EROS) rendezvous,
//! and the dispatch to the two-stage queue.

use super::*;

impl Kernel {
    /// `send` and `call` (invoke half).
    pub fn ipc_send(
        &mut self,
        slot: usize,
        endpoint: usize,
        message_address: usize,
        message: &Outgoing,
        receive_address: Option<usize>,
    ) -> Result<usize, Error> {
        if self.config.transfer == Transfer::TwoStage {
            return self.send_two_stage(slot, endpoint, message_address, message, receive_address);
        }
        let ep = self.endpoint(endpoint);
        if ep
            .receivers
            .front()
            .is_some_and(|r| self.waits_for_registers(*r as usize))
        {
            // The receiver waits for a register-sized message: the kinds must match.
            return Err(Error::BadArgument);
        }
        if let Some(receiver) = self.endpoint_mut(endpoint).receivers.pop_front() {
            let receiver = receiver as usize;
            let receive = self.slots[receiver]
                .dcb()
                .map(|d| d.ipc_receive)
                .unwrap_or(0);
            match self.transfer(Some(slot), message, receiver, receive) {
                Ok(()) => {
                    self.after_delivery(slot, receiver, receive_address);
                    Ok(0)
                }
                Err(e) => {
                    let _ = self
                        .endpoint_mut(endpoint)
                        .receivers
                        .push_front(receiver as u8);
                    // Refused by a limit, with a keeper to ask: the send sleeps and runs
                    // again from the beginning when the keeper answers (the seed's restart).
                    if e == Error::OverLimit && self.restart_send(slot, message_address) {
                        return Ok(0);
                    }
                    Err(e)
                }
            }
        } else {
            let dcb = self.slots[slot].dcb_mut().ok_or(Error::BadArgument)?;
            dcb.ipc_message = message_address;
            dcb.ipc_receive = receive_address.unwrap_or(0);
            dcb.ipc_calling = receive_address.is_some();
            dcb.ipc_registers = false;
            let _ = self.endpoint_mut(endpoint).senders.push_back(slot as u8);
            self.block_current(Block::Send(endpoint as u8));
            Ok(0)
        }
    }

    /// After a message from `sender` reached `receiver`: the receiver runs again, and a caller
    /// now waits for the reply.
    pub(super) fn after_delivery(
        &mut self,
        sender: usize,
        receiver: usize,
        receive_address: Option<usize>,
    ) {
        self.wake_with(receiver, Ok(0));
        if let Some(receive) = receive_address {
            if let Some(dcb) = self.slots[sender].dcb_mut() {
                dcb.ipc_receive = receive;
                // It waits for a reply through memory descriptors, whatever it waited for
                // before (a register call that ended in an error leaves the flag set).
                dcb.ipc_registers = false;
            }
            let generation = self.slots[sender].generation;
            if let Some(dcb) = self.slots[receiver].dcb_mut() {
                dcb.reply_to = Some((sender as u8, generation));
            }
            if self.current == Some(sender) {
                self.block_current(Block::Reply);
            } else {
                self.slots[sender].state = RunState::Blocked(Block::Reply);
            }
        }
    }

    /// `recv` (invoke half).
    pub fn ipc_recv(
        &mut self,
        slot: usize,
        endpoint: usize,
        receive_address: usize,
    ) -> Result<usize, Error> {
        if self.config.transfer == Transfer::TwoStage && !self.endpoint(endpoint).queue.is_empty() {
            return self
                .deliver_queued(endpoint, slot, receive_address)
                .map(|_| 0);
        }
        while let Some(sender) = self.endpoint_mut(endpoint).senders.pop_front() {
            let sender = sender as usize;
            let Some(dcb) = self.slots[sender].dcb() else {
                continue;
            };
            if dcb.ipc_registers {
                // A register-sized call cannot be received into memory descriptors. (Its stale
                // flag is harmless: every wait sets the flag for itself when it begins.)
                self.wake_with(sender, Err(Error::BadArgument));
                continue;
            }
            if dcb.fault.is_some() {
                // A domain waiting with a fault for its keeper: this receiver is the keeper.
                return match self.deliver_fault(sender, slot, receive_address) {
                    Ok(()) => Ok(0),
                    Err(e) => {
                        // Its descriptor cannot take the fault: the fault stays first in line.
                        let _ = self.endpoint_mut(endpoint).senders.push_front(sender as u8);
                        Err(e)
                    }
                };
            }
            let (message_address, calling, caller_receive) =
                (dcb.ipc_message, dcb.ipc_calling, dcb.ipc_receive);
            let mut message = Outgoing::EMPTY;
            if let Err(e) = self.take_message(sender, message_address, &mut message) {
                if !(e == Error::PagedOut && self.restart_for_missing_page(sender)) {
                    self.wake_with(sender, Err(e));
                }
                continue;
            }
            return match self.transfer(Some(sender), &message, slot, receive_address) {
                Ok(()) => {
                    if calling {
                        self.slots[sender].state = RunState::Blocked(Block::Reply);
                        let generation = self.slots[sender].generation;
                        if let Some(dcb) = self.slots[slot].dcb_mut() {
                            dcb.reply_to = Some((sender as u8, generation));
                        }
                        if let Some(dcb) = self.slots[sender].dcb_mut() {
                            dcb.ipc_receive = caller_receive;
                        }
                    } else {
                        self.wake_with(sender, Ok(0));
                    }
                    Ok(0)
                }
                Err(e) => {
                    // Refused by a limit, a sender with a keeper sleeps for it and will send
                    // again from the beginning.
                    if e == Error::OverLimit && self.restart_send(sender, message_address) {
                        continue;
                    }
                    // A page it needs (the receiver's, or its own) is paged out: the sender
                    // sleeps for that page's keeper and sends again from the beginning.
                    if e == Error::PagedOut && self.restart_for_missing_page(sender) {
                        continue;
                    }
                    // The sender learns why; the receiver goes on to the next waiting sender
                    // (blocking here would leave the others queued beside a waiting
                    // receiver, every one of them waiting for ever: found by the fuzzer).
                    self.wake_with(sender, Err(e));
                    continue;
                }
            };
        }
        self.block_receiver(slot, endpoint, receive_address)
    }
    pub(super) fn block_receiver(
        &mut self,
        slot: usize,
        endpoint: usize,
        receive_address: usize,
    ) -> Result<usize, Error> {
        if let Some(dcb) = self.slots[slot].dcb_mut() {
            dcb.ipc_receive = receive_address;
            dcb.ipc_registers = false;
        }
        let _ = self.endpoint_mut(endpoint).receivers.push_back(slot as u8);
        self.block_current(Block::Recv(endpoint as u8));
        Ok(0)
    }

    /// The caller a `reply` from `slot` answers: the pending `call`'s domain, still waiting
    /// for it (`no-caller` otherwise) through memory descriptors (`bad-argument` when it waits
    /// for a register-sized reply: answer with `reply_recv_registers`). Changes nothing.
    pub(super) fn reply_caller(&self, slot: usize) -> Result<usize, Error> {
        let (caller, generation) = self.slots[slot]
            .dcb()
            .and_then(|d| d.reply_to)
            .ok_or(Error::NoCaller)?;
        let caller = caller as usize;
        if self.slots[caller].generation != generation
            || !matches!(self.slots[caller].state, RunState::Blocked(Block::Reply))
        {
            return Err(Error::NoCaller);
        }
        if self.waits_for_registers(caller) {
            return Err(Error::BadArgument);
        }
        Ok(caller)
    }

    /// `reply` (invoke half): `message` to `caller`, which decode found waiting.
    pub fn ipc_reply(
        &mut self,
        slot: usize,
        caller: usize,
        message: &Outgoing,
    ) -> Result<usize, Error> {
        if self.slots[caller].dcb().is_some_and(|d| d.fault.is_some()) {
            // The caller is a domain waiting on its keeper: the reply is the keeper's answer.
            self.answer_fault(slot, caller, message);
            return Ok(0);
        }
        let receive = self.slots[caller].dcb().map(|d| d.ipc_receive).unwrap_or(0);
        self.transfer(Some(slot), message, caller, receive)?;
        if let Some(dcb) = self.slots[slot].dcb_mut() {
            dcb.reply_to = None;
        }
        self.wake_with(caller, Ok(0));
        Ok(0)
    }
}
