//! Endpoints: creating them (boot), their owner, finding one behind a capability, and
//! destroying them with the messages still queued at the end of the run.

use super::*;

impl Kernel {
    /// Creates a boot-config endpoint, charged `kernel` to the `kernel` reserve set.
    pub fn create_endpoint(&mut self, owner: Option<DomainId>) -> Result<u8, Error> {
        let index = self
            .endpoints
            .iter()
            .position(|e| e.is_none())
            .ok_or(Error::TableFull)?;
        let transaction =
            Transaction::<1>::with_frames(&mut self.frames, 1).map_err(|e| e.to_abi())?;
        let frame = transaction.frames()[0];
        let books = &mut self.books;
        transaction
            .commit(|_, allocator| {
                books.charge_kernel_object(accounting::SetId::KERNEL, None, frame, allocator)
            })
            .map_err(|e| e.to_abi())?;
        let endpoint = Endpoint {
            senders: SlotQueue::new(),
            receivers: SlotQueue::new(),
            queue: Deque::new(),
            owner,
        };
        // SAFETY: a fresh frame, owned by the endpoint table from now on.
        self.endpoints[index] = Some(unsafe { ObjectFrame::new(frame, endpoint) });
        Ok(index as u8)
    }

    /// Sets the domain that pays as receiver for an endpoint's queued messages.
    pub fn set_endpoint_owner(&mut self, index: usize, owner: Option<DomainId>) {
        self.endpoint_mut(index).owner = owner;
    }

    /// Frees every endpoint (and the messages still queued in it) at the end of the run.
    pub fn destroy_endpoints(&mut self) {
        for index in 0..MAX_ENDPOINTS {
            if self.endpoints[index].is_none() {
                continue;
            }
            while let Some(queued) = self.endpoint_mut(index).queue.pop_front() {
                self.free_buffers(&queued.frames[..queued.length.div_ceil(PAGE_BYTES)]);
            }
            let Some(frame) = self.endpoints[index].take().map(ObjectFrame::into_frame) else {
                continue;
            };
            self.books.free(frame, &self.frames);
            self.frames.free(frame);
        }
    }

    /// The endpoint behind capability `index` of `slot`, if it is one (the fast path's
    /// lookup: no error to tell apart, nothing out of line).
    #[inline(always)]
    pub(super) fn endpoint_index(
        &self,
        slot: usize,
        index: usize,
        needed: Rights,
    ) -> Option<usize> {
        let endpoint = self.slots[slot].caps()?.caps.get(index)?.endpoint(needed)?;
        self.endpoints
            .get(endpoint)
            .is_some_and(Option::is_some)
            .then_some(endpoint)
    }

    /// The endpoint at `index`, which decode checked exists.
    #[inline]
    pub(super) fn endpoint(&self, index: usize) -> &Endpoint {
        self.endpoints[index]
            .as_ref()
            .expect("endpoint indices are checked at decode")
            .get()
    }

    /// The endpoint at `index`, mutably.
    #[inline]
    pub(super) fn endpoint_mut(&mut self, index: usize) -> &mut Endpoint {
        self.endpoints[index]
            .as_mut()
            .expect("endpoint indices are checked at decode")
            .get_mut()
    }
}
