//! A keeper: receives the faults of the domains it keeps on endpoint capability 0; resolves
//! over-limit ones by raising the limit of the charge set behind capability 1 and faults in no
//! region by mapping memory into the domain; then answers stop (or waits for the domain's own
//! exit), waits for the domain to end and exits.
#![no_std]
#![no_main]

use user::{
    check, data_message, domain_map, println, receive_into, recv, reply, set_limit, set_query,
    wait, MAP_WRITE,
};

user::program! {
    description: "Keeps the domains whose `keeper` is the endpoint behind capability 0: receives each fault (abi::Fault and a capability to the faulting domain), prints it, and answers. An over-limit fault (a page's charge, or a send's transfer, denied), while it has grants left (`grants`), it resolves by raising the limit of the set behind capability 1 by `pages` pages and answering retry; a fault in no region, while it has maps left (`maps`), by mapping `map_pages` writable pages from the faulting page into the domain (`domain_map`) and answering retry; any other fault, or one after the last grant or map, it answers stop, then waits for that domain to end and exits with the number of faults it resolved. With `until_exit`, it does not stop anything: it resolves what it can and, after `until_exit` faults, waits for the domain to end by itself.",
    caps: {
        0: ep => "the keeper endpoint (the kept domains' `keeper`)",
        1: set => "the charge set whose limit it raises",
        2: dom (optional) => "a domain it adopts (with `adopt`): its faults come to capability 0 from then on",
    },
    args: {
        grants: 3 => "how many over-limit faults it resolves",
        pages: 4 => "pages each grant adds to the limit",
        maps: 0 => "how many faults in no region it resolves",
        map_pages: 4 => "pages each map gives the domain",
        until_exit: 0 => "when not 0: the faults after which it waits for the domain to exit by itself",
        adopt: 0 => "when not 0: it first makes itself the keeper of the domain behind capability 2 (`set_keeper`)",
    },
    exit: "the number of faults it resolved",
}

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let (mut granted, mut mapped) = (0, 0);
    if args.adopt != 0 {
        check!(user::set_keeper(2, 0).is_ok(), "set_keeper");
        println!("keeper: adopted the domain behind capability 2");
    }
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
            "keeper: fault {} {} at {:#x} (write {}), charge kind {} of {} bytes, domain cap {}",
            fault.earlier,
            user::fault_kind_name(fault.kind),
            fault.address,
            fault.write,
            fault.charge_kind,
            fault.charge_bytes,
            domain
        );
        let over_limit = matches!(
            fault.kind,
            abi::FAULT_OVER_LIMIT | abi::FAULT_SEND_OVER_LIMIT
        );
        let resolved = if over_limit && granted < args.grants {
            let usage = set_query(1);
            check!(usage.is_ok(), "set_query");
            let limit = usage.unwrap_or_default().limit_bytes + args.pages * 4096;
            check!(set_limit(1, limit as usize).is_ok(), "set_limit");
            granted += 1;
            println!("keeper: limit raised to {} bytes, retry", limit);
            true
        } else if fault.kind == abi::FAULT_NO_REGION && mapped < args.maps {
            let page = fault.address as usize & !4095;
            let result = domain_map(domain, page, args.map_pages as usize, MAP_WRITE);
            check!(result.is_ok(), "domain_map: {:?}", result);
            mapped += 1;
            println!(
                "keeper: mapped {} pages at {:#x}, retry",
                args.map_pages, page
            );
            true
        } else {
            false
        };
        if resolved {
            let answer = abi::KEEPER_RETRY.to_le_bytes();
            check!(reply(&data_message(&answer)).is_ok(), "reply retry");
            if args.until_exit != 0 && granted + mapped == args.until_exit {
                check!(wait(domain).is_ok(), "wait");
                return (granted + mapped) as i32;
            }
        } else {
            println!("keeper: stop");
            let answer = abi::KEEPER_STOP.to_le_bytes();
            check!(reply(&data_message(&answer)).is_ok(), "reply stop");
            check!(wait(domain).is_ok(), "wait");
            return (granted + mapped) as i32;
        }
    }
}
