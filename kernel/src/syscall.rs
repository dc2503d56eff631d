//! System calls: one dispatch point, each call split seL4-style into *decode* (validate every
//! argument, capability and user pointer, and reserve what must be reserved; on error nothing
//! has changed) and *invoke* (apply). The ABI (numbers, errors, layouts) is in the `abi` crate.
//!
//! Exception to "invoke cannot fail", documented: `spawn` creates a domain whose charges are
//! reserved inside invoke; on failure it tears down what it made, so the books return to where
//! they were (the cumulative charged/uncharged totals show the attempt). `set_create` checks in
//! decode everything creating the set could refuse (name, depth, the set table, room for its
//! capability), so its invoke cannot fail.

use crate::arch::aarch64::mmu::{UserAccess, PAGE_BYTES};
use crate::charge::ToAbi;
use crate::kernel::Kernel;
use crate::memory::user::check_range;
use crate::object::capability::Capability;
use crate::object::domain::{Block, Region, RunState, MAX_DOMAINS};
use abi::{Error, SetUsage, SharedRegion, SpawnRequest, Syscall};
use accounting::SetId;
use heapless::{String, Vec};

/// A decoded, validated system call.
enum Call {
    ConsoleWrite {
        address: usize,
        length: usize,
    },
    Exit(i32),
    Yield,
    Wait {
        slot: usize,
    },
    Map {
        address: usize,
        pages: usize,
        access: UserAccess,
    },
    Unmap {
        address: usize,
        pages: usize,
    },
    Spawn {
        program: String<23>,
        name: String<23>,
        set: SetId,
        regions: Vec<SharedRegion, { abi::MAX_SPAWN_REGIONS }>,
        caps: Vec<Capability, { abi::MAX_SPAWN_CAPS }>,
    },
    SetCreate {
        parent: SetId,
        name: String<23>,
        limit_bytes: Option<u64>,
        kind_limits: [Option<u64>; abi::KINDS],
    },
    SetLimit {
        set: SetId,
        /// `None` for the set's own limit, else the kind whose sub-limit changes.
        kind: Option<abi::Kind>,
        limit_bytes: Option<u64>,
    },
    SetQuery {
        set: SetId,
        address: usize,
    },
    Snapshot {
        label: String<23>,
    },
    Ipc(crate::ipc::IpcCall),
    Registers {
        call: bool,
        endpoint: usize,
    },
    RegionCreate {
        pages: usize,
    },
    RegionMap {
        object: usize,
        address: usize,
    },
    /// A program argument's value, found by decode.
    Arg(u64),
    DomainMove {
        slot: usize,
        set: SetId,
    },
    FrameInfo {
        target: usize,
        address: usize,
        info: usize,
    },
}

fn limit(value: usize) -> Option<u64> {
    (value != abi::NO_LIMIT).then_some(value as u64)
}

impl Kernel {
    /// Handles `svc #0` from the current domain; the result goes to x0.
    pub fn system_call(&mut self) {
        let Some(slot) = self.current else { return };
        let Some(frame) = self.registers(slot) else {
            return;
        };
        let (number, args) = (frame.syscall_number(), frame.arguments());
        let result = Syscall::from_number(number)
            .ok_or(Error::BadSyscall)
            .and_then(|call| self.decode(slot, call, args))
            .and_then(|call| self.invoke(slot, call));
        // A domain that ended has no registers; one that blocked gets its answer in x0 when
        // it is woken (which overwrites this).
        if self.slots[slot].is_alive() {
            if let Some(frame) = self.registers_mut(slot) {
                frame.set_result(match result {
                    Ok(value) => value as u64,
                    Err(error) => error.to_return_value() as u64,
                });
            }
        }
    }

    fn set_cap(&self, slot: usize, index: usize) -> Result<SetId, Error> {
        match self.slots[slot]
            .caps()
            .ok_or(Error::BadCapability)?
            .get(index)?
        {
            Capability::Set(set) => Ok(set),
            _ => Err(Error::WrongCapabilityType),
        }
    }

