//! The domain system calls, decode then invoke: `spawn`, `wait`, `set_keeper` and
//! `domain_map` (a `map` into another domain's space, decoded as `map` is).
//!
//! `spawn`'s invoke reserves before it commits, like every call's: the new domain's objects,
//! image, tables and shared regions are built and every charge reserved in one ledger batch
//! before anything is committed ([`Kernel::create_domain`]); refused, it leaves nothing behind.

use super::Call;
use crate::arch::aarch64::mmu::PAGE_BYTES;
use crate::kernel::Kernel;
use crate::object::capability::{Capability, Object};
use crate::object::domain::{Block, RunState};
use abi::{Error, Rights, SharedRegion, SpawnRequest, Syscall};
use accounting::SetId;
use heapless::Vec;

impl Kernel {
    /// Decodes the domain calls: every argument, capability and user pointer checked; nothing changes.
    #[inline(always)]
    pub(super) fn decode_domain(
        &mut self,
        slot: usize,
        call: Syscall,
        args: [usize; 5],
    ) -> Result<Call, Error> {
        Ok(match call {
            Syscall::Spawn => {
                let mut raw = [0u8; core::mem::size_of::<SpawnRequest>()];
                self.copy_from_user(slot, args[0], &mut raw)?;
                let word = |i: usize| {
                    usize::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default())
                };
                let program = self.read_name(slot, word(0), word(1))?;
                let name = self.read_name(slot, word(2), word(3))?;
                let (regions_address, count) = (word(4), word(5));
                let cap_count = word(6 + abi::MAX_SPAWN_CAPS);
                if cap_count > abi::MAX_SPAWN_CAPS {
                    return Err(Error::BadArgument);
                }
                // Each passed capability as its index and the rights it keeps (small: the
                // decoded call is moved about; invoke looks each up again, unchanged since).
                let mut caps = Vec::<_, { abi::MAX_SPAWN_CAPS }>::new();
                for i in 0..cap_count {
                    let (index, _) = abi::split_cap_word(word(6 + i))?;
                    let cap = self.passed_capability(slot, word(6 + i))?;
                    let _ = caps.push((index as u8, cap.rights));
                }
                let set = self.set_cap(slot, args[1], Rights::CREATE)?;
                if count > abi::MAX_SPAWN_REGIONS {
                    return Err(Error::BadArgument);
                }
                let mut raw = [0u8; core::mem::size_of::<SharedRegion>() * abi::MAX_SPAWN_REGIONS];
                let length = count * core::mem::size_of::<SharedRegion>();
                self.copy_from_user(slot, regions_address, &mut raw[..length])?;
                let mut regions = Vec::new();
                for chunk in raw[..length].chunks_exact(core::mem::size_of::<SharedRegion>()) {
                    let address = usize::from_le_bytes(chunk[0..8].try_into().unwrap_or_default());
                    let pages = usize::from_le_bytes(chunk[8..16].try_into().unwrap_or_default());
                    if !address.is_multiple_of(PAGE_BYTES) || pages == 0 {
                        return Err(Error::BadArgument);
                    }
                    let region = SharedRegion { address, pages };
                    self.check_owned_writable(slot, &region)?;
                    let _ = regions.push(region);
                }
                if crate::programs::find(&program).is_none() {
                    return Err(Error::UnknownProgram);
                }
                // Slots are taken never-used first, lowest first: the ones ever used are a
                // prefix of the table, and the scan stops at the first never used.
                if self
                    .slots
                    .iter()
                    .take_while(|s| s.generation != 0)
                    .any(|s| s.name == name)
                {
                    return Err(Error::BadArgument);
                }
                if !self.slots[slot].caps().is_some_and(|c| c.has_room()) {
                    return Err(Error::TableFull);
                }
                Call::Spawn {
                    program,
                    name,
                    set,
                    regions,
                    caps,
                }
            }
            Syscall::Wait => {
                let target = self.domain_cap(slot, args[0], Rights::INSPECT)?;
                if target == slot {
                    return Err(Error::Deadlock);
                }
                Call::Wait { slot: target }
            }
            Syscall::SetKeeper => {
                let target = self.domain_or_self(slot, args[0], Rights::CONTROL)?;
                let endpoint = match args[1] {
                    abi::NO_KEEPER => None,
                    index => Some(self.endpoint_cap(slot, index, Rights::SEND)? as u8),
                };
                if !self.slots[target].is_alive() {
                    return Err(Error::BadArgument);
                }
                Call::SetKeeper { target, endpoint }
            }
            Syscall::DomainSuspend | Syscall::DomainResume => {
                let target = self.domain_cap(slot, args[0], Rights::CONTROL)?;
                if target == slot || !self.slots[target].is_alive() {
                    return Err(Error::BadArgument);
                }
                Call::Suspend {
                    slot,
                    target,
                    suspend: call == Syscall::DomainSuspend,
                }
            }
            Syscall::DomainStatus => {
                let target = self.domain_or_self(slot, args[0], Rights::INSPECT)?;
                let address = args[1];
                if !address.is_multiple_of(8) {
                    return Err(Error::BadArgument);
                }
                self.prepare_user_write(slot, address, abi::DomainStatus::BYTES)?;
                Call::DomainStatus { target, address }
            }
            Syscall::DomainMap => {
                let target = self.domain_or_self(slot, args[0], Rights::CONTROL)?;
                self.decode_map(target, args[1], args[2], args[3])?
            }
            _ => return Err(Error::BadSyscall),
        })
    }

    /// `wait`: the exit code of the domain in `target`, or the caller blocks until it ends.
    pub(super) fn wait(&mut self, target: usize) -> Result<usize, Error> {
        match self.slots[target].state {
            RunState::Exited(code) => Ok(code as u32 as usize),
            RunState::Stopped(_) => Ok(abi::WAIT_STOPPED),
            _ => {
                self.block_current(Block::Wait(target as u8));
                Ok(0)
            }
        }
    }

    /// `domain_suspend` / `domain_resume`: `target` is not scheduled until resumed. A suspended
    /// domain leaves the run queue (when it is in it); resumed and runnable, it goes back.
    pub fn suspend(&mut self, slot: usize, target: usize, suspend: bool) -> Result<usize, Error> {
        let entry = &mut self.slots[target];
        if entry.suspended == suspend {
            return Ok(0);
        }
        entry.suspended = suspend;
        entry.suspender = slot as u8;
        if suspend {
            self.run_queue.remove(target as u8);
        } else if matches!(entry.state, RunState::Runnable) {
            let _ = self.run_queue.push_back(target as u8);
        }
        Ok(0)
    }

    /// `domain_status`: `target`'s state in the process model, what it waits for, whether it is
    /// suspended and its registers, written to `address` of `slot` (decode made it writable).
    pub(super) fn domain_status(&mut self, slot: usize, target: usize, address: usize) -> usize {
        let entry = &self.slots[target];
        let (state, detail) = match entry.state {
            RunState::Runnable => (abi::STATUS_RUNNABLE, 0),
            RunState::Blocked(Block::Send(endpoint)) => (abi::STATUS_SEND, u64::from(endpoint)),
            RunState::Blocked(Block::Recv(endpoint)) => (abi::STATUS_RECV, u64::from(endpoint)),
            RunState::Blocked(Block::Reply) => (abi::STATUS_REPLY, 0),
            RunState::Blocked(Block::Wait(waited)) => (abi::STATUS_WAIT, u64::from(waited)),
            RunState::Blocked(Block::Sleep) => (abi::STATUS_SLEEP, 0),
            RunState::Exited(code) => (abi::STATUS_EXITED, u64::from(code as u32)),
            RunState::Stopped(reason) => (abi::STATUS_STOPPED, reason.index() as u64),
        };
        let mut status = abi::DomainStatus {
            state,
            detail,
            suspended: u64::from(entry.suspended),
            ..abi::DomainStatus::default()
        };
        if let Some(dcb) = entry.dcb() {
            let (x, sp, pc, pstate) = dcb.frame.user_registers();
            status.x = x;
            status.sp = sp;
            status.pc = pc;
            status.pstate = pstate;
            status.fault = dcb.fault.map_or(0, |fault| fault.kind);
        }
        let mut bytes = [0u8; abi::DomainStatus::BYTES];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(status.words()) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        self.copy_to_user(slot, address, &bytes);
        0
    }

    /// `set_keeper`: `target`'s unresolved faults go to `endpoint` (or, with none, stop it).
    pub(super) fn set_keeper(
        &mut self,
        target: usize,
        endpoint: Option<u8>,
    ) -> Result<usize, Error> {
        let dcb = self.slots[target].dcb_mut().ok_or(Error::BadArgument)?;
        dcb.keeper = endpoint;
        Ok(0)
    }

    /// Creates a domain running `program` in `set`, shares `regions` of the caller into it
    /// copy-on-write, and gives the caller a capability to it.
    pub(super) fn spawn(
        &mut self,
        slot: usize,
        program: &str,
        name: &str,
        set: SetId,
        regions: &[SharedRegion],
        passed: &[(u8, Rights)],
    ) -> Result<usize, Error> {
        // Decode found the program; an image the kernel cannot load is `unknown-program`.
        let program = crate::programs::find(program)
            .and_then(|image| kcore::elf::parse(image).ok())
            .ok_or(Error::UnknownProgram)?;
        // Everything the child needs, its shared regions included, is reserved before anything
        // is committed: a refused spawn leaves nothing behind.
        let child = self.create_domain(name, set, &program, Some(slot), regions)?;
        // The child's capability 0 names its creator (to wait for it, for instance).
        let creator = Object::Domain {
            slot: slot as u8,
            generation: self.slots[slot].generation,
        };
        let creator = self.mint(creator, Rights::DOMAIN, 0);
        let mut given = Vec::<Capability, { abi::MAX_SPAWN_CAPS + 1 }>::new();
        let _ = given.push(creator);
        for &(index, rights) in passed {
            // Decode checked it and its rights; nothing has changed the caller's table since.
            if let Ok(cap) = self.capability(slot, usize::from(index)) {
                let _ = given.push(self.derived(cap.with_rights(rights)));
            }
        }
        if let Some(caps) = self.slots[child].caps_mut() {
            for cap in given {
                let _ = caps.insert(cap);
            }
        }
        let generation = self.slots[child].generation;
        let cap = Object::Domain {
            slot: child as u8,
            generation,
        };
        let cap = self.mint(cap, Rights::DOMAIN, 0);
        let caps = self.slots[slot].caps_mut().ok_or(Error::BadCapability)?;
        caps.insert(cap)
    }
}
