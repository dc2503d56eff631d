//! The Tally system-call ABI, shared by `kernel/` and `user/`.
//!
//! A system call is `svc #0` with the call number in `x8` and arguments in `x0..x5`. The result
//! comes back in `x0`: a non-negative value on success, or `-(Error as isize)` on failure. Every
//! error a user program can cause has its own code; the kernel never panics for one.
#![no_std]
#![forbid(unsafe_code)]

mod rights;
pub use rights::*;

/// System-call numbers (`x8`).
#[repr(usize)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    /// `console_write(ptr, len)`: print bytes on the console, prefixed with the domain's name.
    ConsoleWrite = 0,
    /// `exit(code)`: end the calling domain.
    Exit = 1,
    /// `yield()`: give up the rest of the time slice.
    Yield = 2,
    /// `wait(domain_cap)`: block until that domain has ended; returns its exit code (as 32
    /// bits), or [`WAIT_STOPPED`] if the kernel stopped it.
    Wait = 3,
    /// `map(va, pages, flags)`: reserve a demand-zero anonymous region ([`MAP_WRITE`]: writable;
    /// [`MAP_KEEPER`]: keeper-managed, its pages supplied by the domain's keeper, never zero).
    Map = 4,
    /// `unmap(va, pages)`: remove pages (and the region covering them) from the caller.
    Unmap = 5,
    /// `spawn(request_ptr, set_cap)`: start a domain described by a [`SpawnRequest`].
    Spawn = 6,
    /// `set_create(parent_cap, name_ptr, name_len, limit_bytes, kind_limits_ptr)`: a child
    /// charge set with a limit and, unless `kind_limits_ptr` is 0, the per-kind sub-limits in
    /// the [`KindLimits`] there. Returns its capability.
    SetCreate = 7,
    /// `set_limit(set_cap, limit_bytes, which)`: change a charge set's limit (`which` =
    /// [`LIMIT_TOTAL`]) or one kind's sub-limit (`which` = [`Kind::limit_selector`]);
    /// `NO_LIMIT` for none.
    SetLimit = 8,
    /// `set_query(set_cap, usage_ptr)`: copy the set's [`SetUsage`] to user memory.
    SetQuery = 9,
    /// `snapshot(label_ptr, label_len)`: emit a report snapshot with that label.
    Snapshot = 10,
    /// `send(endpoint_cap, message_ptr)`: send a [`Message`].
    Send = 11,
    /// `recv(endpoint_cap, receive_ptr)`: receive into a [`Receive`].
    Recv = 12,
    /// `call(endpoint_cap, message_ptr, receive_ptr)`: send, then wait for the reply. With
    /// both pointers 0 the message is register-sized: four words in `x3..x6`
    /// ([`REGISTER_WORDS_AT`]), the reply's four words back there; no memory, capabilities or
    /// regions, nothing charged.
    Call = 13,
    /// `reply(message_ptr)`: answer the last `call` received.
    Reply = 14,
    /// `reply_recv(endpoint_cap, message_ptr, receive_ptr)`: reply, then receive. With both
    /// pointers 0, register-sized: answers the last register call (if any) with the four
    /// words in `x3..x6`, then waits for the next register call, whose words come back there.
    ReplyRecv = 15,
    /// `region_create(pages)`: a shared-memory region; returns its capability.
    RegionCreate = 16,
    /// `region_map(region_cap, address, flags)`: map a region, shared (not copy-on-write):
    /// writable with [`MAP_WRITE`] in `flags` (the capability's `write` right), else read-only
    /// (its `read` right).
    RegionMap = 17,
    /// An alias of `call(endpoint_cap, 0, 0)`, a register-sized call (words in `x3..x6`;
    /// `x1` and `x2` are ignored). Kept for programs built against the first ABI's number.
    CallRegisters = 18,
    /// An alias of `reply_recv(endpoint_cap, 0, 0)`, register-sized (words in `x3..x6`).
    ReplyRecvRegisters = 19,
    /// `arg(name_ptr, name_len)`: the value of the program argument of that name, given to a
    /// boot domain by its config (`args = { name = value }`); `NoSuchArgument` if none.
    Arg = 20,
    /// `domain_move(domain_cap, set_cap)`: move the domain behind the capability to the
    /// charge set behind the other (holding both is the right to do it). The `move` policy
    /// decides whether the charges it holds go with it; returns the bytes moved.
    /// `OverLimit` when they do not fit the new set's limits (nothing moved), `BadArgument`
    /// when the domain has ended.
    DomainMove = 21,
    /// `frame_info(domain_cap, address, info_ptr)`: where the frame behind `address` in the
    /// address space of the domain behind `domain_cap` ([`SELF`] for the caller's own) comes
    /// from: its kind, payers with their shares, causer and mappers, as a [`FrameInfo`].
    /// `NotPresent` when the address is in a region but no frame backs it yet, `BadAddress`
    /// when it is in no region.
    FrameInfo = 22,
    /// `set_keeper(domain_cap, endpoint_cap)`: the faults of the domain behind `domain_cap`
    /// ([`SELF`] for the caller) go to the endpoint behind `endpoint_cap` from now on
    /// ([`NO_KEEPER`]: to none; the kernel then stops it at such a fault, as before). Holding
    /// the domain capability is the right to do it.
    SetKeeper = 23,
    /// `domain_map(domain_cap, va, pages, flags)`: [`Syscall::Map`] into the address space of
    /// the domain behind `domain_cap` ([`SELF`] for the caller's own): how a keeper gives a
    /// domain the memory it faulted on. Its pages are demand-zero, charged to that domain's set
    /// when it first touches them.
    DomainMap = 24,
    /// `cap_derive(cap, rights)`: a new capability to the same object with only `rights`
    /// (which the capability must hold: a right it lacks is that right's error); returns its
    /// index. Revoking the original reaches it.
    CapDerive = 25,
    /// `cap_delete(cap)`: empty the slot. What was derived from it stays, now derived from
    /// its parent; a region mapped through it stays mapped.
    CapDelete = 26,
    /// `cap_revoke(cap)`: delete every capability derived from this one (in any domain, over
    /// IPC, by spawn or `cap_derive`, at any depth, in messages still queued) and unmap every
    /// region mapped through them, its charges following the `release` policy. The capability
    /// itself stays, and so does what is mapped through it (seL4's revoke). Returns the
    /// capabilities deleted plus the mappings removed.
    CapRevoke = 27,
    /// `cap_inspect(cap)`: the capability's type ([`CAP_TYPE_SET`], …, shifted by
    /// [`CAP_TYPE_SHIFT`]) and its [`Rights`] bits.
    CapInspect = 28,
    /// `domain_suspend(domain_cap)`: the domain behind the capability (`control` right) runs
    /// no instruction until resumed. Its state stays what it is (a blocked one stays blocked,
    /// and the kernel still completes what it waits for: a suspended receiver still takes a
    /// message); it is only not scheduled. The caller cannot suspend itself (`BadArgument`).
    DomainSuspend = 29,
    /// `domain_resume(domain_cap)`: undoes `domain_suspend` (`control` right); resuming a domain
    /// that is not suspended changes nothing.
    DomainResume = 30,
    /// `domain_status(domain_cap, status_ptr)`: the domain's state, its registers and whether
    /// it is suspended, as a [`DomainStatus`] (`inspect` right; [`SELF`] for the caller).
    DomainStatus = 31,
    /// `sleep(ticks)`: block for `ticks` timer ticks (1 to [`MAX_SLEEP_TICKS`]); a debugger
    /// sleeps to take its next look at a tick, where the tick interrupted the domains it
    /// watches. When every live domain waits and some sleep, the earliest sleeper wakes at
    /// once (no one could run until then).
    Sleep = 32,
    /// `page_out(domain_cap, va, store_ptr)`: a pager evicts the page at `va` of the domain
    /// behind `domain_cap` (`control` right; not the caller itself): the kernel copies its
    /// 4096 bytes to the caller's page-aligned `store_ptr` (the pager's backing store, in its
    /// own memory, charged to its own set), unmaps the page and releases its frame and charge.
    /// The page is then *paged out*: the domain's next access to it is a
    /// [`FAULT_PAGED_OUT`] fault to its keeper (without one it stops), and a system call or a
    /// transfer that needs it fails with [`Error::PagedOut`] or, with a keeper, sleeps and
    /// restarts. Only a private anonymous page can be evicted ([`Error::NotPrivate`]); an
    /// untouched one is [`Error::NotPresent`].
    PageOut = 33,
    /// `page_in(domain_cap, va, store_ptr)`: the pager brings a paged-out page back: a new
    /// frame, charged as the domain's first touch of a page would be (`anon`), filled with the
    /// 4096 bytes at the caller's `store_ptr` and mapped at `va`. [`Error::NotPagedOut`] when
    /// the page is not paged out.
    PageIn = 34,
}

