//! ipc-atomic, receiver: maps an untouched 4-page buffer, sets its own charge set's limit to
//! what it uses now (capability 1), and waits on endpoint capability 0. Only the final empty
//! message may arrive; its memory and usage must be exactly as before.
#![no_std]
#![no_main]

use user::{check, map, recv, set_limit, set_query, snapshot, Receive, MAP_WRITE};

const BUFFER: usize = 0x7000_0000;

#[no_mangle]
fn main() -> i32 {
    check!(map(BUFFER, 4, MAP_WRITE).is_ok(), "map");
    let before = set_query(1);
    check!(before.is_ok(), "set_query");
    let before = before.unwrap_or_default();
    check!(
        set_limit(1, before.subtree_bytes as usize).is_ok(),
        "set_limit"
    );
    let mut receive = Receive {
        buffer_address: BUFFER,
        buffer_capacity: 4 * 4096,
        ..Receive::default()
    };
    check!(recv(0, &mut receive).is_ok(), "recv");
    check!(
        receive.data_length == 0,
        "received {} bytes; only the empty message fits",
        receive.data_length
    );
    let after = set_query(1).unwrap_or_default();
    check!(
        after.current_bytes == before.current_bytes,
        "usage changed: {:?} -> {:?}",
        before.current_bytes,
        after.current_bytes
    );
    check!(
        after.denied[0] >= 1,
        "the denied buffer page was not counted"
    );
    check!(snapshot("after").is_ok(), "snapshot");
    0
}
