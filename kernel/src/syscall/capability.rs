//! Capability lookups: the typed object behind a domain's capability index, checked (the slot
//! in range and not empty, the right type, a domain's or region's generation still current).

use crate::kernel::Kernel;
use crate::object::capability::Capability;
use crate::object::domain::MAX_DOMAINS;
use abi::Error;
use accounting::SetId;

impl Kernel {
    pub fn set_cap(&self, slot: usize, index: usize) -> Result<SetId, Error> {
        match self.slots[slot]
            .caps()
            .ok_or(Error::BadCapability)?
            .get(index)?
        {
            Capability::Set(set) => Ok(set),
            _ => Err(Error::WrongCapabilityType),
        }
    }

    /// The domain a call names: the caller for [`abi::SELF`], else the one behind the domain
    /// capability at `index`.
    pub fn domain_or_self(&self, slot: usize, index: usize) -> Result<usize, Error> {
        match index {
            abi::SELF => Ok(slot),
            index => self.domain_cap(slot, index),
        }
    }

    /// The live domain slot behind a domain capability (its generation still current).
    pub fn domain_cap(&self, slot: usize, index: usize) -> Result<usize, Error> {
        match self.slots[slot]
            .caps()
            .ok_or(Error::BadCapability)?
            .get(index)?
        {
            Capability::Domain {
                slot: target,
                generation,
            } => {
                let target = target as usize;
                if target >= MAX_DOMAINS || self.slots[target].generation != generation {
                    return Err(Error::BadCapability);
                }
                Ok(target)
            }
            _ => Err(Error::WrongCapabilityType),
        }
    }

    /// The endpoint index behind a capability of `slot` (decode).
    pub fn endpoint_cap(&self, slot: usize, index: usize) -> Result<usize, Error> {
        match self.slots[slot]
            .caps()
            .ok_or(Error::BadCapability)?
            .get(index)?
        {
            Capability::Endpoint(endpoint) if self.endpoints[endpoint as usize].is_some() => {
                Ok(endpoint as usize)
            }
            Capability::Endpoint(_) => Err(Error::BadCapability),
            _ => Err(Error::WrongCapabilityType),
        }
    }

    /// The region-object index behind a capability.
    pub fn region_cap(&self, slot: usize, index: usize) -> Result<usize, Error> {
        match self.slots[slot]
            .caps()
            .ok_or(Error::BadCapability)?
            .get(index)?
        {
            Capability::Region { index, generation }
                if self.region_objects[index as usize].is_some()
                    && self.region_generations[index as usize] == generation =>
            {
                Ok(index as usize)
            }
            Capability::Region { .. } => Err(Error::BadCapability),
            _ => Err(Error::WrongCapabilityType),
        }
    }
}
