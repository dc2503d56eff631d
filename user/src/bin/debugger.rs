//! debugger-freeze, the debugger: receives read-only capabilities to the regions of the two
//! domains it watches, maps them, then at every timer tick that gives it the processor
//! suspends both, reads both states, registers and buffers, checks that each state is one of
//! the process model's and that every message is whole or absent, and resumes them.
#![no_std]
#![no_main]

use abi::DomainStatus;
use user::{
    check, domain_resume, domain_status, domain_suspend, println, recv, region_map_flags, sleep,
};

user::program! {
    description: "Receives, on capability 0, read-only capabilities to the regions of the pinger and the ponger (`frozen_pair`) and maps them read-only. Then, until the pinger has exited, at every timer tick (it sleeps one tick between points) it suspends both domains (capabilities 1 and 2), reads their status — the state, which must be one of the process model's (runnable, blocked sending, receiving, waiting for a reply; or ended), the registers, which for a blocked domain are those of the system call it is blocked in — and both buffers, checks that the ponger's receive buffer holds a whole message with a valid checksum (or none yet), and that the pinger's `sent`/`acked` counters agree with the states (blocked for a reply: its message is in the ponger's buffer, whole; blocked sending: not there at all), and resumes both. Prints the number of points and how often each pair of states was seen; exits 0 when every check held over at least `points` points.",
    caps: {
        0: ep => "where the pair sends its region capabilities, receive",
        1: dom => "the pinger (inspect+control)",
        2: dom => "the ponger (inspect+control)",
    },
    args: {
        points: 10000 => "the fewest points that count as a pass",
    },
    exit: "0 when every check held at at least `points` points; 1 when fewer were taken",
}

const PINGER: usize = 0x6000_0000;
const PONGER: usize = 0x6100_0000;
const MAX_PAYLOAD: u64 = 2040;

fn word(address: usize) -> u64 {
    // SAFETY: every address used is inside a region mapped read-only here.
    unsafe { (address as *const u64).read_volatile() }
}

/// The message in the ponger's buffer: `Some(seq)` when whole (0: none yet), `None` when not.
fn received() -> Option<u64> {
    let (seq, length) = (word(PONGER), word(PONGER + 8));
    if seq == 0 && length == 0 && word(PONGER + 16) == 0 {
        return Some(0);
    }
    if length > MAX_PAYLOAD {
        return None;
    }
    // SAFETY: inside the ponger's page, mapped read-only.
    let payload =
        unsafe { core::slice::from_raw_parts((PONGER + 16) as *const u8, length as usize) };
    (word(PONGER + 16 + length as usize) == user::message_checksum(seq, payload)).then_some(seq)
}

/// The system call a blocked domain's registers say it is in.
fn blocked_in(status: &DomainStatus) -> u64 {
    status.x[8]
}

