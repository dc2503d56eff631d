//! The default tour (`make run`): one program whose run makes the kernel charge every frame
//! kind. It maps and writes `pages` (default 8) pages (`anon`, `pagetables`; its control block
//! and capability table are `kernel`), spawns `child` sharing them copy-on-write; the child
//! writes `writes` (default 2) of them (`cow`) and queues a `bytes` (default 4096) message
//! (`msgbuf`, two-stage transfer), then takes snapshot `tour` with every kind live. The tour
//! then receives the message and checks its bytes.
#![no_std]
#![no_main]

use user::{
    check, map, println, receive_into, recv, spawn_with_caps, wait, SharedRegion, Waited, MAP_WRITE,
};

user::program! {
    description: "The default tour: maps and writes `pages` pages at 0x2000_0000, spawns `tour_child` sharing them copy-on-write and passing it the endpoint; the child writes `writes` of them and queues one `bytes`-byte message, then takes snapshot `tour` with every frame kind charged. Once the child has exited the tour receives the message and checks its bytes. Needs `transfer = \"two-stage\"` (the child's send must not wait for the tour, which waits for the child).",
    caps: {
        0: set => "the charge set the child is spawned into",
        1: ep => "the mailbox, passed on to the child (its capability 1)",
    },
    args: {
        pages: 8 => "pages to map, write and share (1 to 1024)",
        writes: 2 => "shared pages the child writes (copy-on-write copies; at most `pages`)",
        bytes: 4096 => "bytes of the child's message (at most 4096)",
    },
    spawns: { "tour_child" as "child" => "writes `writes` pages, queues the message, takes snapshot `tour`" },
    exit: "0; 1 when the spawn was refused (the console says why)",
}

const REGION: usize = 0x2000_0000;

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let pages = args.pages.clamp(1, 1024) as usize;
    let bytes = args.bytes.min(4096) as usize;
    println!("tour: hello from EL0; every frame I cause is charged to someone");
    check!(map(REGION, pages, MAP_WRITE).is_ok(), "map");
    for page in 0..pages {
        // SAFETY: just mapped writable.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(page as u64 + 1) };
    }
    // SAFETY: as above; the child reads its orders from words 1 and 2 of the first page.
    unsafe {
        ((REGION + 8) as *mut u64).write_volatile(args.writes.min(pages as u64));
        ((REGION + 16) as *mut u64).write_volatile(bytes as u64);
    }
    // Capability 0: the child's charge set; 1: the mailbox endpoint (passed on to the child).
    let regions = [SharedRegion {
        address: REGION,
        pages,
    }];
    let child = match spawn_with_caps("tour_child", "child", 0, &regions, &[1]) {
        Ok(child) => child,
        Err(error) => {
            println!("tour: spawn refused: {}", error.name());
            return 1;
        }
    };
    match wait(child) {
        Ok(Waited::Exited(0)) => {}
        ended => {
            // It may not have queued the message: waiting for it could block for ever.
            println!(
                "tour: the child ended with {:?}; no message to receive",
                ended
            );
            return 0;
        }
    }
    let mut buffer = [0u8; 4096];
    let mut receive = receive_into(&mut buffer);
    check!(recv(1, &mut receive).is_ok(), "recv");
    check!(
        receive.data_length == bytes && buffer[..bytes].iter().all(|b| *b == 0x5a),
        "message garbled"
    );
    println!("tour: got the child's {}-byte message; goodbye", bytes);
    0
}
