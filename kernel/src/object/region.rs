//! The shared-memory region object: pages created by one domain and mapped writable, shared,
//! by every domain given a capability to it; its frames are populated on first map. In a
//! frame of its own, charged `kernel`. Creating and mapping one is in [`crate::ipc`].

use crate::memory::frames::Frame;

/// Most shared-memory region objects.
pub const MAX_REGION_OBJECTS: usize = 32;

/// A shared-memory region object, in its own frame (charged `kernel`).
pub struct RegionObject {
    pub pages: usize,
    pub frames: [Option<Frame>; abi::MAX_SHARED_REGION_PAGES],
    pub creator: u8,
}
