//! A keeper that chooses who pays (`cow = keeper`, `msgbuf = keeper`): receives charge queries
//! on endpoint capability 0 and answers each as its `plan` says — pay from a set it holds, a
//! wrong answer, or silence past the kernel's deadline — then exits after `queries` of them.
#![no_std]
#![no_main]

use user::{check, data_message, println, receive_into, recv, reply, Error};

user::program! {
    description: "Answers the charge queries (abi::FAULT_CHARGE_QUERY) that arrive on capability 0 — the keeper of a holder asked who pays for a copy-on-write copy, or of a sender asked who pays for a message buffer — as `plan` says, one decimal digit per query from the lowest: 1 pays from the set behind capability 1 (`KEEPER_PAY`, 1), 2 pays from the set behind capability 2, 3 answers wrongly (names capability 0, an endpoint), 4 stays silent (spins `spin` instructions, past the kernel's deadline of abi::KEEPER_ANSWER_TICKS ticks, then answers and is refused: no-caller); a 0 digit or none pays from capability 1. Prints `chooser: query N (kind K, B bytes): ANSWER` for each. Exits after `queries` queries.",
    caps: {
        0: ep => "the keeper endpoint (the holder's or the sender's `keeper`)",
        1: set => "a set it names as payer (needs the create right)",
        2: set (optional) => "a second set it names (digit 2)",
    },
    args: {
        plan: 0 => "one digit per query, lowest first: 1 pay from cap 1, 2 from cap 2, 3 wrong, 4 silent",
        queries: 1 => "queries to answer before it exits",
        spin: 40000000 => "instructions a silent answer spins before it replies (the deadline is 2 timer ticks, 20 ms of guest time)",
    },
    exit: "0 when every check held",
}

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let mut plan = args.plan;
    for query in 0..args.queries {
        let mut words = [0u64; 8];
        // SAFETY: the buffer is these eight words, plain data any bytes may fill.
        let bytes = unsafe {
            core::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, abi::Fault::BYTES)
        };
        let mut receive = receive_into(bytes);
        check!(recv(0, &mut receive).is_ok(), "recv");
        let fault = abi::Fault::from_words(&words);
        check!(
            fault.kind == abi::FAULT_CHARGE_QUERY,
            "not a charge query: kind {}",
            fault.kind
        );
        // The querying domain, to inspect only.
        let got = user::cap_inspect(receive.caps[0]);
        check!(
            got == Ok((abi::CAP_TYPE_DOMAIN, abi::Rights::INSPECT)),
            "the query's capability: {:?}",
            got
        );
        let digit = plan % 10;
        plan /= 10;
        let (answer, what) = match digit {
            2 => ([abi::KEEPER_PAY, 2], "pay from capability 2"),
            3 => ([abi::KEEPER_PAY, 0], "wrong (an endpoint)"),
            4 => ([abi::KEEPER_PAY, 1], "silent"),
            _ => ([abi::KEEPER_PAY, 1], "pay from capability 1"),
        };
        println!(
            "chooser: query {} (kind {}, {} bytes): {}",
            query, fault.charge_kind, fault.charge_bytes, what
        );
        if digit == 4 {
            let start = user::instructions();
            while user::instructions() - start < args.spin {
                core::hint::spin_loop();
            }
        }
        // SAFETY: plain words as bytes.
        let answer_bytes = unsafe { core::slice::from_raw_parts(answer.as_ptr() as *const u8, 16) };
        let got = reply(&data_message(answer_bytes));
        if digit == 4 {
            check!(got == Err(Error::NoCaller), "a late answer: {:?}", got);
            println!("chooser: the late answer was refused: no-caller");
        } else {
            check!(got.is_ok(), "reply: {:?}", got);
        }
    }
    0
}
