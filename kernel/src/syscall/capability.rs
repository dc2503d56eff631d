//! Capabilities: the typed object behind a domain's capability index, checked (the slot in
//! range and not empty, the right type, a domain's or region's generation still current, the
//! rights the call needs), and the calls on capabilities themselves: `cap_derive`,
//! `cap_delete`, `cap_revoke`, `cap_inspect`.
//!
//! Every capability has a number and the number of the one it was derived from
//! ([`Lineage`]): `cap_derive`, a message's capabilities and a spawn's passed capabilities are
//! derived from the sender's; a capability made with its object (boot, `set_create`,
//! `region_create`, `spawn`'s domain capability, a keeper's fault message) has none. A region
//! mapped through a capability remembers its number. Revoking a capability deletes every
//! capability whose line of parents reaches it and unmaps every region mapped through them
//! (the revoked capability itself stays, with what is mapped through it); deleting one hands what was derived from it (capabilities and mappings) to its parent,
//! so a later revocation further up still reaches them.

use crate::kernel::Kernel;
use crate::object::capability::{Capability, Lineage, Object};
use crate::object::domain::MAX_DOMAINS;
use abi::{Error, Rights};
use accounting::SetId;

/// `cap` with only the rights `keep`: `BadArgument` if its type has not all of them, that
/// right's error if it lacks one.
pub fn weakened(cap: Capability, keep: Rights) -> Result<Capability, Error> {
    if !cap.object().all_rights().contains(keep) {
        return Err(Error::BadArgument);
    }
    cap.rights.require(keep)?;
    Ok(cap.with_rights(keep))
}

/// Most capability numbers one revocation collects (every slot of every domain).
const MAX_REVOKED: usize = MAX_DOMAINS * crate::object::capability::MAX_CAPS;

impl Kernel {
    /// The capability at `index` of `slot`, if the slot holds one.
    #[inline]
    pub fn capability(&self, slot: usize, index: usize) -> Result<Capability, Error> {
        self.slots[slot]
            .caps()
            .ok_or(Error::BadCapability)?
            .get(index)
    }

    /// A new capability to `object` with `rights`, derived from the capability numbered
    /// `parent` (0: made with its object).
    pub fn mint(&mut self, object: Object, rights: Rights, parent: u32) -> Capability {
        self.next_capability = self.next_capability.wrapping_add(1).max(1);
        Capability::new(
            object,
            rights.intersection(object.all_rights()),
            Lineage {
                id: self.next_capability,
                parent,
            },
        )
    }

    /// A new capability derived from `cap`: its object and rights, its parent `cap`'s number.
    /// A message's, a spawn request's and `cap_derive`'s capabilities are made so, when they
    /// are given (decode takes [`Kernel::passed_capability`], with the rights reduced).
    pub fn derived(&mut self, cap: Capability) -> Capability {
        self.mint(cap.object(), cap.rights, cap.lineage.id)
    }

    /// The capability a message's or spawn request's word names, with only the rights the
    /// word asks to keep, if it is [`abi::weakened`] (decode: checked, nothing made yet). Its
    /// lineage is still the original's. Keeping a right the capability lacks is that right's
    /// error; one its type has not, `BadArgument`.
    pub fn passed_capability(&self, slot: usize, word: usize) -> Result<Capability, Error> {
        let (index, keep) = abi::split_cap_word(word)?;
        let cap = self.capability(slot, index)?;
        match keep {
            None => Ok(cap),
            Some(keep) => weakened(cap, keep),
        }
    }

    pub fn set_cap(&self, slot: usize, index: usize, needed: Rights) -> Result<SetId, Error> {
        let cap = self.capability(slot, index)?;
        match cap.object() {
            Object::Set(set) => {
                cap.rights.require(needed)?;
                Ok(set)
            }
            _ => Err(Error::WrongCapabilityType),
        }
    }

    /// The domain a call names: the caller for [`abi::SELF`] (its own, with every right),
    /// else the one behind the domain capability at `index`.
    pub fn domain_or_self(
        &self,
        slot: usize,
        index: usize,
        needed: Rights,
    ) -> Result<usize, Error> {
        match index {
            abi::SELF => Ok(slot),
            index => self.domain_cap(slot, index, needed),
        }
    }

    /// The live domain slot behind a domain capability (its generation still current).
    pub fn domain_cap(&self, slot: usize, index: usize, needed: Rights) -> Result<usize, Error> {
        let cap = self.capability(slot, index)?;
        match cap.object() {
            Object::Domain {
                slot: target,
                generation,
            } => {
                let target = target as usize;
                if target >= MAX_DOMAINS || self.slots[target].generation != generation {
                    return Err(Error::BadCapability);
                }
                cap.rights.require(needed)?;
                Ok(target)
            }
            _ => Err(Error::WrongCapabilityType),
        }
    }

