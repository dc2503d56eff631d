//! Benchmark (bench/ool.toml), receiver side: receives out-of-line regions on endpoint
//! capability 0 at one fixed address and unmaps each again (its page tables stay, so every
//! transfer after the first finds them); a message without a region ends it.
#![no_std]
#![no_main]

use user::{check, receive_into, recv, unmap};

user::program! {
    description: "Benchmark (bench/ool.toml), receiver: receives out-of-line regions on capability 0 at one fixed address and unmaps each again; a message without a region ends it.",
    caps: { 0: ep => "the endpoint it receives on" },
    exit: "0",
}

/// Where each incoming region is mapped (1 GiB slot 1, otherwise unused).
const TARGET: usize = 0x4000_0000;

#[no_mangle]
fn main() -> i32 {
    let mut data = [0u8; 8];
    loop {
        let mut receive = receive_into(&mut data);
        receive.region_addresses[0] = TARGET;
        check!(recv(0, &mut receive).is_ok(), "recv");
        if receive.region_count == 0 {
            return 0;
        }
        check!(
            unmap(TARGET, receive.region_pages[0]).is_ok(),
            "unmap {} pages",
            receive.region_pages[0]
        );
    }
}
