//! Keepers (the seed's process model): a domain whose config names a keeper endpoint sends
//! the faults the kernel does not resolve by itself — an address in no region, an access its
//! pages do not allow, a charge its limit denied — to whoever receives there, as an ordinary
//! message ([`abi::Fault`], with a domain capability to it), and waits.
//!
//! States. The faulting domain is blocked sending (`Block::Send`, in the endpoint's queue of
//! senders) until a keeper receives the fault, then blocked waiting for the keeper's reply
//! (`Block::Reply`, as a `call` waits), and nothing else: its registers are those of the
//! faulting instruction, untouched. The keeper's `reply` (or `reply_recv`) decides: a first
//! data word of [`abi::KEEPER_RETRY`] (or an empty reply) makes it runnable again, to retry
//! the instruction from the beginning — a keeper that raised a limit or mapped memory meanwhile
//! lets it through, one that did nothing gets the same fault again; [`abi::KEEPER_STOP`] stops
//! it as the kernel would have without a keeper. A keeper that ends before answering stops it
//! too. There is no state in which a fault is half handled.

use super::*;
use crate::charge::ChargeError;

impl Kernel {
    /// Sends the current domain's unresolved fault (`error` at `address`, `write`, `pc`) to
    /// its keeper and blocks it; false when it has no keeper (or the fault is not one a keeper
    /// can resolve: a machine out of memory), and the caller stops it as before.
    #[cold]
    #[inline(never)]
    pub fn fault_to_keeper(
        &mut self,
        slot: usize,
        error: ChargeError,
        address: usize,
        write: bool,
        pc: usize,
    ) -> bool {
        let Some(dcb) = self.slots[slot].dcb() else {
            return false;
        };
        let Some(endpoint) = dcb.keeper.map(usize::from) else {
            return false;
        };
        let kind = match error {
            ChargeError::OverLimit => abi::FAULT_OVER_LIMIT,
            ChargeError::PagedOut => abi::FAULT_PAGED_OUT,
            ChargeError::Fault if dcb.region(address).is_none() => abi::FAULT_NO_REGION,
            ChargeError::Fault => abi::FAULT_PROTECTION,
            _ => return false,
        };
        let (charge_kind, charge_bytes) = match error {
            ChargeError::OverLimit => self
                .books
                .last_denial(self.slots[slot].account)
                .unwrap_or((0, 0)),
            _ => (0, 0),
        };
        let fault = abi::Fault {
            kind,
            address: address as u64,
            write: u64::from(write),
            pc: pc as u64,
            charge_kind,
            charge_bytes,
            earlier: 0,
            other: 0,
        };
        self.send_fault(slot, endpoint, fault, false);
        true
    }

    /// A system call of the domain in `slot` (the current one, or a sender waiting in line
    /// whose transfer a receiver's `recv` ran) that failed with [`Error::PagedOut`]: when the
    /// missing page's domain has a keeper, the call is made to run again from the beginning
    /// (nothing of it was done) and the domain waits for that keeper with a
    /// [`abi::FAULT_PAGED_OUT`] fault — its own keeper for its own page, the receiver's for a
    /// receiver's (the seed's restartable send: sleep with nothing held, retry when the page is
    /// back). False when there is no keeper to ask: the caller gets the error.
    pub(crate) fn restart_for_missing_page(&mut self, slot: usize) -> bool {
        let Some((owner, page)) = self.missing_page.take() else {
            return false;
        };
        let owner = usize::from(owner);
        let Some(endpoint) = self.slots[owner]
            .dcb()
            .and_then(|dcb| dcb.keeper)
            .map(usize::from)
        else {
            return false;
        };
        let owner_generation = self.slots[owner].generation;
        let Some(dcb) = self.slots[slot].dcb_mut() else {
            return false;
        };
        dcb.frame.restart_system_call();
        dcb.fault_owner = (owner != slot).then_some((owner as u8, owner_generation));
        let fault = abi::Fault {
            kind: abi::FAULT_PAGED_OUT,
            address: page as u64,
            pc: dcb.frame.pc() as u64,
            other: u64::from(owner != slot),
            ..abi::Fault::default()
        };
        self.send_fault(slot, endpoint, fault, true);
        true
    }

