//! The preemption tick: the EL1 virtual timer (ARM ARM D11.2), every 10 ms of virtual time
//! (10 M instructions under `-icount shift=0`).

use aarch64_cpu::registers::{Readable, Writeable, CNTFRQ_EL0, CNTV_CTL_EL0, CNTV_TVAL_EL0};

/// Ticks per second.
const TICKS_PER_SECOND: u64 = 100;

/// Arms the timer for the first tick.
pub fn start() {
    rearm();
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
}

/// Schedules the next tick (also clears the pending one).
pub fn rearm() {
    CNTV_TVAL_EL0.set(CNTFRQ_EL0.get() / TICKS_PER_SECOND);
}
