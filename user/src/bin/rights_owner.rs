//! cap-rights, owner: makes a two-page region, gives a writer a capability to it with every
//! right and a reader one weakened to `read`, maps it itself, then shows each of the ten rights
//! refused when absent (each with its own error), revokes what it gave away (both copies gone,
//! both mappings unmapped, the charges following `release`) and tells both peers to check.
#![no_std]
#![no_main]

use abi::Rights;
use user::{
    call_endpoint, cap_delete, cap_derive, cap_inspect, cap_revoke, check, println, recv,
    region_create, region_map, region_map_flags, set_create, set_keeper, set_limit, set_query,
    snapshot, unmap, Error, Message, Receive,
};

user::program! {
    description: "Creates a two-page region and passes it in a `call` on capability 0 to the writer (every right), then on capability 1 to the reader (weakened to `read`); maps it writable and checks the writer's pattern; takes snapshot `shared`. Then each right refused when absent, printed as `cap-rights: no RIGHT: ERROR`: send (2), receive (1), grant (3), read (a write-only copy of the region), write (the reader's part), inspect (6), control (7), query (5), limit and create (4). Revokes the region capability (both copies and both mappings go; it prints how many), takes snapshot `revoked`, tells both peers to check, unmaps and exits.",
    caps: {
        0: ep => "to the writer, send+grant",
        1: ep => "to the reader, send+grant only (no receive)",
        2: ep => "to the writer, receive only (no send)",
        3: ep => "to the writer, send only (no grant)",
        4: set => "its own set, query only",
        5: set => "its own set, limit+create (no query)",
        6: dom => "the writer, control only (no inspect)",
        7: dom => "the reader, inspect only (no control)",
    },
    snapshots: {
        "shared" => "all three map the region: the writer, which mapped it first, pays its pages",
        "revoked" => "the writer's and the reader's copies revoked, their mappings gone",
    },
    exit: "0 when every check held",
}

const REGION: usize = 0x6000_0000;
const PAGES: usize = 2;

/// A message carrying one capability word.
fn with_cap(word: usize) -> Message {
    let mut message = Message::default();
    message.caps[0] = word;
    message.cap_count = 1;
    message
}

fn refused(right: &str, got: Result<(), Error>, error: Error) {
    check!(got == Err(error), "no {}: {:?}", right, got);
    if let Err(error) = got {
        println!("cap-rights: no {}: {}", right, error.name());
    }
}

#[no_mangle]
fn main() -> i32 {
    let region = region_create(PAGES);
    check!(region.is_ok(), "region_create: {:?}", region);
    let region = region.unwrap_or(63);
    let mut answer = Receive::default();
    let got = call_endpoint(0, &with_cap(region), &mut answer);
    check!(got.is_ok(), "give the writer the region: {:?}", got);
    let got = call_endpoint(
        1,
        &with_cap(abi::weakened(region, Rights::READ)),
        &mut answer,
    );
    check!(got.is_ok(), "give the reader the region: {:?}", got);
    check!(region_map(region, REGION).is_ok(), "map the region");
    for page in 0..PAGES {
        // SAFETY: the region is mapped writable at REGION, PAGES pages.
        let word = unsafe { ((REGION + page * 4096) as *const u64).read_volatile() };
        check!(
            word == 0x5EED_0000 + page as u64,
            "page {} holds {:#x}",
            page,
            word
        );
    }
    check!(snapshot("shared").is_ok(), "snapshot");

    // Each right, refused when absent.
    refused(
        "send",
        user::send(2, &Message::default()),
        Error::NoSendRight,
    );
    refused("receive", recv(1, &mut answer), Error::NoReceiveRight);
    refused("grant", user::send(3, &with_cap(4)), Error::NoGrantRight);
    let write_only = cap_derive(region, Rights::WRITE);
    check!(write_only.is_ok(), "cap_derive write: {:?}", write_only);
    let write_only = write_only.unwrap_or(63);
    refused(
        "read",
        region_map_flags(write_only, 0x7000_0000, abi::MAP_WRITE),
        Error::NoReadRight,
    );
    check!(cap_delete(write_only).is_ok(), "cap_delete");
    refused("inspect", user::wait(6).map(|_| ()), Error::NoInspectRight);
    refused("control", set_keeper(7, 0), Error::NoControlRight);
    refused("query", set_query(5).map(|_| ()), Error::NoQueryRight);
    refused("limit", set_limit(4, 1 << 20), Error::NoLimitRight);
    refused(
        "create",
        set_create(4, "never", 4096).map(|_| ()),
        Error::NoCreateRight,
    );
    // A right cannot be added back: the query-only set capability derived to query+limit.
    let got = cap_derive(4, Rights::QUERY.union(Rights::LIMIT));
    check!(
        got == Err(Error::NoLimitRight),
        "derive more rights: {:?}",
        got
    );
    let got = cap_inspect(4);
    check!(
        got == Ok((abi::CAP_TYPE_SET, Rights::QUERY)),
        "inspect the query-only set capability: {:?}",
        got
    );

    // Revoke what was given away: two capabilities and two mappings.
    let revoked = cap_revoke(region);
    check!(revoked == Ok(4), "cap_revoke: {:?}", revoked);
    println!("cap-rights: revoked {}", revoked.unwrap_or(0));
    // The owner's own mapping, through the capability revoked, stays.
    // SAFETY: still mapped writable.
    let word = unsafe { (REGION as *const u64).read_volatile() };
    check!(
        word == 0x5EED_0000,
        "after revoke, page 0 holds {:#x}",
        word
    );
    check!(snapshot("revoked").is_ok(), "snapshot");
    for peer in [0, 1] {
        let got = call_endpoint(peer, &Message::default(), &mut answer);
        check!(got.is_ok(), "tell peer {}: {:?}", peer, got);
    }
    check!(unmap(REGION, PAGES).is_ok(), "unmap");
    0
}