    /// The endpoint index behind a capability of `slot` (decode).
    pub fn endpoint_cap(&self, slot: usize, index: usize, needed: Rights) -> Result<usize, Error> {
        let cap = self.capability(slot, index)?;
        match cap.object() {
            Object::Endpoint(endpoint) if self.endpoints[endpoint as usize].is_some() => {
                cap.rights.require(needed)?;
                Ok(endpoint as usize)
            }
            Object::Endpoint(_) => Err(Error::BadCapability),
            _ => Err(Error::WrongCapabilityType),
        }
    }

    /// The region-object index behind a capability, and the capability's number.
    pub fn region_cap(
        &self,
        slot: usize,
        index: usize,
        needed: Rights,
    ) -> Result<(usize, u32), Error> {
        let cap = self.capability(slot, index)?;
        match cap.object() {
            Object::Region { index, generation }
                if self.region_objects[index as usize].is_some()
                    && self.region_generations[index as usize] == generation =>
            {
                cap.rights.require(needed)?;
                Ok((index as usize, cap.lineage.id))
            }
            Object::Region { .. } => Err(Error::BadCapability),
            _ => Err(Error::WrongCapabilityType),
        }
    }

    /// `cap_derive`: a new capability in `slot`'s table derived from `cap` (whose rights
    /// decode reduced).
    pub(super) fn cap_derive(&mut self, slot: usize, cap: Capability) -> Result<usize, Error> {
        let derived = self.derived(cap);
        self.slots[slot]
            .caps_mut()
            .ok_or(Error::BadCapability)?
            .insert(derived)
    }

    /// `cap_delete`: empties the slot; what was derived from it passes to its parent.
    pub(super) fn cap_delete(&mut self, slot: usize, index: usize) -> Result<usize, Error> {
        let cap = self.capability(slot, index)?;
        if let Some(caps) = self.slots[slot].caps_mut() {
            caps.caps[index] = Capability::EMPTY;
        }
        let Lineage { id, parent } = cap.lineage;
        for domain in self.slots.iter_mut() {
            if let Some(caps) = domain.caps_mut() {
                for held in caps.caps.iter_mut().filter(|c| c.lineage.parent == id) {
                    held.lineage.parent = parent;
                }
            }
            if let Some(dcb) = domain.dcb_mut() {
                for region in dcb.regions.iter_mut().filter(|r| r.capability == id) {
                    region.capability = parent;
                }
            }
        }
        // A queued message's capabilities are the sender's, made for the receiver from their
        // parent when it takes the message: from the deleted one's parent now.
        for endpoint in self.endpoints.iter_mut().flatten() {
            for queued in endpoint.get_mut().queue.iter_mut() {
                for held in queued.caps.iter_mut().filter(|c| c.lineage.id == id) {
                    held.lineage.id = parent;
                }
            }
        }
        Ok(0)
    }

    /// `cap_revoke`: deletes every capability derived from the one at `index` and unmaps every
    /// region mapped through them (seL4's revoke: the capability itself, and what is mapped
    /// through it, stay). Returns capabilities deleted plus regions unmapped.
    pub(super) fn cap_revoke(&mut self, slot: usize, index: usize) -> Result<usize, Error> {
        let root = self.capability(slot, index)?.lineage.id;
        // The numbers reached, the root first; each pass over the tables adds the children of
        // those found so far, until a pass finds none.
        let mut reached = heapless::Vec::<u32, MAX_REVOKED>::new();
        let _ = reached.push(root);
        let mut deleted = 0;
        loop {
            let mut found = false;
            for domain in self.slots.iter_mut() {
                let Some(caps) = domain.caps_mut() else {
                    continue;
                };
                for held in caps.caps.iter_mut() {
                    if !held.is_empty() && reached.contains(&held.lineage.parent) {
                        let _ = reached.push(held.lineage.id);
                        *held = Capability::EMPTY;
                        deleted += 1;
                        found = true;
                    }
                }
            }
            if !found {
                break;
            }
        }
        // A queued message loses the capabilities whose receiver's copy would be derived from
        // one reached.
        for endpoint in self.endpoints.iter_mut().flatten() {
            for queued in endpoint.get_mut().queue.iter_mut() {
                for held in queued.caps.iter_mut() {
                    if !held.is_empty() && reached.contains(&held.lineage.id) {
                        *held = Capability::EMPTY;
                        deleted += 1;
                    }
                }
            }
        }
        let mut unmapped = 0;
        for domain in 0..MAX_DOMAINS {
            while let Some((start, pages)) = self.slots[domain].dcb().and_then(|dcb| {
                dcb.regions
                    .iter()
                    .find(|r| r.capability != 0 && reached[1..].contains(&r.capability))
                    .map(|r| (r.start, r.pages))
            }) {
                self.remove_region(domain, start, pages);
                unmapped += 1;
            }
        }
        Ok(deleted + unmapped)
    }

    /// `cap_inspect`: the capability's type and rights.
    pub(super) fn cap_inspect(&self, slot: usize, index: usize) -> Result<usize, Error> {
        let cap = self.capability(slot, index)?;
        Ok(cap.object().type_code() << abi::CAP_TYPE_SHIFT | usize::from(cap.rights.0))
    }
}
