//! The first domain: prints a greeting through the console system call, asks for a report
//! snapshot, touches some stack and a demand-zero page, and exits.
#![no_std]
#![no_main]

use user::{map, println, snapshot, MAP_WRITE};

#[no_mangle]
fn main() -> i32 {
    println!("hello from EL0: Tally charges every frame to someone");
    let base = 0x1000_0000;
    user::check!(map(base, 4, MAP_WRITE).is_ok(), "map failed");
    for page in 0..4 {
        let p = (base + page * 4096) as *mut u64;
        // SAFETY: the four pages at `base` were just mapped writable.
        unsafe { p.write_volatile(page as u64) };
    }
    user::check!(snapshot("hello").is_ok(), "snapshot failed");
    println!("goodbye");
    0
}
