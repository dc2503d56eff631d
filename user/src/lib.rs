//! The Tally user library: system-call wrappers, console printing, the program entry point
//! and the panic handler for EL0 programs.
//!
//! A program is a `#![no_std] #![no_main]` binary in `src/bin/` that defines
//! `#[no_mangle] fn main() -> i32`; [`_start`] calls it and exits with its result.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

pub use abi;
pub use abi::Syscall;
pub use abi::{
    Error, Message, Receive, SetUsage, SharedRegion, SpawnRequest, MAP_WRITE, NO_LIMIT,
    USER_STACK_TOP,
};
use core::arch::asm;
use core::fmt::{self, Write};

/// Raw system call with up to six arguments; returns the raw `x0`.
#[inline(always)]
pub fn syscall(call: Syscall, args: [usize; 6]) -> usize {
    let result: usize;
    // SAFETY: `svc #0` enters the kernel, which only reads the argument registers and user
    // memory it validates itself, and writes x0.
    unsafe {
        asm!(
            "svc #0",
            inlateout("x0") args[0] => result,
            in("x1") args[1], in("x2") args[2], in("x3") args[3], in("x4") args[4], in("x5") args[5],
            in("x8") call as usize,
            options(nostack),
        );
    }
    result
}

/// A raw system call by number (for tests that pass numbers the ABI does not define).
pub fn raw_syscall(number: usize, args: [usize; 6]) -> usize {
    let result: usize;
    // SAFETY: as for `syscall`; an unknown number is rejected by the kernel.
    unsafe {
        asm!(
            "svc #0",
            inlateout("x0") args[0] => result,
            in("x1") args[1], in("x2") args[2], in("x3") args[3], in("x4") args[4], in("x5") args[5],
            in("x8") number,
            options(nostack),
        );
    }
    result
}

/// The system call with this number, if the ABI defines one.
pub fn abi_syscall(number: usize) -> Option<Syscall> {
    Syscall::from_number(number)
}

#[inline]
fn call(call: Syscall, args: [usize; 6]) -> Result<usize, Error> {
    Error::decode_return(syscall(call, args))
}

/// Guest instructions retired so far by the whole system, EL0 and EL1 (`PMCCNTR_EL0`, which
/// QEMU's `-icount shift=0` advances by one per instruction; the kernel lets EL0 read it).
/// For benchmarks: the difference of two reads is the exact path length between them.
#[inline(always)]
pub fn instructions() -> u64 {
    let value: u64;
    // SAFETY: reading PMCCNTR_EL0 changes nothing. Not `nomem`, so the compiler keeps memory
    // accesses on their side of the read (it acts as a compiler barrier for measured loops).
    unsafe { asm!("mrs {v}, pmccntr_el0", v = out(reg) value, options(nostack, preserves_flags)) };
    value
}

/// Prints a benchmark figure as `BENCH <name> <instructions / ops>` (two decimals), the line
/// `tally bench` reads.
pub fn print_bench(name: &str, instructions: i64, ops: i64) {
    let hundredths = (instructions.abs() * 100 + ops / 2) / ops;
    let sign = if instructions < 0 { "-" } else { "" };
    println!(
        "BENCH {} {}{}.{:02}",
        name,
        sign,
        hundredths / 100,
        hundredths % 100
    );
}

/// Writes bytes to the console.
pub fn console_write(bytes: &[u8]) -> Result<usize, Error> {
    call(
        Syscall::ConsoleWrite,
        [bytes.as_ptr() as usize, bytes.len(), 0, 0, 0, 0],
    )
}

/// Ends the calling domain with `code`.
pub fn exit(code: i32) -> ! {
    syscall(Syscall::Exit, [code as usize, 0, 0, 0, 0, 0]);
    loop {
        core::hint::spin_loop();
    }
}

