//! The books with accounting compiled out: no charge sets, no policies, no limits — only the
//! number of domains mapping each frame, which copy-on-write and freeing need. Reports from
//! this build carry no charge sets, and their conservation check fails whenever a frame is in
//! use (nothing is charged), so they are for instruction-count comparisons only.

use super::{index, ChargeError, OpenError, Step};
use crate::memory::frames::{Frame, FrameAllocator};
use accounting::{BatchNeed, Conservation, DomainId, DomainState, FrameEntry, SetId};
use core::fmt;
use kcore::bootcfg::{BootConfig, Name};

/// A batch (see [`Step`]): nothing to keep.
pub struct Batch;

/// Mapping counts per frame.
pub struct Books {
    mappers: &'static mut [u16],
    sets: u16,
    domains: u16,
}

impl Books {
    /// Books over no frames yet.
    pub const EMPTY: Books = Books::empty();

    const fn empty() -> Books {
        Books {
            mappers: &mut [],
            sets: 1,
            domains: 0,
        }
    }

    /// Uses the frame-table memory as one 16-bit mapping count per frame.
    pub fn open(
        &mut self,
        frame_table: &'static mut [FrameEntry],
        _config: &BootConfig,
        _boot_frames: u32,
    ) -> Result<(), OpenError> {
        let frames = frame_table.len();
        let pointer = frame_table.as_mut_ptr() as *mut u16;
        // SAFETY: the frame table is zeroed memory of 8 bytes per frame owned by the books for
        // the whole run; 2 bytes per frame fit inside it and u16 needs less alignment.
        self.mappers = unsafe { core::slice::from_raw_parts_mut(pointer, frames) };
        Ok(())
    }

    /// Hands out set ids so capabilities still work.
    pub fn create_set(
        &mut self,
        _name: &str,
        _parent: Option<SetId>,
        _limit_bytes: Option<u64>,
        _kind_limits: &[(Name, u64)],
    ) -> Result<SetId, accounting::Error> {
        self.sets += 1;
        Ok(SetId(self.sets - 1))
    }

    /// Nothing is counted.
    pub fn note_keeper_fault(&mut self, _domain: DomainId, _restart: bool) {}

    /// No books, no bounds.
    pub fn set_high(&mut self, _set: SetId, _high: Option<u64>) -> Result<(), accounting::Error> {
        Ok(())
    }

    /// No books, no bounds.
    #[inline(always)]
    pub fn any_high(&self) -> bool {
        false
    }

    /// No books, no bounds, no keeper asked.
    #[inline(always)]
    pub fn usual_faults(&self) -> bool {
        true
    }

    /// No books, no bounds.
    pub fn over_high(&self, _domain: DomainId) -> Option<(SetId, u64, u64)> {
        None
    }

    /// Nothing is counted.
    pub fn note_paging(&mut self, _domain: DomainId, _event: accounting::PagingEvent) {}

    /// No books: always 0 (the recount needs the ledger; without it there is none).
    pub fn revision(&self) -> u64 {
        0
    }

    /// No policy asks a keeper: nothing is charged.
    #[inline]
    pub fn keeper_decides_cow(&self) -> bool {
        false
    }

    /// No policy asks a keeper: nothing is charged.
    #[inline]
    pub fn keeper_decides_msgbuf(&self) -> bool {
        false
    }

    /// No choices are kept (never called: no policy asks a keeper).
    pub fn set_keeper_choice(
        &mut self,
        _domain: DomainId,
        _kind: accounting::Kind,
        _choice: accounting::KeeperChoice,
    ) {
    }

    /// No choices are kept.
    pub fn clear_keeper_choice(&mut self, _domain: DomainId) {}

    /// No choices are kept.
    pub fn keeper_choice(
        &self,
        _domain: DomainId,
    ) -> Option<(accounting::Kind, accounting::KeeperChoice)> {
        None
    }

    /// No payers are kept.
    pub fn holder(&self, _frame: Frame, _frames: &FrameAllocator) -> Option<DomainId> {
        None
    }

    /// No denials are kept.
    pub fn last_denial(&self, _domain: DomainId) -> Option<(u64, u64)> {
        None
    }

    /// No denials are kept.
    pub fn write_last_denial(&self, _w: &mut dyn fmt::Write, _domain: DomainId) -> fmt::Result {
        Ok(())
    }