impl Syscall {
    /// Decodes a call number; `None` for an unknown one.
    pub fn from_number(number: usize) -> Option<Self> {
        use Syscall::*;
        Some(match number {
            0 => ConsoleWrite,
            1 => Exit,
            2 => Yield,
            3 => Wait,
            4 => Map,
            5 => Unmap,
            6 => Spawn,
            7 => SetCreate,
            8 => SetLimit,
            9 => SetQuery,
            10 => Snapshot,
            11 => Send,
            12 => Recv,
            13 => Call,
            14 => Reply,
            15 => ReplyRecv,
            16 => RegionCreate,
            17 => RegionMap,
            18 => CallRegisters,
            19 => ReplyRecvRegisters,
            20 => Arg,
            21 => DomainMove,
            22 => FrameInfo,
            23 => SetKeeper,
            24 => DomainMap,
            25 => CapDerive,
            26 => CapDelete,
            27 => CapRevoke,
            28 => CapInspect,
            29 => DomainSuspend,
            30 => DomainResume,
            31 => DomainStatus,
            32 => Sleep,
            33 => PageOut,
            34 => PageIn,
            _ => return None,
        })
    }
}

/// Error codes, returned negated in `x0`.
#[repr(usize)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No system call has this number.
    BadSyscall = 1,
    /// An argument is out of range or malformed (length, alignment, flags, name).
    BadArgument = 2,
    /// The capability index is outside the table or the slot is empty.
    BadCapability = 3,
    /// The capability exists but is of the wrong type for this call.
    WrongCapabilityType = 4,
    /// A user pointer is not inside the caller's mapped memory (or lacks the needed access).
    BadAddress = 5,
    /// A charge set's limit (or a per-kind sub-limit) would be exceeded.
    OverLimit = 6,
    /// The machine has no free frame left.
    OutOfMemory = 7,
    /// No user program has that name.
    UnknownProgram = 8,
    /// A fixed-size kernel table (domains, charge sets, regions, capabilities) is full.
    TableFull = 9,
    /// The range overlaps an existing region.
    RegionOverlap = 10,
    /// A message exceeds one of the documented bounds.
    MessageTooLarge = 11,
    /// The operation would wait on itself (e.g. waiting for the caller's own exit).
    Deadlock = 12,
    /// The endpoint's message queue is full (two-stage transfer).
    QueueFull = 13,
    /// `reply` without a pending `call`.
    NoCaller = 14,
    /// The receiver's buffer is smaller than the message, or it has no room for its
    /// capabilities or regions.
    ReceiverTooSmall = 15,
    /// The other party of a `call` ended before answering.
    PeerGone = 16,
    /// The domain was given no program argument of that name.
    NoSuchArgument = 17,
    /// The address is in a region, but no frame backs it yet (a demand-zero page not touched).
    NotPresent = 18,
    /// The domain maps one of these frames already, at another address (a region object
    /// mapped twice, an out-of-line region of frames the receiver maps): a domain maps a
    /// frame at most once.
    AlreadyMapped = 19,
    /// The endpoint capability lacks the `send` right.
    NoSendRight = 20,
    /// The endpoint capability lacks the `receive` right.
    NoReceiveRight = 21,
    /// The endpoint capability lacks the `grant` right (the message carries capabilities).
    NoGrantRight = 22,
    /// The region capability lacks the `read` right.
    NoReadRight = 23,
    /// The region capability lacks the `write` right (a writable mapping).
    NoWriteRight = 24,
    /// The domain capability lacks the `inspect` right.
    NoInspectRight = 25,
    /// The domain capability lacks the `control` right.
    NoControlRight = 26,
    /// The charge-set capability lacks the `query` right.
    NoQueryRight = 27,
    /// The charge-set capability lacks the `limit` right.
    NoLimitRight = 28,
    /// The charge-set capability lacks the `create` right.
    NoCreateRight = 29,
    /// A page the call or transfer needs is paged out (`page_out`), and no keeper of its
    /// domain can be asked to bring it back (with one, the caller sleeps and restarts).
    PagedOut = 30,
    /// `page_out` of a page that is not private anonymous memory (shared, copy-on-write, a
    /// region object's, read-only).
    NotPrivate = 31,
    /// `page_in` of a page that is not paged out.
    NotPagedOut = 32,
}

