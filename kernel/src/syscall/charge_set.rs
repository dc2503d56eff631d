//! The charge-set system calls, decode then invoke: `set_create`, `set_limit`, `set_query`,
//! and the two that read or change how a domain's frames are charged, `domain_move` and
//! `frame_info`. `set_create` checks in decode everything creating the set could refuse (name,
//! depth, the set table, room for its capability), so its invoke cannot fail.

use super::{limit, Call};
use crate::arch::aarch64::mmu::PAGE_BYTES;
use crate::charge::ToAbi;
use crate::kernel::Kernel;
use crate::object::capability::Object;
use abi::{Error, Rights, SetUsage, Syscall};
use accounting::SetId;

impl Kernel {
    /// Decodes the charge-set calls: every argument, capability and user pointer checked; nothing changes.
    #[inline(always)]
    pub(super) fn decode_charge_set(
        &mut self,
        slot: usize,
        call: Syscall,
        args: [usize; 5],
    ) -> Result<Call, Error> {
        Ok(match call {
            Syscall::SetCreate => {
                let parent = self.set_cap(slot, args[0], Rights::CREATE)?;
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
                let set = self.set_cap(slot, args[0], Rights::LIMIT)?;
                let (kind, high) = match args[2] {
                    abi::LIMIT_TOTAL => (None, false),
                    abi::LIMIT_HIGH => (None, true),
                    which => (
                        Some(
                            abi::Kind::from_index(which.wrapping_sub(1))
                                .ok_or(Error::BadArgument)?,
                        ),
                        false,
                    ),
                };
                Call::SetLimit {
                    set,
                    kind,
                    high,
                    limit_bytes: limit(args[1]),
                }
            }
            Syscall::SetQuery => {
                let set = self.set_cap(slot, args[0], Rights::QUERY)?;
                let address = args[1];
                if !address.is_multiple_of(8) {
                    return Err(Error::BadArgument);
                }
                self.prepare_user_write(slot, address, core::mem::size_of::<SetUsage>())?;
                Call::SetQuery { set, address }
            }
            Syscall::DomainMove => {
                let target = self.domain_cap(slot, args[0], Rights::CONTROL)?;
                let set = self.set_cap(slot, args[1], Rights::CREATE)?;
                if !self.slots[target].is_alive() {
                    return Err(Error::BadArgument);
                }
                Call::DomainMove { slot: target, set }
            }
            Syscall::FrameInfo => {
                let target = self.domain_or_self(slot, args[0], Rights::INSPECT)?;
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
            _ => return Err(Error::BadSyscall),
        })
    }

    /// `domain_move`: the domain behind `target` and its frames' charges move to `set`.
    pub(super) fn domain_move(&mut self, target: usize, set: SetId) -> Result<usize, Error> {
        let account = self.slots[target].account;
        let moved = self
            .books
            .move_domain(account, set)
            .map_err(|e| e.to_abi())?;
        Ok(moved as usize)
    }

    /// `set_create`: a child of `parent`, its capability to the caller. Decode checked
    /// everything creating the set could refuse, so this cannot fail.
    pub(super) fn set_create(
        &mut self,
        slot: usize,
        parent: SetId,
        name: &str,
        limit_bytes: Option<u64>,
        kind_limits: [Option<u64>; abi::KINDS],
    ) -> Result<usize, Error> {
        // Decode checked everything create_set can refuse: a failure here is a bug.
        let set = match self.books.create_set(name, Some(parent), limit_bytes, &[]) {
            Ok(set) => set,
            Err(error) => crate::panic::ledger_bug(&error),
        };
        for (kind, limit_bytes) in abi::Kind::ALL.into_iter().zip(kind_limits) {
            if limit_bytes.is_some() {
                // The set exists: this cannot fail.
                let _ = self.books.set_kind_limit(set, kind, limit_bytes);
            }
        }
        let cap = self.mint(Object::Set(set), Rights::SET, 0);
        let caps = self.slots[slot].caps_mut().ok_or(Error::BadCapability)?;
        caps.insert(cap)
    }

    /// `set_limit`: the set's own limit (`kind` None), one kind's sub-limit, or (`high`) its
    /// `high` bound.
    pub(super) fn set_limit(
        &mut self,
        set: SetId,
        kind: Option<abi::Kind>,
        high: bool,
        limit_bytes: Option<u64>,
    ) -> Result<usize, Error> {
        match kind {
            None if high => self.books.set_high(set, limit_bytes),
            None => self.books.set_limit(set, limit_bytes),
            Some(kind) => self.books.set_kind_limit(set, kind, limit_bytes),
        }
        .map_err(|e| e.to_abi())?;
        Ok(0)
    }

    /// `frame_info`: the provenance of the frame behind `address` of `target`, written to
    /// the caller's `info` (prepared by decode).
    pub(super) fn frame_info(
        &mut self,
        slot: usize,
        target: usize,
        address: usize,
        info: usize,
    ) -> Result<usize, Error> {
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

    /// `set_query`: the set's usage, written to the caller's `address` (prepared by decode).
    pub(super) fn set_query(
        &mut self,
        slot: usize,
        set: SetId,
        address: usize,
    ) -> Result<usize, Error> {
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
}
