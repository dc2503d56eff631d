//! cow-release, child side: waits for the parent (capability 0, given by spawn) to exit, then
//! writes 16 of the 64 pages it inherited — no copies, since nothing is shared any more —
//! takes snapshot `orphaned`, and exits.
#![no_std]
#![no_main]

use user::{check, snapshot, wait, Waited};

const REGION: usize = 0x2000_0000;
const PAGES: usize = 64;

#[no_mangle]
fn main() -> i32 {
    check!(
        wait(0) == Ok(Waited::Exited(0)),
        "parent did not exit cleanly"
    );
    for page in 0..PAGES {
        // SAFETY: shared with us at spawn; the parent is gone, so we are the only mapper.
        let value = unsafe { ((REGION + page * 4096) as *const u64).read_volatile() };
        check!(
            value == 0xA11CE000 + page as u64,
            "page {} = {:#x}",
            page,
            value
        );
    }
    for page in 0..16 {
        // SAFETY: as above; these writes restore write access without copying.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(page as u64) };
    }
    check!(snapshot("orphaned").is_ok(), "snapshot");
    0
}