impl Error {
    /// Every error, in code order.
    pub const ALL: [Error; 32] = [
        Error::BadSyscall,
        Error::BadArgument,
        Error::BadCapability,
        Error::WrongCapabilityType,
        Error::BadAddress,
        Error::OverLimit,
        Error::OutOfMemory,
        Error::UnknownProgram,
        Error::TableFull,
        Error::RegionOverlap,
        Error::MessageTooLarge,
        Error::Deadlock,
        Error::QueueFull,
        Error::NoCaller,
        Error::ReceiverTooSmall,
        Error::PeerGone,
        Error::NoSuchArgument,
        Error::NotPresent,
        Error::AlreadyMapped,
        Error::NoSendRight,
        Error::NoReceiveRight,
        Error::NoGrantRight,
        Error::NoReadRight,
        Error::NoWriteRight,
        Error::NoInspectRight,
        Error::NoControlRight,
        Error::NoQueryRight,
        Error::NoLimitRight,
        Error::NoCreateRight,
        Error::PagedOut,
        Error::NotPrivate,
        Error::NotPagedOut,
    ];

    /// The error for a (positive) code, if there is one.
    #[inline]
    pub fn from_code(code: usize) -> Option<Self> {
        // Codes are 1.. in `ALL`'s order (a test checks it): an index, not a search.
        Self::ALL.get(code.wrapping_sub(1)).copied()
    }

