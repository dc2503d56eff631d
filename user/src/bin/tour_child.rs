//! The default tour, child side: writes the first N of the pages it shares with the tour (N
//! from word 1 of the first page: copy-on-write copies), queues a message of M bytes (word 2)
//! to it on the mailbox (capability 1), and takes snapshot `tour` while every frame kind is
//! charged.
#![no_std]
#![no_main]

use user::{check, data_message, is_refusal, println, send, snapshot};

user::program! {
    description: "Spawned by `tour` sharing its pages: writes as many of them as word 1 of the first page says (copy-on-write copies), queues a message of as many bytes as word 2 says (at most 4096) on capability 1, and takes snapshot `tour`.",
    caps: {
        0: dom => "the tour (given by spawn)",
        1: ep => "the mailbox",
    },
    snapshots: { "tour" => "with the copies made and the message queued: every frame kind charged" },
    exit: "0; 1 when the message was refused (a limit, a full queue; the console says which)",
}

const REGION: usize = 0x2000_0000;

#[no_mangle]
fn main() -> i32 {
    // SAFETY: shared copy-on-write by the tour at spawn; it wrote the orders before spawning.
    let (writes, bytes) = unsafe {
        (
            ((REGION + 8) as *const u64).read_volatile() as usize,
            (((REGION + 16) as *const u64).read_volatile() as usize).min(4096),
        )
    };
    for page in 0..writes {
        // SAFETY: shared copy-on-write by the tour at spawn, `writes` pages at least.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(0xC0C0) };
    }
    let message = [0x5au8; 4096];
    let sent = send(1, &data_message(&message[..bytes]));
    check!(snapshot("tour").is_ok(), "snapshot");
    match sent {
        Ok(()) => {
            println!(
                "child: {} pages copied on write, one message queued",
                writes
            );
            0
        }
        Err(error) => {
            check!(is_refusal(error), "send: {}", error.name());
            println!(
                "child: {} pages copied on write; message refused: {}",
                writes,
                error.name()
            );
            1
        }
    }
}
