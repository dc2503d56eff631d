//! A pager: the keeper of a domain's working set. It keeps a backing store in its own memory
//! (charged to its own set), evicts the domain's pages into it when the domain's set goes above
//! its `high` bound, and brings them back when the domain (or a sender to it) touches one.
#![no_std]
#![no_main]

use user::{
    check, data_message, map, page_in, page_out, println, receive_into, recv, reply, Error,
    MAP_WRITE,
};

user::program! {
    description: "Keeps the domains whose `keeper` is the endpoint behind capability 0, paging a region of `pages` pages at `base` of theirs. Its backing store is `pages` pages of its own memory at 0x7000_0000, charged to its own set as it fills. A page of a keeper-managed region it has never evicted it supplies as zeros (its store page untouched). A request to reclaim (the domain's set above its `high` bound, FAULT_OVER_HIGH) it answers by evicting (`page_out`) as many pages as the set is over, taking them in address order from a clock hand (first in, first out for a domain that sweeps its region); a paged-out fault (the domain touched an evicted page, or a send to it needs one: FAULT_PAGED_OUT) by bringing the page back (`page_in`); then it answers retry. Any other fault it answers stop. A message that is not a fault (the kept domain's goodbye) ends it.",
    caps: {
        0: ep => "the keeper endpoint (the kept domains' `keeper`), also where their goodbye comes",
    },
    args: {
        base: 0x6000_0000 => "first address of the paged region (page aligned)",
        pages: 16 => "pages of the paged region (at most 64)",
    },
    exit: "the number of pages it evicted",
}

const STORE: usize = 0x7000_0000;

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let (base, pages) = (args.base as usize & !4095, args.pages.clamp(1, 64) as usize);
    check!(map(STORE, pages, MAP_WRITE).is_ok(), "map the store");
    let (mut hand, mut evicted, mut paged_in) = (0usize, 0usize, 0usize);
    // The store's pages that hold an evicted page (the others read as zeros: a page of a
    // keeper-managed region it supplies for the first time).
    let mut stored = 0u64;
    loop {
        let mut words = [0u64; 8];
        // SAFETY: the buffer is these eight words, plain data any bytes may fill.
        let bytes = unsafe {
            core::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, abi::Fault::BYTES)
        };
        let mut receive = receive_into(bytes);
        check!(recv(0, &mut receive).is_ok(), "recv");
        if receive.data_length != abi::Fault::BYTES || receive.cap_count != 1 {
            println!("pager: goodbye; {evicted} pages evicted, {paged_in} paged in");
            return evicted as i32;
        }
        let fault = abi::Fault::from_words(&words);
        let domain = receive.caps[0];
        let answer = match fault.kind {
            abi::FAULT_OVER_HIGH => {
                // As many pages as the set is over, from the clock hand on.
                let mut wanted = (fault.charge_bytes as usize).div_ceil(4096);
                let mut tried = 0;
                while wanted > 0 && tried < pages {
                    let page = base + hand * 4096;
                    let result = page_out(domain, page, STORE + hand * 4096);
                    check!(
                        matches!(
                            result,
                            Ok(()) | Err(Error::NotPresent | Error::NotPrivate | Error::PagedOut)
                        ),
                        "page_out: {:?}",
                        result
                    );
                    if result.is_ok() {
                        stored |= 1 << hand;
                        println!(
                            "pager: over high by {} bytes: evicted {:#x}",
                            fault.charge_bytes, page
                        );
                        evicted += 1;
                        wanted -= 1;
                    }
                    hand = (hand + 1) % pages;
                    tried += 1;
                }
                abi::KEEPER_RETRY
            }
            abi::FAULT_PAGED_OUT => {
                let page = fault.address as usize & !4095;
                let index = page.wrapping_sub(base) / 4096;
                if index < pages {
                    let result = page_in(domain, page, STORE + index * 4096);
                    check!(result.is_ok(), "page_in: {:?}", result);
                    paged_in += 1;
                    println!(
                        "pager: {} {:#x}{}",
                        if stored & (1 << index) != 0 {
                            "paged in"
                        } else {
                            "supplied"
                        },
                        page,
                        if fault.other == 1 {
                            " for a sender"
                        } else {
                            ""
                        }
                    );
                    abi::KEEPER_RETRY
                } else {
                    abi::KEEPER_STOP
                }
            }
            kind => {
                println!(
                    "pager: {} fault at {:#x}: stop",
                    user::fault_kind_name(kind),
                    fault.address
                );
                abi::KEEPER_STOP
            }
        };
        check!(reply(&data_message(&answer.to_le_bytes())).is_ok(), "reply");
    }
}
