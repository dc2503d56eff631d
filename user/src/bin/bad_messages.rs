//! Malformed messages: bad capability indices, lengths past the bounds, buffers in unmapped or
//! kernel memory, regions the sender does not own. Each send must fail with its own error and
//! change nothing; a last, valid message tells the sink (capability 0's receiver) to stop.
#![no_std]
#![no_main]

use user::{check, data_message, is_refusal, println, send, syscall, Error, Message};
use user::{SharedRegion, Syscall};

user::program! {
    description: "Sends malformed messages on capability 0 — descriptors in kernel, unmapped or misaligned memory; forged and wrong-type endpoint capabilities; lengths and counts past the bounds; data in kernel or unmapped memory or wrapping around; a forged capability inside the message; capabilities weakened wrongly (a bad mask, rights of another type, a right not held); a message with a capability through a copy without `grant`, one through a copy without `send`; regions it does not own, empty or read-only; data and a descriptor in a keeper-managed region whose pages no keeper supplied (`paged-out`) — each of which must fail with its own error and deliver nothing; then one valid 64-byte message (every byte 1), which ends `sink`.",
    caps: {
        0: ep => "the endpoint to the sink",
        1: set => "any charge set: used as a capability of the wrong type",
    },
    exit: "0; 1 when the valid message was refused (a limit, a full queue; the console says which)",
}

const KERNEL_ADDRESS: usize = 0xFFFF_FF80_4008_0000;
const UNMAPPED: usize = 0x7700_0000;

fn expect(what: &str, message: &Message, error: Error) {
    let result = send(0, message);
    check!(
        result == Err(error),
        "{}: expected {}, got {:?}",
        what,
        error.name(),
        result
    );
}