    /// The live domain slot behind a domain capability (its generation still current).
    fn domain_cap(&self, slot: usize, index: usize) -> Result<usize, Error> {
        match self.slots[slot]
            .caps()
            .ok_or(Error::BadCapability)?
            .get(index)?
        {
            Capability::Domain {
                slot: target,
                generation,
            } => {
                let target = target as usize;
                if target >= MAX_DOMAINS || self.slots[target].generation != generation {
                    return Err(Error::BadCapability);
                }
                Ok(target)
            }
            _ => Err(Error::WrongCapabilityType),
        }
    }

    fn read_name(
        &mut self,
        slot: usize,
        address: usize,
        length: usize,
    ) -> Result<String<23>, Error> {
        if length == 0 || length > abi::MAX_NAME_BYTES {
            return Err(Error::BadArgument);
        }
        let mut bytes = [0u8; abi::MAX_NAME_BYTES];
        self.copy_from_user(slot, address, &mut bytes[..length])?;
        let text = core::str::from_utf8(&bytes[..length]).map_err(|_| Error::BadArgument)?;
        if !accounting::valid_name(text) {
            return Err(Error::BadArgument);
        }
        String::try_from(text).map_err(|_| Error::BadArgument)
    }

    fn decode(&mut self, slot: usize, call: Syscall, args: [usize; 5]) -> Result<Call, Error> {
        Ok(match call {
            Syscall::ConsoleWrite => {
                let length = args[1];
                if length > abi::MAX_CONSOLE_WRITE_BYTES {
                    return Err(Error::BadArgument);
                }
                self.check_user_readable(slot, args[0], length)?;
                Call::ConsoleWrite {
                    address: args[0],
                    length,
                }
            }
            Syscall::Exit => Call::Exit(args[0] as i32),
            Syscall::Yield => Call::Yield,
            Syscall::DomainMove => {
                let target = self.domain_cap(slot, args[0])?;
                let set = self.set_cap(slot, args[1])?;
                if !self.slots[target].is_alive() {
                    return Err(Error::BadArgument);
                }
                Call::DomainMove { slot: target, set }
            }
            Syscall::Wait => {
                let target = self.domain_cap(slot, args[0])?;
                if target == slot {
                    return Err(Error::Deadlock);
                }
                Call::Wait { slot: target }
            }
            Syscall::Map => {
                let (address, pages, flags) = (args[0], args[1], args[2]);
                if address % PAGE_BYTES != 0 || pages == 0 || flags & !abi::MAP_WRITE != 0 {
                    return Err(Error::BadArgument);
                }
                let bytes = pages.checked_mul(PAGE_BYTES).ok_or(Error::BadArgument)?;
                check_range(address, bytes).map_err(|_| Error::BadArgument)?;
                if address < abi::USER_MIN_ADDRESS {
                    return Err(Error::BadArgument);
                }
                let dcb = self.slots[slot].dcb().ok_or(Error::BadArgument)?;
                if dcb
                    .regions
                    .iter()
                    .any(|r| r.overlaps(address, address + bytes))
                {
                    return Err(Error::RegionOverlap);
                }
                if dcb.regions.is_full() {
                    return Err(Error::TableFull);
                }
                let access = if flags & abi::MAP_WRITE != 0 {
                    UserAccess::ReadWrite
                } else {
                    UserAccess::ReadOnly
                };
                Call::Map {
                    address,
                    pages,
                    access,
                }
            }
            Syscall::Unmap => {
                let (address, pages) = (args[0], args[1]);
                if address % PAGE_BYTES != 0 || pages == 0 {
                    return Err(Error::BadArgument);
                }
                let bytes = pages.checked_mul(PAGE_BYTES).ok_or(Error::BadArgument)?;
                check_range(address, bytes).map_err(|_| Error::BadArgument)?;
                let dcb = self.slots[slot].dcb().ok_or(Error::BadArgument)?;
                let region = dcb.region(address).ok_or(Error::BadAddress)?;
                if address + bytes > region.end() {
                    return Err(Error::BadAddress);
                }
                let splits = address > region.start && address + bytes < region.end();
                if splits && dcb.regions.is_full() {
                    return Err(Error::TableFull);
                }
                Call::Unmap { address, pages }
            }
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
                let caller_caps = self.slots[slot].caps().ok_or(Error::BadCapability)?;
                let mut caps = Vec::<Capability, { abi::MAX_SPAWN_CAPS }>::new();
                for i in 0..cap_count {
                    let _ = caps.push(caller_caps.get(word(6 + i))?);
                }
                let set = self.set_cap(slot, args[1])?;
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
                if self
                    .slots
                    .iter()
                    .any(|s| s.generation != 0 && s.name == name)
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
            Syscall::SetCreate => {
                let parent = self.set_cap(slot, args[0])?;
                let name = self.read_name(slot, args[1], args[2])?;
                let mut kind_limits = [None; abi::KINDS];
                if args[4] != 0 {
                    let mut raw = [0u8; core::mem::size_of::<abi::KindLimits>()];
                    self.copy_from_user(slot, args[4], &mut raw)?;
                    for (limit_bytes, word) in kind_limits.iter_mut().zip(raw.chunks_exact(8)) {
                        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
                        *limit_bytes = limit(word as usize);
                    }
                }
                if !self.slots[slot].caps().is_some_and(|c| c.has_room()) {
                    return Err(Error::TableFull);
                }
                // Everything creating it could refuse, checked here: invoke cannot fail.
                self.books
                    .check_new_set(&name, parent)
                    .map_err(|e| e.to_abi())?;
                Call::SetCreate {
                    parent,
                    name,
                    limit_bytes: limit(args[3]),
                    kind_limits,
                }
            }
            Syscall::SetLimit => {
                let set = self.set_cap(slot, args[0])?;
                let kind = match args[2] {
                    abi::LIMIT_TOTAL => None,
                    which => Some(
                        abi::Kind::from_index(which.wrapping_sub(1)).ok_or(Error::BadArgument)?,
                    ),
                };
                Call::SetLimit {
                    set,
                    kind,
                    limit_bytes: limit(args[1]),
                }
            }
            Syscall::FrameInfo => {
                let target = match args[0] {
                    abi::SELF => slot,
                    index => self.domain_cap(slot, index)?,
                };
                let (address, info) = (args[1], args[2]);
                let dcb = self.slots[target].dcb().ok_or(Error::BadArgument)?;
                if dcb.region(address).is_none() {
                    return Err(Error::BadAddress);
                }
                if dcb.tables.lookup(address & !(PAGE_BYTES - 1)).is_none() {
                    return Err(Error::NotPresent);
                }
                if !info.is_multiple_of(8) {
                    return Err(Error::BadArgument);
                }
                // May break copy-on-write in the caller, even of the page asked about: invoke
                // looks the frame up again.
                self.prepare_user_write(slot, info, abi::FrameInfo::BYTES)?;
                Call::FrameInfo {
                    target,
                    address,
                    info,
                }
            }
            Syscall::SetQuery => {
                let set = self.set_cap(slot, args[0])?;
                let address = args[1];
                if !address.is_multiple_of(8) {
                    return Err(Error::BadArgument);
                }
                self.prepare_user_write(slot, address, core::mem::size_of::<SetUsage>())?;
                Call::SetQuery { set, address }
            }
            // `call` / `reply_recv` with no descriptors: a register-sized message.
            Syscall::Call | Syscall::ReplyRecv if args[1] == 0 && args[2] == 0 => Call::Registers {
                call: call == Syscall::Call,
                endpoint: self.endpoint_cap(slot, args[0])?,
            },
            Syscall::Send | Syscall::Recv | Syscall::Call | Syscall::Reply | Syscall::ReplyRecv => {
                Call::Ipc(self.ipc_decode(slot, call, args)?)
            }
            Syscall::CallRegisters | Syscall::ReplyRecvRegisters => Call::Registers {
                call: call == Syscall::CallRegisters,
                endpoint: self.endpoint_cap(slot, args[0])?,
            },
            Syscall::RegionCreate => {
                let pages = args[0];
                if pages == 0 || pages > abi::MAX_SHARED_REGION_PAGES {
                    return Err(Error::BadArgument);
                }
                if !self.slots[slot].caps().is_some_and(|c| c.has_room()) {
                    return Err(Error::TableFull);
                }
                Call::RegionCreate { pages }
            }
            Syscall::RegionMap => {
                let object = self.region_cap(slot, args[0])?;
                Call::RegionMap {
                    object,
                    address: args[1],
                }
            }
            Syscall::Snapshot => Call::Snapshot {
                label: self.read_name(slot, args[0], args[1])?,
            },
            Syscall::Arg => {
                let name = self.read_name(slot, args[0], args[1])?;
                let spec = self.slots[slot]
                    .boot_index
                    .and_then(|index| self.config.domains.get(usize::from(index)));
                let value = spec
                    .and_then(|spec| spec.args.iter().find(|(n, _)| *n == name))
                    .map(|(_, value)| *value)
                    .ok_or(Error::NoSuchArgument)?;
                Call::Arg(value)
            }
        })
    }

