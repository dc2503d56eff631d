//! The preemption tick: the EL1 virtual timer (ARM ARM D11.2), by default every 10 ms of
//! virtual time (10 M instructions under `-icount shift=0`); the boot config's `tick=HZ`
//! sets the rate.

use aarch64_cpu::registers::{Readable, Writeable, CNTFRQ_EL0, CNTV_CTL_EL0, CNTV_TVAL_EL0};
use core::sync::atomic::{AtomicU64, Ordering};

/// Ticks per second.
static TICKS_PER_SECOND: AtomicU64 = AtomicU64::new(100);

/// Arms the timer for the first tick, `hz` ticks a second (the boot config checked the range).
pub fn start(hz: u32) {
    TICKS_PER_SECOND.store(u64::from(hz.max(1)), Ordering::Relaxed);
    rearm();
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
}

/// Schedules the next tick (also clears the pending one).
pub fn rearm() {
    let interval = CNTFRQ_EL0.get() / TICKS_PER_SECOND.load(Ordering::Relaxed);
    CNTV_TVAL_EL0.set(interval.max(1));
}