    /// Any set can be created (none is kept).
    pub fn check_new_set(&self, _name: &str, _parent: SetId) -> Result<(), accounting::Error> {
        Ok(())
    }

    /// No limits to change.
    pub fn set_kind_limit(
        &mut self,
        _set: SetId,
        _kind: abi::Kind,
        _limit: Option<u64>,
    ) -> Result<(), accounting::Error> {
        Ok(())
    }

    /// No limits to change.
    pub fn set_limit(&mut self, _set: SetId, _limit: Option<u64>) -> Result<(), accounting::Error> {
        Ok(())
    }

    /// Hands out domain ids.
    pub fn create_domain(
        &mut self,
        _name: &str,
        _set: SetId,
    ) -> Result<DomainId, accounting::Error> {
        self.domains += 1;
        Ok(DomainId(self.domains - 1))
    }

    /// Not recorded.
    pub fn domain_state(&mut self, _domain: DomainId, _state: DomainState) {}

    /// Nothing to record.
    pub fn domain_exited(&mut self, _domain: DomainId, _code: i32) {}

    /// Nothing to forget.
    pub fn forget_domain(&mut self, _domain: DomainId) {}

    /// Nothing is charged.
    pub fn first_charged_set(&self) -> Option<(Name, u64)> {
        None
    }