    /// At the end of a trap, before the current domain runs on: while a set on its path to the
    /// root pays more than its `high` bound, and more than when it last asked, and it has a
    /// keeper, it asks the keeper to reclaim ([`abi::FAULT_OVER_HIGH`]; cgroup v2's
    /// `memory.high`, where the kernel reclaims on the way back to user mode) and waits for
    /// the answer, then goes on from where it was. Each domain asked blocks, so the next one
    /// the scheduler picks is asked in turn.
    #[cold]
    #[inline(never)]
    pub fn ask_keepers_over_high(&mut self) {
        while let Some(slot) = self.current {
            let entry = &self.slots[slot];
            if entry.state != RunState::Runnable || entry.suspended {
                return;
            }
            let Some(dcb) = entry.dcb() else { return };
            let Some(endpoint) = dcb.keeper.map(usize::from) else {
                return;
            };
            let over = self.books.over_high(entry.account);
            let Some(dcb) = self.slots[slot].dcb_mut() else {
                return;
            };
            let Some((set, usage, high)) = over else {
                dcb.high_mark = 0;
                return;
            };
            let asked = usage > dcb.high_mark;
            dcb.high_mark = usage;
            if !asked {
                return;
            }
            let pc = dcb.frame.pc() as u64;
            let account = self.slots[slot].account;
            self.books
                .note_paging(account, accounting::PagingEvent::OverHigh(set));
            let fault = abi::Fault {
                kind: abi::FAULT_OVER_HIGH,
                pc,
                charge_kind: u64::from(set.0),
                charge_bytes: usage - high,
                ..abi::Fault::default()
            };
            self.send_fault(slot, endpoint, fault, false);
            self.switch();
        }
    }

    /// A direct `send` or `call` of the message at `message_address` whose transfer a limit
    /// denied (at once, or later in the receiver's `recv`): when the sender has a keeper, the system call is made to run again from the
    /// beginning (nothing of it was done: the transfer changed nothing), and the sender waits
    /// for its keeper with a [`abi::FAULT_SEND_OVER_LIMIT`] fault; false when it has none
    /// (the sender gets the error, as before).
    pub(super) fn restart_send(&mut self, slot: usize, message_address: usize) -> bool {
        let Some(dcb) = self.slots[slot].dcb_mut() else {
            return false;
        };
        let Some(endpoint) = dcb.keeper.map(usize::from) else {
            return false;
        };
        dcb.frame.restart_system_call();
        let fault = abi::Fault {
            kind: abi::FAULT_SEND_OVER_LIMIT,
            address: message_address as u64,
            write: 0,
            pc: dcb.frame.pc() as u64,
            ..abi::Fault::default()
        };
        self.send_fault(slot, endpoint, fault, true);
        true
    }

    /// Sends `fault` of the domain in `slot` (the current one, or a sender waiting in line
    /// whose transfer a receiver's `recv` found refused) to the keeper endpoint `endpoint` and
    /// blocks it: to a keeper waiting there at once, else in line. `restart`: the fault is a
    /// system call that runs again from the beginning when answered (counted as a restart).
    pub(super) fn send_fault(
        &mut self,
        slot: usize,
        endpoint: usize,
        mut fault: abi::Fault,
        restart: bool,
    ) {
        let Some(dcb) = self.slots[slot].dcb_mut() else {
            return;
        };
        fault.earlier = dcb.faults_sent;
        let kind = fault.kind;
        let address = fault.address;
        dcb.fault = Some(fault);
        let account = self.slots[slot].account;
        // A charge query is counted by its outcome (`keeper_choices`), not as a fault.
        if kind != abi::FAULT_CHARGE_QUERY {
            self.books.note_keeper_fault(account, restart);
        }
        let Some(dcb) = self.slots[slot].dcb_mut() else {
            return;
        };
        dcb.faults_sent += 1;
        // No receive descriptor (the fast paths then leave its keeper's answer to the
        // ordinary path) and no register-sized wait.
        dcb.ipc_receive = 0;
        dcb.ipc_registers = false;
        log::info!(
            "domain '{}' sends a fault (kind {kind}) at {address:#x} to its keeper",
            self.slots[slot].name
        );
        // A keeper waiting at the endpoint takes it now; otherwise the domain waits in line.
        let waiting = self
            .endpoint(endpoint)
            .receivers
            .front()
            .map(|r| usize::from(*r))
            .filter(|&r| !self.waits_for_registers(r));
        if let Some(keeper) = waiting {
            let _ = self.endpoint_mut(endpoint).receivers.pop_front();
            let receive = self.slots[keeper].dcb().map_or(0, |d| d.ipc_receive);
            match self.deliver_fault(slot, keeper, receive) {
                Ok(()) => {
                    self.wake_with(keeper, Ok(0));
                    return;
                }
                // The keeper's receive descriptor cannot take it: the keeper learns why, and
                // the fault waits for its next receive.
                Err(e) => self.wake_with(keeper, Err(e)),
            }
        }
        let _ = self.endpoint_mut(endpoint).senders.push_back(slot as u8);
        self.slots[slot].state = RunState::Blocked(Block::Send(endpoint as u8));
    }