    /// A short lowercase name, as in reports and logs.
    pub fn name(self) -> &'static str {
        match self {
            Error::BadSyscall => "bad-syscall",
            Error::BadArgument => "bad-argument",
            Error::BadCapability => "bad-capability",
            Error::WrongCapabilityType => "wrong-capability-type",
            Error::BadAddress => "bad-address",
            Error::OverLimit => "over-limit",
            Error::OutOfMemory => "out-of-memory",
            Error::UnknownProgram => "unknown-program",
            Error::TableFull => "table-full",
            Error::RegionOverlap => "region-overlap",
            Error::MessageTooLarge => "message-too-large",
            Error::Deadlock => "deadlock",
            Error::QueueFull => "queue-full",
            Error::NoCaller => "no-caller",
            Error::ReceiverTooSmall => "receiver-too-small",
            Error::PeerGone => "peer-gone",
            Error::NoSuchArgument => "no-such-argument",
            Error::NotPresent => "not-present",
            Error::AlreadyMapped => "already-mapped",
            Error::NoSendRight => "no-send-right",
            Error::NoReceiveRight => "no-receive-right",
            Error::NoGrantRight => "no-grant-right",
            Error::NoReadRight => "no-read-right",
            Error::NoWriteRight => "no-write-right",
            Error::NoInspectRight => "no-inspect-right",
            Error::NoControlRight => "no-control-right",
            Error::NoQueryRight => "no-query-right",
            Error::NoLimitRight => "no-limit-right",
            Error::NoCreateRight => "no-create-right",
            Error::PagedOut => "paged-out",
            Error::NotPrivate => "not-private",
            Error::NotPagedOut => "not-paged-out",
        }
    }

    /// The value the kernel puts in `x0`.
    pub fn to_return_value(self) -> usize {
        (self as usize).wrapping_neg()
    }

    /// Splits a raw `x0` into success value or error.
    #[inline]
    pub fn decode_return(value: usize) -> Result<usize, Error> {
        if (value as isize) < 0 {
            Err(Error::from_code(value.wrapping_neg()).unwrap_or(Error::BadArgument))
        } else {
            Ok(value)
        }
    }
}

/// What `wait` returns for a domain the kernel stopped (over its limit, out of memory, a
/// fault, a deadlock); an exited domain's code comes back as its 32 bits (`0..=u32::MAX`), so
/// the two never meet and neither reads as an error.
pub const WAIT_STOPPED: usize = 1 << 32;

/// `limit_bytes` meaning "no limit".
pub const NO_LIMIT: usize = usize::MAX;

/// `map` flag: the region is writable (always readable, never executable).
pub const MAP_WRITE: usize = 1;
/// `map` / `domain_map` flag: a keeper-managed region. Its pages are never demand-zero: a page
/// not present is its keeper's to supply, as if paged out — the domain's touch is a
/// [`FAULT_PAGED_OUT`] fault to its keeper, which answers with `page_in` (the page's first
/// contents from its store) and retry; a call or a transfer that needs one sleeps and restarts
/// as for a paged-out page.
pub const MAP_KEEPER: usize = 2;

/// Lowest user address a program may map (below is the null guard).
pub const USER_MIN_ADDRESS: usize = 0x1_0000;
/// One past the highest user address (39-bit TTBR0 space).
pub const USER_END_ADDRESS: usize = 1 << 39;
/// Where program images are linked.
pub const USER_IMAGE_BASE: usize = 0x40_0000;
/// The top of every domain's stack; the stack is a demand-zero region below it.
pub const USER_STACK_TOP: usize = USER_END_ADDRESS;
/// Stack size in pages.
pub const USER_STACK_PAGES: usize = 16;
/// Largest console write, in bytes.
pub const MAX_CONSOLE_WRITE_BYTES: usize = 4096;
/// Longest snapshot label, charge-set or domain name, in bytes.
pub const MAX_NAME_BYTES: usize = 23;
/// Most regions one `spawn` may share.
pub const MAX_SPAWN_REGIONS: usize = 8;

/// A region the spawner shares copy-on-write into the new domain (same address in both).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SharedRegion {
    /// Start address, page aligned.
    pub address: usize,
    /// Length in pages.
    pub pages: usize,
}

/// The argument block of `spawn`: which program, the new domain's name, and the regions of
/// the caller shared copy-on-write into it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpawnRequest {
    /// Address of the program name.
    pub program_address: usize,
    /// Its length in bytes.
    pub program_length: usize,
    /// Address of the new domain's name (`[a-z0-9_-]{1,23}`, unique).
    pub name_address: usize,
    /// Its length in bytes.
    pub name_length: usize,
    /// Address of an array of [`SharedRegion`].
    pub regions_address: usize,
    /// Number of regions (at most [`MAX_SPAWN_REGIONS`]).
    pub regions_length: usize,
    /// Capability indices of the caller copied into the new domain's table, after capability
    /// 0 (which always names the caller); a [`weakened`] word passes one on with fewer rights.
    pub caps: [usize; MAX_SPAWN_CAPS],
    /// How many of `caps` are used.
    pub cap_count: usize,
}

/// Most capabilities one `spawn` may pass on.
pub const MAX_SPAWN_CAPS: usize = 4;

/// Words in a register-sized message (`call_registers`, `reply_recv_registers`).
pub const REGISTER_MESSAGE_WORDS: usize = 4;
/// The first register of a register-sized message's words (`x3`; they fill `x3..x6`).
pub const REGISTER_WORDS_AT: usize = 3;

/// Most data bytes in one message.
pub const MAX_MESSAGE_BYTES: usize = 16384;
/// Most capabilities in one message.
pub const MAX_MESSAGE_CAPS: usize = 4;
/// Most out-of-line regions in one message.
pub const MAX_MESSAGE_REGIONS: usize = 4;
/// Most pages in one out-of-line region.
pub const MAX_REGION_PAGES: usize = 256;
/// Most pages in one shared-memory region object.
pub const MAX_SHARED_REGION_PAGES: usize = 16;
/// Most messages waiting in one endpoint's queue (two-stage transfer).
pub const MAX_QUEUED_MESSAGES: usize = 16;

