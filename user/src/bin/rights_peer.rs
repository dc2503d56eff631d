//! cap-rights, writer or reader: receives a region capability, checks its rights, maps it
//! (the writer writable, writing a pattern; the reader read-only, refused writable, checking
//! the pattern), answers; after the owner revokes it, checks the capability and the mapping
//! are gone.
#![no_std]
#![no_main]

use abi::Rights;
use user::{
    cap_inspect, check, frame_info, println, recv, region_map, region_map_flags, reply, Error,
    Message, Receive,
};

user::program! {
    description: "Receives a region capability on capability 0 and answers the call: with `writer = 1` it expects read+write, maps the region writable at 0x6000_0000 and writes word 0x5EED0000+page at the start of each page; else it expects `read` only, is refused a writable map (`cap-rights: no write: no-write-right`), maps it read-only and checks the words, and is refused passing it on with `write` added. The next message comes after the owner revoked the region: the capability must be gone (bad-capability) and the address in no region (bad-address).",
    caps: { 0: ep => "from the owner, receive" },
    args: {
        writer: 0 => "1 for the writer, 0 for the reader",
        pages: 2 => "the region's pages",
    },
    exit: "0 when every check held",
}

const REGION: usize = 0x6000_0000;

#[no_mangle]
fn main() -> i32 {
    let given = Args::get();
    let writer = given.writer != 0;
    let pages = given.pages as usize;
    let mut receive = Receive::default();
    check!(recv(0, &mut receive).is_ok(), "receive the region");
    check!(
        receive.cap_count == 1,
        "{} capabilities arrived",
        receive.cap_count
    );
    let cap = receive.caps[0];
    let expected = if writer { Rights::REGION } else { Rights::READ };
    let got = cap_inspect(cap);
    check!(
        got == Ok((abi::CAP_TYPE_REGION, expected)),
        "inspect: {:?}",
        got
    );
    if writer {
        check!(region_map(cap, REGION).is_ok(), "map writable");
        for page in 0..pages {
            // SAFETY: mapped writable at REGION, `pages` pages.
            unsafe {
                ((REGION + page * 4096) as *mut u64).write_volatile(0x5EED_0000 + page as u64)
            };
        }
    } else {
        let got = region_map(cap, REGION);
        check!(got == Err(Error::NoWriteRight), "map writable: {:?}", got);
        println!("cap-rights: no write: {}", Error::NoWriteRight.name());
        check!(region_map_flags(cap, REGION, 0).is_ok(), "map read-only");
        for page in 0..pages {
            // SAFETY: mapped read-only at REGION, `pages` pages.
            let word = unsafe { ((REGION + page * 4096) as *const u64).read_volatile() };
            check!(
                word == 0x5EED_0000 + page as u64,
                "page {} holds {:#x}",
                page,
                word
            );
        }
        // Passing it on with `write` added is refused (the reply carries nothing).
        let mut more = Message::default();
        more.caps[0] = abi::weakened(cap, Rights::REGION);
        more.cap_count = 1;
        let got = reply(&more);
        check!(
            got == Err(Error::NoWriteRight),
            "pass on with write: {:?}",
            got
        );
    }
    check!(reply(&Message::default()).is_ok(), "answer");
    // After the revocation.
    check!(recv(0, &mut receive).is_ok(), "receive the owner's word");
    let got = cap_inspect(cap);
    check!(
        got == Err(Error::BadCapability),
        "the revoked capability: {:?}",
        got
    );
    let got = frame_info(abi::SELF, REGION).map(|_| ());
    check!(
        got == Err(Error::BadAddress),
        "the unmapped region: {:?}",
        got
    );
    println!(
        "cap-rights: {} lost the region",
        if writer { "writer" } else { "reader" }
    );
    check!(reply(&Message::default()).is_ok(), "answer");
    0
}
