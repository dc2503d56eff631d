//! Benchmark (bench/ool.toml), sender side: instructions per `send` of one out-of-line region
//! of 64 pages and of 1 page (populated, never shared before, so each send also makes the
//! sender's pages copy-on-write), measured around the system call while `bench_ool_receiver`
//! waits in `recv`; `ool_per_page` is the difference per extra page. After each send this
//! domain yields so the receiver unmaps the region and waits again. Capability 0 is the
//! endpoint.
#![no_std]
#![no_main]

use user::{check, data_message, instructions, map, print_bench, send, yield_now};
use user::{Message, SharedRegion, MAP_WRITE};

user::program! {
    description: "Benchmark (bench/ool.toml), sender: instructions per `send` of an out-of-line region of 64 pages and of 1 page; `ool_per_page` is the difference per extra page.",
    caps: { 0: ep => "the endpoint to `bench_ool_receiver`" },
    exit: "0",
}

const SOURCE: usize = 0x2000_0000;
const PAGE: usize = 4096;
const BIG: usize = 64;
const SENDS: usize = 4;
/// A warm-up region (the receiver's tables), SENDS big ones, then SENDS single pages.
const PAGES: usize = (1 + SENDS) * BIG + SENDS;

/// Instructions taken by one `send` of the `pages` pages at `address`.
fn send_region(address: usize, pages: usize) -> i64 {
    let mut message = Message {
        region_count: 1,
        ..Message::default()
    };
    message.regions[0] = SharedRegion { address, pages };
    let start = instructions();
    let sent = send(0, &message);
    let taken = (instructions() - start) as i64;
    check!(sent.is_ok(), "send of {} pages: {:?}", pages, sent);
    yield_now();
    taken
}

#[no_mangle]
fn main() -> i32 {
    check!(map(SOURCE, PAGES, MAP_WRITE).is_ok(), "map");
    for page in 0..PAGES {
        let address = SOURCE + page * PAGE;
        // SAFETY: just mapped writable.
        unsafe { (address as *mut u64).write_volatile(address as u64) };
    }
    send_region(SOURCE, BIG);
    let mut big = 0;
    for round in 1..=SENDS {
        big += send_region(SOURCE + round * BIG * PAGE, BIG);
    }
    let mut single = 0;
    for round in 0..SENDS {
        single += send_region(SOURCE + ((1 + SENDS) * BIG + round) * PAGE, 1);
    }
    check!(send(0, &data_message(b"done")).is_ok(), "last send");
    print_bench("ool_send_1page", single, SENDS as i64);
    print_bench("ool_send_64pages", big, SENDS as i64);
    print_bench("ool_per_page", big - single, (SENDS * (BIG - 1)) as i64);
    0
}