/// A message to send: data bytes, capabilities (indices in the sender's table, copied to the
/// receiver) and out-of-line regions (mapped copy-on-write into the receiver).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Address of the data.
    pub data_address: usize,
    /// Data length in bytes (at most [`MAX_MESSAGE_BYTES`]).
    pub data_length: usize,
    /// Capability indices to transfer (copied, with the same rights; a [`weakened`] word
    /// passes one on with fewer). The endpoint capability needs the `grant` right.
    pub caps: [usize; MAX_MESSAGE_CAPS],
    /// How many of `caps` are used.
    pub cap_count: usize,
    /// Out-of-line regions of the sender.
    pub regions: [SharedRegion; MAX_MESSAGE_REGIONS],
    /// How many of `regions` are used.
    pub region_count: usize,
}

/// Where to receive a message, and what the kernel reports back.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Receive {
    /// Address of the data buffer.
    pub buffer_address: usize,
    /// Its capacity in bytes.
    pub buffer_capacity: usize,
    /// Where to map each incoming out-of-line region (page aligned, unused range).
    pub region_addresses: [usize; MAX_MESSAGE_REGIONS],
    /// Filled in: bytes received.
    pub data_length: usize,
    /// Filled in: indices of the received capabilities in the receiver's table.
    pub caps: [usize; MAX_MESSAGE_CAPS],
    /// Filled in: how many capabilities arrived.
    pub cap_count: usize,
    /// Filled in: pages of each region mapped.
    pub region_pages: [usize; MAX_MESSAGE_REGIONS],
    /// Filled in: how many regions arrived.
    pub region_count: usize,
}

/// The kinds of frame, in the order of every per-kind array of the ABI.
#[repr(usize)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A user page.
    Anon = 0,
    /// A page-table frame.
    PageTables = 1,
    /// A kernel object (control block, capability table, endpoint, region object).
    Kernel = 2,
    /// A transient message buffer.
    Msgbuf = 3,
    /// A copy-on-write copy.
    Cow = 4,
}

impl Kind {
    /// Every kind, in ABI order.
    pub const ALL: [Kind; KINDS] = [
        Kind::Anon,
        Kind::PageTables,
        Kind::Kernel,
        Kind::Msgbuf,
        Kind::Cow,
    ];

    /// The report key: `anon`, `pagetables`, `kernel`, `msgbuf`, `cow`.
    pub const fn key(self) -> &'static str {
        match self {
            Kind::Anon => "anon",
            Kind::PageTables => "pagetables",
            Kind::Kernel => "kernel",
            Kind::Msgbuf => "msgbuf",
            Kind::Cow => "cow",
        }
    }

    /// The kind at ABI index `index`.
    pub fn from_index(index: usize) -> Option<Kind> {
        Kind::ALL.get(index).copied()
    }

    /// `set_limit`'s `which` for this kind's sub-limit: 1 + its index.
    pub const fn limit_selector(self) -> usize {
        1 + self as usize
    }
}

/// How many kinds of frame there are.
pub const KINDS: usize = 5;

/// `set_limit`'s `which` for the set's own limit (all kinds).
pub const LIMIT_TOTAL: usize = 0;
/// `set_limit`'s `which` for the set's `high` bound (the usage above which its domains'
/// keepers are asked to reclaim, [`FAULT_OVER_HIGH`]; `NO_LIMIT` for none).
pub const LIMIT_HIGH: usize = 1 + KINDS;

/// The capability index that names the caller itself in `frame_info`.
pub const SELF: usize = usize::MAX;

/// Per-kind sub-limits for `set_create`, in bytes, indexed by [`Kind`]; `NO_LIMIT` for none.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindLimits {
    /// The sub-limit of each kind.
    pub bytes: [u64; KINDS],
}

impl Default for KindLimits {
    fn default() -> Self {
        KindLimits {
            bytes: [NO_LIMIT as u64; KINDS],
        }
    }
}

/// A name in a fixed field: the bytes, then zeros (at most [`MAX_NAME_BYTES`]).
pub type NameBytes = [u8; MAX_NAME_BYTES + 1];

/// The text of a [`NameBytes`] field (empty for none).
pub fn name_text(name: &NameBytes) -> &str {
    let length = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    core::str::from_utf8(&name[..length]).unwrap_or("?")
}

/// One party of a frame, in [`FrameInfo`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameParty {
    /// The charge set this slot charges.
    pub set: NameBytes,
    /// The domain mapping the frame through this slot; empty for a slot held by no mapper (a
    /// page table's, a kernel object's, a message buffer's, a holder that unmapped).
    pub domain: NameBytes,
    /// Bytes this slot pays.
    pub bytes: u64,
}

/// Most parties of one frame.
pub const MAX_FRAME_PARTIES: usize = 16;