    fn invoke(&mut self, slot: usize, call: Call) -> Result<usize, Error> {
        match call {
            Call::ConsoleWrite { address, length } => {
                let name = self.slots[slot].name.clone();
                let mut chunk = [0u8; 256];
                let mut done = 0;
                while done < length {
                    let size = (length - done).min(chunk.len());
                    // Checked readable by decode; this cannot fail.
                    let _ = self.copy_from_user(slot, address + done, &mut chunk[..size]);
                    if let Some(dcb) = self.slots[slot].dcb_mut() {
                        crate::console::user_write(
                            &name,
                            &chunk[..size],
                            &mut dcb.console_at_line_start,
                        );
                    }
                    done += size;
                }
                Ok(length)
            }
            Call::Arg(value) => Ok(value as usize),
            Call::DomainMove { slot: target, set } => {
                let account = self.slots[target].account;
                let moved = self
                    .books
                    .move_domain(account, set)
                    .map_err(|e| e.to_abi())?;
                Ok(moved as usize)
            }
            Call::Exit(code) => {
                self.teardown(slot, RunState::Exited(code));
                Ok(0)
            }
            Call::Yield => {
                self.switch();
                Ok(0)
            }
            Call::Wait { slot: target } => match self.slots[target].state {
                RunState::Exited(code) => Ok(code as u32 as usize),
                RunState::Stopped(_) => Ok(abi::WAIT_STOPPED),
                _ => {
                    self.block_current(Block::Wait(target as u8));
                    Ok(0)
                }
            },
            Call::Map {
                address,
                pages,
                access,
            } => {
                if self.config.inject == kcore::bootcfg::Inject::UnchargedFrame {
                    // A deliberate leak for the test that proves the recount catches it.
                    self.config.inject = kcore::bootcfg::Inject::Nothing;
                    let _ = self.frames.allocate();
                }
                self.add_region(
                    slot,
                    Region {
                        start: address,
                        pages,
                        access,
                    },
                )?;
                Ok(0)
            }
            Call::Unmap { address, pages } => {
                self.unmap_pages(slot, address, pages);
                Ok(0)
            }
            Call::Spawn {
                program,
                name,
                set,
                regions,
                caps,
            } => self.spawn(slot, &program, &name, set, &regions, &caps),
            Call::SetCreate {
                parent,
                name,
                limit_bytes,
                kind_limits,
            } => {
                // Decode checked everything create_set can refuse: a failure here is a bug.
                let set = match self.books.create_set(&name, Some(parent), limit_bytes, &[]) {
                    Ok(set) => set,
                    Err(error) => crate::panic::ledger_bug(&error),
                };
                for (kind, limit_bytes) in abi::Kind::ALL.into_iter().zip(kind_limits) {
                    if limit_bytes.is_some() {
                        // The set exists: this cannot fail.
                        let _ = self.books.set_kind_limit(set, kind, limit_bytes);
                    }
                }
                let caps = self.slots[slot].caps_mut().ok_or(Error::BadCapability)?;
                caps.insert(Capability::Set(set))
            }
            Call::SetLimit {
                set,
                kind: None,
                limit_bytes,
            } => {
                self.books
                    .set_limit(set, limit_bytes)
                    .map_err(|e| e.to_abi())?;
                Ok(0)
            }
            Call::SetLimit {
                set,
                kind: Some(kind),
                limit_bytes,
            } => {
                self.books
                    .set_kind_limit(set, kind, limit_bytes)
                    .map_err(|e| e.to_abi())?;
                Ok(0)
            }
            Call::FrameInfo {
                target,
                address,
                info,
            } => {
                let frame = self.slots[target]
                    .dcb()
                    .and_then(|dcb| dcb.tables.lookup(address & !(PAGE_BYTES - 1)))
                    .map(|descriptor| {
                        crate::memory::frames::Frame(crate::arch::aarch64::mmu::descriptor_address(
                            descriptor,
                        ))
                    })
                    .ok_or(Error::NotPresent)?;
                let found = self
                    .books
                    .frame_info(frame, &self.frames)
                    .ok_or(Error::NotPresent)?;
                let mut bytes = [0u8; abi::FrameInfo::BYTES];
                found.encode(&mut bytes);
                self.copy_to_user(slot, info, &bytes);
                Ok(0)
            }
            Call::SetQuery { set, address } => {
                let usage = self.books.usage(set);
                let mut bytes = [0u8; core::mem::size_of::<SetUsage>()];
                let words = [usage.limit_bytes, usage.subtree_bytes]
                    .into_iter()
                    .chain(usage.current_bytes)
                    .chain(usage.denied)
                    .chain(usage.kind_limit_bytes);
                for (chunk, word) in bytes.chunks_exact_mut(8).zip(words) {
                    chunk.copy_from_slice(&word.to_le_bytes());
                }
                self.copy_to_user(slot, address, &bytes);
                Ok(0)
            }
            Call::Ipc(ipc) => self.ipc_call(slot, ipc),
            Call::Registers {
                call: true,
                endpoint,
            } => self.call_registers(slot, endpoint),
            Call::Registers {
                call: false,
                endpoint,
            } => self.reply_recv_registers(slot, endpoint),
            Call::RegionCreate { pages } => self.region_create(slot, pages),
            Call::RegionMap { object, address } => self.region_map(slot, object, address),
            Call::Snapshot { label } => {
                self.snapshot(&label);
                Ok(0)
            }
        }
    }