    /// Nothing to recount.
    pub fn recount(&self, _frames: &FrameAllocator) -> Result<(), &'static str> {
        Ok(())
    }

    /// A batch of nothing to reserve (nothing to count in `need`).
    pub fn batch(&mut self, _need: &mut BatchNeed) -> Batch {
        Batch
    }

    /// Nothing can be refused.
    pub fn batch_add(
        &mut self,
        _batch: &mut Batch,
        _step: &Step,
        _frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        Ok(())
    }

    /// A program page gets one mapper; each shared frame one more.
    pub fn batch_commit(
        &mut self,
        _batch: &mut Batch,
        step: &Step,
        frames: &FrameAllocator,
    ) -> Result<(), accounting::Error> {
        match *step {
            Step::Objects { .. } => Ok(()),
            Step::Page { page, .. } => {
                let count = self.count(page, frames).ok_or(accounting::Error::BadPlan)?;
                *count = 1;
                Ok(())
            }
            Step::Share { shared, .. } => {
                for frame in shared {
                    let count = self
                        .mappers
                        .get_mut(frame.0 as usize)
                        .ok_or(accounting::Error::BadPlan)?;
                    *count = count
                        .checked_add(1)
                        .ok_or(accounting::Error::TooManySharers)?;
                }
                Ok(())
            }
        }
    }

    /// Nothing to check.
    pub fn batch_finish(&self, _batch: Batch) -> Result<(), accounting::Error> {
        Ok(())
    }

    /// Nothing to charge.
    pub fn charge_kernel_object(
        &mut self,
        _set: SetId,
        _causer: Option<DomainId>,
        _object: Frame,
        _frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        Ok(())
    }

    /// Nothing to charge.
    pub fn charge_msgbufs(
        &mut self,
        _buffers: &[Frame],
        _sender: DomainId,
        _receiver: DomainId,
        _frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        Ok(())
    }

    /// Every domain is in the kernel set.
    pub fn domain_set(&self, _domain: DomainId) -> SetId {
        SetId::KERNEL
    }

    /// Nothing is charged, so nothing moves.
    pub fn move_domain(&mut self, _domain: DomainId, _set: SetId) -> Result<u64, ChargeError> {
        Ok(0)
    }

    fn count(&mut self, frame: Frame, frames: &FrameAllocator) -> Option<&mut u16> {
        self.mappers.get_mut(index(frames, frame).0 as usize)
    }

    /// A new page has one mapper.
    pub fn charge_page(
        &mut self,
        _owner: DomainId,
        _causer: DomainId,
        page: Frame,
        _tables: &[Frame],
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        *self.count(page, frames).ok_or(ChargeError::Fault)? = 1;
        Ok(())
    }

    /// One more mapper.
    pub fn share_page(
        &mut self,
        frame: Frame,
        _domain: DomainId,
        _causer: DomainId,
        _tables: &[Frame],
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        let count = self.count(frame, frames).ok_or(ChargeError::Fault)?;
        *count = count.checked_add(1).ok_or(ChargeError::TableFull)?;
        Ok(())
    }

    /// One more mapper for each frame.
    pub fn share_many(
        &mut self,
        shared: &[accounting::FrameIndex],
        _domain: DomainId,
        _causer: DomainId,
        _tables: &[Frame],
        _frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        for frame in shared {
            let count = self
                .mappers
                .get_mut(frame.0 as usize)
                .ok_or(ChargeError::Fault)?;
            *count = count.checked_add(1).ok_or(ChargeError::TableFull)?;
        }
        Ok(())
    }

    /// The writer leaves the original and maps its copy alone.
    pub fn cow_copy(
        &mut self,
        original: Frame,
        copy: Frame,
        _writer: DomainId,
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        match self.count(original, frames) {
            Some(count) if *count > 1 => *count -= 1,
            // Nobody else maps it: restore write access (as the ledger says).
            _ => {
                return Err(ChargeError::Bug(accounting::Error::NotShared(index(
                    frames, original,
                ))))
            }
        }
        *self.count(copy, frames).ok_or(ChargeError::Fault)? = 1;
        Ok(())
    }

    /// New pages and copies get one mapper; a copy's original loses one.
    pub fn charge_all(
        &mut self,
        charges: &[super::Charge],
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        for charge in charges {
            match *charge {
                super::Charge::Page { frame, owner } => {
                    self.charge_page(owner, owner, frame, &[], frames)?
                }
                super::Charge::Copy {
                    original,
                    copy,
                    writer,
                } => self.cow_copy(original, copy, writer, frames)?,
                super::Charge::Share { frame, domain } => {
                    self.share_page(frame, domain, domain, &[], frames)?
                }
                super::Charge::Table { .. } | super::Charge::Msgbuf { .. } => {}
            }
        }
        Ok(())
    }

    /// How many domains map `frame`.
    pub fn mappers(&self, frame: Frame, frames: &FrameAllocator) -> usize {
        self.mappers
            .get(index(frames, frame).0 as usize)
            .map_or(0, |c| *c as usize)
    }

    /// One mapper fewer; true when none is left.
    pub fn unmap(&mut self, frame: Frame, _domain: DomainId, frames: &FrameAllocator) -> bool {
        match self.count(frame, frames) {
            Some(count) => {
                *count = count.saturating_sub(1);
                *count == 0
            }
            None => true,
        }
    }

    /// Nothing to uncharge.
    pub fn free(&mut self, _frame: Frame, _frames: &FrameAllocator) {}

    /// Nothing is charged, so the check cannot hold; the run's reports say so.
    pub fn conservation(&self, frames: &FrameAllocator) -> Conservation {
        let in_use_bytes =
            (frames.total_frames() - frames.boot_frames() - frames.free_frames()) as u64 * 4096;
        Conservation {
            charged_bytes: 0,
            in_use_bytes,
            ok: in_use_bytes == 0,
        }
    }

    /// Only the frame number and its mappers: nothing else is kept.
    pub fn frame_info(&self, frame: Frame, frames: &FrameAllocator) -> Option<abi::FrameInfo> {
        Some(abi::FrameInfo {
            frame: u64::from(index(frames, frame).0),
            mappers: self.mappers(frame, frames) as u64,
            ..Default::default()
        })
    }

    /// No usage is kept.
    pub fn usage(&self, _set: SetId) -> abi::SetUsage {
        abi::SetUsage {
            limit_bytes: u64::MAX,
            ..Default::default()
        }
    }

    /// A snapshot with frame counts and no charge sets.
    pub fn write_snapshot(
        &self,
        w: &mut dyn fmt::Write,
        label: &str,
        instructions: u64,
        frames: &FrameAllocator,
    ) -> fmt::Result {
        let conservation = self.conservation(frames);
        let in_use = conservation.in_use_bytes / 4096;
        write!(w, "{{\"label\":")?;
        accounting::report::write_json_string(&mut &mut *w, label)?;
        write!(
            w,
            ",\"instructions\":{instructions},\"frames\":{{\"total\":{},\"free\":{},\"boot\":{},\"in_use\":{in_use}}},\
             \"conservation\":{{\"charged_bytes\":0,\"in_use_bytes\":{},\"ok\":{}}},\"charge_sets\":[],\"domains\":[],\
             \"accounting\":false}}",
            frames.total_frames(),
            frames.free_frames(),
            frames.boot_frames(),
            conservation.in_use_bytes,
            conservation.ok
        )
    }
}
