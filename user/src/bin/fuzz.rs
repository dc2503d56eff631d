//! The Tally fuzzer (issue 10, "Our own fuzzer"): hostile system calls from several domains
//! sharing endpoints under preemption, every delivered message checksummed and verified.
//!
//! One program, four roles, chosen by the program argument `role` (see `docs/fuzzing.md`):
//!
//! - `role = 1`, **client**: the fuzzer loop. Seeded from `seed` and `id` (splitmix64, then
//!   xorshift64*), it issues `calls` system calls: random numbers (unknown ones included) with
//!   hostile arguments (forged, stale and wrong-type capability indices; kernel, unmapped,
//!   misaligned and wrapping pointers; huge lengths), maps and unmaps in a playground and just
//!   below the stack at the top of the address space, checksummed messages to the servers
//!   (aliasing buffers, out-of-line regions, capabilities, malformed descriptors that must be
//!   refused), two-stage self-sends and sends to a peer's inbox, children that exit, make
//!   calls, or are stopped over their limit with messages in flight, and limits exhausted and
//!   freed again. It prints one line `fuzz: seed=S id=I calls=N errors=E messages=M corrupt=0`.
//! - `role = 2`, **server**: receives on endpoint capability 1 (memory descriptors), verifies
//!   every message and answers the calls with a checksummed reply; ends after `clients` DONE
//!   messages.
//! - `role = 3`, **register server**: `reply_recv_registers` on endpoint capability 2, checks
//!   each four-word message (the fourth word is a checksum of the first three), ends after
//!   `clients` DONE words.
//! - no `role` (a spawned child): reads its instructions from the page the parent shared
//!   copy-on-write at [`CHILD_PAGE`].
//!
//! Every choice comes from the seeded generator and the run is deterministic (QEMU runs with
//! `-icount`), so a failure replays exactly with the same config.
#![no_std]
#![no_main]

use abi::{Message, Receive, SharedRegion, MAX_MESSAGE_BYTES, USER_END_ADDRESS};
use user::{check, println, raw_syscall, Error};

user::program! {
    description: "The fuzzer (docs/fuzzing.md). `role` 1, a client: `calls` random system calls with hostile arguments, seeded from `seed` and `id`, with checksummed messages to the servers, children, limits exhausted and freed; every delivered message is verified, and it prints `fuzz: seed=S id=I calls=N errors=E messages=M corrupt=0`. `role` 2, the server: verifies and answers memory-descriptor messages on capability 1 until `clients` DONE messages. `role` 3, the register server: the same for register calls on capability 2. No `role`: a spawned child, which reads its orders from the page its parent shared.",
    caps: {
        0: set => "its own charge set",
        1: ep => "the memory-descriptor server's endpoint",
        2: ep => "the register server's endpoint",
        3: ep (optional) => "a client's own inbox",
        4: ep (optional) => "the next client's inbox",
    },
    args: {
        role: none => "1 client, 2 server, 3 register server; absent in a spawned child",
        clients: 1 => "servers: how many clients' DONE messages end them",
        seed: 1 => "the campaign seed",
        id: 0 => "a client's number (its seed is derived from `seed` and `id`)",
        calls: 1000 => "a client's system calls",
        twostage: 0 => "1 when the run uses two-stage transfer",
        children: 10 => "most children a client spawns",
        sets: 5 => "most charge sets a client creates",
        wrongkind: 1 => "0 turns off wrong-type capability calls",
        twostagecall: 1 => "0 turns off two-stage calls",
    },
    spawns: {
        "fuzz" as "fz00c00" => "a client's children, named fzIIcNN (client II, child NN): they exit, make calls, or are stopped over their limit",
        "fuzz" as "fz-never" => "a spawn into a set too small for it, which must be refused",
    },
    exit: "0 when every check held",
}

// ---------------------------------------------------------------------------------------------
// Layout of a fuzzer's address space (everything it maps is far from the program image at
// 0x40_0000 and from the stack at the top).

const PAGE: usize = 4096;
/// Message data to send (4 pages = MAX_MESSAGE_BYTES).
const TX: usize = 0x10_0000_0000;
const TX_PAGES: usize = 4;
/// The receive buffer (one page more than the largest message).
const RX: usize = 0x10_0001_0000;
const RX_PAGES: usize = 5;
/// Out-of-line source regions: slot i at OOL_SRC + i * 64 KiB, up to 4 pages each.
const OOL_SRC: usize = 0x10_0010_0000;
/// Where incoming out-of-line regions are mapped (the server's side).
const OOL_DST: usize = 0x10_0100_0000;
const OOL_MAX_PAGES: usize = 4;
/// The instruction page shared copy-on-write with each child.
const CHILD_PAGE: usize = 0x11_0000_0000;
/// Where a hog child maps memory until it is stopped.
const HOG: usize = 0x12_0000_0000;
const HOG_PAGES: usize = 4096;
/// The playground for fuzzed map/unmap.
const PLAY: usize = 0x20_0000_0000;
const PLAY_SPAN_PAGES: usize = 256;
/// Where shared-memory region objects are mapped.
const SHM: usize = 0x21_0000_0000;
/// The limit window: a region populated page by page until the set's limit is hit.
const WINDOW: usize = 0x30_0000_0000;
const WINDOW_PAGES: usize = 64;
/// The stack region: [STACK_BOTTOM, USER_END_ADDRESS).
const STACK_BOTTOM: usize = abi::USER_STACK_TOP - abi::USER_STACK_PAGES * PAGE;
/// Mappings "at the top": the pages just below the stack.
const TOP_SPAN_PAGES: usize = 64;
const TOP: usize = STACK_BOTTOM - TOP_SPAN_PAGES * PAGE;

const KERNEL_IMAGE: usize = 0xFFFF_FF80_4008_0000;
const KERNEL_LOW: usize = 0xFFFF_0000_0000_0000;
const UNMAPPED: usize = 0x7700_0000;

// Capability layout of a client (the config installs them in this order).
const CAP_SET: usize = 0;
const CAP_SERVER: usize = 1;
const CAP_REGS: usize = 2;
const CAP_INBOX: usize = 3;
const CAP_PEER: usize = 4;
const CLIENT_CAPS: usize = 5;
const MAX_CAPS: usize = 64;

// Message kinds (header word 1, top byte).
const KIND_CALL: u64 = 1;
const KIND_SEND: u64 = 2;
const KIND_REPLY: u64 = 3;
const KIND_DONE: u64 = 4;
const KIND_MARKER: u64 = 5;
const KIND_PEER: u64 = 6;

const MAGIC: u64 = 0x465A_4D53_4721_0001;
const HEADER_WORDS: usize = 7;
const HEADER: usize = HEADER_WORDS * 8;
const REG_DONE: u64 = 0xD0E0_0000_0000_0000;

// ---------------------------------------------------------------------------------------------
// Randomness and checksums.

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xorshift64*: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn seeded(seed: u64, stream: u64) -> Rng {
        let mut state = seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F);
        let mut value = splitmix(&mut state);
        if value == 0 {
            value = 1;
        }
        Rng(value)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01B3;

fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= b as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut s = a ^ b.rotate_left(21) ^ c.rotate_left(42) ^ 0x5851_F42D_4C95_7F2D;
    splitmix(&mut s)
}

fn bytes_at(address: usize, length: usize) -> &'static [u8] {
    // SAFETY: callers pass ranges inside regions this domain mapped (readable; demand-zero
    // pages read as zeros), never the image or stack.
    unsafe { core::slice::from_raw_parts(address as *const u8, length) }
}

fn bytes_at_mut(address: usize, length: usize) -> &'static mut [u8] {
    // SAFETY: as bytes_at, for regions mapped writable by this domain.
    unsafe { core::slice::from_raw_parts_mut(address as *mut u8, length) }
}

fn word(buffer: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&buffer[i * 8..i * 8 + 8]);
    u64::from_le_bytes(w)
}

fn put_word(buffer: &mut [u8], i: usize, value: u64) {
    buffer[i * 8..i * 8 + 8].copy_from_slice(&value.to_le_bytes());
}

/// Touches (writes one byte of) every page of `[address, address + pages * PAGE)`.
fn touch(address: usize, pages: usize) {
    for p in 0..pages {
        // SAFETY: a writable region of this domain.
        unsafe { core::ptr::write_volatile((address + p * PAGE) as *mut u8, 0) };
    }
}

/// Writes a zero into every page of the stack below the current frame, so no later stack
/// growth needs a charge (a demand-zero fault over the limit would stop the domain).
fn pretouch_stack() {
    let here = 0u8;
    let sp = &here as *const u8 as usize & !(PAGE - 1);
    let mut page = STACK_BOTTOM;
    while page < sp {
        // SAFETY: pages of this domain's own stack region below the live frames.
        unsafe { core::ptr::write_volatile(page as *mut u8, 0) };
        page += PAGE;
    }
}

/// What a message header says about the message.
#[derive(Clone, Copy, Default)]
struct Header {
    kind: u64,
    sender: u64,
    seq: u64,
    length: usize,
    regions: [usize; 4],
    region_count: usize,
    region_sum: u64,
    cap_count: usize,
}

fn region_code(h: &Header) -> u64 {
    let mut code = h.region_count as u64;
    for i in 0..h.region_count {
        code |= (h.regions[i] as u64) << (8 + 8 * i);
    }
    code
}

