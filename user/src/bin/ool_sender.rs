//! ipc-ool, sender: maps and writes a `pages`-page (default 32) region, sends it out-of-line on
//! endpoint capability 0, then waits for the receiver (capability 1) to end so the pages stay
//! shared until the receiver's snapshot. A send the kernel refuses is reported, and an empty
//! message then ends the receiver.
#![no_std]
#![no_main]

use user::MAP_WRITE;
use user::{check, data_message, is_refusal, map, println, send, wait, Message, SharedRegion};

user::program! {
    description: "Maps `pages` pages at 0x2000_0000 and writes each, sends them as one out-of-line region (mapped copy-on-write into the receiver) on capability 0, waits for the receiver to end, then checks its own pages are unchanged. When the send is refused it sends an empty message instead, so the receiver ends.",
    caps: {
        0: ep => "the endpoint it sends the region on",
        1: dom => "the receiver, waited for so the pages stay shared until its snapshot",
    },
    args: { pages: 32 => "pages in the region (1 to 256, the kernel's bound per region)" },
    exit: "0; 1 when the region's send was refused (the console says why)",
}

const REGION: usize = 0x2000_0000;

fn pattern(page: usize) -> u64 {
    0x0_0150_0000 + page as u64
}

#[no_mangle]
fn main() -> i32 {
    let pages = Args::get().pages.clamp(1, 256) as usize;
    check!(map(REGION, pages, MAP_WRITE).is_ok(), "map");
    for page in 0..pages {
        // SAFETY: just mapped writable.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(pattern(page)) };
    }
    let mut message = Message::default();
    message.regions[0] = SharedRegion {
        address: REGION,
        pages,
    };
    message.region_count = 1;
    let sent = send(0, &message);
    if let Err(error) = sent {
        check!(is_refusal(error), "send: {}", error.name());
        println!("ool_sender: the region was refused: {}", error.name());
        check!(send(0, &data_message(&[])).is_ok(), "the empty message");
    }
    let _ = wait(1);
    for page in 0..pages {
        // SAFETY: our own mapping, unchanged by the receiver's writes.
        let value = unsafe { ((REGION + page * 4096) as *const u64).read_volatile() };
        check!(value == pattern(page), "sender page {} changed", page);
    }
    i32::from(sent.is_err())
}
