//! ipc-atomic, receiver: maps an untouched `pages`-page (default 4) buffer, sets its own charge
//! set's limit to what it uses now plus `headroom` (default 0) pages (capability 1), takes
//! snapshot `before`, and receives on endpoint capability 0 until an empty message arrives.
//! What arrived is its exit code; whether its usage moved is for the config's expectations
//! (`after` minus `before`).
#![no_std]
#![no_main]

use user::{check, println, recv, set_limit, set_query, snapshot, Receive};
use user::{map, MAP_WRITE};

user::program! {
    description: "Maps an untouched buffer of `pages` pages at 0x7000_0000, sets its own set's limit to the set's usage now plus `headroom` pages, takes snapshot `before`, then receives on capability 0 into the buffer until an empty message arrives, and takes snapshot `after`. A direct-transfer message needs buffer pages charged as it is copied in: with no headroom none can be, so a sender's non-empty send fails over-limit and nothing of the receiver changes.",
    caps: {
        0: ep => "the endpoint it receives on",
        1: set => "its own charge set, whose limit it lowers",
    },
    args: {
        pages: 4 => "pages of the receive buffer (1 to 4)",
        headroom: 0 => "pages above its usage its set may still charge",
    },
    snapshots: {
        "before" => "with the limit lowered, before the first receive",
        "after" => "after the empty message",
    },
    exit: "the number of data bytes received before the empty message",
}

const BUFFER: usize = 0x7000_0000;

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let pages = args.pages.clamp(1, 4) as usize;
    check!(map(BUFFER, pages, MAP_WRITE).is_ok(), "map");
    let usage = set_query(1);
    check!(usage.is_ok(), "set_query");
    let limit = usage.unwrap_or_default().subtree_bytes + args.headroom * 4096;
    check!(set_limit(1, limit as usize).is_ok(), "set_limit");
    check!(snapshot("before").is_ok(), "snapshot");
    let mut received = 0;
    loop {
        let mut receive = Receive {
            buffer_address: BUFFER,
            buffer_capacity: pages * 4096,
            ..Receive::default()
        };
        check!(recv(0, &mut receive).is_ok(), "recv");
        if receive.data_length == 0 {
            break;
        }
        received += receive.data_length;
    }
    check!(snapshot("after").is_ok(), "snapshot");
    println!("atomic_receiver: {} bytes received", received);
    received as i32
}