/// Fills `length` bytes at `address` with a header and a payload derived from (sender, seq),
/// and the checksum over both.
fn build(address: usize, h: &Header) {
    let buffer = bytes_at_mut(address, h.length);
    let mut stream = Rng::seeded(h.sender << 40 | h.seq, h.kind);
    let mut i = HEADER;
    while i < h.length {
        let w = stream.next().to_le_bytes();
        let n = (h.length - i).min(8);
        buffer[i..i + n].copy_from_slice(&w[..n]);
        i += n;
    }
    put_word(buffer, 0, MAGIC);
    put_word(buffer, 1, h.kind << 56 | h.sender << 40 | h.seq);
    put_word(buffer, 2, h.length as u64);
    put_word(buffer, 3, region_code(h));
    put_word(buffer, 4, h.region_sum);
    put_word(buffer, 5, h.cap_count as u64);
    let sum = fnv(fnv(FNV_OFFSET, &buffer[..HEADER - 8]), &buffer[HEADER..]);
    put_word(buffer, 6, sum);
}

/// Fills an out-of-line source region with a pattern; returns its checksum.
fn fill_region(address: usize, pages: usize, stream: u64) -> u64 {
    let buffer = bytes_at_mut(address, pages * PAGE);
    let mut r = Rng::seeded(stream, 0x00D1_5EA5E);
    for chunk in buffer.chunks_exact_mut(8) {
        chunk.copy_from_slice(&r.next().to_le_bytes());
    }
    fnv(FNV_OFFSET, buffer)
}

/// Verifies a received message: the header, the checksum, and what the kernel reports about
/// regions and capabilities. Any mismatch is a corrupt message: the check fails the run.
fn verify(who: &str, buffer: usize, receive: &Receive, region_at: &[usize; 4]) -> Header {
    let length = receive.data_length;
    check!(
        (HEADER..=MAX_MESSAGE_BYTES).contains(&length),
        "{}: corrupt message: {} bytes",
        who,
        length
    );
    let data = bytes_at(buffer, length);
    check!(
        word(data, 0) == MAGIC,
        "{}: corrupt message: magic {:#x}",
        who,
        word(data, 0)
    );
    let w1 = word(data, 1);
    let mut h = Header {
        kind: w1 >> 56,
        sender: (w1 >> 40) & 0xFFFF,
        seq: w1 & 0xFF_FFFF_FFFF,
        length: word(data, 2) as usize,
        region_sum: word(data, 4),
        cap_count: word(data, 5) as usize,
        ..Header::default()
    };
    check!(
        h.length == length,
        "{}: corrupt message from {} seq {}: header says {} bytes, {} arrived",
        who,
        h.sender,
        h.seq,
        h.length,
        length
    );
    let sum = fnv(fnv(FNV_OFFSET, &data[..HEADER - 8]), &data[HEADER..]);
    check!(
        sum == word(data, 6),
        "{}: corrupt message from {} seq {} ({} bytes): checksum {:#x}, expected {:#x}",
        who,
        h.sender,
        h.seq,
        length,
        sum,
        word(data, 6)
    );
    let code = word(data, 3);
    h.region_count = (code & 0xFF) as usize;
    check!(
        receive.region_count == h.region_count && receive.cap_count == h.cap_count,
        "{}: corrupt message from {} seq {}: {} regions and {} caps arrived, {} and {} sent",
        who,
        h.sender,
        h.seq,
        receive.region_count,
        receive.cap_count,
        h.region_count,
        h.cap_count
    );
    for i in 0..h.region_count {
        h.regions[i] = ((code >> (8 + 8 * i)) & 0xFF) as usize;
        check!(
            receive.region_pages[i] == h.regions[i],
            "{}: corrupt message: region {} has {} pages, {} sent",
            who,
            i,
            receive.region_pages[i],
            h.regions[i]
        );
    }
    if h.region_count > 0 {
        // Regions are checksummed one after the other, each from a fresh offset basis.
        let mut combined = FNV_OFFSET;
        for (i, &at) in region_at.iter().enumerate().take(h.region_count) {
            let one = fnv(FNV_OFFSET, bytes_at(at, h.regions[i] * PAGE));
            combined = mix(combined, one, i as u64);
        }
        check!(
            combined == h.region_sum,
            "{}: corrupt out-of-line region from {} seq {}",
            who,
            h.sender,
            h.seq
        );
    }
    h
}

// ---------------------------------------------------------------------------------------------
// System calls: every one is counted, and every return value is checked to be a success value
// or one of abi::Error's codes.

struct Counters {
    calls: u64,
    errors: u64,
    messages: u64,
}

impl Counters {
    fn sys(&mut self, number: usize, args: [usize; 6]) -> Result<usize, Error> {
        let raw = raw_syscall(number, args);
        self.sys_counted(number, args, raw)
    }

    fn sys_counted(&mut self, number: usize, args: [usize; 6], raw: usize) -> Result<usize, Error> {
        self.calls += 1;
        if (raw as isize) < 0 {
            let error = Error::from_code(raw.wrapping_neg());
            check!(
                error.is_some(),
                "system call {} {:x?} returned {:#x}, not an error code",
                number,
                args,
                raw
            );
            self.errors += 1;
            Err(error.unwrap_or(Error::BadArgument))
        } else {
            Ok(raw)
        }
    }

    fn map(&mut self, address: usize, pages: usize, flags: usize) -> Result<usize, Error> {
        self.sys(abi::Syscall::Map as usize, [address, pages, flags, 0, 0, 0])
    }
    fn unmap(&mut self, address: usize, pages: usize) -> Result<usize, Error> {
        self.sys(abi::Syscall::Unmap as usize, [address, pages, 0, 0, 0, 0])
    }
    fn send(&mut self, cap: usize, message: &Message) -> Result<usize, Error> {
        let m = message as *const Message as usize;
        self.sys(abi::Syscall::Send as usize, [cap, m, 0, 0, 0, 0])
    }
    fn recv(&mut self, cap: usize, receive: &mut Receive) -> Result<usize, Error> {
        let r = receive as *mut Receive as usize;
        self.sys(abi::Syscall::Recv as usize, [cap, r, 0, 0, 0, 0])
    }
    fn call(
        &mut self,
        cap: usize,
        message: &Message,
        receive: &mut Receive,
    ) -> Result<usize, Error> {
        let m = message as *const Message as usize;
        let r = receive as *mut Receive as usize;
        self.sys(abi::Syscall::Call as usize, [cap, m, r, 0, 0, 0])
    }
    fn reply(&mut self, message: &Message) -> Result<usize, Error> {
        let m = message as *const Message as usize;
        self.sys(abi::Syscall::Reply as usize, [m, 0, 0, 0, 0, 0])
    }
    fn set_query(&mut self, cap: usize, address: usize) -> Result<usize, Error> {
        self.sys(abi::Syscall::SetQuery as usize, [cap, address, 0, 0, 0, 0])
    }
    fn set_limit(&mut self, cap: usize, limit: usize) -> Result<usize, Error> {
        self.sys(abi::Syscall::SetLimit as usize, [cap, limit, 0, 0, 0, 0])
    }
    fn set_create(&mut self, parent: usize, name: &[u8], limit: usize) -> Result<usize, Error> {
        let args = [parent, name.as_ptr() as usize, name.len(), limit, 0, 0];
        self.sys(abi::Syscall::SetCreate as usize, args)
    }
    /// `wait`: an exited child's code as 32 bits, or `usize::MAX` (this program's "stopped",
    /// -1 as a code) for [`abi::WAIT_STOPPED`].
    fn wait(&mut self, cap: usize) -> Result<usize, Error> {
        let raw = raw_syscall(abi::Syscall::Wait as usize, [cap, 0, 0, 0, 0, 0]);
        let value = self.sys_counted(abi::Syscall::Wait as usize, [cap, 0, 0, 0, 0, 0], raw)?;
        check!(
            value == abi::WAIT_STOPPED || value <= u32::MAX as usize,
            "wait returned {:#x}",
            value
        );
        Ok(if value == abi::WAIT_STOPPED {
            usize::MAX
        } else {
            value
        })
    }
    fn yield_now(&mut self) {
        let _ = self.sys(abi::Syscall::Yield as usize, [0; 6]);
    }
    fn registers(&mut self, cap: usize, words: user::Words) -> Result<user::Words, Error> {
        self.calls += 1;
        let result = user::call_registers(cap, words);
        if result.is_err() {
            self.errors += 1;
        }
        result
    }
    fn usage(&mut self, cap: usize) -> Option<abi::SetUsage> {
        let mut usage = abi::SetUsage::default();
        let address = &mut usage as *mut abi::SetUsage as usize;
        self.set_query(cap, address).ok()?;
        Some(usage)
    }
}

fn expect_err(what: &str, result: Result<usize, Error>, allowed: &[Error]) {
    match result {
        Err(e) if allowed.contains(&e) => {}
        other => {
            check!(
                false,
                "{}: expected one of {:?}, got {:?}",
                what,
                allowed,
                other
            );
        }
    }
}

fn receive_at(buffer: usize, capacity: usize, regions: [usize; 4]) -> Receive {
    Receive {
        buffer_address: buffer,
        buffer_capacity: capacity,
        region_addresses: regions,
        ..Receive::default()
    }
}

fn ool_dst() -> [usize; 4] {
    [
        OOL_DST,
        OOL_DST + 0x10000,
        OOL_DST + 0x20000,
        OOL_DST + 0x30000,
    ]
}

// ---------------------------------------------------------------------------------------------
// The client: the fuzzer loop.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cap {
    Empty,
    Set,
    Endpoint,
    /// A child domain: its number, and whether it has been waited for (then it is stale).
    Child(usize, bool),
    Region(usize),
    Other,
}

#[derive(Clone, Copy)]
struct Mapping {
    start: usize,
    pages: usize,
    writable: bool,
}

/// A child: what it was told to do, which capability names it, and what it must end with.
#[derive(Clone, Copy)]
struct Child {
    cap: usize,
    expect: i64,
    live: bool,
}

const MAX_CHILDREN: usize = 24;
const MAX_MAPPINGS: usize = 2;

