//! Bad input from user space: calls every system call number (and some that do not exist) with
//! random numbers, kernel addresses, unmapped addresses, huge lengths and forged capability
//! indices. Every call must come back with an error (or a harmless success); the kernel must
//! stay up and the books must balance. Exits 0 when it survived.
#![no_std]
#![no_main]

use user::{check, println, syscall, Error, Syscall};

user::program! {
    description: "Makes `calls` system calls with random numbers (unknown ones included; never exit) and hostile arguments: kernel, unmapped and wrapping addresses, huge lengths, forged capability indices. An unknown number must give bad-syscall; every other call may fail or harmlessly succeed. Then each argument error of `domain_move`, `set_create`, `set_limit`, `frame_info`, `set_keeper` and `domain_map` must come back as its own error, and a region object mapped a second time at another address must be already-mapped. Deterministic for a given `seed`.",
    caps: { 0: set (optional) => "any charge set: `domain_move` given it as the domain must answer wrong-capability-type" },
    args: {
        calls: 3000 => "system calls to make",
        seed: 6840143426475589633 => "the generator's seed (xorshift64: 0 gives only zeros)",
    },
    exit: "0 when it survived",
}

struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        // xorshift64: deterministic, so every run makes the same calls.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn argument(&mut self) -> usize {
        const INTERESTING: [usize; 10] = [
            0,
            1,
            usize::MAX,
            0xFFFF_FF80_4008_0000, // the kernel image
            0xFFFF_0000_0000_0000,
            0x7F_FFFF_F000, // just below the top of user space
            0x1000,         // below USER_MIN_ADDRESS
            0xDEAD_0000,    // unmapped
            1 << 40,        // beyond 39-bit user space
            63,             // a capability index past the table
        ];
        match self.next() % 3 {
            0 => INTERESTING[(self.next() % INTERESTING.len() as u64) as usize],
            1 => self.next() as usize,
            _ => (self.next() % 4096) as usize,
        }
    }
}