    /// Gives the fault `faulting` waits with to `keeper`, receiving at `receive_address`: the
    /// fault's words as the data, a domain capability to `faulting` as the one capability (the
    /// one the keeper holds already, if it does);
    /// then `faulting` waits for the keeper's reply. Changes nothing on an error.
    pub(super) fn deliver_fault(
        &mut self,
        faulting: usize,
        keeper: usize,
        receive_address: usize,
    ) -> Result<(), Error> {
        let Some(fault) = self.slots[faulting].dcb().and_then(|d| d.fault) else {
            return Err(Error::BadArgument);
        };
        let mut receive: Receive = read_struct(self, keeper, receive_address)?;
        if receive.buffer_capacity < abi::Fault::BYTES {
            return Err(Error::ReceiverTooSmall);
        }
        let generation = self.slots[faulting].generation;
        // A fault about another domain's page (a receiver's its send needs) brings a
        // capability to that domain: the one whose page the keeper brings back.
        let (slot, owner_generation) = self.slots[faulting]
            .dcb()
            .and_then(|d| d.fault_owner)
            .unwrap_or((faulting as u8, generation));
        let object = Object::Domain {
            slot,
            generation: owner_generation,
        };
        // The keeper's capability to the domain, if it holds one with every right already
        // (every fault would otherwise take a slot of its table), else a new one in a free
        // slot.
        // The keeper of a holder asked who pays for another domain's copy gets to inspect
        // that domain, not to control it.
        let rights = if fault.kind == abi::FAULT_CHARGE_QUERY {
            Rights::INSPECT
        } else {
            Rights::DOMAIN
        };
        let held = self.slots[keeper].caps().and_then(|caps| {
            caps.caps
                .iter()
                .position(|c| c.object() == object && c.rights == rights)
        });
        if held.is_none()
            && !self.slots[keeper]
                .caps()
                .is_some_and(|caps| caps.has_room())
        {
            return Err(Error::ReceiverTooSmall);
        }
        let sender = self.slots[keeper].account;
        self.prepare_writes(
            keeper,
            &[
                (receive_address, core::mem::size_of::<Receive>()),
                (receive.buffer_address, abi::Fault::BYTES),
            ],
            &mut [],
            sender,
        )?;
        // Nothing can fail from here on.
        let mut bytes = [0u8; abi::Fault::BYTES];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(fault.words()) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        self.copy_to_user(keeper, receive.buffer_address, &bytes);
        let cap = self.mint(object, rights, 0);
        let Some(caps) = self.slots[keeper].caps_mut() else {
            return Err(Error::BadArgument);
        };
        receive.caps[0] = match held {
            Some(index) => index,
            None => caps
                .insert(cap)
                .unwrap_or_else(|_| crate::panic::kernel_bug("no room for a checked capability")),
        };
        receive.cap_count = 1;
        receive.data_length = abi::Fault::BYTES;
        receive.region_count = 0;
        write_struct(self, keeper, receive_address, &receive);
        if let Some(dcb) = self.slots[keeper].dcb_mut() {
            dcb.reply_to = Some((faulting as u8, generation));
        }
        self.slots[faulting].state = RunState::Blocked(Block::Reply);
        Ok(())
    }

    /// The keeper's answer (`message`, its reply) to the fault `faulting` waits with: retry
    /// or stop.
    pub(super) fn answer_fault(&mut self, keeper: usize, faulting: usize, message: &Outgoing) {
        let mut word = [0u8; 8];
        if message.length >= 8 {
            // Decode checked the reply's data readable.
            let _ = self.copy_from_user(keeper, message.data_address, &mut word);
        }
        if let Some(dcb) = self.slots[keeper].dcb_mut() {
            dcb.reply_to = None;
        }
        let fault = self.slots[faulting].dcb_mut().and_then(|d| {
            d.fault_owner = None;
            d.fault.take()
        });
        if fault.is_some_and(|f| f.kind == abi::FAULT_CHARGE_QUERY) {
            let mut second = [0u8; 8];
            if message.length >= 16 {
                let _ = self.copy_from_user(keeper, message.data_address + 8, &mut second);
            }
            let words = [u64::from_le_bytes(word), u64::from_le_bytes(second)];
            self.answer_charge_query(keeper, faulting, words, fault);
            return;
        }
        if u64::from_le_bytes(word) == abi::KEEPER_STOP {
            self.stop_faulted(faulting, fault);
        } else {
            self.resume(faulting);
        }
    }

    /// Stops a domain whose fault its keeper will not resolve, as the kernel would have stopped
    /// it without a keeper.
    pub(super) fn stop_faulted(&mut self, faulting: usize, fault: Option<abi::Fault>) {
        let reason = match fault.map(|f| f.kind) {
            Some(abi::FAULT_OVER_LIMIT | abi::FAULT_OVER_HIGH) => accounting::StopReason::OverLimit,
            _ => accounting::StopReason::Fault,
        };
        log::warn!(
            "domain '{}' stopped ({}): its keeper did not resolve its fault",
            self.slots[faulting].name,
            reason.name()
        );
        self.teardown(faulting, RunState::Stopped(reason));
    }
}
