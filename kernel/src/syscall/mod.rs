//! System calls: one dispatch point, each call split seL4-style into *decode* (validate every
//! argument, capability and user pointer, and reserve what must be reserved; on error nothing
//! has changed) and *invoke* (apply). The ABI (numbers, errors, layouts) is in the `abi` crate.
//!
//! This file holds the dispatch and the calls a domain makes on itself (console, exit, yield,
//! map, unmap, snapshot, arguments); each object's calls are in a file of their own:
//! [`charge_set`] (sets, moves, provenance), [`domain`] (spawn, wait), the IPC calls in
//! [`crate::ipc`]; [`capability`] finds the object behind a capability index.

use crate::arch::aarch64::mmu::{UserAccess, PAGE_BYTES};
use crate::kernel::Kernel;
use crate::memory::user::check_range;
use crate::object::capability::Capability;
use crate::object::domain::{Block, Region, RunState};
use abi::{Error, SharedRegion, Syscall};
use accounting::SetId;
use heapless::{String, Vec};

/// A decoded, validated system call.
pub(super) enum Call {
    ConsoleWrite {
        address: usize,
        length: usize,
    },
    Exit(i32),
    Yield,
    Map {
        /// The domain whose address space gains the region (the caller, or the one behind a
        /// domain capability for `domain_map`).
        target: usize,
        address: usize,
        pages: usize,
        access: UserAccess,
        /// Keeper-managed ([`abi::MAP_KEEPER`]).
        kept: bool,
    },
    SetKeeper {
        target: usize,
        endpoint: Option<u8>,
    },
    Unmap {
        address: usize,
        pages: usize,
    },
    Snapshot {
        label: String<23>,
    },
    Spawn {
        program: String<23>,
        name: String<23>,
        set: SetId,
        regions: Vec<SharedRegion, { abi::MAX_SPAWN_REGIONS }>,
        /// The capabilities passed on: index in the caller's table, rights kept.
        caps: Vec<(u8, abi::Rights), { abi::MAX_SPAWN_CAPS }>,
    },
    Wait {
        slot: usize,
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
        /// The `high` bound changes (`kind` is then `None`).
        high: bool,
        limit_bytes: Option<u64>,
    },
    SetQuery {
        set: SetId,
        address: usize,
    },
    DomainMove {
        slot: usize,
        set: SetId,
    },
    FrameInfo {
        target: usize,
        address: usize,
        info: usize,
    },
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
        writable: bool,
        /// The number of the capability it is mapped through.
        capability: u32,
    },
    /// A program argument's value, found by decode.
    Arg(u64),
    /// The capability to derive from, its rights already reduced.
    CapDerive(Capability),
    CapDelete(usize),
    Sleep(u64),
    Suspend {
        slot: usize,
        target: usize,
        suspend: bool,
    },
    DomainStatus {
        target: usize,
        address: usize,
    },
    CapRevoke(usize),
    CapInspect(usize),
    PageOut {
        target: usize,
        va: usize,
        store: usize,
        /// The frame behind the page, private to the target.
        frame: crate::memory::frames::Frame,
    },
    PageIn {
        target: usize,
        va: usize,
        store: usize,
        /// The page's new frame, charged and mapped by decode.
        frame: crate::memory::frames::Frame,
    },
}