struct Client {
    id: u64,
    seed: u64,
    budget: u64,
    twostage: bool,
    rng: Rng,
    n: Counters,
    seq: u64,
    caps: [Cap; MAX_CAPS],
    cap_count: usize,
    maps: [Option<Mapping>; MAX_MAPPINGS],
    children: [Option<Child>; MAX_CHILDREN],
    child_count: usize,
    child_budget: usize,
    set_budget: usize,
    sets_made: usize,
    region_budget: usize,
    window_budget: usize,
    sub_sets: [usize; 8],
    sub_set_count: usize,
    shm_mapped: bool,
    wrong_kind: bool,
    twostage_call: bool,
}

// The instruction block at CHILD_PAGE.
const CHILD_MAGIC: u64 = 0xC41D_F022_0000_0001;
const MODE_EXIT: u64 = 0;
const MODE_CALLS: u64 = 1;
const MODE_HOG: u64 = 2;
const MODE_INBOX: u64 = 3;

impl Client {
    fn new(id: u64, seed: u64, budget: u64, twostage: bool) -> Client {
        let mut caps = [Cap::Empty; MAX_CAPS];
        caps[CAP_SET] = Cap::Set;
        for cap in &mut caps[CAP_SERVER..CLIENT_CAPS] {
            *cap = Cap::Endpoint;
        }
        Client {
            id,
            seed,
            budget,
            twostage,
            rng: Rng::seeded(seed, id + 1),
            n: Counters {
                calls: 0,
                errors: 0,
                messages: 0,
            },
            seq: 0,
            caps,
            cap_count: CLIENT_CAPS,
            maps: [None; MAX_MAPPINGS],
            children: [None; MAX_CHILDREN],
            child_count: 0,
            child_budget: user::arg_or("children", 10) as usize,
            set_budget: user::arg_or("sets", 5) as usize,
            sets_made: 0,
            region_budget: 3,
            window_budget: 4,
            sub_sets: [0; 8],
            sub_set_count: 0,
            shm_mapped: false,
            wrong_kind: user::arg_or("wrongkind", 1) != 0,
            twostage_call: user::arg_or("twostagecall", 1) != 0,
        }
    }