/// One of the model's states; a live one suspended (an ended one has nothing to suspend).
fn model_state(status: &DomainStatus) -> bool {
    match status.state {
        abi::STATUS_EXITED | abi::STATUS_STOPPED => true,
        state => state <= abi::STATUS_WAIT && status.suspended == 1,
    }
}

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    for _ in 0..2 {
        let mut tag = [0u8; 8];
        let mut receive = user::receive_into(&mut tag);
        check!(recv(0, &mut receive).is_ok(), "recv a region");
        check!(receive.cap_count == 1, "no region capability");
        let at = if u64::from_le_bytes(tag) == 1 {
            PINGER
        } else {
            PONGER
        };
        let mapped = region_map_flags(receive.caps[0], at, 0);
        check!(mapped.is_ok(), "map a region read-only: {:?}", mapped);
        check!(
            region_map_flags(receive.caps[0], at + 0x10_0000, abi::MAP_WRITE)
                == Err(user::Error::NoWriteRight),
            "a read-only capability mapped writable"
        );
    }
    // seen[pinger state][ponger state]
    let mut seen = [[0u64; 7]; 7];
    let mut points = 0u64;
    // Where the ticks found the runnable one of the pair: distinct instruction addresses.
    let mut pcs = [0u64; 64];
    let mut last = 0u64;
    loop {
        // A domain that has ended cannot be suspended (bad-argument): the ponger ends first.
        let suspended = domain_suspend(1);
        check!(
            matches!(suspended, Ok(()) | Err(user::Error::BadArgument)),
            "suspend the pinger: {:?}",
            suspended
        );
        let suspended = domain_suspend(2);
        check!(
            matches!(suspended, Ok(()) | Err(user::Error::BadArgument)),
            "suspend the ponger: {:?}",
            suspended
        );
        let ping = domain_status(1);
        let pong = domain_status(2);
        check!(ping.is_ok() && pong.is_ok(), "domain_status");
        let (ping, pong) = (ping.unwrap_or_default(), pong.unwrap_or_default());
        let ended = ping.state == abi::STATUS_EXITED;
        if ended {
            break;
        }
        check!(
            model_state(&ping) && model_state(&pong),
            "a state not in the model"
        );
        seen[ping.state as usize][pong.state as usize] += 1;
        for status in [&ping, &pong] {
            if status.state == abi::STATUS_RUNNABLE {
                let bucket = (status.pc as usize >> 2) % (64 * 64);
                pcs[bucket / 64] |= 1 << (bucket % 64);
            }
        }
        points += 1;
        // Blocked domains are blocked in a system call: their registers say which.
        match ping.state {
            abi::STATUS_SEND | abi::STATUS_REPLY => check!(
                blocked_in(&ping) == abi::Syscall::Call as u64,
                "the pinger blocked in system call {}",
                blocked_in(&ping)
            ),
            abi::STATUS_RUNNABLE => {}
            other => check!(false, "the pinger in state {}", other),
        }
        match pong.state {
            abi::STATUS_RECV => check!(
                matches!(blocked_in(&pong), 12 | 15),
                "the ponger blocked in system call {}",
                blocked_in(&pong)
            ),
            abi::STATUS_RUNNABLE | abi::STATUS_EXITED => {}
            other => check!(false, "the ponger in state {}", other),
        }
        // Every message is whole or absent, and where the states say it is.
        let got = received();
        check!(got.is_some(), "the ponger's buffer holds a partial message");
        let got = got.unwrap_or(0);
        let (sent, acked) = (word(PINGER + 8), word(PINGER + 16));
        check!(
            got == acked || got == acked + 1,
            "buffer {} with acked {}",
            got,
            acked
        );
        check!(got >= last, "the buffer went back from {} to {}", last, got);
        last = got;
        match ping.state {
            abi::STATUS_REPLY => check!(
                got == sent,
                "waiting for the reply to {} but {} delivered",
                sent,
                got
            ),
            abi::STATUS_SEND => check!(
                got + 1 == sent,
                "waiting to send {} but {} delivered",
                sent,
                got
            ),
            _ => {}
        }
        let _ = domain_resume(1);
        if pong.state != abi::STATUS_EXITED {
            check!(domain_resume(2).is_ok(), "resume the ponger");
        }
        // The next look at the next timer tick, wherever it finds the pair.
        check!(sleep(1).is_ok(), "sleep");
    }
    let _ = domain_resume(1);
    let _ = domain_resume(2);
    const NAMES: [&str; 7] = [
        "runnable", "send", "recv", "reply", "wait", "exited", "stopped",
    ];
    println!(
        "debugger: {} points, every state one of the model's, every message whole or absent",
        points
    );
    let distinct: u32 = pcs.iter().map(|word| word.count_ones()).sum();
    println!(
        "debugger: the ticks found the runnable one at {} distinct instructions",
        distinct
    );
    for (a, row) in seen.iter().enumerate() {
        for (b, count) in row.iter().enumerate() {
            if *count > 0 {
                println!(
                    "debugger: pinger {} / ponger {}: {}",
                    NAMES[a], NAMES[b], count
                );
            }
        }
    }
    if points < args.points {
        println!("debugger: fewer than {} points", args.points);
        return 1;
    }
    println!("debugger: at least {} points", args.points);
    0
}
