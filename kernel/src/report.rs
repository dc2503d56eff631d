//! Report records on the console (format in docs/internals.md §2): the `run` header, a
//! `snapshot` per request plus `start` and `final`, and the `end` record.

use crate::arch::aarch64::cpu;
use crate::console;
use crate::kernel::Kernel;
use crate::object::domain::{RunState, MAX_DOMAINS};
use accounting::DomainState;
use spin::Mutex;

const SNAPSHOT_BUFFER_BYTES: usize = 256 * 1024;

/// Where a snapshot is formatted before it is printed.
static SNAPSHOT_BUFFER: Mutex<heapless::String<SNAPSHOT_BUFFER_BYTES>> =
    Mutex::new(heapless::String::new());

/// Writes the `run` record: config, policies, IPC mode, kernel version, RAM size.
pub fn run_record(k: &Kernel, mem_bytes: usize) {
    let config = &k.config;
    console::framed("run", |w| {
        write!(
            w,
            "{{\"config\":\"{}\",\"kernel_version\":\"{}\",\"policy\":{{",
            config.config,
            env!("CARGO_PKG_VERSION")
        )?;
        for (i, key) in policies::KEYS.iter().enumerate() {
            let separator = if i == 0 { "" } else { "," };
            write!(w, "{separator}\"{key}\":\"{}\"", config.policy[i])?;
        }
        write!(
            w,
            "}},\"ipc\":{{\"transfer\":\"{}\"}},\"mem_bytes\":{mem_bytes},\"trace\":{},\"accounting\":{}}}",
            config.transfer.name(),
            config.trace,
            cfg!(feature = "accounting")
        )
    });
}

/// Writes a snapshot labelled `label`; returns whether the conservation check held.
pub fn snapshot(k: &Kernel, label: &str) -> bool {
    let conservation = k.books.conservation(&k.frames);
    let instructions = cpu::instructions();
    // Formatted into a buffer first: writing the snapshot may emit a trace record on the
    // console, which must not happen while the snapshot line holds it.
    let mut buffer = SNAPSHOT_BUFFER.lock();
    buffer.clear();
    if k.books
        .write_snapshot(&mut *buffer, label, instructions, &k.frames)
        .is_err()
    {
        log::error!("snapshot '{label}' is larger than {SNAPSHOT_BUFFER_BYTES} bytes; not written");
        return false;
    }
    console::framed("snapshot", |w| w.write_str(&buffer));
    if !conservation.ok {
        log::error!(
            "conservation check failed in snapshot '{label}': {} bytes charged, {} bytes in use",
            conservation.charged_bytes,
            conservation.in_use_bytes
        );
    }
    conservation.ok
}

/// Writes the `end` record.
pub fn end(ok: bool, reason: &str) {
    console::framed("end", |w| {
        write!(
            w,
            "{{\"status\":\"{}\",\"reason\":\"{reason}\"}}",
            if ok { "ok" } else { "error" }
        )
    });
}

impl Kernel {
    /// Takes a report snapshot and checks conservation.
    ///
    /// Running and blocked states change on every IPC, so they reach the ledger (and the trace)
    /// here, just before a snapshot needs them, rather than on every change; exits and stops
    /// are recorded when they happen.
    pub fn snapshot(&mut self, label: &str) {
        for slot in 0..MAX_DOMAINS {
            if self.slots[slot].is_alive() {
                let state = report_state(self.slots[slot].state);
                if self.slots[slot].reported != state {
                    self.slots[slot].reported = state;
                    self.books.domain_state(self.slots[slot].account, state);
                }
            }
        }
        if !snapshot(self, label) {
            self.conservation_failed = true;
        }
    }
}

/// The report's view of a run state.
pub fn report_state(state: RunState) -> DomainState {
    match state {
        RunState::Runnable => DomainState::Running,
        RunState::Blocked(_) => DomainState::Blocked,
        RunState::Exited(_) => DomainState::Exited,
        RunState::Stopped(reason) => DomainState::Stopped(reason),
    }
}