/// The program argument `name` given by the config (`args = { name = value }`), if any.
pub fn arg(name: &str) -> Option<u64> {
    Error::decode_return(syscall(
        Syscall::Arg,
        [name.as_ptr() as usize, name.len(), 0, 0, 0, 0],
    ))
    .ok()
    .map(|value| value as u64)
}

/// The program argument `name`, or `default` when the config gives none.
pub fn arg_or(name: &str, default: u64) -> u64 {
    arg(name).unwrap_or(default)
}

/// `text` as the bytes of a declaration static ([`program!`]); `N` is `text.len()`.
#[doc(hidden)]
pub const fn declaration_bytes<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Declares what the program is for the host tool's catalogue (`tally programs`,
/// `docs/programs.md`), and defines `Args`: its arguments, each read from the config's
/// `args = { ... }` with its declared default (`Args::get()`).
///
/// ```ignore
/// user::program! {
///     description: "Sends `messages` messages on an endpoint ...",
///     caps: { 0: ep => "the endpoint it sends on" },
///     args: { messages: 8 => "how many messages to send" },
///     snapshots: { "queued" => "after the last send" },
///     spawns: { "cow_write" as "child" => "the writer, in the set behind capability 0" },
///     exit: "the number of messages queued",
/// }
/// ```
///
/// Every section after `description` is optional, in this order. Capability kinds are `set`,
/// `dom` and `ep`, followed by `(optional)` for one the program runs without (`1: set
/// (optional) => ...`); a default is a decimal integer (the field is a `u64`), or `none` for
/// an argument whose absence means something of its own (the field is an `Option<u64>`);
/// `exit` says what the exit code means.
/// The declaration is a text (format: `kcore::program`) placed in the ELF section
/// `.tally.program`, which `user.ld` keeps out of every loadable segment, so it costs the
/// running program nothing; its program name is the binary's own (`CARGO_BIN_NAME`).
///
/// A workload reports what happened (exit code, console, snapshots) and leaves judging it to
/// the config's `[[expect]]` tables: its `check!`s guard only its own logic and the data the
/// kernel must deliver intact, never an outcome a limit or a policy decides.
#[macro_export]
macro_rules! program {
    (
        description: $description:literal,
        $(caps: { $($cap:literal : $kind:ident $(($optional:ident))? => $purpose:literal),* $(,)? },)?
        $(args: { $($arg:ident : $default:tt => $meaning:literal),* $(,)? },)?
        $(snapshots: { $($label:literal => $when:literal),* $(,)? },)?
        $(spawns: { $($child:literal as $domain:literal => $role:literal),* $(,)? },)?
        $(exit: $exit:literal,)?
    ) => {
        const TALLY_DECLARATION: &str = concat!(
            "tally.program 1\n",
            "name ", env!("CARGO_BIN_NAME"), "\n",
            "description ", $description, "\n",
            $($(
                "cap ", $cap, " ", stringify!($kind), $("(", stringify!($optional), ")",)?
                " ", $purpose, "\n",
            )*)?
            $($(
                "arg ", stringify!($arg), " ", $crate::__program_arg!(text $default),
                " ", $meaning, "\n",
            )*)?
            $($("snapshot ", $label, " ", $when, "\n",)*)?
            $($("spawn ", $child, " ", $domain, " ", $role, "\n",)*)?
            $("exit ", $exit, "\n",)?
        );

        /// This program's declaration, for the host tool (never read at run time).
        #[used]
        #[link_section = ".tally.program"]
        static TALLY_PROGRAM: [u8; TALLY_DECLARATION.len()] =
            $crate::declaration_bytes(TALLY_DECLARATION);

        /// The program's arguments: the config's values, else the declared defaults.
        #[allow(dead_code)]
        struct Args {
            $($($arg: $crate::__program_arg!(type $default),)*)?
        }

        #[allow(dead_code)]
        impl Args {
            /// Reads every declared argument (one `arg` system call each).
            fn get() -> Args {
                Args {
                    $($($arg: $crate::__program_arg!(get $arg $default),)*)?
                }
            }
        }
    };
}

