//! "Why am I billed for this frame?", asked of the kernel: maps and writes pages, shares them
//! copy-on-write with a child in another set, lets the child write one, and asks
//! `frame_info` about its own pages and the child's — kind, causer, mappers, and each party
//! (the set it charges, the domain mapping through it, its bytes) — printing each answer.
#![no_std]
#![no_main]

use abi::{name_text, FrameInfo, Kind};
use user::{check, map, println, recv, reply, spawn_with_caps, wait, Error, Message, Receive};
use user::{SharedRegion, MAP_WRITE};

user::program! {
    description: "Maps 3 pages at 0x2000_0000 and writes the first 2; asks `frame_info` about page 0; spawns `provenance_child` into the set behind capability 0 sharing the 3 pages copy-on-write; when the child (having written page 0) calls on the endpoint behind capability 1, asks about its own pages 0 and 1 and the child's pages 0 and 2 (page 2 was never touched: not-present) and an address in no region (bad-address); then replies, waits for the child and exits. Prints one line per answer: `why WHO page N: KIND causer=DOMAIN mappers=M parties=SET/DOMAIN:BYTES,... (frame F)`.",
    caps: {
        0: set => "the charge set the child is spawned into",
        1: ep => "the endpoint the child calls when it has written",
    },
    spawns: { "provenance_child" as "child" => "writes page 0 of the shared pages, calls, exits when answered" },
    exit: "0; 1 when the spawn was refused (the console says why)",
}

/// The shared region (also known to provenance_child).
const REGION: usize = 0x2000_0000;

/// Prints the answer about `who`'s page `page`.
fn why(who: &str, domain_cap: usize, page: usize) {
    let answer = user::frame_info(domain_cap, REGION + page * 4096);
    match answer {
        Ok(info) => describe(who, page, &info),
        Err(error) => println!("why {} page {}: {}", who, page, error.name()),
    }
}

fn describe(who: &str, page: usize, info: &FrameInfo) {
    let kind = Kind::from_index(info.kind as usize).map_or("?", Kind::key);
    let causer = match name_text(&info.causer) {
        "" => "none",
        name => name,
    };
    let split = if info.split == 1 { " split" } else { "" };
    user::print!(
        "why {} page {}: {}{} causer={} mappers={} parties=",
        who,
        page,
        kind,
        split,
        causer,
        info.mappers
    );
    let count = (info.party_count as usize).min(info.parties.len());
    for (index, party) in info.parties[..count].iter().enumerate() {
        let domain = match name_text(&party.domain) {
            "" => "-",
            name => name,
        };
        let comma = if index + 1 < count { "," } else { "" };
        user::print!(
            "{}/{}:{}{}",
            name_text(&party.set),
            domain,
            party.bytes,
            comma
        );
    }
    println!(" (frame {})", info.frame);
}

#[no_mangle]
fn main() -> i32 {
    check!(map(REGION, 3, MAP_WRITE).is_ok(), "map");
    for page in 0..2 {
        // SAFETY: the region was just mapped writable.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(0xF00D + page as u64) };
    }
    why("parent (before sharing)", abi::SELF, 0);
    let regions = [SharedRegion {
        address: REGION,
        pages: 3,
    }];
    let child = match spawn_with_caps("provenance_child", "child", 0, &regions, &[1]) {
        Ok(child) => child,
        Err(error) => {
            println!("provenance: spawn refused: {}", error.name());
            return 1;
        }
    };
    let mut receive = Receive::default();
    check!(recv(1, &mut receive).is_ok(), "recv the child's call");
    why("parent", abi::SELF, 0);
    why("parent", abi::SELF, 1);
    why("child", child, 0);
    why("child", child, 1);
    why("child", child, 2);
    let outside = user::frame_info(abi::SELF, 0xDEAD_0000);
    check!(
        outside.err() == Some(Error::BadAddress),
        "an address in no region is bad-address"
    );
    println!("why parent 0xdead0000: bad-address");
    check!(reply(&Message::default()).is_ok(), "reply");
    check!(wait(child).is_ok(), "wait");
    0
}