/// What `frame_info` returns: one frame's provenance, from the kernel's frame table.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// The frame's number (physical address / 4096 from the start of RAM): the `N` of
    /// `tally why RUN --frame N`.
    pub frame: u64,
    /// Its [`Kind`] index.
    pub kind: u64,
    /// 1 when every party pays a share (split), 0 when the first pays it all.
    pub split: u64,
    /// The domain whose action allocated it; empty for none.
    pub causer: NameBytes,
    /// How many of `parties` are used; the first is the holder.
    pub party_count: u64,
    /// The parties: each charged set, the domain mapping through it, its bytes.
    pub parties: [FrameParty; MAX_FRAME_PARTIES],
    /// How many domains map the frame.
    pub mappers: u64,
}

impl FrameInfo {
    /// Its size in bytes, as laid out in user memory.
    pub const BYTES: usize = core::mem::size_of::<FrameInfo>();

    /// Lays it out as its `repr(C)` little-endian bytes (no padding: every field is 8-byte
    /// aligned), for the kernel to copy to user memory. `out` must hold [`FrameInfo::BYTES`].
    pub fn encode(&self, out: &mut [u8]) {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            if let Some(place) = out.get_mut(at..at + bytes.len()) {
                place.copy_from_slice(bytes);
            }
            at += bytes.len();
        };
        put(&self.frame.to_le_bytes());
        put(&self.kind.to_le_bytes());
        put(&self.split.to_le_bytes());
        put(&self.causer);
        put(&self.party_count.to_le_bytes());
        for party in &self.parties {
            put(&party.set);
            put(&party.domain);
            put(&party.bytes.to_le_bytes());
        }
        put(&self.mappers.to_le_bytes());
    }
}

impl Default for FrameInfo {
    fn default() -> Self {
        FrameInfo {
            frame: 0,
            kind: 0,
            split: 0,
            causer: [0; MAX_NAME_BYTES + 1],
            party_count: 0,
            parties: [FrameParty::default(); MAX_FRAME_PARTIES],
            mappers: 0,
        }
    }
}

/// What `set_query` returns: a charge set's usage in bytes, by kind.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetUsage {
    /// Limit in bytes, `NO_LIMIT` when none.
    pub limit_bytes: u64,
    /// Bytes charged to this set and its descendants.
    pub subtree_bytes: u64,
    /// Current bytes by kind: anon, pagetables, kernel, msgbuf, cow.
    pub current_bytes: [u64; 5],
    /// Denials by kind.
    pub denied: [u64; 5],
    /// Per-kind sub-limits in bytes, `NO_LIMIT` when none.
    pub kind_limit_bytes: [u64; 5],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_distinct_and_round_trip() {
        for (i, e) in Error::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i + 1);
            assert_eq!(Error::decode_return(e.to_return_value()), Err(*e));
        }
        assert_eq!(Error::decode_return(7), Ok(7));
    }

    #[test]
    fn syscall_numbers_round_trip() {
        for n in 0..64 {
            if let Some(s) = Syscall::from_number(n) {
                assert_eq!(s as usize, n);
            }
        }
        assert_eq!(Syscall::from_number(20), Some(Syscall::Arg));
        assert_eq!(Syscall::from_number(21), Some(Syscall::DomainMove));
        assert_eq!(Syscall::from_number(22), Some(Syscall::FrameInfo));
        assert_eq!(Syscall::from_number(23), Some(Syscall::SetKeeper));
        assert_eq!(Syscall::from_number(24), Some(Syscall::DomainMap));
        assert_eq!(Syscall::from_number(25), Some(Syscall::CapDerive));
        assert_eq!(Syscall::from_number(28), Some(Syscall::CapInspect));
        assert_eq!(Syscall::from_number(32), Some(Syscall::Sleep));
        assert_eq!(Syscall::from_number(33), Some(Syscall::PageOut));
        assert_eq!(Syscall::from_number(34), Some(Syscall::PageIn));
        assert_eq!(Syscall::from_number(35), None);
    }

    #[test]
    fn a_fault_message_is_eight_words_in_order() {
        let fault = Fault {
            kind: FAULT_SEND_OVER_LIMIT,
            address: 2,
            write: 1,
            pc: 4,
            charge_kind: 5,
            charge_bytes: 6,
            earlier: 7,
            other: 0,
        };
        assert_eq!(Fault::BYTES, 64);
        assert_eq!(fault.words(), [4, 2, 1, 4, 5, 6, 7, 0]);
        assert_eq!(Fault::from_words(&fault.words()), fault);
    }

    #[test]
    fn kinds_and_limit_selectors_are_in_abi_order() {
        for (index, kind) in Kind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, index);
            assert_eq!(Kind::from_index(index), Some(*kind));
            assert_eq!(kind.limit_selector(), index + 1);
            assert_ne!(kind.limit_selector(), LIMIT_TOTAL);
        }
        assert_eq!(Kind::from_index(KINDS), None);
        assert_eq!(Kind::Cow.key(), "cow");
    }

    #[test]
    fn frame_info_encodes_at_its_field_offsets() {
        use core::mem::offset_of;
        let mut info = FrameInfo {
            frame: 7,
            kind: Kind::Cow as u64,
            split: 1,
            party_count: 2,
            mappers: 3,
            ..Default::default()
        };
        info.causer[0] = b'c';
        info.parties[1].set[0] = b's';
        info.parties[1].domain[0] = b'd';
        info.parties[1].bytes = 2048;
        let mut out = [0u8; FrameInfo::BYTES];
        info.encode(&mut out);
        let word = |at: usize| u64::from_le_bytes(out[at..at + 8].try_into().unwrap());
        assert_eq!(FrameInfo::BYTES, 960);
        assert_eq!(word(offset_of!(FrameInfo, frame)), 7);
        assert_eq!(word(offset_of!(FrameInfo, kind)), 4);
        assert_eq!(word(offset_of!(FrameInfo, split)), 1);
        assert_eq!(out[offset_of!(FrameInfo, causer)], b'c');
        assert_eq!(word(offset_of!(FrameInfo, party_count)), 2);
        let party = offset_of!(FrameInfo, parties) + core::mem::size_of::<FrameParty>();
        assert_eq!(out[party + offset_of!(FrameParty, set)], b's');
        assert_eq!(out[party + offset_of!(FrameParty, domain)], b'd');
        assert_eq!(word(party + offset_of!(FrameParty, bytes)), 2048);
        assert_eq!(word(offset_of!(FrameInfo, mappers)), 3);
    }

    #[test]
    fn names_in_fixed_fields_read_back() {
        let mut name: NameBytes = [0; MAX_NAME_BYTES + 1];
        name[..5].copy_from_slice(b"child");
        assert_eq!(name_text(&name), "child");
        assert_eq!(name_text(&[0; MAX_NAME_BYTES + 1]), "");
        let full = [b'a'; MAX_NAME_BYTES + 1];
        assert_eq!(name_text(&full).len(), MAX_NAME_BYTES + 1);
    }
}