/// One declared argument of [`program!`]: its text, its field's type, how it is read.
#[doc(hidden)]
#[macro_export]
macro_rules! __program_arg {
    (text none) => {
        "-"
    };
    (text $default:literal) => {
        $default
    };
    (type none) => { Option<u64> };
    (type $default:literal) => { u64 };
    (get $name:ident none) => {
        $crate::arg(stringify!($name))
    };
    (get $name:ident $default:literal) => {
        $crate::arg_or(stringify!($name), $default)
    };
}

/// Whether `error` is an outcome a config decides — a limit or sub-limit, the machine's
/// memory, a full kernel table or message queue — which a workload reports, not a mistake of
/// the program, which it may `check!`.
pub fn is_refusal(error: Error) -> bool {
    matches!(
        error,
        Error::OverLimit | Error::OutOfMemory | Error::TableFull | Error::QueueFull
    )
}

/// Gives up the rest of the time slice.
pub fn yield_now() {
    syscall(Syscall::Yield, [0; 6]);
}

/// Blocks until the domain behind capability `domain_cap` has ended: exited with a code, or
/// stopped by the kernel.
pub fn wait(domain_cap: usize) -> Result<Waited, Error> {
    call(Syscall::Wait, [domain_cap, 0, 0, 0, 0, 0]).map(|value| {
        if value == abi::WAIT_STOPPED {
            Waited::Stopped
        } else {
            Waited::Exited(value as u32 as i32)
        }
    })
}

/// Moves the domain behind capability `domain_cap` to the charge set behind `set_cap` (holding
/// both is the right to do it). Under `move = stay` the charges it holds stay where they are;
/// under `move = migrate` they go with it, all or nothing (`OverLimit`: nothing moved).
/// Returns the bytes moved.
pub fn domain_move(domain_cap: usize, set_cap: usize) -> Result<usize, Error> {
    call(Syscall::DomainMove, [domain_cap, set_cap, 0, 0, 0, 0])
}

/// How a domain that `wait` waited for ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// It called `exit` with this code.
    Exited(i32),
    /// The kernel stopped it (the report says why).
    Stopped,
}

/// Reserves `pages` demand-zero pages at `address` (writable when `flags` has MAP_WRITE).
pub fn map(address: usize, pages: usize, flags: usize) -> Result<(), Error> {
    call(Syscall::Map, [address, pages, flags, 0, 0, 0]).map(|_| ())
}

/// Removes `pages` pages at `address`.
pub fn unmap(address: usize, pages: usize) -> Result<(), Error> {
    call(Syscall::Unmap, [address, pages, 0, 0, 0, 0]).map(|_| ())
}

/// Starts `program` in a new domain called `name`, bound to the charge set behind `set_cap`,
/// sharing `regions` of the caller copy-on-write; returns the capability index of the new
/// domain. The new domain's capability 0 names the caller.
pub fn spawn(
    program: &str,
    name: &str,
    set_cap: usize,
    regions: &[SharedRegion],
) -> Result<usize, Error> {
    spawn_with_caps(program, name, set_cap, regions, &[])
}

/// [`spawn`], also copying the caller's capabilities `caps` into the new domain (as its
/// capabilities 1, 2, ...).
pub fn spawn_with_caps(
    program: &str,
    name: &str,
    set_cap: usize,
    regions: &[SharedRegion],
    caps: &[usize],
) -> Result<usize, Error> {
    let mut request = SpawnRequest {
        program_address: program.as_ptr() as usize,
        program_length: program.len(),
        name_address: name.as_ptr() as usize,
        name_length: name.len(),
        regions_address: regions.as_ptr() as usize,
        regions_length: regions.len(),
        caps: [0; abi::MAX_SPAWN_CAPS],
        cap_count: caps.len(),
    };
    for (slot, cap) in request.caps.iter_mut().zip(caps) {
        *slot = *cap;
    }
    call(
        Syscall::Spawn,
        [
            &request as *const SpawnRequest as usize,
            set_cap,
            0,
            0,
            0,
            0,
        ],
    )
}

