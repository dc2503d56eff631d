//! Keeper-decided charges (`cow = keeper`, `msgbuf = keeper`): before the charge, the kernel
//! asks a keeper which charge set pays, as a charge query ([`abi::FAULT_CHARGE_QUERY`]) sent
//! the way a fault is (keeper.rs), and the domain whose charge it is waits.
//!
//! - A copy-on-write copy: the writer's write fault asks the keeper of the frame's holder (the
//!   domain of its first payer). The writer waits as a faulting domain does, and retries the
//!   write when the answer comes.
//! - A transient message buffer (two-stage transfer): the send asks the sender's own keeper;
//!   the send is made to run again from its `svc` (nothing of it was done) and the sender waits.
//!
//! The answer is [`abi::KEEPER_PAY`] with a charge-set capability of the keeper's with the
//! `create` right: that set pays, against its own limits (the retried charge is made there or
//! denied there, whole: a denial is the domain's over-limit fault as any other). Any other
//! answer is wrong; no keeper to ask, a wrong answer, no answer within
//! [`abi::KEEPER_ANSWER_TICKS`] timer ticks (or a keeper that ends first, or every domain
//! waiting) all give the policy's fallback, the key's default (`writer`, `sender`). Each
//! outcome is counted on the domain (`keeper_choices` in the report) and traced, so a replay
//! decides as the run did. The choice is used by the domain's next keeper-decided charge and
//! then forgotten.
//!
//! Charges the kernel makes while writing into a domain's memory for a system call (a receive
//! buffer's copy-on-write page, a `set_query` answer) and a direct transfer's bounce buffer ask
//! no keeper: they take the fallback without counting (their system call cannot wait half
//! way).

use super::*;
use crate::object::domain::MAX_DOMAINS;
use accounting::{KeeperChoice, Kind};

/// The kind of charge a query asks about (`Cow` or `Msgbuf`).
fn query_kind(fault: Option<abi::Fault>) -> Kind {
    match fault.map(|fault| fault.charge_kind) {
        Some(kind) if kind == Kind::Msgbuf.index() as u64 => Kind::Msgbuf,
        _ => Kind::Cow,
    }
}

impl Kernel {
    /// Before a write fault at `va` of `slot` under `cow = keeper`: true when the write needs
    /// a copy whose payer the holder's keeper is now asked (the writer waits; the fault
    /// handler does nothing more). False when the fault goes on as usual: no copy needed, a
    /// choice made already, or no keeper to ask (then the fallback is recorded).
    #[cold]
    #[inline(never)]
    pub fn ask_cow_keeper(&mut self, slot: usize, va: usize, pc: usize) -> bool {
        let writer = self.slots[slot].account;
        if self.books.keeper_choice(writer).is_some() {
            return false;
        }
        let Some(descriptor) = self.slots[slot]
            .dcb()
            .and_then(|dcb| dcb.tables.lookup(va & !(PAGE_BYTES - 1)))
        else {
            return false;
        };
        if mmu::user_page_access(descriptor) != UserAccess::CopyOnWrite {
            return false;
        }
        let frame = Frame(mmu::descriptor_address(descriptor));
        if self.books.mappers(frame, &self.frames) < 2 {
            return false;
        }
        let holder = self.books.holder(frame, &self.frames).and_then(|holder| {
            (0..MAX_DOMAINS).find(|&s| self.slots[s].is_alive() && self.slots[s].account == holder)
        });
        let endpoint = holder
            .filter(|&holder| holder != slot)
            .and_then(|holder| self.slots[holder].dcb()?.keeper)
            .map(usize::from)
            .filter(|&endpoint| self.endpoints[endpoint].is_some());
        let Some(endpoint) = endpoint else {
            self.books
                .set_keeper_choice(writer, Kind::Cow, KeeperChoice::NoKeeper);
            return false;
        };
        let fault = abi::Fault {
            kind: abi::FAULT_CHARGE_QUERY,
            address: va as u64,
            write: 1,
            pc: pc as u64,
            charge_kind: Kind::Cow.index() as u64,
            charge_bytes: PAGE_BYTES as u64,
            ..abi::Fault::default()
        };
        self.send_charge_query(slot, endpoint, fault);
        true
    }