    fn note_cap(&mut self, index: usize, cap: Cap) {
        if index < MAX_CAPS {
            if self.caps[index] == Cap::Empty {
                self.cap_count += 1;
            }
            self.caps[index] = cap;
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A capability index that is not of the type `want` (forged: past the table or empty;
    /// wrong type; or stale: a child already waited for).
    /// [`bad_cap`](Self::bad_cap), but never [`abi::SELF`] (which names our own space).
    fn not_self(&mut self, want: Cap) -> usize {
        match self.bad_cap(want) {
            abi::SELF => 63,
            cap => cap,
        }
    }

    fn bad_cap(&mut self, want: Cap) -> usize {
        match self.rng.below(6) {
            0 => 63,
            1 => usize::MAX - self.rng.below(4),
            2 => MAX_CAPS + self.rng.below(1000),
            3 => self.cap_count + self.rng.below(MAX_CAPS - self.cap_count.min(MAX_CAPS - 1)),
            _ => {
                // A real capability of another type (or a stale child).
                for _ in 0..8 {
                    let i = self.rng.below(self.cap_count.max(1));
                    let ok = match (self.caps[i], want) {
                        // Received or otherwise unknown capabilities may be of any type.
                        (Cap::Empty | Cap::Other, _) => false,
                        (Cap::Child(_, stale), Cap::Child(..)) => stale,
                        (Cap::Set, Cap::Set) => false,
                        (Cap::Endpoint, Cap::Endpoint) => false,
                        (Cap::Region(_), Cap::Region(_)) => false,
                        _ => true,
                    };
                    if ok {
                        return i;
                    }
                }
                63
            }
        }
    }

    /// A hostile pointer: mostly not writable memory of ours, sometimes the scratch buffers.
    fn pointer(&mut self) -> usize {
        let r = self.rng.next() as usize;
        match self.rng.below(16) {
            0 => 0,
            1 => 1 + r % 8,
            2 => KERNEL_LOW + (r % (1 << 30)) * 8,
            3 => KERNEL_IMAGE,
            4 => usize::MAX - r % 64,
            5 => UNMAPPED + (r % 64) * 8,
            6 => TX + r % (TX_PAGES * PAGE),
            7 => (RX + r % (RX_PAGES * PAGE)) & !7,
            8 => USER_END_ADDRESS - 8 * (r % 8),
            9 => USER_END_ADDRESS + (r % 4096),
            10 => abi::USER_IMAGE_BASE + r % 8192,
            11 => TOP + (r % (TOP_SPAN_PAGES * PAGE)),
            12 => 1 << (40 + r % 20),
            13 => RX + 3,
            14 => abi::USER_MIN_ADDRESS - 8,
            _ => r,
        }
    }

    fn length(&mut self) -> usize {
        let r = self.rng.next() as usize;
        match self.rng.below(8) {
            0 => 0,
            1 => usize::MAX - r % 16,
            2 => MAX_MESSAGE_BYTES + 1 + r % 4096,
            3 => 1 << (20 + r % 40),
            4 => r,
            _ => r % 64,
        }
    }

    // --- random system calls --------------------------------------------------------------

    fn random_syscall(&mut self) {
        let number = match self.rng.below(8) {
            0 => 35 + self.rng.below(64),
            1 => self.rng.next() as usize,
            _ => self.rng.below(35),
        };
        let mut args = [0usize; 6];
        for a in args.iter_mut() {
            *a = match self.rng.below(3) {
                0 => self.pointer(),
                1 => self.length(),
                _ => self.rng.next() as usize,
            };
        }
        use abi::Syscall as S;
        let Some(call) = abi::Syscall::from_number(number) else {
            let result = self.n.sys(number, args);
            expect_err("unknown system call", result, &[Error::BadSyscall]);
            return;
        };
        match call {
            // Never exit; memory calls go through the tracked playground.
            S::Exit | S::Map | S::Unmap | S::RegionMap => return self.fuzz_memory(),
            S::CapDerive | S::CapDelete | S::CapRevoke | S::CapInspect => {
                return self.fuzz_rights(call)
            }
            S::ConsoleWrite => {
                // Keep the console clean: empty, too long, or not readable.
                args[1] = match self.rng.below(3) {
                    0 => 0,
                    1 => abi::MAX_CONSOLE_WRITE_BYTES + 1 + self.rng.below(1 << 20),
                    _ => args[1] | 1 << 62,
                };
            }
            S::Wait => args[0] = self.bad_cap(Cap::Child(0, false)),
            // A bad domain capability (or a stale child's, which has ended); any set.
            S::DomainMove => args[0] = self.bad_cap(Cap::Child(0, false)),
            S::Spawn => args[1] = self.bad_cap(Cap::Set),
            // A bad domain capability, or our own space with a bad endpoint capability: our own
            // keeper never changes (a fault of ours must stop us, as the checks expect).
            S::SetKeeper => {
                if self.rng.chance(2) {
                    args[0] = abi::SELF;
                    args[1] = self.bad_cap(Cap::Endpoint);
                    if args[1] == abi::NO_KEEPER {
                        args[1] = 63;
                    }
                } else {
                    args[0] = self.not_self(Cap::Child(0, false));
                }
            }
            // Never a live child (a suspended child would never end): a forged, stale or
            // wrong-type capability, or our own space (refused: no one suspends itself).
            S::DomainSuspend | S::DomainResume => args[0] = self.bad_cap(Cap::Child(0, false)),
            // Mostly a tick count out of range; now and then one tick's sleep.
            S::Sleep => {
                args[0] = match self.rng.below(64) {
                    0 => 1,
                    1..=31 => 0,
                    _ => abi::MAX_SLEEP_TICKS + 1 + self.rng.below(1 << 20),
                }
            }
            S::DomainStatus => {
                if self.rng.chance(2) {
                    args[0] = abi::SELF;
                } else if let Some(child) = self.children.iter().flatten().next() {
                    args[0] = child.cap;
                }
                if matches!(args[1], a if (abi::USER_IMAGE_BASE..0x1000_0000).contains(&a)
                    || (STACK_BOTTOM..USER_END_ADDRESS).contains(&a))
                {
                    args[1] = KERNEL_LOW;
                }
            }
            // Into a bad domain capability's space (our own goes through the playground).
            S::DomainMap => args[0] = self.not_self(Cap::Child(0, false)),
            // A pager's calls on a bad domain capability (evicting a live child's page would
            // stop it at its next touch); a store the kernel may write: not our image or stack.
            S::PageOut | S::PageIn => {
                args[0] = self.not_self(Cap::Child(0, false));
                if matches!(args[2], a if (abi::USER_IMAGE_BASE..0x1000_0000).contains(&a)
                    || (STACK_BOTTOM..USER_END_ADDRESS).contains(&a))
                {
                    args[2] = KERNEL_LOW;
                }
            }
            S::SetCreate | S::SetLimit => args[0] = self.bad_cap(Cap::Set),
            S::FrameInfo => {
                // Our own space or a bad domain capability; any address; an info pointer the
                // kernel may write (not our image or stack).
                if self.rng.chance(2) {
                    args[0] = abi::SELF;
                } else {
                    args[0] = self.bad_cap(Cap::Child(0, false));
                }
                if matches!(args[2], a if (abi::USER_IMAGE_BASE..0x1000_0000).contains(&a)
                    || (STACK_BOTTOM..USER_END_ADDRESS).contains(&a))
                {
                    args[2] = KERNEL_LOW;
                }
            }
            S::SetQuery => {
                if self.rng.chance(2) {
                    args[0] = CAP_SET;
                    // Only a pointer the kernel may write: not our image or stack.
                    if matches!(args[1], a if (abi::USER_IMAGE_BASE..0x1000_0000).contains(&a)
                        || (STACK_BOTTOM..USER_END_ADDRESS).contains(&a))
                    {
                        args[1] = KERNEL_LOW;
                    }
                } else {
                    args[0] = self.bad_cap(Cap::Set);
                }
            }
            S::Snapshot => {
                args[1] = match self.rng.below(2) {
                    0 => 0,
                    _ => abi::MAX_NAME_BYTES + 1 + self.rng.below(100),
                }
            }
            S::Send
            | S::Recv
            | S::Call
            | S::ReplyRecv
            | S::CallRegisters
            | S::ReplyRecvRegisters => args[0] = self.bad_cap(Cap::Endpoint),
            S::Reply => {}
            S::RegionCreate => {
                if self.region_budget > 0 && self.rng.chance(64) {
                    args[0] = 1 + self.rng.below(abi::MAX_SHARED_REGION_PAGES);
                } else if self.rng.chance(2) {
                    args[0] = 0;
                } else {
                    args[0] = abi::MAX_SHARED_REGION_PAGES + 1 + self.rng.below(1 << 20);
                }
            }
            S::Yield | S::Arg => {}
        }
        let result = if call == S::Wait {
            self.n.wait(args[0])
        } else {
            self.n.sys(number, args)
        };
        if let Ok(value) = result {
            match call {
                S::RegionCreate => {
                    self.region_budget = self.region_budget.saturating_sub(1);
                    check!(value < MAX_CAPS, "region_create returned {}", value);
                    self.note_cap(value, Cap::Region(args[0]));
                }
                S::Spawn | S::SetCreate => self.note_cap(value, Cap::Other),
                S::Send
                | S::Recv
                | S::Call
                | S::ReplyRecv
                | S::CallRegisters
                | S::ReplyRecvRegisters
                | S::DomainMove
                | S::DomainSuspend
                | S::DomainResume
                | S::DomainMap
                | S::SetKeeper
                | S::SetLimit => {
                    check!(false, "{:?} with a bad capability succeeded", call)
                }
                _ => {}
            }
        } else if let Err(e) = result {
            if matches!(call, S::Send | S::Recv | S::Call | S::CallRegisters) {
                check!(
                    matches!(e, Error::BadCapability | Error::WrongCapabilityType),
                    "{:?} with capability {:#x}: {:?}",
                    call,
                    args[0],
                    e
                );
            }
        }
    }

    // --- capabilities and rights -----------------------------------------------------------

    /// An index that names no capability of ours: past the table, wrapping, or a slot that
    /// is empty (received capabilities may fill any slot we have not noted: only those we
    /// know are empty).
    fn forged_cap(&mut self) -> Option<usize> {
        match self.rng.below(3) {
            0 => Some(MAX_CAPS + self.rng.below(1000)),
            1 => Some(usize::MAX - self.rng.below(4)),
            _ => None,
        }
    }

    /// The capability calls: forged indices refused with `bad-capability`; a real capability
    /// of ours inspected (its type as we know it); a weakened copy derived, every right it
    /// lacks refused by a call that needs it with that right's error, asking back a right it
    /// lacks refused, then the copy revoked (it has no children) and deleted.
    fn fuzz_rights(&mut self, call: abi::Syscall) {
        use abi::{Rights, Syscall as S};
        if let Some(forged) = self.forged_cap() {
            let result = self
                .n
                .sys(call as usize, [forged, Rights::ALL.0 as usize, 0, 0, 0, 0]);
            expect_err(
                "capability call on a forged index",
                result,
                &[Error::BadCapability],
            );
            return;
        }
        let known = [CAP_SET, CAP_SERVER, CAP_INBOX];
        let index = known[self.rng.below(known.len())];
        let (kind, all) = match self.caps[index] {
            Cap::Set => (abi::CAP_TYPE_SET, Rights::SET),
            Cap::Endpoint => (abi::CAP_TYPE_ENDPOINT, Rights::ENDPOINT),
            _ => return,
        };
        let inspect =
            |n: &mut Counters, cap: usize| n.sys(S::CapInspect as usize, [cap, 0, 0, 0, 0, 0]);
        let got = inspect(&mut self.n, index);
        check!(
            got == Ok(kind << abi::CAP_TYPE_SHIFT | usize::from(all.0)),
            "cap_inspect of {}: {:x?}",
            index,
            got
        );
        // A rights word outside the type's rights is refused.
        let bad = Rights::ALL.intersection(Rights(!all.0));
        let result = self.n.sys(
            S::CapDerive as usize,
            [index, usize::from(bad.0), 0, 0, 0, 0],
        );
        expect_err(
            "cap_derive with another type's rights",
            result,
            &[Error::BadArgument],
        );
        let keep = Rights(self.rng.below(usize::from(all.0) + 1) as u16).intersection(all);
        let copy = match self.n.sys(
            S::CapDerive as usize,
            [index, usize::from(keep.0), 0, 0, 0, 0],
        ) {
            Ok(copy) => copy,
            Err(Error::TableFull) => return,
            Err(e) => {
                check!(false, "cap_derive {} {}: {:?}", index, keep, e);
                return;
            }
        };
        check!(copy < MAX_CAPS, "cap_derive returned {}", copy);
        let got = inspect(&mut self.n, copy);
        check!(
            got == Ok(kind << abi::CAP_TYPE_SHIFT | usize::from(keep.0)),
            "cap_inspect of a copy with {}: {:x?}",
            keep,
            got
        );
        for (right, _, error) in Rights::NAMED {
            if !all.contains(right) || keep.contains(right) {
                continue;
            }
            let mut usage = abi::SetUsage::default();
            let usage = &mut usage as *mut abi::SetUsage as usize;
            let message = Message::default();
            let message = &message as *const Message as usize;
            let mut receive = Receive::default();
            let receive = &mut receive as *mut Receive as usize;
            let name = b"never";
            let (number, args) = match right {
                r if r == Rights::SEND => (S::Send, [copy, message, 0, 0, 0, 0]),
                r if r == Rights::RECEIVE => (S::Recv, [copy, receive, 0, 0, 0, 0]),
                r if r == Rights::QUERY => (S::SetQuery, [copy, usage, 0, 0, 0, 0]),
                r if r == Rights::LIMIT => (S::SetLimit, [copy, 0, 0, 0, 0, 0]),
                r if r == Rights::CREATE => (
                    S::SetCreate,
                    [copy, name.as_ptr() as usize, name.len(), 4096, 0, 0],
                ),
                // `grant`: a message with a capability through a copy that may send.
                _ if keep.contains(Rights::SEND) => {
                    let mut with_cap = Message::default();
                    with_cap.caps[0] = CAP_SET;
                    with_cap.cap_count = 1;
                    let result = self.n.send(copy, &with_cap);
                    expect_err("send of a capability without grant", result, &[error]);
                    continue;
                }
                _ => continue,
            };
            let result = self.n.sys(number as usize, args);
            expect_err("a call without its right", result, &[error]);
        }
        // Asking back a right the copy lacks.
        if keep != all {
            let result = self.n.sys(
                S::CapDerive as usize,
                [copy, usize::from(all.0), 0, 0, 0, 0],
            );
            check!(
                matches!(result, Err(e) if Rights::NAMED.iter().any(|(_, _, x)| *x == e)),
                "cap_derive of more rights than held: {:?}",
                result
            );
        }
        let revoked = self.n.sys(S::CapRevoke as usize, [copy, 0, 0, 0, 0, 0]);
        check!(revoked == Ok(0), "cap_revoke of a leaf: {:?}", revoked);
        let deleted = self.n.sys(S::CapDelete as usize, [copy, 0, 0, 0, 0, 0]);
        check!(deleted == Ok(0), "cap_delete: {:?}", deleted);
        let gone = inspect(&mut self.n, copy);
        expect_err("a deleted capability", gone, &[Error::BadCapability]);
    }

    // --- memory ----------------------------------------------------------------------------

    fn fuzz_memory(&mut self) {
        match self.rng.below(8) {
            0..=2 => self.fuzz_map(),
            3 | 4 => self.fuzz_unmap(),
            5 => self.touch_mapping(),
            6 => self.bad_map(),
            _ => self.fuzz_region_object(),
        }
    }

    fn overlaps_known(&self, start: usize, end: usize) -> bool {
        self.maps
            .iter()
            .flatten()
            .any(|m| start < m.start + m.pages * PAGE && m.start < end)
            || (start < USER_END_ADDRESS && STACK_BOTTOM < end)
            || (self.shm_mapped && start < SHM + 16 * PAGE && SHM < end)
    }

    fn fuzz_map(&mut self) {
        let pages = 1 + self.rng.below(8);
        let top = self.rng.chance(2);
        let start = if top {
            // Just below the stack, sometimes reaching into it.
            STACK_BOTTOM - (1 + self.rng.below(TOP_SPAN_PAGES)) * PAGE
        } else {
            PLAY + self.rng.below(PLAY_SPAN_PAGES) * PAGE
        };
        let flags = self.rng.below(2);
        let end = start + pages * PAGE;
        let overlap = self.overlaps_known(start, end);
        let free = self.maps.iter().position(|m| m.is_none());
        if free.is_none() && !overlap {
            return;
        }
        let result = self.n.map(start, pages, flags);
        if overlap {
            expect_err("map over a mapping", result, &[Error::RegionOverlap]);
            return;
        }
        match result {
            Ok(v) => {
                check!(v == 0, "map returned {}", v);
                if let Some(slot) = free {
                    self.maps[slot] = Some(Mapping {
                        start,
                        pages,
                        writable: flags == 1,
                    });
                }
            }
            Err(e) => check!(e == Error::TableFull, "map {:#x}+{}: {:?}", start, pages, e),
        }
    }

    fn bad_map(&mut self) {
        let (address, pages, flags, allowed): (usize, usize, usize, &[Error]) =
            match self.rng.below(10) {
                0 => (
                    PLAY + 1 + self.rng.below(PAGE - 1),
                    1,
                    1,
                    &[Error::BadArgument],
                ),
                1 => (PLAY, 0, 1, &[Error::BadArgument]),
                2 => (PLAY, 1, 4 + self.rng.below(100), &[Error::BadArgument]),
                3 => (PLAY, usize::MAX / PAGE + 1, 1, &[Error::BadArgument]),
                4 => (USER_END_ADDRESS, 1, 1, &[Error::BadArgument]),
                5 => (USER_END_ADDRESS - PAGE, 2, 1, &[Error::BadArgument]),
                6 => (
                    KERNEL_LOW + self.rng.below(1 << 20) * PAGE,
                    1,
                    0,
                    &[Error::BadArgument],
                ),
                7 => (0, 1, 1, &[Error::BadArgument]),
                8 => (usize::MAX & !(PAGE - 1), 1, 1, &[Error::BadArgument]),
                // Over the stack or the program image: refused, never replaced.
                _ => {
                    if self.rng.chance(2) {
                        (USER_END_ADDRESS - PAGE, 1, 1, &[Error::RegionOverlap])
                    } else {
                        (abi::USER_IMAGE_BASE, 1, 1, &[Error::RegionOverlap])
                    }
                }
            };
        let result = self.n.map(address, pages, flags);
        expect_err("bad map", result, allowed);
    }

    fn fuzz_unmap(&mut self) {
        let slot = self.rng.below(MAX_MAPPINGS);
        let Some(m) = self.maps[slot] else {
            // Nothing there: unmapping unmapped memory fails.
            let start = PLAY + self.rng.below(PLAY_SPAN_PAGES) * PAGE;
            if !self.overlaps_known(start, start + PAGE) {
                let result = self.n.unmap(start, 1);
                expect_err("unmap of nothing", result, &[Error::BadAddress]);
            }
            return;
        };
        match self.rng.below(6) {
            0 => {
                let result = self.n.unmap(m.start, m.pages + 1);
                expect_err("unmap past the end", result, &[Error::BadAddress]);
            }
            1 => {
                let result = self.n.unmap(m.start + 1, 1);
                expect_err("misaligned unmap", result, &[Error::BadArgument]);
            }
            2 => {
                let result = self.n.unmap(m.start, 0);
                expect_err("unmap of 0 pages", result, &[Error::BadArgument]);
            }
            3 if m.pages > 1 => {
                // Shrink from the front (no split).
                let k = 1 + self.rng.below(m.pages - 1);
                let result = self.n.unmap(m.start, k);
                check!(result == Ok(0), "unmap head: {:?}", result);
                self.maps[slot] = Some(Mapping {
                    start: m.start + k * PAGE,
                    pages: m.pages - k,
                    ..m
                });
            }
            _ => {
                let result = self.n.unmap(m.start, m.pages);
                check!(
                    result == Ok(0),
                    "unmap {:#x}+{}: {:?}",
                    m.start,
                    m.pages,
                    result
                );
                self.maps[slot] = None;
            }
        }
    }

    fn touch_mapping(&mut self) {
        let slot = self.rng.below(MAX_MAPPINGS);
        let Some(m) = self.maps[slot] else { return };
        let page = m.start + self.rng.below(m.pages) * PAGE;
        let offset = self.rng.below(PAGE / 8) * 8;
        if m.writable {
            let value = self.rng.next();
            // SAFETY: a writable page of a region this domain mapped.
            unsafe { core::ptr::write_volatile((page + offset) as *mut u64, value) };
        } else {
            // SAFETY: a readable page of a region this domain mapped; demand-zero reads 0.
            let value = unsafe { core::ptr::read_volatile((page + offset) as *const u64) };
            check!(value == 0, "read-only demand-zero page reads {:#x}", value);
        }
    }

    fn fuzz_region_object(&mut self) {
        let region = (0..self.cap_count).find(|&i| matches!(self.caps[i], Cap::Region(_)));
        let Some(index) = region else {
            if self.region_budget > 0 && self.rng.chance(8) {
                let pages = 1 + self.rng.below(abi::MAX_SHARED_REGION_PAGES);
                let result = self
                    .n
                    .sys(abi::Syscall::RegionCreate as usize, [pages, 0, 0, 0, 0, 0]);
                self.region_budget -= 1;
                match result {
                    Ok(cap) => self.note_cap(cap, Cap::Region(pages)),
                    Err(e) => check!(
                        matches!(e, Error::TableFull | Error::OverLimit | Error::OutOfMemory),
                        "region_create: {:?}",
                        e
                    ),
                }
            }
            return;
        };
        let Cap::Region(pages) = self.caps[index] else {
            return;
        };
        let rm = abi::Syscall::RegionMap as usize;
        if self.shm_mapped {
            if self.rng.chance(2) {
                // Map again over itself: overlap.
                let result = self.n.sys(rm, [index, SHM, abi::MAP_WRITE, 0, 0, 0]);
                expect_err("region over itself", result, &[Error::RegionOverlap]);
            } else {
                let result = self.n.unmap(SHM, pages);
                check!(result == Ok(0), "unmap shm: {:?}", result);
                self.shm_mapped = false;
            }
            return;
        }
        let (address, allowed): (usize, &[Error]) = match self.rng.below(5) {
            0 => (SHM + 8, &[Error::BadArgument]),
            1 => (
                USER_END_ADDRESS - PAGE,
                &[Error::BadArgument, Error::RegionOverlap],
            ),
            2 => (KERNEL_LOW, &[Error::BadArgument]),
            _ => (SHM, &[]),
        };
        let result = self.n.sys(rm, [index, address, abi::MAP_WRITE, 0, 0, 0]);
        if allowed.is_empty() {
            match result {
                Ok(_) => {
                    self.shm_mapped = true;
                    touch(SHM, pages);
                }
                Err(e) => check!(
                    matches!(e, Error::TableFull | Error::OverLimit | Error::OutOfMemory),
                    "region_map: {:?}",
                    e
                ),
            }
        } else {
            expect_err("bad region_map", result, allowed);
        }
    }

    // --- messages --------------------------------------------------------------------------

    /// A valid checksummed message at `data` (TX or, aliasing, RX) of kind `kind`.
    fn message(&mut self, kind: u64, data: usize, max: usize, regions: bool) -> (Message, Header) {
        let length = HEADER
            + match self.rng.below(4) {
                0 => 0,
                1 => self.rng.below(64),
                2 => self.rng.below(4096),
                _ => self.rng.below(max - HEADER + 1),
            };
        let mut h = Header {
            kind,
            sender: self.id,
            seq: self.next_seq(),
            length: length.min(max),
            ..Header::default()
        };
        let mut message = Message {
            data_address: data,
            data_length: h.length,
            ..Message::default()
        };
        if regions && self.rng.chance(4) {
            h.region_count = 1 + self.rng.below(abi::MAX_MESSAGE_REGIONS);
            let mut combined = FNV_OFFSET;
            for i in 0..h.region_count {
                let pages = 1 + self.rng.below(OOL_MAX_PAGES);
                let address = OOL_SRC + i * 0x10000;
                h.regions[i] = pages;
                check!(
                    self.n.map(address, pages, abi::MAP_WRITE) == Ok(0),
                    "map out-of-line source"
                );
                let one = fill_region(address, pages, h.sender << 40 | h.seq << 3 | i as u64);
                combined = mix(combined, one, i as u64);
                message.regions[i] = SharedRegion { address, pages };
            }
            h.region_sum = combined;
            message.region_count = h.region_count;
        }
        if !self.twostage && self.rng.chance(16) {
            h.cap_count = 1 + self.rng.below(abi::MAX_MESSAGE_CAPS);
            for i in 0..h.cap_count {
                message.caps[i] = self.rng.below(self.cap_count);
                if self.caps[message.caps[i]] == Cap::Empty {
                    message.caps[i] = CAP_SERVER;
                }
            }
            message.cap_count = h.cap_count;
        }
        build(data, &h);
        (message, h)
    }

    fn drop_regions(&mut self, message: &Message) {
        for region in &message.regions[..message.region_count] {
            let result = self.n.unmap(region.address, region.pages);
            check!(result == Ok(0), "unmap out-of-line source: {:?}", result);
        }
    }

    /// Checks a reply to our call `seq`.
    fn check_reply(&mut self, receive: &Receive, seq: u64, buffer: usize) {
        let h = verify("client", buffer, receive, &[0; 4]);
        check!(
            h.kind == KIND_REPLY && h.sender == self.id && h.seq == seq,
            "corrupt reply: kind {} for {} seq {}, expected {} seq {}",
            h.kind,
            h.sender,
            h.seq,
            self.id,
            seq
        );
        self.n.messages += 1;
    }

    /// A valid message to the server: `call` (direct) or `send`, sometimes with the data in
    /// the receive buffer itself (aliasing), out-of-line regions or capabilities.
    fn server_message(&mut self) {
        let call = (!self.twostage || self.twostage_call) && self.rng.chance(2);
        let alias = self.rng.chance(4);
        let data = if alias { RX } else { TX };
        let kind = if call { KIND_CALL } else { KIND_SEND };
        let (message, h) = self.message(kind, data, MAX_MESSAGE_BYTES, !self.twostage);
        if call {
            let capacity = RX_PAGES * PAGE;
            let mut receive = receive_at(RX, capacity, [0; 4]);
            let result = self.n.call(CAP_SERVER, &message, &mut receive);
            match result {
                Ok(_) => self.check_reply(&receive, h.seq, RX),
                Err(e) => check!(
                    matches!(
                        e,
                        Error::ReceiverTooSmall
                            | Error::RegionOverlap
                            | Error::BadAddress
                            | Error::OverLimit
                            | Error::OutOfMemory
                            | Error::TableFull
                    ),
                    "call to the server: {:?}",
                    e
                ),
            }
        } else {
            let result = self.n.send(CAP_SERVER, &message);
            match result {
                Ok(_) => {}
                Err(e) => check!(
                    matches!(
                        e,
                        Error::ReceiverTooSmall
                            | Error::RegionOverlap
                            | Error::BadAddress
                            | Error::OverLimit
                            | Error::OutOfMemory
                            | Error::QueueFull
                            | Error::TableFull
                    ),
                    "send to the server: {:?}",
                    e
                ),
            }
        }
        self.drop_regions(&message);
    }

    /// A malformed message: one field made invalid; the send must fail (and not block).
    fn bad_message(&mut self) {
        let (mut message, _) = self.message(KIND_SEND, TX, 256, false);
        let allowed: &[Error] = match self.rng.below(12) {
            0 => {
                message.data_length = MAX_MESSAGE_BYTES + 1 + self.rng.below(1 << 30);
                &[Error::MessageTooLarge]
            }
            1 => {
                message.data_length = usize::MAX - self.rng.below(8);
                &[Error::MessageTooLarge]
            }
            2 => {
                message.data_address = KERNEL_LOW + self.rng.below(1 << 30);
                &[Error::BadAddress]
            }
            3 => {
                message.data_address = usize::MAX - self.rng.below(64);
                &[Error::BadAddress]
            }
            4 => {
                message.data_address = UNMAPPED;
                &[Error::BadAddress]
            }
            5 => {
                message.cap_count = abi::MAX_MESSAGE_CAPS + 1 + self.rng.below(1000);
                &[Error::MessageTooLarge]
            }
            6 => {
                message.caps[0] = self.bad_cap(Cap::Empty).max(self.cap_count);
                message.cap_count = 1;
                // A word with the weakening flag and a mask outside the rights is malformed.
                match abi::split_cap_word(message.caps[0]) {
                    Err(_) => &[Error::BadArgument],
                    Ok(_) => &[Error::BadCapability],
                }
            }
            7 => {
                message.region_count = abi::MAX_MESSAGE_REGIONS + 1 + self.rng.below(100);
                &[Error::MessageTooLarge]
            }
            8 => {
                // A region we do not own, or read-only program text, or the stack's neighbour.
                message.regions[0] = SharedRegion {
                    address: match self.rng.below(3) {
                        0 => UNMAPPED,
                        1 => abi::USER_IMAGE_BASE,
                        _ => STACK_BOTTOM - PAGE,
                    },
                    pages: 1,
                };
                message.region_count = 1;
                if self.maps.iter().flatten().any(|m| {
                    m.start <= STACK_BOTTOM - PAGE && STACK_BOTTOM <= m.start + m.pages * PAGE
                }) {
                    return;
                }
                if self.twostage {
                    &[Error::BadAddress, Error::BadArgument]
                } else {
                    &[Error::BadAddress]
                }
            }
            9 => {
                message.regions[0] = SharedRegion {
                    address: TX,
                    pages: if self.rng.chance(2) {
                        0
                    } else {
                        abi::MAX_REGION_PAGES + 1
                    },
                };
                message.region_count = 1;
                &[Error::MessageTooLarge]
            }
            10 => {
                // The data runs off the end of the TX region into unmapped memory.
                message.data_address = TX + TX_PAGES * PAGE - 8;
                message.data_length = 64;
                &[Error::BadAddress]
            }
            _ => {
                // The descriptor itself: misaligned, unmapped, in the kernel.
                let address = match self.rng.below(3) {
                    0 => &message as *const Message as usize + 1 + self.rng.below(7),
                    1 => UNMAPPED,
                    _ => KERNEL_IMAGE,
                };
                let result = self.n.sys(
                    abi::Syscall::Send as usize,
                    [CAP_SERVER, address, 0, 0, 0, 0],
                );
                expect_err(
                    "bad message descriptor",
                    result,
                    &[Error::BadArgument, Error::BadAddress],
                );
                return;
            }
        };
        let result = if self.rng.chance(2) {
            self.n.send(CAP_SERVER, &message)
        } else {
            // A bad call fails before it waits (the reply descriptor is never used).
            let mut receive = receive_at(RX, RX_PAGES * PAGE, [0; 4]);
            self.n.call(CAP_SERVER, &message, &mut receive)
        };
        expect_err("malformed message", result, allowed);
    }

    fn register_call(&mut self) {
        let seq = self.next_seq();
        let w0 = self.id << 40 | seq;
        let w1 = self.rng.next();
        let w2 = self.rng.next();
        let mut words = [w0, w1, w2, mix(w0, w1, w2)];
        let bad = self.rng.chance(8);
        if bad {
            words[3] ^= 1;
        }
        let result = self.n.registers(CAP_REGS, words);
        match result {
            Ok(reply) => {
                check!(
                    reply[0] == w0
                        && reply[1] == !w1
                        && reply[2] == w2.rotate_left(7)
                        && reply[3] == mix(reply[0], reply[1], reply[2]) ^ bad as u64,
                    "corrupt register reply {:x?} to {:x?}",
                    reply,
                    words
                );
                self.n.messages += 1;
            }
            Err(e) => check!(false, "register call: {:?}", e),
        }
    }

    /// Register-sized call on the memory server (wrong kind): refused with bad-argument.
    fn wrong_kind_call(&mut self) {
        let result = self.n.registers(CAP_SERVER, [1, 2, 3, 4]);
        check!(
            result == Err(Error::BadArgument),
            "register call on a memory endpoint: {:?}",
            result
        );
    }

    /// Two-stage: a message to ourselves (and maybe one to the peer's inbox), then drain our
    /// inbox up to our own marker: the queue is never empty when we receive, so we never block.
    fn inbox(&mut self) {
        if self.rng.chance(2) {
            let (message, _) = self.message(KIND_PEER, TX, MAX_MESSAGE_BYTES, false);
            let result = self.n.send(CAP_PEER, &message);
            if let Err(e) = result {
                check!(
                    matches!(e, Error::QueueFull | Error::OverLimit | Error::OutOfMemory),
                    "send to the peer: {:?}",
                    e
                );
            }
        }
        let (mut message, h) = self.message(KIND_MARKER, TX, MAX_MESSAGE_BYTES, false);
        let marker = h.seq;
        if self.cap_count + 8 < MAX_CAPS && self.rng.chance(4) {
            // A capability to ourselves: our own inbox, set, or the server.
            let count = 1 + self.rng.below(2);
            for i in 0..count {
                message.caps[i] = self.rng.below(CLIENT_CAPS);
            }
            message.cap_count = count;
            let h2 = Header {
                cap_count: count,
                ..h
            };
            build(TX, &h2);
        }
        let mut sent = false;
        for _ in 0..4 {
            match self.n.send(CAP_INBOX, &message) {
                Ok(_) => {
                    sent = true;
                    break;
                }
                Err(Error::QueueFull) => {
                    // Full: take one (the queue is not empty), then try again.
                    if !self.take_inbox(None) {
                        return;
                    }
                }
                Err(e) => {
                    check!(
                        matches!(e, Error::OverLimit | Error::OutOfMemory),
                        "self-send: {:?}",
                        e
                    );
                    return;
                }
            }
        }
        if sent {
            for _ in 0..abi::MAX_QUEUED_MESSAGES + 1 {
                if !self.take_inbox(Some(marker)) {
                    break;
                }
            }
        }
    }

    /// Receives one message from our inbox; false when it was our marker or failed.
    fn take_inbox(&mut self, marker: Option<u64>) -> bool {
        let mut receive = receive_at(RX, RX_PAGES * PAGE, [0; 4]);
        match self.n.recv(CAP_INBOX, &mut receive) {
            Ok(_) => {
                let h = verify("inbox", RX, &receive, &[0; 4]);
                for i in 0..receive.cap_count {
                    let cap = receive.caps[i];
                    check!(cap < MAX_CAPS, "received capability index {}", cap);
                    self.note_cap(cap, Cap::Other);
                }
                self.n.messages += 1;
                !(h.kind == KIND_MARKER && h.sender == self.id && Some(h.seq) == marker)
            }
            Err(e) => {
                check!(
                    matches!(
                        e,
                        Error::ReceiverTooSmall | Error::OverLimit | Error::OutOfMemory
                    ),
                    "inbox recv: {:?}",
                    e
                );
                false
            }
        }
    }

    // --- children ----------------------------------------------------------------------------

    fn spawn_child(&mut self) {
        if self.child_budget == 0 || self.cap_count + 2 >= MAX_CAPS {
            return;
        }
        let slot = match self.children.iter().position(|c| c.is_none()) {
            Some(slot) => slot,
            None => return,
        };
        let number = self.child_count;
        self.child_count += 1;
        self.child_budget -= 1;
        let mode = match self.rng.below(4) {
            0 => MODE_EXIT,
            1 => MODE_CALLS,
            2 => MODE_HOG,
            _ if self.twostage => MODE_INBOX,
            _ => MODE_CALLS,
        };
        let code = 40 + number as i64;
        // The set to run in: our own, or a fresh sub-set (a tiny limit for hogs).
        let set = if mode == MODE_HOG || self.rng.chance(2) {
            match self.new_sub_set(if mode == MODE_HOG {
                200 * 1024
            } else {
                1 << 20
            }) {
                Some(cap) => cap,
                None if mode == MODE_HOG => return,
                None => CAP_SET,
            }
        } else {
            CAP_SET
        };
        let page = bytes_at_mut(CHILD_PAGE, 64);
        put_word(page, 0, CHILD_MAGIC);
        put_word(page, 1, mode);
        put_word(
            page,
            2,
            splitmix(&mut (self.seed ^ number as u64 ^ self.id << 32)),
        );
        put_word(page, 3, 1 + self.rng.below(12) as u64);
        put_word(page, 4, 64 + self.id * 16 + number as u64);
        put_word(page, 5, self.twostage as u64);
        put_word(page, 6, code as u64);
        let mut name = *b"fz00c00";
        name[3] = b'0' + self.id as u8 % 10;
        name[2] = b'0' + (self.id / 10) as u8 % 10;
        name[5] = b'0' + (number / 10) as u8 % 10;
        name[6] = b'0' + number as u8 % 10;
        let program = b"fuzz";
        let regions = [SharedRegion {
            address: CHILD_PAGE,
            pages: 1,
        }];
        let request = abi::SpawnRequest {
            program_address: program.as_ptr() as usize,
            program_length: program.len(),
            name_address: name.as_ptr() as usize,
            name_length: name.len(),
            regions_address: regions.as_ptr() as usize,
            regions_length: 1,
            caps: [CAP_SERVER, CAP_REGS, CAP_INBOX, 0],
            cap_count: 3,
        };
        let request_address = &request as *const abi::SpawnRequest as usize;
        let result = self.n.sys(
            abi::Syscall::Spawn as usize,
            [request_address, set, 0, 0, 0, 0],
        );
        match result {
            Ok(cap) => {
                check!(cap < MAX_CAPS, "spawn returned {}", cap);
                self.note_cap(cap, Cap::Child(number, false));
                let expect = if mode == MODE_HOG { -1 } else { code };
                self.children[slot] = Some(Child {
                    cap,
                    expect,
                    live: true,
                });
                if mode == MODE_HOG && self.rng.chance(3) {
                    self.move_hog(cap);
                }
                if self.rng.chance(3) {
                    self.wait_child(slot);
                }
            }
            Err(e) => check!(
                matches!(e, Error::OverLimit | Error::OutOfMemory | Error::TableFull),
                "spawn: {:?}",
                e
            ),
        }
    }

    /// A valid `domain_move`: a hog (stopped wherever it runs out, so its expected ending
    /// does not change) to a fresh sub-set of its own, which no other child uses. Under
    /// `move = migrate` what it holds goes with it (it fits: both sets have the same limit
    /// under the same parent); a hog that has already been stopped is `bad-argument`.
    fn move_hog(&mut self, cap: usize) {
        let Some(target) = self.new_sub_set(200 * 1024) else {
            return;
        };
        let args = [cap, target, 0, 0, 0, 0];
        let result = self.n.sys(abi::Syscall::DomainMove as usize, args);
        check!(
            matches!(result, Ok(_) | Err(Error::BadArgument | Error::OverLimit)),
            "domain_move of a hog: {:?}",
            result
        );
    }

    fn wait_child(&mut self, slot: usize) {
        let Some(child) = self.children[slot] else {
            return;
        };
        let result = self.n.wait(child.cap);
        let code = match result {
            Ok(v) => v as u32 as i32 as i64,
            Err(e) => {
                check!(false, "wait for child: {:?}", e);
                return;
            }
        };
        check!(
            code == child.expect,
            "child ended with {}, expected {}",
            code,
            child.expect
        );
        if let Cap::Child(number, _) = self.caps[child.cap] {
            self.caps[child.cap] = Cap::Child(number, true);
        }
        self.children[slot] = Some(Child {
            live: false,
            ..child
        });
        if self.rng.chance(2) {
            // Waiting again on an ended child answers at once (or the capability is stale).
            let again = self.n.wait(child.cap);
            if let Ok(v) = again {
                check!(
                    v as u32 as i32 as i64 == child.expect,
                    "second wait: {}",
                    v as i64
                );
            }
        }
        self.children[slot] = None;
    }

    fn live_children(&self) -> bool {
        self.children.iter().flatten().any(|c| c.live)
    }

    fn new_sub_set(&mut self, limit: usize) -> Option<usize> {
        if self.set_budget == 0 || self.cap_count + 2 >= MAX_CAPS {
            // Reuse an existing sub-set (its limit set again below).
            if self.sub_set_count == 0 || self.live_children() {
                return None;
            }
            let cap = self.sub_sets[self.rng.below(self.sub_set_count)];
            let _ = self.n.set_limit(cap, limit);
            return Some(cap);
        }
        self.set_budget -= 1;
        self.sets_made += 1;
        let mut name = *b"fz00s00";
        name[3] = b'0' + self.id as u8 % 10;
        name[2] = b'0' + (self.id / 10) as u8 % 10;
        name[5] = b'0' + (self.sets_made / 10) as u8 % 10;
        name[6] = b'0' + self.sets_made as u8 % 10;
        // First with a limit too small to start anything, then the real one.
        match self.n.set_create(CAP_SET, &name, 4096) {
            Ok(cap) => {
                self.note_cap(cap, Cap::Set);
                if self.sub_set_count < self.sub_sets.len() {
                    self.sub_sets[self.sub_set_count] = cap;
                    self.sub_set_count += 1;
                }
                let r = self.n.set_limit(cap, limit);
                check!(r == Ok(0), "set_limit: {:?}", r);
                Some(cap)
            }
            Err(e) => {
                check!(
                    matches!(e, Error::TableFull | Error::OverLimit | Error::OutOfMemory),
                    "set_create: {:?}",
                    e
                );
                None
            }
        }
    }

    /// Limits exhausted and freed again: a spawn into a set too small to hold a domain fails;
    /// our own limit lowered to just above our usage, pages populated through set_query until
    /// the kernel says over-limit, then everything unmapped and the limit restored.
    fn limits(&mut self) {
        if self.rng.chance(2) {
            if let Some(cap) = self.new_sub_set(8192) {
                let program = b"fuzz";
                let name = b"fz-never";
                let request = abi::SpawnRequest {
                    program_address: program.as_ptr() as usize,
                    program_length: program.len(),
                    name_address: name.as_ptr() as usize,
                    name_length: name.len(),
                    ..abi::SpawnRequest::default()
                };
                let address = &request as *const abi::SpawnRequest as usize;
                let result = self
                    .n
                    .sys(abi::Syscall::Spawn as usize, [address, cap, 0, 0, 0, 0]);
                expect_err(
                    "spawn into a set that is too small",
                    result,
                    &[Error::OverLimit, Error::BadArgument, Error::TableFull],
                );
                let r = self.n.set_limit(cap, abi::NO_LIMIT);
                check!(r == Ok(0), "set_limit back: {:?}", r);
            }
            return;
        }
        if self.window_budget == 0 || self.live_children() {
            return;
        }
        self.window_budget -= 1;
        let Some(before) = self.n.usage(CAP_SET) else {
            check!(false, "set_query of our own set");
            return;
        };
        let allowance = 2 + self.rng.below(6);
        let limit = before.subtree_bytes as usize + allowance * PAGE;
        if before.limit_bytes != abi::NO_LIMIT as u64 && limit as u64 > before.limit_bytes {
            return;
        }
        check!(self.n.set_limit(CAP_SET, limit) == Ok(0), "lower our limit");
        check!(
            self.n.map(WINDOW, WINDOW_PAGES, abi::MAP_WRITE) == Ok(0),
            "map the window"
        );
        let mut denied = false;
        let msgbuf = abi::Kind::Msgbuf as usize;
        for page in 0..WINDOW_PAGES {
            let address = WINDOW + page * PAGE;
            // Other domains may free charges of ours at any time (queued messages we paid
            // for, once received): what we pay for messages just before the page is the
            // most that can have gone by the time the denial is checked.
            let queued = self
                .n
                .usage(CAP_SET)
                .map_or(0, |usage| usage.current_bytes[msgbuf]);
            match self.n.set_query(CAP_SET, address) {
                Ok(_) => {}
                Err(Error::OverLimit) => {
                    denied = true;
                    // The page count is no measure: the denial must be right — a page and
                    // at most two tables would not fit.
                    let now = self.n.usage(CAP_SET).unwrap_or_default();
                    let freed = queued.saturating_sub(now.current_bytes[msgbuf]);
                    check!(
                        now.subtree_bytes + freed + 3 * PAGE as u64 > limit as u64,
                        "over-limit after {} pages with room: {} of {} bytes used ({} of messages freed since)",
                        page,
                        now.subtree_bytes,
                        limit,
                        freed
                    );
                    break;
                }
                Err(e) => {
                    check!(e == Error::OutOfMemory, "window page {}: {:?}", page, e);
                    break;
                }
            }
        }
        let usage = self.n.usage(CAP_SET).unwrap_or_default();
        check!(
            usage.subtree_bytes <= limit as u64,
            "set over its limit: {} > {}",
            usage.subtree_bytes,
            limit
        );
        check!(
            self.n.unmap(WINDOW, WINDOW_PAGES) == Ok(0),
            "unmap the window"
        );
        let _ = denied;
        let limit = if before.limit_bytes == abi::NO_LIMIT as u64 {
            abi::NO_LIMIT
        } else {
            before.limit_bytes as usize
        };
        check!(
            self.n.set_limit(CAP_SET, limit) == Ok(0),
            "restore our limit"
        );
    }

    // --- the loop -------------------------------------------------------------------------

    fn run(&mut self) {
        check!(self.n.map(TX, TX_PAGES, abi::MAP_WRITE) == Ok(0), "map TX");
        check!(self.n.map(RX, RX_PAGES, abi::MAP_WRITE) == Ok(0), "map RX");
        check!(
            self.n.map(CHILD_PAGE, 1, abi::MAP_WRITE) == Ok(0),
            "map the child page"
        );
        touch(TX, TX_PAGES);
        touch(RX, RX_PAGES);
        touch(CHILD_PAGE, 1);
        pretouch_stack();
        let children = self.child_budget as u64;
        let spawn_every = (self.budget / (children + 1)).max(1);
        let mut next_spawn = spawn_every / 2;
        while self.n.calls < self.budget {
            if self.n.calls >= next_spawn {
                next_spawn += spawn_every;
                self.spawn_child();
                continue;
            }
            match self.rng.below(32) {
                0..=13 => self.random_syscall(),
                14..=17 => self.fuzz_memory(),
                18..=20 => self.server_message(),
                21..=22 => self.bad_message(),
                23..=24 => self.register_call(),
                25 if !self.twostage && self.wrong_kind => self.wrong_kind_call(),
                26..=28 if self.twostage => self.inbox(),
                29 => self.limits(),
                30 => {
                    if let Some(slot) = self.children.iter().position(|c| c.is_some()) {
                        self.wait_child(slot);
                    }
                }
                _ => self.n.yield_now(),
            }
        }
        for slot in 0..MAX_CHILDREN {
            self.wait_child(slot);
        }
        // DONE to both servers.
        let w0 = REG_DONE | self.id;
        let done = self.n.registers(CAP_REGS, [w0, 0, 0, mix(w0, 0, 0)]);
        check!(
            matches!(done, Ok(_) | Err(Error::PeerGone)),
            "register DONE: {:?}",
            done
        );
        let h = Header {
            kind: KIND_DONE,
            sender: self.id,
            seq: self.next_seq(),
            length: HEADER,
            ..Header::default()
        };
        build(TX, &h);
        let message = Message {
            data_address: TX,
            data_length: HEADER,
            ..Message::default()
        };
        loop {
            match self.n.send(CAP_SERVER, &message) {
                Ok(_) => break,
                Err(Error::QueueFull | Error::OverLimit | Error::OutOfMemory) => self.n.yield_now(),
                Err(e) => {
                    check!(false, "DONE to the server: {:?}", e);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The servers.

fn server(clients: u64, twostage: bool) -> i32 {
    let mut n = Counters {
        calls: 0,
        errors: 0,
        messages: 0,
    };
    let mut rng = Rng::seeded(user::arg_or("seed", 1), 0x5E);
    check!(n.map(RX, RX_PAGES, abi::MAP_WRITE) == Ok(0), "map RX");
    check!(n.map(TX, TX_PAGES, abi::MAP_WRITE) == Ok(0), "map TX");
    touch(RX, RX_PAGES);
    touch(TX, TX_PAGES);
    pretouch_stack();
    let mut done = 0;
    let mut small_ok = true;
    while done < clients {
        // Usually a good descriptor; sometimes a small buffer or region addresses that
        // overlap the buffer or are not page aligned (the sender gets the error).
        let mut regions = ool_dst();
        let mut capacity = RX_PAGES * PAGE;
        if small_ok && rng.chance(16) {
            capacity = HEADER + rng.below(512);
        }
        if rng.chance(16) {
            regions[rng.below(4)] = match rng.below(3) {
                0 => RX,
                1 => OOL_DST + 8,
                _ => KERNEL_LOW,
            };
        }
        let mut receive = receive_at(RX, capacity, regions);
        match n.recv(CAP_SERVER, &mut receive) {
            Ok(_) => small_ok = true,
            Err(e) => {
                // Two-stage: the queued message did not fit this descriptor; it stays first.
                check!(
                    twostage && matches!(e, Error::ReceiverTooSmall),
                    "server recv: {:?}",
                    e
                );
                small_ok = false;
                continue;
            }
        }
        let h = verify("server", RX, &receive, &regions);
        n.messages += 1;
        for (i, &at) in regions.iter().enumerate().take(h.region_count) {
            check!(
                n.unmap(at, h.regions[i]) == Ok(0),
                "unmap a received region"
            );
        }
        match h.kind {
            KIND_DONE => done += 1,
            KIND_CALL => {
                let reply = Header {
                    kind: KIND_REPLY,
                    sender: h.sender,
                    seq: h.seq,
                    length: HEADER + rng.below(4096),
                    ..Header::default()
                };
                build(TX, &reply);
                let message = Message {
                    data_address: TX,
                    data_length: reply.length,
                    ..Message::default()
                };
                let result = n.reply(&message);
                check!(
                    result == Ok(0),
                    "reply to {} seq {}: {:?}",
                    h.sender,
                    h.seq,
                    result
                );
            }
            KIND_SEND => {}
            other => check!(false, "server: unexpected kind {}", other),
        }
    }
    println!(
        "fuzz-server: calls={} errors={} messages={} corrupt=0",
        n.calls, n.errors, n.messages
    );
    0
}

fn register_server(clients: u64) -> i32 {
    let mut calls = 0u64;
    let mut messages = 0u64;
    let mut done = 0;
    let mut reply = [0u64; 4];
    pretouch_stack();
    while done < clients {
        calls += 1;
        let result = user::reply_recv_registers(CAP_REGS, reply);
        let words = match result {
            Ok(words) => words,
            Err(e) => {
                check!(false, "register server: {:?}", e);
                return 101;
            }
        };
        messages += 1;
        if words[0] & REG_DONE == REG_DONE {
            check!(words[3] == mix(words[0], 0, 0), "corrupt register DONE");
            done += 1;
            reply = [0; 4];
            continue;
        }
        // A checksum the client spoiled on purpose is answered spoiled too.
        let bad = (words[3] != mix(words[0], words[1], words[2])) as u64;
        check!(
            bad == 0 || words[3] ^ 1 == mix(words[0], words[1], words[2]),
            "corrupt register message {:x?}",
            words
        );
        let (a, b, c) = (words[0], !words[1], words[2].rotate_left(7));
        reply = [a, b, c, mix(a, b, c) ^ bad];
    }
    println!("fuzz-regs: calls={} messages={} corrupt=0", calls, messages);
    0
}

// ---------------------------------------------------------------------------------------------
// A child: its instructions are on the page its parent shared copy-on-write.

// A child's capabilities: 0 its parent, then what spawn passed.
const CHILD_SERVER: usize = 1;
const CHILD_REGS: usize = 2;
const CHILD_INBOX: usize = 3;

fn child() -> i32 {
    let page = bytes_at(CHILD_PAGE, 64);
    check!(word(page, 0) == CHILD_MAGIC, "child: no instructions");
    let mode = word(page, 1);
    let seed = word(page, 2);
    let count = word(page, 3);
    let id = word(page, 4);
    let twostage = word(page, 5) != 0;
    let code = word(page, 6) as i32;
    let mut n = Counters {
        calls: 0,
        errors: 0,
        messages: 0,
    };
    if mode == MODE_EXIT {
        return code;
    }
    check!(n.map(TX, 1, abi::MAP_WRITE) == Ok(0), "child: map TX");
    check!(n.map(RX, 2, abi::MAP_WRITE) == Ok(0), "child: map RX");
    touch(TX, 1);
    touch(RX, 2);
    let mut rng = Rng::seeded(seed, id);
    for seq in 1..=count {
        let length = HEADER + rng.below(PAGE - HEADER);
        match mode {
            MODE_INBOX => {
                let h = Header {
                    kind: KIND_PEER,
                    sender: id,
                    seq,
                    length,
                    ..Header::default()
                };
                build(TX, &h);
                let message = user::data_message(bytes_at(TX, length));
                let result = n.send(CHILD_INBOX, &message);
                check!(
                    matches!(result, Ok(_) | Err(Error::QueueFull | Error::OverLimit)),
                    "child: send to the inbox: {:?}",
                    result
                );
            }
            _ => {
                let call = !twostage && rng.chance(2);
                let h = Header {
                    kind: if call { KIND_CALL } else { KIND_SEND },
                    sender: id,
                    seq,
                    length,
                    ..Header::default()
                };
                build(TX, &h);
                let message = user::data_message(bytes_at(TX, length));
                if call {
                    let mut receive = receive_at(RX, 2 * PAGE, [0; 4]);
                    let result = n.call(CHILD_SERVER, &message, &mut receive);
                    match result {
                        Ok(_) => {
                            let r = verify("child", RX, &receive, &[0; 4]);
                            check!(
                                r.kind == KIND_REPLY && r.sender == id && r.seq == seq,
                                "child: corrupt reply"
                            );
                        }
                        Err(e) => check!(
                            matches!(e, Error::ReceiverTooSmall | Error::OverLimit),
                            "child: call: {:?}",
                            e
                        ),
                    }
                } else {
                    let result = n.send(CHILD_SERVER, &message);
                    check!(
                        matches!(
                            result,
                            Ok(_)
                                | Err(Error::QueueFull
                                    | Error::OverLimit
                                    | Error::ReceiverTooSmall)
                        ),
                        "child: send: {:?}",
                        result
                    );
                }
                if rng.chance(2) {
                    let w0 = id << 40 | seq;
                    let w1 = rng.next();
                    let words = [w0, w1, 0, mix(w0, w1, 0)];
                    let reply = user::call_registers(CHILD_REGS, words);
                    check!(
                        matches!(reply, Ok(r) if r[0] == w0 && r[1] == !w1),
                        "child: register call: {:?}",
                        reply
                    );
                }
            }
        }
    }
    if mode == MODE_HOG {
        // Touch pages until the kernel stops us at the limit (never returns).
        check!(
            n.map(HOG, HOG_PAGES, abi::MAP_WRITE) == Ok(0),
            "child: map the hog region"
        );
        touch(HOG, HOG_PAGES);
        check!(
            false,
            "child: touched {} pages and was not stopped",
            HOG_PAGES
        );
    }
    code
}

#[no_mangle]
fn main() -> i32 {
    let twostage = user::arg_or("twostage", 0) != 0;
    match user::arg("role") {
        None => child(),
        Some(2) => server(user::arg_or("clients", 1), twostage),
        Some(3) => register_server(user::arg_or("clients", 1)),
        Some(_) => {
            let seed = user::arg_or("seed", 1);
            let id = user::arg_or("id", 0);
            let calls = user::arg_or("calls", 1000);
            let mut client = Client::new(id, seed, calls, twostage);
            client.run();
            println!(
                "fuzz: seed={} id={} calls={} errors={} messages={} corrupt=0",
                seed, id, client.n.calls, client.n.errors, client.n.messages
            );
            0
        }
    }
}