/// Creates a charge set as a child of the one behind `parent_cap`; returns its capability.
pub fn set_create(parent_cap: usize, name: &str, limit_bytes: usize) -> Result<usize, Error> {
    call(
        Syscall::SetCreate,
        [
            parent_cap,
            name.as_ptr() as usize,
            name.len(),
            limit_bytes,
            0,
            0,
        ],
    )
}

/// Creates a charge set as a child of the one behind `parent_cap`, with a limit and per-kind
/// sub-limits (`NO_LIMIT` for none); returns its capability.
pub fn set_create_limited(
    parent_cap: usize,
    name: &str,
    limit_bytes: usize,
    kind_limits: &abi::KindLimits,
) -> Result<usize, Error> {
    call(
        Syscall::SetCreate,
        [
            parent_cap,
            name.as_ptr() as usize,
            name.len(),
            limit_bytes,
            kind_limits as *const abi::KindLimits as usize,
            0,
        ],
    )
}

/// Changes the limit of the charge set behind `set_cap` (`NO_LIMIT` for none).
pub fn set_limit(set_cap: usize, limit_bytes: usize) -> Result<(), Error> {
    call(
        Syscall::SetLimit,
        [set_cap, limit_bytes, abi::LIMIT_TOTAL, 0, 0, 0],
    )
    .map(|_| ())
}

/// Changes the sub-limit of one kind of the charge set behind `set_cap` (`NO_LIMIT` for
/// none).
pub fn set_kind_limit(set_cap: usize, kind: abi::Kind, limit_bytes: usize) -> Result<(), Error> {
    call(
        Syscall::SetLimit,
        [set_cap, limit_bytes, kind.limit_selector(), 0, 0, 0],
    )
    .map(|_| ())
}

/// Sends the unresolved faults of the domain behind `domain_cap` ([`abi::SELF`] for the
/// caller) to the endpoint behind `endpoint_cap` ([`abi::NO_KEEPER`] for none).
pub fn set_keeper(domain_cap: usize, endpoint_cap: usize) -> Result<(), Error> {
    call(Syscall::SetKeeper, [domain_cap, endpoint_cap, 0, 0, 0, 0]).map(|_| ())
}

/// Maps `pages` demand-zero pages at `address` (writable with [`MAP_WRITE`]) into the address
/// space of the domain behind `domain_cap`: how a keeper gives a domain the memory it faulted
/// on.
pub fn domain_map(
    domain_cap: usize,
    address: usize,
    pages: usize,
    flags: usize,
) -> Result<(), Error> {
    call(
        Syscall::DomainMap,
        [domain_cap, address, pages, flags, 0, 0],
    )
    .map(|_| ())
}

/// The name of a fault kind (`abi::FAULT_*`), as keepers print it; `?` for an unknown one.
pub fn fault_kind_name(kind: u64) -> &'static str {
    match kind {
        abi::FAULT_NO_REGION => "no-region",
        abi::FAULT_PROTECTION => "protection",
        abi::FAULT_OVER_LIMIT => "over-limit",
        abi::FAULT_SEND_OVER_LIMIT => "send-over-limit",
        abi::FAULT_CHARGE_QUERY => "charge-query",
        abi::FAULT_PAGED_OUT => "paged-out",
        abi::FAULT_OVER_HIGH => "over-high",
        _ => "?",
    }
}

/// Evicts the page at `address` of the domain behind `domain_cap` (a pager's call): its 4096
/// bytes go to the page-aligned `store` in the caller's memory, its frame and charge are
/// released, and the domain's next touch of it is a [`abi::FAULT_PAGED_OUT`] fault.
pub fn page_out(domain_cap: usize, address: usize, store: usize) -> Result<(), Error> {
    call(Syscall::PageOut, [domain_cap, address, store, 0, 0, 0]).map(|_| ())
}

