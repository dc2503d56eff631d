//! A domain whose working set is larger than its set's `high` bound: it writes a region page by
//! page, reads it all back, then receives a message into its first page. Its pager keeps it
//! under the bound; every value must read back as written.
#![no_std]
#![no_main]

use user::{check, data_message, map, println, recv, send, snapshot, Receive, MAP_WRITE};

user::program! {
    description: "Maps `pages` writable pages at 0x6000_0000 (keeper-managed with `kept`; one more when `buffer` is `pages`) and takes the snapshot `before`; writes a distinct word into each page in order, then reads each back in order (with a pager and a `high` bound below the region, the pages evicted meanwhile come back from the pager's store); takes the snapshot `swept`; then receives one message on capability 0 into page `buffer` of the region (a send that needs that page, evicted or never supplied, sleeps for the pager and restarts), checks it is `bytes` bytes of 7, receives the empty message that follows, takes the snapshot `after` and sends a goodbye to capability 1 (its pager's endpoint).",
    caps: {
        0: ep => "the endpoint it receives a message on",
        1: ep => "its pager's endpoint, for the goodbye",
    },
    args: {
        pages: 16 => "pages it writes and reads back (at most 63)",
        bytes: 64 => "bytes of the message it expects (at most 4096)",
        buffer: 0 => "the page of the region it receives the message into (at most `pages`; the region has one page more when it is `pages`)",
        kept: 0 => "when not 0: the region is keeper-managed (`MAP_KEEPER`): every page's first contents come from its keeper, never zero",
    },
    exit: "the number of pages that read back right plus, when the message was right, 1000",
}

const REGION: usize = 0x6000_0000;

fn word(page: usize) -> u64 {
    0x5eed_0000_0000 + page as u64 * 0x1_0001
}

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let pages = args.pages.clamp(1, 63) as usize;
    let bytes = args.bytes.clamp(1, 4096) as usize;
    let buffer = REGION + args.buffer.min(pages as u64) as usize * 4096;
    let flags = if args.kept != 0 {
        MAP_WRITE | abi::MAP_KEEPER
    } else {
        MAP_WRITE
    };
    let mapped = if buffer == REGION + pages * 4096 {
        pages + 1
    } else {
        pages
    };
    check!(map(REGION, mapped, flags).is_ok(), "map");
    check!(snapshot("before").is_ok(), "snapshot");
    for page in 0..pages {
        // SAFETY: a page of the region mapped above.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(word(page)) };
    }
    let right = (0..pages)
        // SAFETY: as above.
        .filter(
            |&page| unsafe { ((REGION + page * 4096) as *const u64).read_volatile() } == word(page),
        )
        .count();
    check!(snapshot("swept").is_ok(), "snapshot");
    println!("working_set: {right} of {pages} pages read back");
    let mut receive = Receive {
        buffer_address: buffer,
        buffer_capacity: 4096,
        ..Receive::default()
    };
    check!(recv(0, &mut receive).is_ok(), "recv");
    let message = receive.data_length == bytes
        // SAFETY: the kernel wrote the message into the region's buffer page.
        && (0..bytes).all(|i| unsafe { ((buffer + i) as *const u8).read_volatile() } == 7);
    println!(
        "working_set: {} bytes received, {}",
        receive.data_length,
        if message { "all 7" } else { "wrong" }
    );
    let mut empty = Receive {
        buffer_address: buffer,
        buffer_capacity: 4096,
        ..Receive::default()
    };
    check!(
        recv(0, &mut empty).is_ok() && empty.data_length == 0,
        "the empty message"
    );
    check!(snapshot("after").is_ok(), "snapshot");
    check!(send(1, &data_message(b"bye")).is_ok(), "goodbye");
    right as i32 + if message { 1000 } else { 0 }
}
