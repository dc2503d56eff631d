//! Two-stage (Mach) transfer: a send copies the message into queued kernel buffer frames and
//! returns; a receive takes the first queued message and answers its caller.

use super::*;

impl Kernel {
    pub(super) fn send_two_stage(
        &mut self,
        slot: usize,
        endpoint: usize,
        message_address: usize,
        message: &Outgoing,
        receive_address: Option<usize>,
    ) -> Result<usize, Error> {
        if !message.regions.is_empty() {
            return Err(Error::BadArgument);
        }
        let ep = self.endpoint(endpoint);
        if ep.queue.is_full() {
            return Err(Error::QueueFull);
        }
        let pages = message.length.div_ceil(PAGE_BYTES);
        let keeper_decides = pages > 0 && self.books.keeper_decides_msgbuf();
        if keeper_decides && self.ask_msgbuf_keeper(slot, message_address, pages) {
            // The send runs again from its `svc` when the keeper has chosen.
            return Ok(0);
        }
        let ep = self.endpoint(endpoint);
        let payer_receiver = ep
            .receivers
            .front()
            .map(|r| self.slots[*r as usize].account)
            .or(ep.owner)
            .unwrap_or(message.sender);
        let count = message.length.div_ceil(PAGE_BYTES);
        let frames = self.allocate_buffers(count, message.sender, payer_receiver);
        if keeper_decides {
            self.books.clear_keeper_choice(message.sender);
        }
        let frames = frames?;
        if let Err(e) =
            self.fill_buffers(slot, message.data_address, message.length, &frames[..count])
        {
            self.free_buffers(&frames[..count]);
            return Err(e);
        }
        // The capabilities travel as the sender's (each made for the receiver when it takes
        // the message); revoking one meanwhile takes it out of the message.
        let mut caps = [Capability::EMPTY; MAX_MESSAGE_CAPS];
        caps[..message.caps.len()].copy_from_slice(&message.caps);
        let caller = receive_address.map(|_| (slot as u8, self.slots[slot].generation));
        let queued = Queued {
            sender: message.sender,
            caller,
            length: message.length,
            frames,
            caps,
            cap_count: message.caps.len(),
        };
        let _ = self.endpoint_mut(endpoint).queue.push_back(queued);
        if let Some(receiver) = self.endpoint_mut(endpoint).receivers.pop_front() {
            let receiver = receiver as usize;
            let receive = self.slots[receiver]
                .dcb()
                .map(|d| d.ipc_receive)
                .unwrap_or(0);
            match self.deliver_queued(endpoint, receiver, receive) {
                Ok(()) => self.wake_with(receiver, Ok(0)),
                Err(e) => self.wake_with(receiver, Err(e)),
            }
        }
        if let Some(receive) = receive_address {
            // A call in two-stage mode still waits for its reply (through memory descriptors).
            if let Some(dcb) = self.slots[slot].dcb_mut() {
                dcb.ipc_receive = receive;
                dcb.ipc_registers = false;
            }
            self.block_current(Block::Reply);
        }
        Ok(0)
    }

    /// Gives the first queued message of `endpoint` to `receiver`; on failure it stays queued.
    pub(super) fn deliver_queued(
        &mut self,
        endpoint: usize,
        receiver: usize,
        receive_address: usize,
    ) -> Result<(), Error> {
        let Some(queued) = self.endpoint(endpoint).queue.front().copied() else {
            return Err(Error::BadArgument);
        };
        let mut caps = Vec::new();
        for cap in queued.caps[..queued.cap_count]
            .iter()
            .filter(|c| !c.is_empty())
        {
            let _ = caps.push(*cap);
        }
        let message = Outgoing {
            sender: queued.sender,
            data_address: 0,
            length: queued.length,
            caps,
            regions: Vec::new(),
            buffered: Some(queued.frames),
        };
        self.transfer(None, &message, receiver, receive_address)?;
        self.endpoint_mut(endpoint).queue.pop_front();
        if let Some(caller) = queued.caller {
            // The receiver of a queued call answers that caller (and no other).
            if let Some(dcb) = self.slots[receiver].dcb_mut() {
                dcb.reply_to = Some(caller);
            }
        }
        self.free_buffers(&queued.frames[..queued.length.div_ceil(PAGE_BYTES)]);
        Ok(())
    }
}