/// Brings the paged-out page at `address` of the domain behind `domain_cap` back, filled from
/// the page-aligned `store` in the caller's memory (charged as the domain's first touch).
pub fn page_in(domain_cap: usize, address: usize, store: usize) -> Result<(), Error> {
    call(Syscall::PageIn, [domain_cap, address, store, 0, 0, 0]).map(|_| ())
}

/// Sets the `high` bound of the set behind `set_cap` ([`abi::NO_LIMIT`] for none): above it,
/// the keeper of a domain of the set is asked to reclaim ([`abi::FAULT_OVER_HIGH`]).
pub fn set_high(set_cap: usize, high_bytes: usize) -> Result<(), Error> {
    call(
        Syscall::SetLimit,
        [set_cap, high_bytes, abi::LIMIT_HIGH, 0, 0, 0],
    )
    .map(|_| ())
}

/// Where the frame behind `address` comes from, in the address space of the domain behind
/// `domain_cap` ([`abi::SELF`] for the caller's own).
pub fn frame_info(domain_cap: usize, address: usize) -> Result<abi::FrameInfo, Error> {
    let mut info = abi::FrameInfo::default();
    call(
        Syscall::FrameInfo,
        [
            domain_cap,
            address,
            &mut info as *mut abi::FrameInfo as usize,
            0,
            0,
            0,
        ],
    )?;
    Ok(info)
}

/// Reads the usage of the charge set behind `set_cap`.
pub fn set_query(set_cap: usize) -> Result<SetUsage, Error> {
    let mut usage = SetUsage::default();
    call(
        Syscall::SetQuery,
        [set_cap, &mut usage as *mut SetUsage as usize, 0, 0, 0, 0],
    )?;
    Ok(usage)
}

