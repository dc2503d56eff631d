//! debugger-freeze, the two domains a debugger freezes: with `ping = 1` the pinger, else the
//! ponger. Each makes a region for its message buffers and gives the debugger a read-only
//! capability to it; then the pinger calls the ponger `messages` times with checksummed
//! messages of pseudo-random lengths, and the ponger checks each and answers with its checksum.
#![no_std]
#![no_main]

use user::{
    call_endpoint, check, println, recv, region_create, region_map, reply_recv, send, Error,
    Message, Receive,
};

user::program! {
    description: "One of the pair `debugger` freezes (debugger-freeze). It creates a region (2 pages for the pinger, 1 for the ponger), maps it at 0x5000_0000 and sends the debugger a read-only capability to it on capability 1 (the message's first word: 1 pinger, 2 ponger). The pinger (`ping = 1`) then, for seq = 1..=`messages`, writes a message into its region — seq, a pseudo-random length of 8 to 2040 payload bytes, the payload, a checksum — stores `sent` = seq in the region's header, calls capability 0 with it (the reply, seq and checksum, lands in its region's second page), checks the reply, stores `acked` = seq; then sends an end marker (seq `messages` + 1, no payload) and exits. The ponger receives into its region only (it never writes there itself), checks each message's checksum and answers seq and checksum; the end marker ends it (it exits without answering).",
    caps: {
        0: ep => "the pair's endpoint: send for the pinger, receive for the ponger",
        1: ep => "to the debugger, send+grant",
    },
    args: {
        ping: 0 => "1 for the pinger, 0 for the ponger",
        messages: 100000 => "the pinger's calls",
        seed: 12345 => "the lengths' and payloads' generator seed",
    },
    exit: "0 when every check held",
}

const REGION: usize = 0x5000_0000;
/// Header words of the pinger's region: magic, sent, acked.
const SENT: usize = REGION + 8;
const ACKED: usize = REGION + 16;
/// Where the pinger builds its message; the ponger receives its messages at REGION.
const MESSAGE: usize = REGION + 64;
/// Where the pinger's reply lands (its region's second page).
const REPLY: usize = REGION + 4096;
const MAX_PAYLOAD: usize = 2040;

fn word(address: usize) -> u64 {
    // SAFETY: every address used is inside the mapped region.
    unsafe { (address as *const u64).read_volatile() }
}

fn set_word(address: usize, value: u64) {
    // SAFETY: as above, and the region is mapped writable.
    unsafe { (address as *mut u64).write_volatile(value) }
}

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let ping = args.ping != 0;
    let pages = if ping { 2 } else { 1 };
    let region = region_create(pages);
    check!(region.is_ok(), "region_create: {:?}", region);
    let region = region.unwrap_or(63);
    check!(region_map(region, REGION).is_ok(), "region_map");
    if ping {
        set_word(REGION, 0x5049_4E47);
    }
    // The debugger's read-only capability to the region.
    let tag = [if ping { 1u64 } else { 2 }];
    // SAFETY: plain words as bytes.
    let tag_bytes = unsafe { core::slice::from_raw_parts(tag.as_ptr() as *const u8, 8) };
    let mut hello = user::data_message(tag_bytes);
    hello.caps[0] = abi::weakened(region, abi::Rights::READ);
    hello.cap_count = 1;
    check!(send(1, &hello).is_ok(), "send the region to the debugger");
    if ping {
        pinger(args.messages, args.seed)
    } else {
        ponger()
    }
}

fn pinger(messages: u64, seed: u64) -> i32 {
    let mut state = seed | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for seq in 1..=messages + 1 {
        // The last message is the end marker: no payload (the ponger exits without answering).
        let length = if seq > messages {
            0
        } else {
            8 + (next() as usize % (MAX_PAYLOAD - 8))
        };
        // SAFETY: MESSAGE .. MESSAGE + 16 + MAX_PAYLOAD + 8 is inside the region's first page.
        let payload = unsafe { core::slice::from_raw_parts_mut((MESSAGE + 16) as *mut u8, length) };
        let salt = next();
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte = (salt >> (8 * (i % 8))) as u8 ^ i as u8;
        }
        let sum = user::message_checksum(seq, payload);
        set_word(MESSAGE, seq);
        set_word(MESSAGE + 8, length as u64);
        set_word(MESSAGE + 16 + length, sum);
        set_word(SENT, seq);
        let message = Message {
            data_address: MESSAGE,
            data_length: 24 + length,
            ..Message::default()
        };
        // SAFETY: the region's second page, mapped writable.
        let reply = unsafe { core::slice::from_raw_parts_mut(REPLY as *mut u8, 16) };
        let mut receive = user::receive_into(reply);
        let got = call_endpoint(0, &message, &mut receive);
        if length == 0 {
            check!(got == Err(Error::PeerGone), "the end marker: {:?}", got);
            break;
        }
        check!(got.is_ok(), "call {}: {:?}", seq, got);
        check!(
            word(REPLY) == seq && word(REPLY + 8) == sum,
            "reply to {} is {} / {:#x}",
            seq,
            word(REPLY),
            word(REPLY + 8)
        );
        set_word(ACKED, seq);
    }
    println!("frozen_pair: pinger made {} calls", messages);
    0
}

fn ponger() -> i32 {
    let mut receive = Receive {
        buffer_address: REGION,
        buffer_capacity: 4096,
        ..Receive::default()
    };
    check!(recv(0, &mut receive).is_ok(), "recv");
    let mut count = 0u64;
    loop {
        let seq = word(REGION);
        let length = word(REGION + 8) as usize;
        check!(length <= MAX_PAYLOAD, "length {}", length);
        check!(
            receive.data_length == 24 + length,
            "received {} bytes for a {}-byte payload",
            receive.data_length,
            length
        );
        // SAFETY: inside the region's page (length checked).
        let payload = unsafe { core::slice::from_raw_parts((REGION + 16) as *const u8, length) };
        let sum = user::message_checksum(seq, payload);
        check!(word(REGION + 16 + length) == sum, "message {} corrupt", seq);
        if length == 0 {
            println!("frozen_pair: ponger checked {} messages", count);
            return 0;
        }
        count += 1;
        let answer = [seq, sum];
        // SAFETY: plain words as bytes.
        let bytes = unsafe { core::slice::from_raw_parts(answer.as_ptr() as *const u8, 16) };
        let reply = user::data_message(bytes);
        receive = Receive {
            buffer_address: REGION,
            buffer_capacity: 4096,
            ..Receive::default()
        };
        let got = reply_recv(0, &reply, &mut receive);
        check!(got.is_ok(), "reply_recv: {:?}", got);
    }
}
