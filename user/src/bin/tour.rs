//! The default tour (`make run`): one program whose run makes the kernel charge every frame
//! kind. It maps and writes 8 pages (`anon`, `pagetables`; its control block and capability
//! table are `kernel`), spawns `child` sharing them copy-on-write; the child writes 2 of them
//! (`cow`) and queues a 4 KiB message (`msgbuf`, two-stage transfer), then takes snapshot
//! `tour` with every kind live. The tour then receives and checks the message.
#![no_std]
#![no_main]

use user::{
    check, map, println, receive_into, recv, spawn_with_caps, wait, SharedRegion, Waited, MAP_WRITE,
};

const REGION: usize = 0x2000_0000;
const PAGES: usize = 8;

#[no_mangle]
fn main() -> i32 {
    println!("tour: hello from EL0; every frame I cause is charged to someone");
    check!(map(REGION, PAGES, MAP_WRITE).is_ok(), "map");
    for page in 0..PAGES {
        // SAFETY: just mapped writable.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(page as u64 + 1) };
    }
    // Capability 0: the child's charge set; 1: the mailbox endpoint (passed on to the child).
    let child = spawn_with_caps(
        "tour_child",
        "child",
        0,
        &[SharedRegion {
            address: REGION,
            pages: PAGES,
        }],
        &[1],
    );
    check!(child.is_ok(), "spawn: {:?}", child);
    check!(
        wait(child.unwrap_or(0)) == Ok(Waited::Exited(0)),
        "child failed"
    );
    let mut buffer = [0u8; 4096];
    let mut receive = receive_into(&mut buffer);
    check!(recv(1, &mut receive).is_ok(), "recv");
    check!(
        receive.data_length == 4096 && buffer.iter().all(|b| *b == 0x5a),
        "message garbled"
    );
    println!("tour: got the child's 4 KiB message; goodbye");
    0
}
