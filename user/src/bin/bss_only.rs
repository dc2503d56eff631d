//! bss-only: a program with zero-initialised statics (`.bss`) and no initialised ones
//! (`.data`). Its writable segment must start on a page of its own; when the linker script put
//! it on `.rodata`'s page, the kernel refused to load it (issue 10, bug 2). It writes and reads
//! back its 16 KiB of `.bss`, then exits with code 7 (the report records exit codes).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use user::{check, snapshot};

user::program! {
    description: "Has 16 KiB of zero-initialised statics (`.bss`, 4 pages) and no `.data`: checks they read as zero, writes and sums them, takes snapshot `written` and exits with code 7.",
    snapshots: { "written" => "after writing the 4 `.bss` pages" },
    exit: "7 (so that a report shows a program's own exit code)",
}

/// Zero-initialised: `.bss`, 16 KiB (4 pages).
static WORDS: [AtomicU64; 2048] = [const { AtomicU64::new(0) }; 2048];

#[no_mangle]
fn main() -> i32 {
    for (i, word) in WORDS.iter().enumerate() {
        check!(
            word.load(Ordering::Relaxed) == 0,
            "bss word {} is not zero",
            i
        );
        word.store(i as u64 * 3, Ordering::Relaxed);
    }
    let sum: u64 = WORDS.iter().map(|w| w.load(Ordering::Relaxed)).sum();
    check!(sum == 3 * 2047 * 2048 / 2, "sum {}", sum);
    check!(snapshot("written").is_ok(), "snapshot");
    7
}
