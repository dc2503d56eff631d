//! A keeper: receives the faults of the domains it keeps on endpoint capability 0 and resolves
//! the over-limit ones by raising the limit of the charge set behind capability 1, `pages`
//! pages at a time, `grants` times; then it answers stop, waits for the domain to end and exits.
#![no_std]
#![no_main]

use user::{check, data_message, println, receive_into, recv, reply, set_limit, set_query, wait};

user::program! {
    description: "Keeps the domains whose `keeper` is the endpoint behind capability 0: receives each fault (abi::Fault and a capability to the faulting domain), prints it, and answers. An over-limit fault, while it has grants left (`grants`), it resolves by raising the limit of the set behind capability 1 by `pages` pages and answering retry; any other fault, or one after the last grant, it answers stop. Then it waits for that domain to end and exits with the number of limits it raised.",
    caps: {
        0: ep => "the keeper endpoint (the kept domains' `keeper`)",
        1: set => "the charge set whose limit it raises",
    },
    args: {
        grants: 3 => "how many over-limit faults it resolves",
        pages: 4 => "pages each grant adds to the limit",
    },
    exit: "the number of limits it raised",
}

fn kind_name(kind: u64) -> &'static str {
    match kind {
        abi::FAULT_NO_REGION => "no-region",
        abi::FAULT_PROTECTION => "protection",
        abi::FAULT_OVER_LIMIT => "over-limit",
        _ => "?",
    }
}

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let mut granted = 0;
    loop {
        let mut words = [0u64; 8];
        // SAFETY: the buffer is these eight words, plain data any bytes may fill.
        let bytes = unsafe {
            core::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, abi::Fault::BYTES)
        };
        let mut receive = receive_into(bytes);
        check!(recv(0, &mut receive).is_ok(), "recv");
        check!(
            receive.data_length == abi::Fault::BYTES && receive.cap_count == 1,
            "a fault message carries the fault and a capability to the domain"
        );
        let fault = abi::Fault::from_words(&words);
        let domain = receive.caps[0];
        println!(
            "keeper: fault {} {} at {:#x} (write {}), charge kind {} of {} bytes",
            fault.earlier,
            kind_name(fault.kind),
            fault.address,
            fault.write,
            fault.charge_kind,
            fault.charge_bytes
        );
        if fault.kind == abi::FAULT_OVER_LIMIT && granted < args.grants {
            let usage = set_query(1);
            check!(usage.is_ok(), "set_query");
            let limit = usage.unwrap_or_default().limit_bytes + args.pages * 4096;
            check!(set_limit(1, limit as usize).is_ok(), "set_limit");
            granted += 1;
            println!("keeper: limit raised to {} bytes, retry", limit);
            let answer = abi::KEEPER_RETRY.to_le_bytes();
            check!(reply(&data_message(&answer)).is_ok(), "reply retry");
        } else {
            println!("keeper: stop");
            let answer = abi::KEEPER_STOP.to_le_bytes();
            check!(reply(&data_message(&answer)).is_ok(), "reply stop");
            check!(wait(domain).is_ok(), "wait");
            return granted as i32;
        }
    }
}
