//! The shared-memory region calls: `region_create` (a new region object, charged `kernel` to
//! the creator's set, and a capability to it) and `region_map` (its pages mapped shared,
//! writable with the capability's `write` right or read-only with its `read` right; each
//! populated on its first map, charged `anon` to that mapper).

use crate::arch::aarch64::mmu;
use crate::arch::aarch64::mmu::{UserAccess, PAGE_BYTES};
use crate::charge::{Charge, ChargeError, Transaction};
use crate::kernel::Kernel;
use crate::memory::address_space::PlannedTables;
use crate::memory::frames::Frame;
use crate::memory::object::ObjectFrame;
use crate::object::capability::Object;
use crate::object::domain::Region;
use crate::object::region::RegionObject;
use abi::Error;

/// Most frames one `region_map` takes: a page for each of the object's pages and the tables
/// of at most two 1 GiB and two 2 MiB slots its pages cross.
const MAP_FRAMES: usize = abi::MAX_SHARED_REGION_PAGES + 4;
const _: () = assert!(MAP_FRAMES <= accounting::PLAN_OPS);

impl Kernel {
    /// Creates a shared-memory region object of `pages` pages for `slot`.
    pub fn region_create(&mut self, slot: usize, pages: usize) -> Result<usize, Error> {
        let index = self
            .region_objects
            .iter()
            .position(|r| r.is_none())
            .ok_or(Error::TableFull)?;
        let set = self.books.domain_set(self.slots[slot].account);
        let causer = Some(self.slots[slot].account);
        let transaction =
            Transaction::<1>::with_frames(&mut self.frames, 1).map_err(|e| e.to_abi())?;
        let frame = transaction.frames()[0];
        let books = &mut self.books;
        transaction
            .commit(|_, allocator| books.charge_kernel_object(set, causer, frame, allocator))
            .map_err(|e| e.to_abi())?;
        let object = RegionObject {
            pages,
            frames: [None; abi::MAX_SHARED_REGION_PAGES],
            creator: slot as u8,
        };
        // SAFETY: a fresh frame, owned by the region table from now on.
        self.region_objects[index] = Some(unsafe { ObjectFrame::new(frame, object) });
        self.region_generations[index] = self.region_generations[index].wrapping_add(1);
        let cap = Object::Region {
            index: index as u8,
            generation: self.region_generations[index],
        };
        let cap = self.mint(cap, abi::Rights::REGION, 0);
        self.slots[slot]
            .caps_mut()
            .ok_or(Error::BadCapability)?
            .insert(cap)
    }

    /// Maps a region object at `address` of `slot`, writable or read-only, through the
    /// capability numbered `capability`: its frames are populated on first map (charged `anon`
    /// to the mapper) and shared by later mappers.
    pub fn region_map(
        &mut self,
        slot: usize,
        object: usize,
        address: usize,
        writable: bool,
        capability: u32,
    ) -> Result<usize, Error> {
        let access = if writable {
            UserAccess::ReadWrite
        } else {
            UserAccess::ReadOnly
        };
        let pages = self.region_objects[object]
            .as_ref()
            .ok_or(Error::BadCapability)?
            .get()
            .pages;
        let end = address
            .checked_add(pages * PAGE_BYTES)
            .ok_or(Error::BadArgument)?;
        if !address.is_multiple_of(PAGE_BYTES)
            || address < abi::USER_MIN_ADDRESS
            || end > abi::USER_END_ADDRESS
        {
            return Err(Error::BadArgument);
        }
        let region = Region {
            start: address,
            pages,
            access,
            capability,
            kept: false,
        };
        let owner = self.slots[slot].account;
        let dcb = self.slots[slot].dcb_mut().ok_or(Error::BadArgument)?;
        if dcb.regions.iter().any(|r| r.overlaps(address, end)) {
            return Err(Error::RegionOverlap);
        }
        if dcb.regions.is_full() {
            return Err(Error::TableFull);
        }
        let Some(frames) = self.region_objects[object].as_ref().map(|r| r.get().frames) else {
            return Err(Error::BadCapability);
        };
        // Every page's charge — a new page for one the object has not yet, a share of the
        // frame it has — and the tables the mapping needs, in one transaction: all of them, or
        // (an error, a denial) nothing, the region not added.
        let mut transaction = Transaction::<MAP_FRAMES>::new(&mut self.frames);
        let mut charges = heapless::Vec::<Charge, MAP_FRAMES>::new();
        let mut plan = [(Frame(0), 0usize, 0usize); abi::MAX_SHARED_REGION_PAGES];
        let mut new_tables = PlannedTables::new();
        for (page, step) in plan.iter_mut().enumerate().take(pages) {
            let va = address + page * PAGE_BYTES;
            let missing = new_tables.missing(&dcb.tables, va)?;
            let frame = match frames[page] {
                Some(frame) => {
                    charges
                        .push(Charge::Share {
                            frame,
                            domain: owner,
                        })
                        .map_err(|_| Error::BadArgument)?;
                    frame
                }
                None => {
                    let frame = transaction.allocate_one().map_err(ChargeError::to_abi)?;
                    charges
                        .push(Charge::Page { frame, owner })
                        .map_err(|_| Error::BadArgument)?;
                    frame
                }
            };
            let tables_at = transaction.frames().len();
            for &table in transaction.allocate(missing).map_err(ChargeError::to_abi)? {
                charges
                    .push(Charge::Table {
                        frame: table,
                        owner,
                        causer: owner,
                    })
                    .map_err(|_| Error::BadArgument)?;
            }
            *step = (frame, tables_at, missing);
        }
        let held = transaction.array();
        let books = &mut self.books;
        transaction
            .commit(|_, allocator| books.charge_all(&charges, allocator))
            .map_err(ChargeError::to_abi)?;
        // Committed: nothing can fail from here on.
        let fresh: [bool; abi::MAX_SHARED_REGION_PAGES] =
            core::array::from_fn(|page| page < pages && frames[page].is_none());
        if let Some(dcb) = self.slots[slot].dcb_mut() {
            let _ = dcb.regions.push(region);
            for (page, &(frame, tables_at, missing)) in plan.iter().enumerate().take(pages) {
                let tables = &held[tables_at..tables_at + missing];
                if fresh[page] {
                    frame.zero();
                }
                for table in tables {
                    table.zero();
                }
                dcb.tables.map(
                    address + page * PAGE_BYTES,
                    mmu::user_page_descriptor(frame.address(), access),
                    tables,
                );
            }
        }
        if let Some(object) = self.region_objects[object].as_mut() {
            for (page, &(frame, _, _)) in plan.iter().enumerate().take(pages) {
                if fresh[page] {
                    object.get_mut().frames[page] = Some(frame);
                }
            }
        }
        Ok(0)
    }
}