/// Asks the kernel to emit a report snapshot labelled `label`.
pub fn snapshot(label: &str) -> Result<(), Error> {
    call(
        Syscall::Snapshot,
        [label.as_ptr() as usize, label.len(), 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// Sends `message` on the endpoint behind `endpoint_cap` (blocks for a receiver under direct
/// transfer; queues it under two-stage transfer).
pub fn send(endpoint_cap: usize, message: &Message) -> Result<(), Error> {
    call(
        Syscall::Send,
        [endpoint_cap, message as *const Message as usize, 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// Receives a message on the endpoint behind `endpoint_cap` into `receive`.
#[inline]
pub fn recv(endpoint_cap: usize, receive: &mut Receive) -> Result<(), Error> {
    call(
        Syscall::Recv,
        [endpoint_cap, receive as *mut Receive as usize, 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// Sends `message` and waits for the reply into `receive`.
#[inline]
pub fn call_endpoint(
    endpoint_cap: usize,
    message: &Message,
    receive: &mut Receive,
) -> Result<(), Error> {
    call(
        Syscall::Call,
        [
            endpoint_cap,
            message as *const Message as usize,
            receive as *mut Receive as usize,
            0,
            0,
            0,
        ],
    )
    .map(|_| ())
}

/// Answers the last `call` received with `message`.
#[inline]
pub fn reply(message: &Message) -> Result<(), Error> {
    call(
        Syscall::Reply,
        [message as *const Message as usize, 0, 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// Replies with `message`, then receives the next message into `receive`.
#[inline]
pub fn reply_recv(
    endpoint_cap: usize,
    message: &Message,
    receive: &mut Receive,
) -> Result<(), Error> {
    call(
        Syscall::ReplyRecv,
        [
            endpoint_cap,
            message as *const Message as usize,
            receive as *mut Receive as usize,
            0,
            0,
            0,
        ],
    )
    .map(|_| ())
}

/// Four words in registers, each way.
pub type Words = [u64; abi::REGISTER_MESSAGE_WORDS];

#[inline(always)]
fn register_call(call: Syscall, endpoint_cap: usize, words: Words) -> Result<Words, Error> {
    let status: usize;
    let mut out = words;
    // SAFETY: `svc #0` enters the kernel, which reads x0..x2, x3..x6 and x8 and writes x0 and
    // x3..x6 only (a `call` / `reply_recv` with no descriptors is register-sized).
    unsafe {
        asm!(
            "svc #0",
            inlateout("x0") endpoint_cap => status,
            in("x1") 0usize,
            in("x2") 0usize,
            inlateout("x3") out[0],
            inlateout("x4") out[1],
            inlateout("x5") out[2],
            inlateout("x6") out[3],
            in("x8") call as usize,
            options(nostack),
        );
    }
    Error::decode_return(status).map(|_| out)
}

/// A register-sized call on the endpoint behind `endpoint_cap`: `call` with no descriptors,
/// four words in x3..x6 each way; returns the reply's words. Nothing goes through memory;
/// nothing is charged.
#[inline]
pub fn call_registers(endpoint_cap: usize, words: Words) -> Result<Words, Error> {
    register_call(Syscall::Call, endpoint_cap, words)
}

/// Answers the last register call received (if any) with `words`, then waits for the next
/// register call on the endpoint and returns its words: `reply_recv` with no descriptors.
#[inline]
pub fn reply_recv_registers(endpoint_cap: usize, words: Words) -> Result<Words, Error> {
    register_call(Syscall::ReplyRecv, endpoint_cap, words)
}

/// Creates a shared-memory region object of `pages` pages; returns its capability.
pub fn region_create(pages: usize) -> Result<usize, Error> {
    call(Syscall::RegionCreate, [pages, 0, 0, 0, 0, 0])
}

/// Maps the region behind `region_cap` writable at `address` (the `read` and `write` rights).
pub fn region_map(region_cap: usize, address: usize) -> Result<(), Error> {
    region_map_flags(region_cap, address, MAP_WRITE)
}

/// Maps the region behind `region_cap` at `address`: writable with [`MAP_WRITE`] in `flags`,
/// else read-only (the `read` right only).
pub fn region_map_flags(region_cap: usize, address: usize, flags: usize) -> Result<(), Error> {
    call(Syscall::RegionMap, [region_cap, address, flags, 0, 0, 0]).map(|_| ())
}

/// A new capability in our table to the object of `cap`, with only `rights` (which `cap`
/// must hold); returns its index.
pub fn cap_derive(cap: usize, rights: abi::Rights) -> Result<usize, Error> {
    call(Syscall::CapDerive, [cap, usize::from(rights.0), 0, 0, 0, 0])
}

/// Empties capability slot `cap`.
pub fn cap_delete(cap: usize) -> Result<(), Error> {
    call(Syscall::CapDelete, [cap, 0, 0, 0, 0, 0]).map(|_| ())
}

/// Deletes every capability derived from `cap` and unmaps every region mapped through it or
/// them; returns how many capabilities and mappings went.
pub fn cap_revoke(cap: usize) -> Result<usize, Error> {
    call(Syscall::CapRevoke, [cap, 0, 0, 0, 0, 0])
}

/// The type ([`abi::CAP_TYPE_SET`], …) and rights of capability `cap`.
pub fn cap_inspect(cap: usize) -> Result<(usize, abi::Rights), Error> {
    let value = call(Syscall::CapInspect, [cap, 0, 0, 0, 0, 0])?;
    Ok((
        value >> abi::CAP_TYPE_SHIFT,
        abi::Rights((value & 0xffff) as u16),
    ))
}

/// Suspends the domain behind `domain_cap` (the `control` right): it runs no instruction until
/// [`domain_resume`].
pub fn domain_suspend(domain_cap: usize) -> Result<(), Error> {
    call(Syscall::DomainSuspend, [domain_cap, 0, 0, 0, 0, 0]).map(|_| ())
}

/// Resumes the domain behind `domain_cap` (the `control` right).
pub fn domain_resume(domain_cap: usize) -> Result<(), Error> {
    call(Syscall::DomainResume, [domain_cap, 0, 0, 0, 0, 0]).map(|_| ())
}

/// The state, registers and suspension of the domain behind `domain_cap` (the `inspect`
/// right; [`abi::SELF`] for our own).
pub fn domain_status(domain_cap: usize) -> Result<abi::DomainStatus, Error> {
    let mut status = abi::DomainStatus::default();
    call(
        Syscall::DomainStatus,
        [
            domain_cap,
            &mut status as *mut abi::DomainStatus as usize,
            0,
            0,
            0,
            0,
        ],
    )?;
    Ok(status)
}

/// The checksum of a sequence-numbered message (FNV-1a over the bytes of its seq, its length
/// and its payload), as `frozen_pair` writes it and `debugger` checks it.
pub fn message_checksum(seq: u64, payload: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |byte: u8| {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    };
    for byte in seq.to_le_bytes() {
        eat(byte);
    }
    for byte in (payload.len() as u64).to_le_bytes() {
        eat(byte);
    }
    for &byte in payload {
        eat(byte);
    }
    hash
}

/// Sleeps for `ticks` timer ticks.
pub fn sleep(ticks: usize) -> Result<(), Error> {
    call(Syscall::Sleep, [ticks, 0, 0, 0, 0, 0]).map(|_| ())
}

/// A message carrying `data`.
#[inline]
pub fn data_message(data: &[u8]) -> Message {
    Message {
        data_address: data.as_ptr() as usize,
        data_length: data.len(),
        ..Message::default()
    }
}

/// A receive descriptor for `buffer`.
#[inline]
pub fn receive_into(buffer: &mut [u8]) -> Receive {
    Receive {
        buffer_address: buffer.as_mut_ptr() as usize,
        buffer_capacity: buffer.len(),
        ..Receive::default()
    }
}

/// A `core::fmt::Write` on the console (each `write_str` is one system call).
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        console_write(text.as_bytes())
            .map(|_| ())
            .map_err(|_| fmt::Error)
    }
}

/// Formats into a 256-byte buffer, then writes it with one system call.
pub fn print_fmt(args: fmt::Arguments) {
    struct Buffer {
        bytes: [u8; 256],
        used: usize,
    }
    impl Write for Buffer {
        fn write_str(&mut self, text: &str) -> fmt::Result {
            for &byte in text.as_bytes() {
                if self.used == self.bytes.len() {
                    let _ = console_write(&self.bytes);
                    self.used = 0;
                }
                self.bytes[self.used] = byte;
                self.used += 1;
            }
            Ok(())
        }
    }
    let mut buffer = Buffer {
        bytes: [0; 256],
        used: 0,
    };
    let _ = buffer.write_fmt(args);
    let _ = console_write(&buffer.bytes[..buffer.used]);
}

/// `print!` on the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::print_fmt(format_args!($($arg)*)) };
}

/// `println!` on the console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::print_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Checks a condition in a test program: on failure prints the message and exits with 101.
#[macro_export]
macro_rules! check {
    ($condition:expr, $($arg:tt)*) => {
        if !$condition {
            $crate::println!("CHECK FAILED: {}", format_args!($($arg)*));
            $crate::exit(101);
        }
    };
}

extern "Rust" {
    fn main() -> i32;
}

/// The entry point: the kernel starts every domain here with the stack pointer set.
#[no_mangle]
#[link_section = ".text.start"]
pub extern "C" fn _start() -> ! {
    // SAFETY: every program defines `main` with this signature (see the crate docs).
    let code = unsafe { main() };
    exit(code)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("panic: {info}");
    exit(101)
}
