//! memcg-fork, parent side: the Linux cgroup fork workload. Maps and writes `pages` pages,
//! spawns `memcg_child` into its own charge set sharing them copy-on-write, lets it start,
//! moves it to another set (`domain_move`), tells it to write `child_writes` of the pages,
//! then writes all of them itself when `parent_writes` is 1, and exits while the child still
//! maps the pages. What the moves and writes cost is reported, not judged.
#![no_std]
#![no_main]

use user::{
    check, domain_move, map, println, reply_recv_registers, snapshot, spawn_with_caps, yield_now,
    SharedRegion, MAP_WRITE,
};

user::program! {
    description: "Maps `pages` pages at 0x2000_0000 and writes each (their first toucher), spawns `memcg_child` into the set of capability 0 sharing them copy-on-write (telling it, in words 1 and 2 of the first page, to write `child_writes` of them) and yields so the child starts there; snapshot `forked`. With `move_child` 1 it moves the child to the set of capability 1 (`domain_move`; the `move` policy decides what its charges do) and takes snapshot `moved`. Then it answers the child's call on endpoint 2 with `go`, waits for its `done` call, writes every page itself when `parent_writes` is 1 (snapshot `parent-wrote`), and exits without answering, so the child sees it gone.",
    caps: {
        0: set => "the set the child is spawned into (the parent's own)",
        1: set => "the set the child is moved to",
        2: ep => "the endpoint the child calls (passed to it as its capability 1)",
    },
    args: {
        pages: 1024 => "pages to map, write and share (1 to 1024)",
        child_writes: 1024 => "shared pages the child writes after the move (at most `pages`)",
        parent_writes: 0 => "1: the parent writes every page after the child's writes",
        move_child: 1 => "1: move the child to capability 1's set after the fork",
    },
    snapshots: {
        "forked" => "the child started, in the parent's set, before the move",
        "moved" => "right after the move (only with `move_child` 1)",
        "parent-wrote" => "after the parent's own writes (only with `parent_writes` 1)",
    },
    spawns: { "memcg_child" as "child" => "calls for `go`, writes `child_writes` pages, takes snapshots `child-wrote` and `parent-exited`" },
    exit: "0; 1 when the spawn was refused, 2 when the move was (the console says why)",
}

/// The shared region (also known to memcg_child).
const REGION: usize = 0x2000_0000;
const EP: usize = 2;

fn pattern(page: usize) -> u64 {
    0xC0FFEE00 + page as u64
}

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let pages = args.pages.clamp(1, 1024) as usize;
    let writes = args.child_writes.min(pages as u64);
    check!(map(REGION, pages, MAP_WRITE).is_ok(), "map");
    for page in 0..pages {
        // SAFETY: the region was just mapped writable.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(pattern(page)) };
    }
    // SAFETY: as above; the child reads its orders from words 1 and 2 of the first page.
    unsafe {
        ((REGION + 8) as *mut u64).write_volatile(writes);
        ((REGION + 16) as *mut u64).write_volatile(pages as u64);
    }
    let regions = [SharedRegion {
        address: REGION,
        pages,
    }];
    let child = match spawn_with_caps("memcg_child", "child", 0, &regions, &[EP]) {
        Ok(cap) => cap,
        Err(e) => {
            println!("spawn failed: {}", e.name());
            return 1;
        }
    };
    // Let the child start (and fault in its stack) in the parent's set, as a forked task
    // runs in its parent's cgroup until it is moved; it then waits for `go`.
    yield_now();
    check!(snapshot("forked").is_ok(), "snapshot");
    if args.move_child == 1 {
        match domain_move(child, 1) {
            Ok(bytes) => println!("parent: moved the child, {} bytes went with it", bytes),
            Err(e) => {
                println!("move refused: {}", e.name());
                return 2;
            }
        }
        check!(snapshot("moved").is_ok(), "snapshot");
    }
    // The child's first call is `ready`: answer `go`, and wait for its `done`.
    let ready = reply_recv_registers(EP, [0; 4]);
    check!(ready.is_ok(), "ready: {:?}", ready);
    let done = reply_recv_registers(EP, [1, 0, 0, 0]);
    check!(done.is_ok(), "done: {:?}", done);
    if args.parent_writes == 1 {
        for page in 0..pages {
            // SAFETY: mapped above, shared copy-on-write with the child.
            unsafe {
                ((REGION + page * 4096 + 64) as *mut u64).write_volatile(0xFACE_0000 + page as u64)
            };
        }
        check!(snapshot("parent-wrote").is_ok(), "snapshot");
    }
    println!(
        "parent: exits, the child wrote {} of {} pages",
        writes, pages
    );
    0
}