    /// Creates a domain running `program` in `set`, shares `regions` of the caller into it
    /// copy-on-write, and gives the caller a capability to it.
    fn spawn(
        &mut self,
        slot: usize,
        program: &str,
        name: &str,
        set: SetId,
        regions: &[SharedRegion],
        passed: &[Capability],
    ) -> Result<usize, Error> {
        // Decode found the program; an image the kernel cannot load is `unknown-program`.
        let program = crate::programs::find(program)
            .and_then(|image| kcore::elf::parse(image).ok())
            .ok_or(Error::UnknownProgram)?;
        let child = self.create_domain(name, set, &program, Some(slot))?;
        // The child's capability 0 names its creator (to wait for it, for instance).
        let creator = Capability::Domain {
            slot: slot as u8,
            generation: self.slots[slot].generation,
        };
        if let Some(caps) = self.slots[child].caps_mut() {
            let _ = caps.insert(creator);
            for cap in passed {
                let _ = caps.insert(*cap);
            }
        }
        for region in regions {
            if let Err(e) = self.share_region(slot, child, region) {
                self.teardown(child, RunState::Stopped(accounting::StopReason::Killed));
                return Err(e);
            }
        }
        let generation = self.slots[child].generation;
        let caps = self.slots[slot].caps_mut().ok_or(Error::BadCapability)?;
        caps.insert(Capability::Domain {
            slot: child as u8,
            generation,
        })
    }
}
