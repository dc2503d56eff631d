//! The shared-memory region calls: `region_create` (a new region object, charged `kernel` to
//! the creator's set, and a capability to it) and `region_map` (its pages mapped writable and
//! shared; each populated on its first map, charged `anon` to that mapper).

use crate::arch::aarch64::mmu::{UserAccess, PAGE_BYTES};
use crate::charge::{ChargeError, Transaction};
use crate::kernel::Kernel;
use crate::memory::object::ObjectFrame;
use crate::object::capability::Capability;
use crate::object::domain::Region;
use crate::object::region::RegionObject;
use abi::Error;

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
        let cap = Capability::Region {
            index: index as u8,
            generation: self.region_generations[index],
        };
        self.slots[slot]
            .caps_mut()
            .ok_or(Error::BadCapability)?
            .insert(cap)
    }

    /// Maps a region object writable at `address` of `slot`: its frames are populated on
    /// first map (charged `anon` to the mapper) and shared by later mappers.
    pub fn region_map(
        &mut self,
        slot: usize,
        object: usize,
        address: usize,
    ) -> Result<usize, Error> {
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
        self.add_region(
            slot,
            Region {
                start: address,
                pages,
                access: UserAccess::ReadWrite,
            },
        )?;
        for page in 0..pages {
            let va = address + page * PAGE_BYTES;
            let present = self.region_objects[object]
                .as_ref()
                .and_then(|region| region.get().frames[page]);
            let result = match present {
                None => self
                    .populate(slot, va, UserAccess::ReadWrite)
                    .map(|frame| {
                        if let Some(region) = self.region_objects[object].as_mut() {
                            region.get_mut().frames[page] = Some(frame);
                        }
                    })
                    .map_err(ChargeError::to_abi),
                Some(frame) => self.share_page(slot, va, frame, UserAccess::ReadWrite, slot),
            };
            if let Err(e) = result {
                self.remove_region(slot, address, pages);
                return Err(e);
            }
        }
        Ok(0)
    }
}
