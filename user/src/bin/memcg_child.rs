//! memcg-fork, child side: calls its parent for `go`, writes the pages it is told to (word 1
//! of the first shared page), takes snapshot `child-wrote`, calls `done` and, when that call
//! fails because the parent exited, takes snapshot `parent-exited`, checks its view of the
//! pages and exits.
#![no_std]
#![no_main]

use user::{call_registers, check, println, snapshot, Error};

user::program! {
    description: "Spawned by `memcg_parent` sharing its pages: calls endpoint 1 (`ready`) and waits for `go`, writes as many shared pages as word 1 of the first page says (copy-on-write copies; word 2 is the page count), takes snapshot `child-wrote`, calls `done`; when that call ends with peer-gone (the parent exited) it takes snapshot `parent-exited`, checks every page still reads what it or the parent wrote, and exits.",
    caps: {
        0: dom => "the parent (given by spawn)",
        1: ep => "the endpoint the parent answers on (passed by spawn)",
    },
    snapshots: {
        "child-wrote" => "after its writes, the parent alive",
        "parent-exited" => "after the parent exited, the child still mapping the pages",
    },
    exit: "0",
}

const REGION: usize = 0x2000_0000;
const EP: usize = 1;

#[no_mangle]
fn main() -> i32 {
    let go = call_registers(EP, [0; 4]);
    check!(go == Ok([1, 0, 0, 0]), "go: {:?}", go);
    // SAFETY: the parent shared this region with us at spawn; it wrote the orders first.
    let (writes, pages) = unsafe {
        (
            ((REGION + 8) as *const u64).read_volatile() as usize,
            ((REGION + 16) as *const u64).read_volatile() as usize,
        )
    };
    let writes = writes.min(pages);
    for page in 0..writes {
        // SAFETY: shared read-write (copy-on-write) region.
        unsafe { ((REGION + page * 4096 + 32) as *mut u64).write_volatile(0xBEEF_0000) };
    }
    check!(snapshot("child-wrote").is_ok(), "snapshot");
    let done = call_registers(EP, [2, 0, 0, 0]);
    check!(done == Err(Error::PeerGone), "done: {:?}", done);
    check!(snapshot("parent-exited").is_ok(), "snapshot");
    for page in 0..pages {
        // SAFETY: still mapped: the parent's exit left our mappings.
        let value = unsafe { ((REGION + page * 4096) as *const u64).read_volatile() };
        check!(
            value == 0xC0FFEE00 + page as u64,
            "page {} = {:#x}",
            page,
            value
        );
    }
    println!(
        "child: wrote {} of {} pages, outlived the parent",
        writes, pages
    );
    0
}