/// What a domain's keeper receives when the domain takes a fault the kernel does not resolve
/// by itself (`keeper` in the config): the message's data, eight words, with a domain
/// capability to the faulting domain as its one capability. The domain waits, blocked on its
/// keeper, until the keeper replies: a reply whose first data word is [`KEEPER_RETRY`] (or
/// an empty one) makes it retry the faulting instruction from the beginning,
/// [`KEEPER_STOP`] stops it as the kernel would have without a keeper.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fault {
    /// [`FAULT_NO_REGION`], [`FAULT_PROTECTION`], [`FAULT_OVER_LIMIT`] or
    /// [`FAULT_SEND_OVER_LIMIT`].
    pub kind: u64,
    /// The faulting address.
    pub address: u64,
    /// 1 for a write, 0 for a read or an instruction fetch.
    pub write: u64,
    /// The faulting instruction's address.
    pub pc: u64,
    /// For [`FAULT_OVER_LIMIT`]: the [`Kind`] index of the denied charge.
    pub charge_kind: u64,
    /// For [`FAULT_OVER_LIMIT`]: the bytes the charge would have added where it failed.
    pub charge_bytes: u64,
    /// How many faults this domain has sent its keeper before this one.
    pub earlier: u64,
    /// For [`FAULT_PAGED_OUT`]: 1 when the page is not the faulting domain's own but a
    /// receiver's its send needs (the capability that comes with the fault is then to the
    /// page's domain, and the reply still goes to the sender); else 0.
    pub other: u64,
}

impl Fault {
    /// Its size in bytes, as laid out in the message.
    pub const BYTES: usize = core::mem::size_of::<Fault>();

    /// Its words, in order.
    pub fn words(&self) -> [u64; 8] {
        [
            self.kind,
            self.address,
            self.write,
            self.pc,
            self.charge_kind,
            self.charge_bytes,
            self.earlier,
            self.other,
        ]
    }

    /// The fault a message's words describe.
    pub fn from_words(words: &[u64; 8]) -> Fault {
        Fault {
            kind: words[0],
            address: words[1],
            write: words[2],
            pc: words[3],
            charge_kind: words[4],
            charge_bytes: words[5],
            earlier: words[6],
            other: words[7],
        }
    }
}

/// What `domain_status` reports: the domain's state in the process model (one of the
/// `STATUS_*` values; nothing else can be seen), what it waits for, whether it is suspended,
/// and its registers as they are while it does not run — at the instruction it will execute
/// next, or at the system call or faulting instruction it is blocked in.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DomainStatus {
    /// [`STATUS_RUNNABLE`], [`STATUS_SEND`], [`STATUS_RECV`], [`STATUS_REPLY`],
    /// [`STATUS_WAIT`], [`STATUS_SLEEP`], [`STATUS_EXITED`] or [`STATUS_STOPPED`].
    pub state: u64,
    /// For `SEND` and `RECV`: the endpoint's index; `WAIT`: the domain's slot; `EXITED`: the
    /// exit code (as 32 bits); `STOPPED`: the stop reason's index; else 0.
    pub detail: u64,
    /// 1 when suspended (`domain_suspend`), else 0.
    pub suspended: u64,
    /// The kind of the fault ([`FAULT_NO_REGION`], …) it waits with for its keeper, or 0.
    pub fault: u64,
    /// The address of the next instruction (of the system call or faulting instruction, for a
    /// blocked domain: the one it retries or returns from).
    pub pc: u64,
    /// The stack pointer.
    pub sp: u64,
    /// The saved processor state (SPSR).
    pub pstate: u64,
    /// The general registers x0..x30.
    pub x: [u64; 31],
}

