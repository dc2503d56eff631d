//! Scheduling: the run queue, switching to the next runnable domain (address space, registers,
//! FP access), blocking and waking, the lazy FP/SIMD switch, stopping deadlocked domains, and
//! the end of the run when none is left.
//!
//! Invariants: `current` is the slot whose registers the next return to EL0 restores; every
//! slot in `run_queue` was alive and `Runnable` when queued (a switch skips any that no longer
//! is).

use crate::arch::aarch64::exception::{self, TrapFrame};
use crate::arch::aarch64::{cpu, mmu};
use crate::kernel::{asid, Kernel};
use crate::object::domain::{Block, RunState, MAX_DOMAINS};
use crate::report;
use accounting::StopReason;
use core::fmt::Write as _;

impl Kernel {
    /// Makes a blocked domain runnable with `result` in x0.
    pub fn wake(&mut self, slot: usize, result: u64) {
        if let Some(dcb) = self.slots[slot].dcb_mut() {
            dcb.frame.set_result(result);
            self.slots[slot].state = RunState::Runnable;
            let _ = self.run_queue.push_back(slot as u8);
        }
    }

    /// Makes a blocked domain runnable with its registers as they are: a domain its keeper
    /// answered retries the faulting instruction.
    pub fn resume(&mut self, slot: usize) {
        if self.slots[slot].is_alive() {
            self.slots[slot].state = RunState::Runnable;
            let _ = self.run_queue.push_back(slot as u8);
        }
    }

    /// A timer tick: wakes the sleepers whose tick has come.
    pub fn wake_sleepers(&mut self) {
        for slot in 0..MAX_DOMAINS {
            let due = self.slots[slot].state == RunState::Blocked(Block::Sleep)
                && self.slots[slot]
                    .dcb()
                    .is_some_and(|dcb| dcb.wake_at <= self.ticks);
            if due {
                self.wake(slot, 0);
            }
        }
    }

    /// Blocks the current domain.
    pub fn block_current(&mut self, reason: Block) {
        if let Some(slot) = self.current {
            self.slots[slot].state = RunState::Blocked(reason);
        }
    }

    /// Leaves the current domain (its registers are already in its control block; it goes
    /// to the back of the run queue if it can still run) and enters the next runnable one.
    /// When no domain can run: blocked domains are deadlocked and stopped; when none is left,
    /// the run ends.
    pub fn switch(&mut self) {
        if let Some(current) = self.current.take() {
            if self.slots[current].dcb().is_some()
                && matches!(self.slots[current].state, RunState::Runnable)
            {
                let _ = self.run_queue.push_back(current as u8);
            }
        }
        loop {
            while let Some(next) = self.run_queue.pop_front() {
                let next = next as usize;
                // A suspended domain leaves the queue; `domain_resume` puts it back.
                if self.slots[next].dcb().is_none()
                    || !matches!(self.slots[next].state, RunState::Runnable)
                    || self.slots[next].suspended
                {
                    continue;
                }
                self.enter(next);
                return;
            }
            self.stop_deadlocked();
        }
    }

    /// Makes `next` (alive) the current domain: its address space, its saved registers as
    /// the ones the next return to EL0 restores, and EL0's FP access as its FP state needs.
    pub fn enter(&mut self, next: usize) {
        let Some(dcb) = self.slots[next].dcb_mut() else {
            return;
        };
        let (root, frame) = (dcb.tables.root().address(), &raw mut dcb.frame);
        self.enter_prepared(next, root, frame);
    }

    /// [`enter`](Self::enter) with `next`'s root table and register frame already read from
    /// its control block.
    #[inline(always)]
    pub fn enter_prepared(&mut self, next: usize, root: usize, frame: *mut TrapFrame) {
        mmu::switch_user_space(root, asid(next));
        // SAFETY: the frame is in `next`'s control block, which stays allocated until its
        // teardown; a teardown of the current domain is always followed by a switch to
        // another before the kernel returns to EL0, and no reference to the frame is held
        // across a return to EL0 (the kernel lock is released first).
        unsafe { exception::set_current_frame(frame) };
        if usize::from(self.fp_owner) == next {
            cpu::fp_enable_for_user();
        } else {
            cpu::fp_trap_for_user();
        }
        self.current = Some(next);
    }

    /// No domain can run: every live one is blocked, so they are deadlocked and stopped; when
    /// none is left, the run ends.
    #[cold]
    #[inline(never)]
    fn stop_deadlocked(&mut self) {
        // Domains waiting for a keeper to choose who pays are not deadlocked: no keeper can
        // answer now, so they take the fallback and run again.
        if self.expire_charge_queries(true) > 0 {
            return;
        }
        // Sleepers are not deadlocked: no one can run until the first wakes, so it wakes now.
        if let Some(first) = (0..MAX_DOMAINS)
            .filter(|&s| self.slots[s].state == RunState::Blocked(Block::Sleep))
            .min_by_key(|&s| self.slots[s].dcb().map_or(0, |d| d.wake_at))
        {
            self.wake(first, 0);
            return;
        }
        let blocked: heapless::Vec<usize, MAX_DOMAINS> = (0..MAX_DOMAINS)
            .filter(|&s| self.slots[s].is_alive())
            .collect();
        if blocked.is_empty() {
            self.finish_run();
        }
        for slot in blocked {
            log::warn!(
                "domain '{}' stopped: deadlock (every live domain is blocked; this one in {:?})",
                self.slots[slot].name,
                self.slots[slot].state
            );
            self.teardown(slot, RunState::Stopped(StopReason::Killed));
        }
    }

    /// Whether no domain waits in the run queue: then the scheduler would pick whichever
    /// domain a switch makes runnable next (the fast path's condition for switching to it
    /// directly).
    #[inline]
    pub fn run_queue_empty(&self) -> bool {
        self.run_queue.is_empty()
    }

    /// The last domain has ended: final snapshot, the teardown check (every frame back, every
    /// set at zero), end record, exit.
    pub fn finish_run(&mut self) -> ! {
        self.destroy_endpoints();
        self.snapshot("final");
        let mut reason = heapless::String::<160>::new();
        let free = self.frames.free_frames();
        if self.conservation_failed {
            let _ = reason.push_str("conservation check failed");
        } else if free != self.start_free_frames {
            let _ = write!(
                reason,
                "teardown did not return every frame: {} free in `start`, {free} in `final`",
                self.start_free_frames
            );
        } else if let Some((set, bytes)) = self.books.first_charged_set() {
            let _ = write!(
                reason,
                "teardown did not return every charge: set '{set}' still pays {bytes} bytes"
            );
        }
        let ok = reason.is_empty();
        if !ok {
            log::error!("{reason}");
        }
        report::end(ok, if ok { "ok" } else { &reason });
        cpu::exit_qemu(if ok { 0 } else { 1 })
    }

    /// Lazy FP/SIMD switch: the current domain used FP registers another domain holds.
    pub fn switch_fp(&mut self) {
        let Some(current) = self.current else { return };
        // NO_FP_OWNER is past the table: no slot, nothing to save.
        if let Some(dcb) = self
            .slots
            .get_mut(usize::from(self.fp_owner))
            .and_then(|owner| owner.dcb_mut())
        {
            cpu::save_fp(&mut dcb.fp);
        }
        if let Some(dcb) = self.slots[current].dcb() {
            cpu::restore_fp(&dcb.fp);
        }
        self.fp_owner = current as u8;
        cpu::fp_enable_for_user();
    }
}