#[no_mangle]
fn main() -> i32 {
    let data = [1u8; 64];
    let good = data_message(&data);

    // The message descriptor itself in bad places.
    for (what, address) in [
        ("descriptor in kernel memory", KERNEL_ADDRESS),
        ("unmapped descriptor", UNMAPPED),
        ("misaligned descriptor", 0x40_0003),
    ] {
        let raw = syscall(Syscall::Send, [0, address, 0, 0, 0, 0]);
        let result = Error::decode_return(raw);
        check!(
            matches!(result, Err(Error::BadAddress) | Err(Error::BadArgument)),
            "{}: got {:?}",
            what,
            result
        );
    }
    // Forged and wrong-type endpoint capabilities.
    let raw = syscall(
        Syscall::Send,
        [63, &good as *const Message as usize, 0, 0, 0, 0],
    );
    check!(
        Error::decode_return(raw) == Err(Error::BadCapability),
        "forged endpoint capability"
    );
    let raw = syscall(
        Syscall::Send,
        [usize::MAX, &good as *const Message as usize, 0, 0, 0, 0],
    );
    check!(
        Error::decode_return(raw) == Err(Error::BadCapability),
        "huge endpoint capability index"
    );
    let raw = syscall(
        Syscall::Send,
        [1, &good as *const Message as usize, 0, 0, 0, 0],
    );
    check!(
        Error::decode_return(raw) == Err(Error::WrongCapabilityType),
        "a set capability is not an endpoint"
    );

    // Bounds.
    expect(
        "data past the bound",
        &Message {
            data_length: 16385,
            ..good
        },
        Error::MessageTooLarge,
    );
    expect(
        "huge data length",
        &Message {
            data_length: usize::MAX,
            ..good
        },
        Error::MessageTooLarge,
    );
    expect(
        "too many capabilities",
        &Message {
            cap_count: 5,
            ..good
        },
        Error::MessageTooLarge,
    );
    expect(
        "too many regions",
        &Message {
            region_count: 5,
            ..good
        },
        Error::MessageTooLarge,
    );
    // Data in bad places.
    expect(
        "data in kernel memory",
        &Message {
            data_address: KERNEL_ADDRESS,
            ..good
        },
        Error::BadAddress,
    );
    expect(
        "unmapped data",
        &Message {
            data_address: UNMAPPED,
            ..good
        },
        Error::BadAddress,
    );
    expect(
        "data wrapping around",
        &Message {
            data_address: usize::MAX - 8,
            ..good
        },
        Error::BadAddress,
    );
    // Capabilities it does not have.
    let mut forged = good;
    forged.caps[0] = 40;
    forged.cap_count = 1;
    expect(
        "forged capability in the message",
        &forged,
        Error::BadCapability,
    );
    // Capability words that weaken: a mask outside the rights, rights a set cannot hold, a
    // right the capability lacks (a query-only copy asked to pass `limit` on).
    forged.caps[0] = abi::WEAKEN | 1 << 50 | 1;
    expect("weakened word with a bad mask", &forged, Error::BadArgument);
    forged.caps[0] = abi::weakened(1, abi::Rights::SEND);
    expect(
        "a set capability weakened to send",
        &forged,
        Error::BadArgument,
    );
    let query_only = user::cap_derive(1, abi::Rights::QUERY);
    check!(query_only.is_ok(), "cap_derive: {:?}", query_only);
    let query_only = query_only.unwrap_or(63);
    forged.caps[0] = abi::weakened(query_only, abi::Rights::LIMIT);
    expect(
        "a capability passed on with a right it lacks",
        &forged,
        Error::NoLimitRight,
    );
    check!(user::cap_delete(query_only).is_ok(), "cap_delete");
    // Through endpoint copies lacking a right: grant (a capability in the message), send.
    let send_only = user::cap_derive(0, abi::Rights::SEND);
    check!(send_only.is_ok(), "cap_derive: {:?}", send_only);
    let send_only = send_only.unwrap_or(63);
    forged.caps[0] = 1;
    let got = send(send_only, &forged);
    check!(got == Err(Error::NoGrantRight), "no grant: {:?}", got);
    let receive_only = user::cap_derive(0, abi::Rights::RECEIVE.union(abi::Rights::GRANT));
    check!(receive_only.is_ok(), "cap_derive: {:?}", receive_only);
    let receive_only = receive_only.unwrap_or(63);
    let got = send(receive_only, &good);
    check!(got == Err(Error::NoSendRight), "no send: {:?}", got);
    for copy in [send_only, receive_only] {
        check!(user::cap_delete(copy).is_ok(), "cap_delete");
    }
    // Regions it does not own.
    let mut region = good;
    region.regions[0] = SharedRegion {
        address: UNMAPPED,
        pages: 4,
    };
    region.region_count = 1;
    expect("region it does not own", &region, Error::BadAddress);
    region.regions[0] = SharedRegion {
        address: KERNEL_ADDRESS,
        pages: 1,
    };
    expect("region in kernel memory", &region, Error::BadAddress);
    region.regions[0] = SharedRegion {
        address: 0x40_0000,
        pages: 0,
    };
    expect("empty region", &region, Error::MessageTooLarge);
    region.regions[0] = SharedRegion {
        address: 0x40_0000,
        pages: 1,
    };
    expect(
        "read-only program text as a region",
        &region,
        Error::BadAddress,
    );

    // Pages of a keeper-managed region, never supplied, and this domain has no keeper: data
    // there, a descriptor there — each paged-out, nothing sent.
    const KEPT: usize = 0x7800_0000;
    check!(
        user::map(KEPT, 2, user::MAP_WRITE | abi::MAP_KEEPER).is_ok(),
        "map a keeper-managed region"
    );
    let kept_data = Message {
        data_address: KEPT,
        data_length: 64,
        ..Message::default()
    };
    expect(
        "data in a page its keeper never supplied",
        &kept_data,
        Error::PagedOut,
    );
    let raw = syscall(Syscall::Send, [0, KEPT + 4096, 0, 0, 0, 0]);
    check!(
        Error::decode_return(raw) == Err(Error::PagedOut),
        "a descriptor in a page its keeper never supplied: {:?}",
        Error::decode_return(raw)
    );
    check!(user::unmap(KEPT, 2).is_ok(), "unmap");

    if let Err(error) = send(0, &good) {
        check!(is_refusal(error), "the valid message: {}", error.name());
        println!(
            "bad_messages: the valid message was refused: {}",
            error.name()
        );
        return 1;
    }
    println!("bad_messages: every malformed message was refused");
    0
}