impl DomainStatus {
    /// Its size in bytes.
    pub const BYTES: usize = core::mem::size_of::<DomainStatus>();

    /// Its words, in layout order.
    pub fn words(&self) -> [u64; 38] {
        let mut words = [0u64; 38];
        words[..7].copy_from_slice(&[
            self.state,
            self.detail,
            self.suspended,
            self.fault,
            self.pc,
            self.sp,
            self.pstate,
        ]);
        words[7..].copy_from_slice(&self.x);
        words
    }
}

/// [`DomainStatus::state`]: runnable (ready, or preempted between two instructions).
pub const STATUS_RUNNABLE: u64 = 0;
/// Blocked sending (a `send` or `call` waiting for a receiver, or a fault waiting for its
/// keeper to receive it).
pub const STATUS_SEND: u64 = 1;
/// Blocked receiving (`recv`, the receive half of `reply_recv`).
pub const STATUS_RECV: u64 = 2;
/// Blocked waiting for a reply (a delivered `call`, or a delivered fault).
pub const STATUS_REPLY: u64 = 3;
/// Blocked in `wait`.
pub const STATUS_WAIT: u64 = 4;
/// Exited.
pub const STATUS_EXITED: u64 = 5;
/// Stopped by the kernel.
pub const STATUS_STOPPED: u64 = 6;
/// Blocked in `sleep` until a timer tick.
pub const STATUS_SLEEP: u64 = 7;

/// The longest `sleep`, in ticks.
pub const MAX_SLEEP_TICKS: usize = 1_000_000;

/// `set_keeper`'s endpoint capability for "no keeper".
pub const NO_KEEPER: usize = usize::MAX;

/// [`Fault::kind`]: the address is in no region of the domain.
pub const FAULT_NO_REGION: u64 = 1;
/// [`Fault::kind`]: the access is not allowed (a write to a read-only page, a fetch from a
/// page that is not executable).
pub const FAULT_PROTECTION: u64 = 2;
/// [`Fault::kind`]: resolving the fault needed a charge its limit denied.
pub const FAULT_OVER_LIMIT: u64 = 3;
/// [`Fault::kind`]: a `send` or `call` whose transfer a limit denied (the receiver's pages,
/// a transient buffer, an out-of-line region's tables): the address is the message descriptor,
/// and retrying restarts the system call from the beginning. Sent to the sender's keeper.
pub const FAULT_SEND_OVER_LIMIT: u64 = 4;
/// [`Fault::kind`]: not a fault but a charge query (`cow = keeper`, `msgbuf = keeper`): who
/// pays for a copy-on-write copy the domain's write needs (sent to the keeper of the frame's
/// holder; the address is the written one) or for a transient message buffer of its send (sent
/// to its own keeper; the address is the message descriptor). `charge_kind` and
/// `charge_bytes` say what is to be charged; the capability that comes with it is a domain
/// capability to the domain with the `inspect` right only. The keeper answers
/// [`KEEPER_PAY`] and a set capability, or the kernel falls back (the key's default payer)
/// after [`KEEPER_ANSWER_TICKS`] timer ticks.
pub const FAULT_CHARGE_QUERY: u64 = 5;
/// [`Fault::kind`]: the address is in a page its pager evicted (`page_out`). The keeper pages
/// it back in (`page_in`) and answers retry. Also sent by a `send` or `call` whose transfer
/// needs a paged-out page of the receiver (to the receiver's keeper, [`Fault::other`] = 1) or
/// of the sender itself, and by any system call that needs one of the caller's: the call then
/// runs again from the beginning on retry.
pub const FAULT_PAGED_OUT: u64 = 6;
/// [`Fault::kind`]: not a fault but a request to reclaim (cgroup v2's `memory.high`): a set on
/// the domain's path to the root pays more than its `high` bound. `charge_bytes` is by how much,
/// `charge_kind` the set's id. Sent when the domain is about to run again after a trap that
/// left its usage above the bound higher than when it last asked; the domain goes on from where
/// it was whatever the keeper answers (evicting pages with `page_out`, or nothing).
pub const FAULT_OVER_HIGH: u64 = 7;
/// A keeper's answer (the reply's first data word): retry the faulting instruction.
pub const KEEPER_RETRY: u64 = 0;
/// A keeper's answer: stop the domain as the kernel would have without a keeper.
pub const KEEPER_STOP: u64 = 1;
/// A keeper's answer to a [`FAULT_CHARGE_QUERY`]: the set behind the capability index in the
/// reply's second data word (a charge-set capability of the keeper's with the `create` right)
/// pays; the domain then retries, and the charge is made there or denied there, whole.
/// Anything else (but [`KEEPER_STOP`]) is a wrong answer: the fallback payer, counted.
pub const KEEPER_PAY: u64 = 2;
/// Timer ticks (100 a second) a keeper has to answer a [`FAULT_CHARGE_QUERY`]; then, or when
/// it ends or every domain waits, the kernel falls back to the key's default payer.
pub const KEEPER_ANSWER_TICKS: u64 = 2;