mod capability;
mod charge_set;
mod domain;
mod paging;
mod region;

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
        let result = match Syscall::from_number(number) {
            None => Err(Error::BadSyscall),
            Some(call) if crate::ipc::carries_message(call, args) => {
                self.ipc_system_call(slot, call, args)
            }
            Some(call) => self
                .decode(slot, call, args)
                .and_then(|call| self.invoke(slot, call)),
        };
        // A page it needs is paged out: with a keeper to ask, the call sleeps and runs again
        // from the beginning when the keeper has brought the page back (nothing of it was
        // done: decode changes nothing, and neither does a refused transfer).
        if result == Err(Error::PagedOut) && self.restart_for_missing_page(slot) {
            return;
        }
        // Only a domain that runs on gets its result now: one that ended has no registers, and
        // one that blocked gets its answer in x0 when it is woken and keeps its arguments until
        // then (a send restarted for its keeper, even while it waited in line, runs again with
        // them).
        if self.slots[slot].is_alive() && self.slots[slot].state == RunState::Runnable {
            if let Some(frame) = self.registers_mut(slot) {
                frame.set_result(match result {
                    Ok(value) => value as u64,
                    Err(error) => error.to_return_value() as u64,
                });
            }
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
            Syscall::Sleep => {
                if args[0] == 0 || args[0] > abi::MAX_SLEEP_TICKS {
                    return Err(Error::BadArgument);
                }
                Call::Sleep(args[0] as u64)
            }
            Syscall::Yield => Call::Yield,
            Syscall::Map => self.decode_map(slot, args[0], args[1], args[2])?,
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
            Syscall::SetCreate
            | Syscall::SetLimit
            | Syscall::SetQuery
            | Syscall::DomainMove
            | Syscall::FrameInfo => self.decode_charge_set(slot, call, args)?,
            Syscall::Spawn
            | Syscall::Wait
            | Syscall::SetKeeper
            | Syscall::DomainMap
            | Syscall::DomainSuspend
            | Syscall::DomainResume
            | Syscall::DomainStatus => self.decode_domain(slot, call, args)?,
            Syscall::PageOut | Syscall::PageIn => self.decode_paging(slot, call, args)?,
            // Calls with memory descriptors are decoded and invoked by ipc_system_call
            // (`ipc::carries_message` sends them there); a `call` or `reply_recv` that reaches
            // here has none: a register-sized message, as its aliases are.
            Syscall::Send | Syscall::Recv | Syscall::Reply => return Err(Error::BadSyscall),
            Syscall::Call
            | Syscall::ReplyRecv
            | Syscall::CallRegisters
            | Syscall::ReplyRecvRegisters => Call::Registers {
                call: matches!(call, Syscall::Call | Syscall::CallRegisters),
                endpoint: self.endpoint_cap(
                    slot,
                    args[0],
                    if matches!(call, Syscall::Call | Syscall::CallRegisters) {
                        abi::Rights::SEND
                    } else {
                        abi::Rights::RECEIVE
                    },
                )?,
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
                let flags = args[2];
                if flags & !abi::MAP_WRITE != 0 {
                    return Err(Error::BadArgument);
                }
                let writable = flags & abi::MAP_WRITE != 0;
                let needed = if writable {
                    abi::Rights::READ.union(abi::Rights::WRITE)
                } else {
                    abi::Rights::READ
                };
                let (object, capability) = self.region_cap(slot, args[0], needed)?;
                Call::RegionMap {
                    object,
                    address: args[1],
                    writable,
                    capability,
                }
            }
            Syscall::CapDerive => {
                let cap = self.capability(slot, args[0])?;
                let rights = u16::try_from(args[1]).map_err(|_| Error::BadArgument)?;
                let cap = capability::weakened(cap, abi::Rights(rights))?;
                if !self.slots[slot].caps().is_some_and(|c| c.has_room()) {
                    return Err(Error::TableFull);
                }
                Call::CapDerive(cap)
            }
            Syscall::CapDelete | Syscall::CapRevoke | Syscall::CapInspect => {
                self.capability(slot, args[0])?;
                match call {
                    Syscall::CapDelete => Call::CapDelete(args[0]),
                    Syscall::CapRevoke => Call::CapRevoke(args[0]),
                    _ => Call::CapInspect(args[0]),
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

    /// Decodes a `map` of `pages` pages at `address` with `flags` into `target`'s address
    /// space (the caller's own, or a domain's for `domain_map`).
    pub(super) fn decode_map(
        &self,
        target: usize,
        address: usize,
        pages: usize,
        flags: usize,
    ) -> Result<Call, Error> {
        if !address.is_multiple_of(PAGE_BYTES)
            || pages == 0
            || flags & !(abi::MAP_WRITE | abi::MAP_KEEPER) != 0
        {
            return Err(Error::BadArgument);
        }
        let bytes = pages.checked_mul(PAGE_BYTES).ok_or(Error::BadArgument)?;
        check_range(address, bytes).map_err(|_| Error::BadArgument)?;
        if address < abi::USER_MIN_ADDRESS {
            return Err(Error::BadArgument);
        }
        let dcb = self.slots[target].dcb().ok_or(Error::BadArgument)?;
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
        Ok(Call::Map {
            target,
            address,
            pages,
            access,
            kept: flags & abi::MAP_KEEPER != 0,
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
                    crate::console::user_write(&name, &chunk[..size]);
                    done += size;
                }
                Ok(length)
            }
            Call::Arg(value) => Ok(value as usize),
            Call::CapDerive(cap) => self.cap_derive(slot, cap),
            Call::CapDelete(index) => self.cap_delete(slot, index),
            Call::Sleep(ticks) => {
                let wake_at = self.ticks + ticks;
                if let Some(dcb) = self.slots[slot].dcb_mut() {
                    dcb.wake_at = wake_at;
                }
                self.block_current(Block::Sleep);
                Ok(0)
            }
            Call::Suspend {
                slot,
                target,
                suspend,
            } => self.suspend(slot, target, suspend),
            Call::DomainStatus { target, address } => Ok(self.domain_status(slot, target, address)),
            Call::CapRevoke(index) => self.cap_revoke(slot, index),
            Call::CapInspect(index) => self.cap_inspect(slot, index),
            Call::Exit(code) => {
                self.teardown(slot, RunState::Exited(code));
                Ok(0)
            }
            Call::Yield => {
                self.switch();
                Ok(0)
            }
            Call::Map {
                target,
                address,
                pages,
                access,
                kept,
            } => {
                if self.config.inject == kcore::bootcfg::Inject::UnchargedFrame {
                    // A deliberate leak for the test that proves the recount catches it.
                    self.config.inject = kcore::bootcfg::Inject::Nothing;
                    let _ = self.frames.allocate();
                }
                self.add_region(
                    target,
                    Region {
                        start: address,
                        pages,
                        access,
                        capability: 0,
                        kept,
                    },
                )?;
                if kept {
                    if let Some(dcb) = self.slots[target].dcb_mut() {
                        dcb.kept_pages = true;
                    }
                }
                Ok(0)
            }
            Call::Unmap { address, pages } => {
                self.unmap_pages(slot, address, pages);
                Ok(0)
            }
            Call::Wait { slot: target } => self.wait(target),
            Call::SetKeeper { target, endpoint } => self.set_keeper(target, endpoint),
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
            } => self.set_create(slot, parent, &name, limit_bytes, kind_limits),
            Call::SetLimit {
                set,
                kind,
                high,
                limit_bytes,
            } => self.set_limit(set, kind, high, limit_bytes),
            Call::PageOut {
                target,
                va,
                store,
                frame,
            } => Ok(self.page_out(slot, target, va, store, frame)),
            Call::PageIn {
                target,
                va,
                store,
                frame,
            } => Ok(self.page_in(slot, target, va, store, frame)),
            Call::SetQuery { set, address } => self.set_query(slot, set, address),
            Call::DomainMove { slot: target, set } => self.domain_move(target, set),
            Call::FrameInfo {
                target,
                address,
                info,
            } => self.frame_info(slot, target, address, info),
            Call::Registers {
                call: true,
                endpoint,
            } => self.call_registers(slot, endpoint),
            Call::Registers {
                call: false,
                endpoint,
            } => self.reply_recv_registers(slot, endpoint),
            Call::RegionCreate { pages } => self.region_create(slot, pages),
            Call::RegionMap {
                object,
                address,
                writable,
                capability,
            } => self.region_map(slot, object, address, writable, capability),
            Call::Snapshot { label } => {
                self.snapshot(&label);
                Ok(0)
            }
        }
    }
}
