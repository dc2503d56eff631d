//! Benchmark (bench/fork.toml), parent side: instructions per `spawn`, once sharing nothing
//! and once sharing 4 MiB (1024 populated pages) copy-on-write, measured around the system
//! call (whole path, EL0 + EL1). Both children run `bench_fork_child`; the sharing one
//! measures copy-on-write faults. Capability 0 is the children's charge set.
#![no_std]
#![no_main]

use user::{
    check, instructions, map, print_bench, println, spawn, wait, SharedRegion, Waited, MAP_WRITE,
};

user::program! {
    description: "Benchmark (bench/fork.toml): instructions per `spawn`, sharing nothing and sharing 4 MiB (1024 populated pages) copy-on-write; the sharing child measures copy-on-write faults.",
    caps: { 0: set => "the children's charge set" },
    spawns: {
        "bench_fork_child" as "alone" => "shares nothing and exits at once",
        "bench_fork_child" as "sharer" => "measures `cow_fault` on the 1024 shared pages",
    },
    exit: "0",
}

/// The shared region (also known to bench_fork_child).
const REGION: usize = 0x2000_0000;
const PAGES: usize = 1024;

/// Instructions taken by one `spawn` of `bench_fork_child` as `name`; waits for the child.
fn timed_spawn(name: &str, regions: &[SharedRegion]) -> i64 {
    let start = instructions();
    let child = spawn("bench_fork_child", name, 0, regions);
    let taken = (instructions() - start) as i64;
    let child = match child {
        Ok(cap) => cap,
        Err(e) => {
            println!("spawn {} failed: {}", name, e.name());
            user::exit(1);
        }
    };
    let code = wait(child);
    check!(
        code == Ok(Waited::Exited(0)),
        "child {} exit code {:?}",
        name,
        code
    );
    taken
}

#[no_mangle]
fn main() -> i32 {
    check!(map(REGION, PAGES, MAP_WRITE).is_ok(), "map");
    for page in 0..PAGES {
        let address = REGION + page * 4096;
        // SAFETY: the region was just mapped writable.
        unsafe { (address as *mut u64).write_volatile(address as u64) };
    }
    let alone = timed_spawn("alone", &[]);
    let sharing = timed_spawn(
        "sharer",
        &[SharedRegion {
            address: REGION,
            pages: PAGES,
        }],
    );
    for page in 0..PAGES {
        let address = REGION + page * 4096;
        // SAFETY: mapped above; the child's writes must not show here.
        let value = unsafe { (address as *const u64).read_volatile() };
        check!(
            value == address as u64,
            "page {} changed to {:#x}",
            page,
            value
        );
    }
    print_bench("spawn", alone, 1);
    print_bench("spawn_share_4mib", sharing, 1);
    print_bench("spawn_share_per_page", sharing - alone, PAGES as i64);
    0
}