    /// Before a two-stage send of `pages` buffer pages (the message descriptor at
    /// `message_address`) under `msgbuf = keeper`: true when the sender's keeper is now asked
    /// who pays (the send will run again from its `svc`; the sender waits). False when the send
    /// goes on: a choice made already, or no keeper (the fallback is recorded).
    #[cold]
    #[inline(never)]
    pub(super) fn ask_msgbuf_keeper(
        &mut self,
        slot: usize,
        message_address: usize,
        pages: usize,
    ) -> bool {
        let sender = self.slots[slot].account;
        if self.books.keeper_choice(sender).is_some() {
            return false;
        }
        let endpoint = self.slots[slot]
            .dcb()
            .and_then(|dcb| dcb.keeper)
            .map(usize::from)
            .filter(|&endpoint| self.endpoints[endpoint].is_some());
        let Some(endpoint) = endpoint else {
            self.books
                .set_keeper_choice(sender, Kind::Msgbuf, KeeperChoice::NoKeeper);
            return false;
        };
        let Some(dcb) = self.slots[slot].dcb_mut() else {
            return false;
        };
        dcb.frame.restart_system_call();
        let fault = abi::Fault {
            kind: abi::FAULT_CHARGE_QUERY,
            address: message_address as u64,
            write: 0,
            pc: dcb.frame.pc() as u64,
            charge_kind: Kind::Msgbuf.index() as u64,
            charge_bytes: (pages * PAGE_BYTES) as u64,
            ..abi::Fault::default()
        };
        self.send_charge_query(slot, endpoint, fault);
        true
    }

    /// Sends a charge query for `slot` to the keeper at `endpoint`, with its deadline.
    fn send_charge_query(&mut self, slot: usize, endpoint: usize, fault: abi::Fault) {
        let deadline = self.ticks + abi::KEEPER_ANSWER_TICKS;
        if let Some(dcb) = self.slots[slot].dcb_mut() {
            dcb.query_deadline = deadline;
        }
        log::info!(
            "domain '{}' waits for a keeper to choose who pays ({} bytes)",
            self.slots[slot].name,
            fault.charge_bytes
        );
        self.send_fault(slot, endpoint, fault, false);
    }

    /// The keeper's reply (first words `words`) to the charge query `querying` waits with:
    /// the set it names, or a wrong answer; then the domain retries. [`abi::KEEPER_STOP`]
    /// stops it.
    pub(super) fn answer_charge_query(
        &mut self,
        keeper: usize,
        querying: usize,
        words: [u64; 2],
        fault: Option<abi::Fault>,
    ) {
        if words[0] == abi::KEEPER_STOP {
            self.stop_faulted(querying, fault);
            return;
        }
        let named = (words[0] == abi::KEEPER_PAY)
            .then(|| usize::try_from(words[1]).ok())
            .flatten()
            .and_then(|index| self.set_cap(keeper, index, Rights::CREATE).ok());
        let choice = match named {
            Some(set) => KeeperChoice::Answered(set),
            None => KeeperChoice::Wrong,
        };
        let account = self.slots[querying].account;
        self.books
            .set_keeper_choice(account, query_kind(fault), choice);
        self.resume(querying);
    }

    /// Ends the charge query `querying` waits with, unanswered: the fallback, then it retries.
    /// Takes it out of the keeper endpoint's line, or from the keeper that received it (whose
    /// late reply then finds no caller).
    pub(super) fn expire_charge_query(&mut self, querying: usize) {
        let generation = self.slots[querying].generation;
        match self.slots[querying].state {
            RunState::Blocked(Block::Send(endpoint)) => {
                let line = &mut self.endpoint_mut(usize::from(endpoint)).senders;
                line.remove(querying as u8);
            }
            RunState::Blocked(Block::Reply) => {
                for keeper in 0..MAX_DOMAINS {
                    if let Some(dcb) = self.slots[keeper].dcb_mut() {
                        if dcb.reply_to == Some((querying as u8, generation)) {
                            dcb.reply_to = None;
                        }
                    }
                }
            }
            _ => {}
        }
        let fault = self.slots[querying]
            .dcb_mut()
            .and_then(|dcb| dcb.fault.take());
        let account = self.slots[querying].account;
        self.books
            .set_keeper_choice(account, query_kind(fault), KeeperChoice::Timeout);
        log::info!(
            "domain '{}': its keeper did not choose in time; the fallback pays",
            self.slots[querying].name
        );
        self.resume(querying);
    }

    /// A timer tick: expires the charge queries whose keepers did not answer in time (`all`:
    /// every one, as when every domain waits and none can answer). Returns how many.
    pub fn expire_charge_queries(&mut self, all: bool) -> usize {
        let mut expired = 0;
        for slot in 0..MAX_DOMAINS {
            let due = self.slots[slot].dcb().is_some_and(|dcb| {
                dcb.fault
                    .is_some_and(|fault| fault.kind == abi::FAULT_CHARGE_QUERY)
                    && (all || dcb.query_deadline <= self.ticks)
            });
            if due && matches!(self.slots[slot].state, RunState::Blocked(_)) {
                self.expire_charge_query(slot);
                expired += 1;
            }
        }
        expired
    }
}