#[no_mangle]
fn main() -> i32 {
    let given = Args::get();
    let mut random = Random(given.seed);
    let mut errors = 0usize;
    for _ in 0..given.calls {
        let number = (random.next() % 16) as usize;
        // Never exit or unmap/yield/wait with chosen-for-harm arguments: exit would end the
        // test, and unmapping our own stack would be a legitimate (fatal) request.
        if matches!(number, 1 | 5) {
            continue;
        }
        let mut args = [
            random.argument(),
            random.argument(),
            random.argument(),
            random.argument(),
            random.argument(),
            random.argument(),
        ];
        if number == 0 {
            // Keep the console readable: a write that happens to be valid prints a few bytes.
            args[1] %= 8;
        }
        // The only valid capability this domain has is none at all: every index is forged.
        let call = match user::abi_syscall(number) {
            Some(call) => call,
            None => {
                let raw = user::raw_syscall(number, args);
                check!(
                    Error::decode_return(raw) == Err(Error::BadSyscall),
                    "unknown call {} returned {}",
                    number,
                    raw
                );
                errors += 1;
                continue;
            }
        };
        if Error::decode_return(syscall(call, args)).is_err() {
            errors += 1;
        }
    }
    // `domain_move` with forged capabilities: each bad argument has its own error, and
    // nothing moves (the books are checked by the report).
    let cases: [(usize, usize, Error); 5] = [
        (63, 0, Error::BadCapability),
        (usize::MAX, usize::MAX, Error::BadCapability),
        (1, 0, Error::BadCapability),
        (0, 0, Error::WrongCapabilityType),
        (0, 63, Error::WrongCapabilityType),
    ];
    let has_set = user::set_query(0).is_ok();
    for (domain, set, error) in cases {
        if error == Error::WrongCapabilityType && !has_set {
            continue;
        }
        let got = user::domain_move(domain, set);
        check!(
            got == Err(error),
            "domain_move({}, {}) gave {:?}, not {:?}",
            domain,
            set,
            got,
            error
        );
        errors += 1;
    }
    // Sub-limits and provenance: every bad argument has its own error.
    let stack_bottom = abi::USER_STACK_TOP - abi::USER_STACK_PAGES * 4096;
    let name = "bad-kinds";
    let mut info = abi::FrameInfo::default();
    let info_at = &mut info as *mut abi::FrameInfo as usize;
    let limits: [(Syscall, [usize; 6], Error, bool); 35] = [
        (
            Syscall::SetLimit,
            [0, 4096, abi::LIMIT_HIGH + 1, 0, 0, 0],
            Error::BadArgument,
            true,
        ),
        (
            Syscall::SetLimit,
            [0, 4096, usize::MAX, 0, 0, 0],
            Error::BadArgument,
            true,
        ),
        (
            Syscall::SetLimit,
            [63, 4096, 1, 0, 0, 0],
            Error::BadCapability,
            false,
        ),
        (
            Syscall::SetCreate,
            [
                0,
                name.as_ptr() as usize,
                name.len(),
                usize::MAX,
                0xDEAD_0000,
                0,
            ],
            Error::BadAddress,
            true,
        ),
        (
            Syscall::FrameInfo,
            [abi::SELF, 0xDEAD_0000, info_at, 0, 0, 0],
            Error::BadAddress,
            false,
        ),
        (
            Syscall::FrameInfo,
            [abi::SELF, stack_bottom, info_at, 0, 0, 0],
            Error::NotPresent,
            false,
        ),
        (
            Syscall::FrameInfo,
            [63, info_at, info_at, 0, 0, 0],
            Error::BadCapability,
            false,
        ),
        (
            Syscall::FrameInfo,
            [0, info_at, info_at, 0, 0, 0],
            Error::WrongCapabilityType,
            true,
        ),
        (
            Syscall::FrameInfo,
            [abi::SELF, info_at, info_at + 1, 0, 0, 0],
            Error::BadArgument,
            false,
        ),
        // set_keeper: a forged domain or endpoint capability, a set where either belongs.
        (
            Syscall::SetKeeper,
            [63, 0, 0, 0, 0, 0],
            Error::BadCapability,
            false,
        ),
        (
            Syscall::SetKeeper,
            [abi::SELF, 63, 0, 0, 0, 0],
            Error::BadCapability,
            false,
        ),
        (
            Syscall::SetKeeper,
            [abi::SELF, 0, 0, 0, 0, 0],
            Error::WrongCapabilityType,
            true,
        ),
        (
            Syscall::SetKeeper,
            [0, abi::NO_KEEPER, 0, 0, 0, 0],
            Error::WrongCapabilityType,
            true,
        ),
        // domain_map: a forged or wrong capability, then map's own argument errors.
        (
            Syscall::DomainMap,
            [63, 0x3000_0000, 1, abi::MAP_WRITE, 0, 0],
            Error::BadCapability,
            false,
        ),
        (
            Syscall::DomainMap,
            [0, 0x3000_0000, 1, abi::MAP_WRITE, 0, 0],
            Error::WrongCapabilityType,
            true,
        ),
        (
            Syscall::DomainMap,
            [abi::SELF, 0x3000_0000, 0, abi::MAP_WRITE, 0, 0],
            Error::BadArgument,
            false,
        ),
        (
            Syscall::DomainMap,
            [abi::SELF, 0x3000_0001, 1, abi::MAP_WRITE, 0, 0],
            Error::BadArgument,
            false,
        ),
        (
            Syscall::DomainMap,
            [abi::SELF, 0x3000_0000, 1, 4, 0, 0],
            Error::BadArgument,
            false,
        ),
        // The capability calls: a forged index; rights outside the type's, or not 16 bits;
        // rights the capability lacks (a copy with only `query`, asked for `limit`).
        (
            Syscall::CapDerive,
            [63, abi::Rights::QUERY.0 as usize, 0, 0, 0, 0],
            Error::BadCapability,
            false,
        ),
        (
            Syscall::CapDerive,
            [0, abi::Rights::SEND.0 as usize, 0, 0, 0, 0],
            Error::BadArgument,
            true,
        ),
        (
            Syscall::CapDerive,
            [0, 1 << 20, 0, 0, 0, 0],
            Error::BadArgument,
            true,
        ),
        (
            Syscall::CapDelete,
            [63, 0, 0, 0, 0, 0],
            Error::BadCapability,
            false,
        ),
        (
            Syscall::CapDelete,
            [usize::MAX, 0, 0, 0, 0, 0],
            Error::BadCapability,
            false,
        ),
        (
            Syscall::CapRevoke,
            [63, 0, 0, 0, 0, 0],
            Error::BadCapability,
            false,
        ),
        (
            Syscall::CapRevoke,
            [64, 0, 0, 0, 0, 0],
            Error::BadCapability,
            false,
        ),
        (
            Syscall::CapInspect,
            [63, 0, 0, 0, 0, 0],
            Error::BadCapability,
            false,
        ),
        (
            Syscall::CapInspect,
            [usize::MAX, 0, 0, 0, 0, 0],
            Error::BadCapability,
            false,
        ),
        // The debugger's calls: forged or wrong capabilities, a bad status pointer, a sleep of
        // no ticks or too many.
        (
            Syscall::DomainSuspend,
            [63, 0, 0, 0, 0, 0],
            Error::BadCapability,
            false,
        ),
        (
            Syscall::DomainSuspend,
            [0, 0, 0, 0, 0, 0],
            Error::WrongCapabilityType,
            true,
        ),
        (
            Syscall::DomainResume,
            [abi::SELF, 0, 0, 0, 0, 0],
            Error::BadCapability,
            false,
        ),
        (
            Syscall::DomainStatus,
            [abi::SELF, info_at + 1, 0, 0, 0, 0],
            Error::BadArgument,
            false,
        ),
        (
            Syscall::DomainStatus,
            [abi::SELF, 0xDEAD_0000, 0, 0, 0, 0],
            Error::BadAddress,
            false,
        ),
        (
            Syscall::DomainStatus,
            [0, info_at, 0, 0, 0, 0],
            Error::WrongCapabilityType,
            true,
        ),
        (
            Syscall::Sleep,
            [0, 0, 0, 0, 0, 0],
            Error::BadArgument,
            false,
        ),
        (
            Syscall::Sleep,
            [abi::MAX_SLEEP_TICKS + 1, 0, 0, 0, 0, 0],
            Error::BadArgument,
            false,
        ),
    ];
    for (call, args, error, needs_set) in limits {
        if needs_set && !has_set {
            continue;
        }
        let got = Error::decode_return(syscall(call, args));
        check!(
            got == Err(error),
            "{:?}{:x?} gave {:?}, not {:?}",
            call,
            args,
            got,
            error
        );
        errors += 1;
    }
    // A copy of the set capability with only `query`: every other set right refused with its
    // own error, and asking `limit` back too; the copy then deleted.
    if has_set {
        let copy = user::cap_derive(0, abi::Rights::QUERY);
        check!(copy.is_ok(), "cap_derive query: {:?}", copy);
        let copy = copy.unwrap_or(63);
        check!(user::set_query(copy).is_ok(), "set_query through the copy");
        let got = user::set_limit(copy, 4096);
        check!(got == Err(Error::NoLimitRight), "set_limit: {:?}", got);
        let got = user::set_create(copy, "never", 4096);
        check!(got == Err(Error::NoCreateRight), "set_create: {:?}", got);
        let got = user::cap_derive(copy, abi::Rights::LIMIT);
        check!(
            got == Err(Error::NoLimitRight),
            "cap_derive limit: {:?}",
            got
        );
        check!(user::cap_delete(copy).is_ok(), "cap_delete");
        let got = user::cap_inspect(copy);
        check!(
            got == Err(Error::BadCapability),
            "a deleted capability: {:?}",
            got
        );
        errors += 4;
        println!("garbage: a query-only set capability: no-limit-right, no-create-right");
    }
    // A domain maps a frame at most once: a region object mapped a second time, at another
    // address, is already-mapped (and the first mapping stays as it was).
    const FIRST: usize = 0x3000_0000;
    const SECOND: usize = 0x3010_0000;
    if let Ok(region) = user::region_create(1) {
        let got = user::region_map_flags(region, FIRST, 4);
        check!(
            got == Err(Error::BadArgument),
            "region_map flags 4: {:?}",
            got
        );
        check!(user::region_map(region, FIRST).is_ok(), "region_map");
        // SAFETY: the page just mapped writable at FIRST.
        unsafe { core::ptr::write_volatile(FIRST as *mut u8, 1) };
        let got = user::region_map(region, SECOND);
        check!(
            got == Err(Error::AlreadyMapped),
            "a second region_map gave {:?}",
            got
        );
        errors += 1;
        check!(user::unmap(FIRST, 1).is_ok(), "unmap");
        println!("garbage: a region object mapped twice: already-mapped");
    }
    // A pager's calls on a child (spawned, not run yet): each argument error its own, then a
    // page evicted and brought back before the child ever runs.
    if has_set {
        errors += paging_errors();
        println!("garbage: page_out and page_in refused with their own errors, one round trip");
    }
    println!(
        "garbage: survived {} calls, {} errors returned",
        given.calls, errors
    );
    0
}

/// `page_out` / `page_in`: every argument error of theirs on a `bystander` child, then the
/// first page it wrote evicted into a store of ours and brought back (it never touches that
/// page again, so it never sees it gone). Returns the errors checked.
fn paging_errors() -> usize {
    const STORE: usize = 0x3020_0000;
    let child = user::spawn("bystander", "paged", 0, &[]);
    check!(child.is_ok(), "spawn bystander: {:?}", child);
    let child = child.unwrap_or(63);
    check!(
        user::map(STORE, 1, user::MAP_WRITE).is_ok(),
        "map the store"
    );
    // The child maps 8 pages at 0x3000_0000 and writes one each time it runs: let it run until
    // its first page is there (its last is not yet).
    const WRITTEN: usize = 0x3000_0000;
    let untouched = WRITTEN + 7 * 4096;
    for _ in 0..100 {
        if user::frame_info(child, WRITTEN).is_ok() {
            break;
        }
        user::yield_now();
    }
    let stack = untouched;
    let inspect = user::cap_derive(child, abi::Rights::INSPECT);
    check!(inspect.is_ok(), "cap_derive inspect: {:?}", inspect);
    let inspect = inspect.unwrap_or(63);
    let cases: [(bool, usize, usize, usize, Error); 11] = [
        (true, 63, stack, STORE, Error::BadCapability),
        (true, 0, stack, STORE, Error::WrongCapabilityType),
        (true, inspect, stack, STORE, Error::NoControlRight),
        (true, child, stack + 8, STORE, Error::BadArgument),
        (true, child, stack, STORE + 8, Error::BadArgument),
        (true, child, 0x2000_0000, STORE, Error::BadAddress),
        (true, child, usize::MAX & !4095, STORE, Error::BadAddress),
        (true, child, stack, STORE, Error::NotPresent),
        (true, child, abi::USER_IMAGE_BASE, STORE, Error::NotPrivate),
        (false, child, stack, STORE, Error::NotPagedOut),
        (false, inspect, stack, STORE, Error::NoControlRight),
    ];
    for (out, domain, address, store, error) in cases {
        let got = if out {
            user::page_out(domain, address, store)
        } else {
            user::page_in(domain, address, store)
        };
        check!(
            got == Err(error),
            "page_{}({}, {:#x}, {:#x}) gave {:?}, not {:?}",
            if out { "out" } else { "in" },
            domain,
            address,
            store,
            got,
            error
        );
    }
    // The child's first written page: out to a store we cannot be written through
    // (bad-address, nothing changed), out, in again (the child never touches it again).
    let page = WRITTEN;
    let got = user::page_out(child, page, 0xDEAD_0000);
    check!(
        got == Err(Error::BadAddress),
        "page_out to a bad store: {:?}",
        got
    );
    check!(user::page_out(child, page, STORE).is_ok(), "page_out");
    let got = user::page_out(child, page, STORE);
    check!(got == Err(Error::NotPresent), "page_out twice: {:?}", got);
    let got = user::frame_info(child, page);
    check!(
        got == Err(Error::NotPresent),
        "frame_info paged out: {:?}",
        got
    );
    check!(user::page_in(child, page, STORE).is_ok(), "page_in");
    let got = user::page_in(child, page, STORE);
    check!(got == Err(Error::NotPagedOut), "page_in twice: {:?}", got);
    check!(user::frame_info(child, page).is_ok(), "frame_info after");
    check!(user::unmap(STORE, 1).is_ok(), "unmap the store");
    // A result written into a page of a keeper-managed region that no keeper supplies (we have
    // none): paged-out, and nothing written or charged.
    const KEPT: usize = 0x3030_0000;
    check!(
        user::map(KEPT, 1, user::MAP_WRITE | abi::MAP_KEEPER).is_ok(),
        "map a keeper-managed page"
    );
    let got = Error::decode_return(syscall(Syscall::SetQuery, [0, KEPT, 0, 0, 0, 0]));
    check!(got == Err(Error::PagedOut), "set_query into it: {:?}", got);
    let got = user::frame_info(abi::SELF, KEPT);
    check!(got == Err(Error::NotPresent), "frame_info of it: {:?}", got);
    check!(user::unmap(KEPT, 1).is_ok(), "unmap it");
    check!(user::wait(child).is_ok(), "wait");
    cases.len() + 6
}
