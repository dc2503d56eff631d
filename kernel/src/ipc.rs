//! Message passing (the seed's model): endpoints, `send`/`recv`/`call`/`reply`/`reply_recv`,
//! bounded atomic messages, direct cross-space copy (KeyKOS/EROS) or two-stage copy through
//! queued kernel buffers (Mach), out-of-line copy-on-write regions, capability transfer, and
//! shared-memory region objects.
//!
//! Atomicity. A transfer first checks everything that cannot change state (bounds, the
//! receiver's descriptor, room for capabilities and regions), then makes the receiver's buffer
//! present (populating or breaking copy-on-write, charged), reserves any transient buffer,
//! maps the out-of-line regions, and only then copies. If a step fails, what it did is undone
//! and nothing is delivered:
//! - the *sender* gets the error (over-limit, out-of-memory, receiver-too-small, bad-address)
//!   and a blocked receiver stays blocked, still waiting; the send is not retried by itself;
//! - a receive that finds a queued message (two-stage) it cannot take returns the error to the
//!   *receiver* and the message stays first in the queue;
//! - pages of the receive buffer that were made present before a later denial stay present
//!   (they are the receiver's own memory, charged to it; their contents are unchanged).
//!
//! Out-of-line regions are transferred by direct transfer only (a two-stage send with regions
//! is `bad-argument`): queued messages carry data and capabilities.

use crate::arch::aarch64::exception::TrapFrame;
use crate::arch::aarch64::mmu::{self, UserAccess, PAGE_BYTES};
use crate::charge::ChargeError;
use crate::domain::{Block, Capability, Region, RunState, MAX_DOMAINS};
use crate::kernel::Kernel;
use crate::memory::frames::Frame;
use crate::memory::object::ObjectFrame;
use abi::{
    Error, Message, Receive, SharedRegion, MAX_MESSAGE_BYTES, MAX_MESSAGE_CAPS, MAX_MESSAGE_REGIONS,
};
use accounting::DomainId;
use heapless::{Deque, Vec};
use kcore::bootcfg::Transfer;

/// Most endpoints.
pub const MAX_ENDPOINTS: usize = 16;
/// Most shared-memory region objects.
pub const MAX_REGION_OBJECTS: usize = 32;
/// Buffer frames one message can need.
const MESSAGE_FRAMES: usize = MAX_MESSAGE_BYTES / PAGE_BYTES;

/// A message waiting in an endpoint's queue (two-stage transfer), in kernel buffer frames.
#[derive(Clone, Copy)]
pub struct Queued {
    sender: DomainId,
    /// For a `call`: the caller (slot, generation) that waits for the reply to this message;
    /// the receiver that takes the message answers it.
    caller: Option<(u8, u32)>,
    length: usize,
    frames: [Frame; MESSAGE_FRAMES],
    caps: [Capability; MAX_MESSAGE_CAPS],
    cap_count: usize,
}

/// An endpoint, in its own frame (charged `kernel`).
pub struct Endpoint {
    senders: Deque<u8, MAX_DOMAINS>,
    receivers: Deque<u8, MAX_DOMAINS>,
    queue: Deque<Queued, { abi::MAX_QUEUED_MESSAGES }>,
    /// The domain that pays as "receiver" for queued messages: the first domain in the config
    /// given a capability to the endpoint.
    pub owner: Option<DomainId>,
}

const _: () = assert!(core::mem::size_of::<Endpoint>() <= PAGE_BYTES);

/// A shared-memory region object, in its own frame (charged `kernel`).
pub struct RegionObject {
    pages: usize,
    frames: [Option<Frame>; abi::MAX_SHARED_REGION_PAGES],
    creator: u8,
}

/// A message taken from a sender and checked.
struct Outgoing {
    sender: DomainId,
    data_address: usize,
    length: usize,
    caps: Vec<Capability, MAX_MESSAGE_CAPS>,
    regions: Vec<SharedRegion, MAX_MESSAGE_REGIONS>,
    /// Two-stage: the data is in these kernel frames instead of the sender's memory.
    buffered: Option<[Frame; MESSAGE_FRAMES]>,
}

fn read_struct<T: Copy + Default>(k: &mut Kernel, slot: usize, address: usize) -> Result<T, Error> {
    if !address.is_multiple_of(8) {
        return Err(Error::BadArgument);
    }
    let mut value = T::default();
    // SAFETY: T is a #[repr(C)] plain-data ABI struct of usize fields (Message, Receive) for
    // which every bit pattern is valid, so its bytes may be overwritten with any user bytes.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(&mut value as *mut T as *mut u8, core::mem::size_of::<T>())
    };
    k.copy_from_user(slot, address, bytes)?;
    Ok(value)
}

fn write_struct<T: Copy>(k: &mut Kernel, slot: usize, address: usize, value: &T) {
    let size = core::mem::size_of::<T>();
    // SAFETY: reading the bytes of a plain-data struct.
    let bytes = unsafe { core::slice::from_raw_parts(value as *const T as *const u8, size) };
    k.copy_to_user(slot, address, bytes);
}

impl Kernel {
    /// Creates a boot-config endpoint, charged `kernel` to the `kernel` reserve set.
    pub fn create_endpoint(&mut self, owner: Option<DomainId>) -> Result<u8, Error> {
        let index = self
            .endpoints
            .iter()
            .position(|e| e.is_none())
            .ok_or(Error::TableFull)?;
        let frame = self.frames.allocate().ok_or(Error::OutOfMemory)?;
        if let Err(e) =
            self.books
                .charge_kernel_object(accounting::SetId::KERNEL, None, frame, &self.frames)
        {
            self.frames.free(frame);
            return Err(e.to_abi());
        }
        let endpoint = Endpoint {
            senders: Deque::new(),
            receivers: Deque::new(),
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

    /// The endpoint at `index`, which decode checked exists.
    fn endpoint(&self, index: usize) -> &Endpoint {
        self.endpoints[index]
            .as_ref()
            .expect("endpoint indices are checked at decode")
            .get()
    }

    /// The endpoint at `index`, mutably.
    fn endpoint_mut(&mut self, index: usize) -> &mut Endpoint {
        self.endpoints[index]
            .as_mut()
            .expect("endpoint indices are checked at decode")
            .get_mut()
    }

    /// Reads and checks a message from `slot`'s memory (the decode half of a send).
    fn take_message(&mut self, slot: usize, address: usize) -> Result<Outgoing, Error> {
        let message: Message = read_struct(self, slot, address)?;
        if message.data_length > MAX_MESSAGE_BYTES
            || message.cap_count > MAX_MESSAGE_CAPS
            || message.region_count > MAX_MESSAGE_REGIONS
        {
            return Err(Error::MessageTooLarge);
        }
        crate::usermem::check_range(message.data_address, message.data_length)?;
        self.check_user_readable(slot, message.data_address, message.data_length)?;
        let caps_table = self.slots[slot].caps().ok_or(Error::BadCapability)?;
        let mut caps = Vec::new();
        for &index in &message.caps[..message.cap_count] {
            let _ = caps.push(caps_table.get(index)?);
        }
        let mut regions = Vec::new();
        for region in &message.regions[..message.region_count] {
            if region.pages == 0
                || region.pages > abi::MAX_REGION_PAGES
                || !region.address.is_multiple_of(PAGE_BYTES)
            {
                return Err(Error::MessageTooLarge);
            }
            self.check_owned_writable(slot, region)?;
            let _ = regions.push(*region);
        }
        Ok(Outgoing {
            sender: self.slots[slot].account,
            data_address: message.data_address,
            length: message.data_length,
            caps,
            regions,
            buffered: None,
        })
    }

    /// The physical address backing user address `va` of `slot`, if present.
    fn user_physical(&self, slot: usize, va: usize) -> Option<usize> {
        let dcb = self.slots[slot].dcb()?;
        let descriptor = dcb.tables.lookup(va & !(PAGE_BYTES - 1))?;
        Some(mmu::descriptor_address(descriptor) + va % PAGE_BYTES)
    }

    /// Whether the physical bytes of two user ranges of equal length overlap.
    fn ranges_overlap(
        &self,
        a_slot: usize,
        a: usize,
        b_slot: usize,
        b: usize,
        length: usize,
    ) -> bool {
        let mut a_offset = 0;
        while a_offset < length {
            let a_chunk = (PAGE_BYTES - (a + a_offset) % PAGE_BYTES).min(length - a_offset);
            if let Some(a_pa) = self.user_physical(a_slot, a + a_offset) {
                let mut b_offset = 0;
                while b_offset < length {
                    let b_chunk = (PAGE_BYTES - (b + b_offset) % PAGE_BYTES).min(length - b_offset);
                    if let Some(b_pa) = self.user_physical(b_slot, b + b_offset) {
                        if a_pa < b_pa + b_chunk && b_pa < a_pa + a_chunk {
                            return true;
                        }
                    }
                    b_offset += b_chunk;
                }
            }
            a_offset += a_chunk;
        }
        false
    }

    /// Allocates and charges `count` message-buffer frames (`msgbuf` policy).
    fn allocate_buffers(
        &mut self,
        count: usize,
        sender: DomainId,
        receiver: DomainId,
    ) -> Result<[Frame; MESSAGE_FRAMES], Error> {
        let mut frames = [Frame(0); MESSAGE_FRAMES];
        self.frames
            .allocate_all(&mut frames[..count])
            .ok_or(Error::OutOfMemory)?;
        if let Err(e) = self
            .books
            .charge_msgbufs(&frames[..count], sender, receiver, &self.frames)
        {
            self.frames.free_all(&frames[..count]);
            return Err(e.to_abi());
        }
        Ok(frames)
    }

    fn free_buffers(&mut self, frames: &[Frame]) {
        for &frame in frames {
            self.books.free(frame, &self.frames);
            self.frames.free(frame);
        }
    }

    /// Copies a message's data from the sender's memory into buffer frames.
    fn fill_buffers(
        &mut self,
        slot: usize,
        address: usize,
        length: usize,
        frames: &[Frame],
    ) -> Result<(), Error> {
        for (i, frame) in frames.iter().enumerate() {
            let start = i * PAGE_BYTES;
            let chunk = (length - start).min(PAGE_BYTES);
            // SAFETY: a message-buffer frame owned by this transfer, mapped in the linear map.
            let buffer = unsafe { core::slice::from_raw_parts_mut(frame.virt() as *mut u8, chunk) };
            self.copy_from_user(slot, address + start, buffer)?;
        }
        Ok(())
    }

    /// Delivers `message` from `sender_slot` (None when it is buffered and its sender may be
    /// gone) to `receiver`, whose receive descriptor is at `receive_address`.
    fn transfer(
        &mut self,
        sender_slot: Option<usize>,
        message: &Outgoing,
        receiver: usize,
        receive_address: usize,
    ) -> Result<(), Error> {
        let mut receive: Receive = read_struct(self, receiver, receive_address)?;
        if message.length > receive.buffer_capacity {
            return Err(Error::ReceiverTooSmall);
        }
        let caps = self.slots[receiver].caps().ok_or(Error::BadArgument)?;
        if !message.caps.is_empty()
            && caps
                .caps
                .iter()
                .filter(|c| **c == Capability::Empty)
                .count()
                < message.caps.len()
        {
            return Err(Error::ReceiverTooSmall);
        }
        let receiver_dcb = self.slots[receiver].dcb().ok_or(Error::BadArgument)?;
        for (i, region) in message.regions.iter().enumerate() {
            let start = receive.region_addresses[i];
            let end = start
                .checked_add(region.pages * PAGE_BYTES)
                .ok_or(Error::BadAddress)?;
            if !start.is_multiple_of(PAGE_BYTES)
                || start < abi::USER_MIN_ADDRESS
                || end > abi::USER_END_ADDRESS
            {
                return Err(Error::BadAddress);
            }
            if receiver_dcb.regions.iter().any(|r| r.overlaps(start, end)) {
                return Err(Error::RegionOverlap);
            }
        }
        if receiver_dcb.regions.len() + message.regions.len() > crate::domain::MAX_REGIONS {
            return Err(Error::ReceiverTooSmall);
        }
        self.prepare_user_write(receiver, receive_address, core::mem::size_of::<Receive>())?;
        self.prepare_user_write(receiver, receive.buffer_address, message.length)?;
        let receiver_ledger = self.slots[receiver].account;

        // A transient buffer only when the two ranges share physical bytes.
        let bounce_count = message.length.div_ceil(PAGE_BYTES);
        let bounce = match (sender_slot, message.buffered) {
            (Some(sender), None)
                if self.ranges_overlap(
                    sender,
                    message.data_address,
                    receiver,
                    receive.buffer_address,
                    message.length,
                ) =>
            {
                Some(self.allocate_buffers(bounce_count, message.sender, receiver_ledger)?)
            }
            _ => None,
        };

        for (i, region) in message.regions.iter().enumerate() {
            let Some(sender) = sender_slot else { break };
            let destination = receive.region_addresses[i];
            if let Err(e) = self.share_region_at(sender, receiver, region, destination) {
                // Undo the regions mapped before this one.
                for (j, done) in message.regions.iter().enumerate().take(i) {
                    self.remove_region(receiver, receive.region_addresses[j], done.pages);
                }
                if let Some(frames) = bounce {
                    self.free_buffers(&frames[..bounce_count]);
                }
                return Err(e);
            }
        }

        // Nothing can fail from here on.
        let source_frames = message.buffered.or(bounce);
        if let (Some(sender), Some(frames)) = (sender_slot, bounce) {
            let _ = self.fill_buffers(
                sender,
                message.data_address,
                message.length,
                &frames[..bounce_count],
            );
        }
        match (source_frames, sender_slot) {
            (Some(frames), _) => {
                for (i, frame) in frames.iter().enumerate().take(bounce_count) {
                    let start = i * PAGE_BYTES;
                    let chunk = (message.length - start).min(PAGE_BYTES);
                    // SAFETY: a message-buffer frame of this transfer.
                    let bytes =
                        unsafe { core::slice::from_raw_parts(frame.virt() as *const u8, chunk) };
                    self.copy_to_user(receiver, receive.buffer_address + start, bytes);
                }
            }
            (None, Some(sender)) => self.copy_user_to_user(
                sender,
                message.data_address,
                receiver,
                receive.buffer_address,
                message.length,
            ),
            (None, None) => {}
        }
        if let Some(frames) = bounce {
            self.free_buffers(&frames[..bounce_count]);
        }
        let caps = self.slots[receiver].caps_mut().ok_or(Error::BadArgument)?;
        receive.cap_count = message.caps.len();
        for (i, cap) in message.caps.iter().enumerate() {
            receive.caps[i] = caps.insert(*cap).unwrap_or(usize::MAX);
        }
        receive.data_length = message.length;
        receive.region_count = message.regions.len();
        for (i, region) in message.regions.iter().enumerate() {
            receive.region_pages[i] = region.pages;
        }
        write_struct(self, receiver, receive_address, &receive);
        Ok(())
    }

    /// Copies `length` bytes between two domains' (present, checked) memory, page by page
    /// through the linear map.
    fn copy_user_to_user(
        &mut self,
        from: usize,
        from_va: usize,
        to: usize,
        to_va: usize,
        length: usize,
    ) {
        let mut done = 0;
        while done < length {
            let from_chunk = PAGE_BYTES - (from_va + done) % PAGE_BYTES;
            let to_chunk = PAGE_BYTES - (to_va + done) % PAGE_BYTES;
            let chunk = from_chunk.min(to_chunk).min(length - done);
            if let Some(target) = self.user_physical(to, to_va + done) {
                match self.user_physical(from, from_va + done) {
                    // SAFETY: both are RAM pages of live domains through the linear map; the
                    // ranges do not overlap (checked by ranges_overlap), the chunk stays in both.
                    Some(source) => unsafe {
                        core::ptr::copy_nonoverlapping(
                            mmu::phys_to_virt(source) as *const u8,
                            mmu::phys_to_virt(target) as *mut u8,
                            chunk,
                        )
                    },
                    // SAFETY: as above, for the target alone; an unpopulated source reads as zeros.
                    None => unsafe {
                        core::ptr::write_bytes(mmu::phys_to_virt(target) as *mut u8, 0, chunk)
                    },
                }
            }
            done += chunk;
        }
    }

    /// Maps `region` of `sender` copy-on-write into `receiver` at `destination`; the tables the
    /// receiver needs are caused by the sender (`pagetable` policy).
    fn share_region_at(
        &mut self,
        sender: usize,
        receiver: usize,
        region: &SharedRegion,
        destination: usize,
    ) -> Result<(), Error> {
        self.add_region(
            receiver,
            Region {
                start: destination,
                pages: region.pages,
                access: UserAccess::ReadWrite,
            },
        )?;
        let shared =
            self.share_copy_on_write(sender, receiver, region.address, destination, region.pages);
        if shared.is_err() {
            self.remove_region(receiver, destination, region.pages);
        }
        shared
    }

    /// Unmaps and forgets a region of `slot`.
    pub fn remove_region(&mut self, slot: usize, start: usize, pages: usize) {
        self.unmap_range(slot, start, start + pages * PAGE_BYTES);
        if let Some(dcb) = self.slots[slot].dcb_mut() {
            if let Some(index) = dcb.regions.iter().position(|r| r.start == start) {
                dcb.regions.swap_remove(index);
            }
        }
    }

    /// Wakes a blocked domain with a system-call result in x0.
    fn wake_with(&mut self, slot: usize, result: Result<usize, Error>) {
        let value = match result {
            Ok(v) => v as u64,
            Err(e) => e.to_return_value() as u64,
        };
        self.wake(slot, value);
    }

    /// `send` and `call` (invoke half).
    pub fn ipc_send(
        &mut self,
        slot: usize,
        endpoint: usize,
        message_address: usize,
        receive_address: Option<usize>,
    ) -> Result<usize, Error> {
        let message = self.take_message(slot, message_address)?;
        if self.config.transfer == Transfer::TwoStage {
            return self.send_two_stage(slot, endpoint, message, receive_address);
        }
        let ep = self.endpoint(endpoint);
        if ep
            .receivers
            .front()
            .is_some_and(|r| self.waits_for_registers(*r as usize))
        {
            // The receiver waits for a register-sized message: the kinds must match.
            return Err(Error::BadArgument);
        }
        if let Some(receiver) = self.endpoint_mut(endpoint).receivers.pop_front() {
            let receiver = receiver as usize;
            let receive = self.slots[receiver]
                .dcb()
                .map(|d| d.ipc_receive)
                .unwrap_or(0);
            match self.transfer(Some(slot), &message, receiver, receive) {
                Ok(()) => {
                    self.after_delivery(slot, receiver, receive_address);
                    Ok(0)
                }
                Err(e) => {
                    let _ = self
                        .endpoint_mut(endpoint)
                        .receivers
                        .push_front(receiver as u8);
                    Err(e)
                }
            }
        } else {
            let dcb = self.slots[slot].dcb_mut().ok_or(Error::BadArgument)?;
            dcb.ipc_message = message_address;
            dcb.ipc_receive = receive_address.unwrap_or(0);
            dcb.ipc_calling = receive_address.is_some();
            dcb.ipc_registers = false;
            let _ = self.endpoint_mut(endpoint).senders.push_back(slot as u8);
            self.block_current(Block::Send(endpoint as u8));
            Ok(0)
        }
    }

    /// After a message from `sender` reached `receiver`: the receiver runs again, and a caller
    /// now waits for the reply.
    fn after_delivery(&mut self, sender: usize, receiver: usize, receive_address: Option<usize>) {
        self.wake_with(receiver, Ok(0));
        if let Some(receive) = receive_address {
            if let Some(dcb) = self.slots[sender].dcb_mut() {
                dcb.ipc_receive = receive;
                // It waits for a reply through memory descriptors, whatever it waited for
                // before (a register call that ended in an error leaves the flag set).
                dcb.ipc_registers = false;
            }
            let generation = self.slots[sender].generation;
            if let Some(dcb) = self.slots[receiver].dcb_mut() {
                dcb.reply_to = Some((sender as u8, generation));
            }
            if self.current == Some(sender) {
                self.block_current(Block::Reply);
            } else {
                self.slots[sender].state = RunState::Blocked(Block::Reply);
            }
        }
    }

    fn send_two_stage(
        &mut self,
        slot: usize,
        endpoint: usize,
        mut message: Outgoing,
        receive_address: Option<usize>,
    ) -> Result<usize, Error> {
        if !message.regions.is_empty() {
            return Err(Error::BadArgument);
        }
        let ep = self.endpoint(endpoint);
        if ep.queue.is_full() {
            return Err(Error::QueueFull);
        }
        let payer_receiver = ep
            .receivers
            .front()
            .map(|r| self.slots[*r as usize].account)
            .or(ep.owner)
            .unwrap_or(message.sender);
        let count = message.length.div_ceil(PAGE_BYTES);
        let frames = self.allocate_buffers(count, message.sender, payer_receiver)?;
        if let Err(e) =
            self.fill_buffers(slot, message.data_address, message.length, &frames[..count])
        {
            self.free_buffers(&frames[..count]);
            return Err(e);
        }
        message.buffered = Some(frames);
        let mut caps = [Capability::Empty; MAX_MESSAGE_CAPS];
        caps[..message.caps.len()].copy_from_slice(&message.caps);
        let caller = receive_address.map(|_| (slot as u8, self.slots[slot].generation));
        let queued = Queued {
            sender: message.sender,
            caller,
            length: message.length,
            frames,
            caps,
            cap_count: message.caps.len(),
        };
        let _ = self.endpoint_mut(endpoint).queue.push_back(queued);
        if let Some(receiver) = self.endpoint_mut(endpoint).receivers.pop_front() {
            let receiver = receiver as usize;
            let receive = self.slots[receiver]
                .dcb()
                .map(|d| d.ipc_receive)
                .unwrap_or(0);
            match self.deliver_queued(endpoint, receiver, receive) {
                Ok(()) => self.wake_with(receiver, Ok(0)),
                Err(e) => self.wake_with(receiver, Err(e)),
            }
        }
        if let Some(receive) = receive_address {
            // A call in two-stage mode still waits for its reply (through memory descriptors).
            if let Some(dcb) = self.slots[slot].dcb_mut() {
                dcb.ipc_receive = receive;
                dcb.ipc_registers = false;
            }
            self.block_current(Block::Reply);
        }
        Ok(0)
    }

    /// Gives the first queued message of `endpoint` to `receiver`; on failure it stays queued.
    fn deliver_queued(
        &mut self,
        endpoint: usize,
        receiver: usize,
        receive_address: usize,
    ) -> Result<(), Error> {
        let Some(queued) = self.endpoint(endpoint).queue.front().copied() else {
            return Err(Error::BadArgument);
        };
        let mut caps = Vec::new();
        for cap in &queued.caps[..queued.cap_count] {
            let _ = caps.push(*cap);
        }
        let message = Outgoing {
            sender: queued.sender,
            data_address: 0,
            length: queued.length,
            caps,
            regions: Vec::new(),
            buffered: Some(queued.frames),
        };
        self.transfer(None, &message, receiver, receive_address)?;
        self.endpoint_mut(endpoint).queue.pop_front();
        if let Some(caller) = queued.caller {
            // The receiver of a queued call answers that caller (and no other).
            if let Some(dcb) = self.slots[receiver].dcb_mut() {
                dcb.reply_to = Some(caller);
            }
        }
        self.free_buffers(&queued.frames[..queued.length.div_ceil(PAGE_BYTES)]);
        Ok(())
    }

    /// `recv` (invoke half).
    pub fn ipc_recv(
        &mut self,
        slot: usize,
        endpoint: usize,
        receive_address: usize,
    ) -> Result<usize, Error> {
        if self.config.transfer == Transfer::TwoStage && !self.endpoint(endpoint).queue.is_empty() {
            return self
                .deliver_queued(endpoint, slot, receive_address)
                .map(|_| 0);
        }
        while let Some(sender) = self.endpoint_mut(endpoint).senders.pop_front() {
            let sender = sender as usize;
            let Some(dcb) = self.slots[sender].dcb() else {
                continue;
            };
            if dcb.ipc_registers {
                // A register-sized call cannot be received into memory descriptors: it ends
                // with an error, and with it its register-sized wait.
                if let Some(dcb) = self.slots[sender].dcb_mut() {
                    dcb.ipc_registers = false;
                }
                self.wake_with(sender, Err(Error::BadArgument));
                continue;
            }
            let (message_address, calling, caller_receive) =
                (dcb.ipc_message, dcb.ipc_calling, dcb.ipc_receive);
            let message = match self.take_message(sender, message_address) {
                Ok(message) => message,
                Err(e) => {
                    self.wake_with(sender, Err(e));
                    continue;
                }
            };
            return match self.transfer(Some(sender), &message, slot, receive_address) {
                Ok(()) => {
                    if calling {
                        self.slots[sender].state = RunState::Blocked(Block::Reply);
                        let generation = self.slots[sender].generation;
                        if let Some(dcb) = self.slots[slot].dcb_mut() {
                            dcb.reply_to = Some((sender as u8, generation));
                        }
                        if let Some(dcb) = self.slots[sender].dcb_mut() {
                            dcb.ipc_receive = caller_receive;
                        }
                    } else {
                        self.wake_with(sender, Ok(0));
                    }
                    Ok(0)
                }
                Err(e) => {
                    // The sender learns why; the receiver goes on to the next waiting sender
                    // (blocking here would leave the others queued beside a waiting
                    // receiver, every one of them waiting for ever: found by the fuzzer).
                    self.wake_with(sender, Err(e));
                    continue;
                }
            };
        }
        self.block_receiver(slot, endpoint, receive_address)
    }

    fn block_receiver(
        &mut self,
        slot: usize,
        endpoint: usize,
        receive_address: usize,
    ) -> Result<usize, Error> {
        if let Some(dcb) = self.slots[slot].dcb_mut() {
            dcb.ipc_receive = receive_address;
            dcb.ipc_registers = false;
        }
        let _ = self.endpoint_mut(endpoint).receivers.push_back(slot as u8);
        self.block_current(Block::Recv(endpoint as u8));
        Ok(0)
    }

    /// `reply` (invoke half).
    pub fn ipc_reply(&mut self, slot: usize, message_address: usize) -> Result<usize, Error> {
        let (caller, generation) = self.slots[slot]
            .dcb()
            .and_then(|d| d.reply_to)
            .ok_or(Error::NoCaller)?;
        let caller = caller as usize;
        if self.slots[caller].generation != generation
            || !matches!(self.slots[caller].state, RunState::Blocked(Block::Reply))
        {
            if let Some(dcb) = self.slots[slot].dcb_mut() {
                dcb.reply_to = None;
            }
            return Err(Error::NoCaller);
        }
        if self.waits_for_registers(caller) {
            // The caller waits for a register-sized reply: answer with reply_recv_registers.
            return Err(Error::BadArgument);
        }
        let message = self.take_message(slot, message_address)?;
        let receive = self.slots[caller].dcb().map(|d| d.ipc_receive).unwrap_or(0);
        self.transfer(Some(slot), &message, caller, receive)?;
        if let Some(dcb) = self.slots[slot].dcb_mut() {
            dcb.reply_to = None;
        }
        self.wake_with(caller, Ok(0));
        Ok(0)
    }

    /// Creates a shared-memory region object of `pages` pages for `slot`.
    pub fn region_create(&mut self, slot: usize, pages: usize) -> Result<usize, Error> {
        let index = self
            .region_objects
            .iter()
            .position(|r| r.is_none())
            .ok_or(Error::TableFull)?;
        let frame = self.frames.allocate().ok_or(Error::OutOfMemory)?;
        let set = self.books.domain_set(self.slots[slot].account);
        if let Err(e) = self.books.charge_kernel_object(
            set,
            Some(self.slots[slot].account),
            frame,
            &self.frames,
        ) {
            self.frames.free(frame);
            return Err(e.to_abi());
        }
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

    /// Forgets a frame that was freed (its last mapper left) in every region object.
    pub fn forget_region_frame(&mut self, frame: Frame) {
        for object in self.region_objects.iter_mut().flatten() {
            for slot in object.get_mut().frames.iter_mut() {
                if *slot == Some(frame) {
                    *slot = None;
                }
            }
        }
    }

    /// Removes a dying domain from every endpoint queue, fails its pending calls, and frees
    /// the region objects it created.
    pub fn ipc_teardown(&mut self, slot: usize) {
        for endpoint in self.endpoints.iter_mut().flatten() {
            let ep = endpoint.get_mut();
            for queue in [&mut ep.senders, &mut ep.receivers] {
                let count = queue.len();
                for _ in 0..count {
                    if let Some(s) = queue.pop_front() {
                        if s as usize != slot {
                            let _ = queue.push_back(s);
                        }
                    }
                }
            }
        }
        if let Some((caller, generation)) = self.slots[slot].dcb().and_then(|d| d.reply_to) {
            let caller = caller as usize;
            if self.slots[caller].generation == generation
                && matches!(self.slots[caller].state, RunState::Blocked(Block::Reply))
            {
                self.wake_with(caller, Err(Error::PeerGone));
            }
        }
        for index in 0..MAX_REGION_OBJECTS {
            let created = self.region_objects[index]
                .as_ref()
                .is_some_and(|object| object.get().creator as usize == slot);
            if let Some(frame) = created
                .then(|| self.region_objects[index].take())
                .flatten()
                .map(ObjectFrame::into_frame)
            {
                self.books.free(frame, &self.frames);
                self.frames.free(frame);
            }
        }
    }

    /// Dispatches the IPC system calls (after decode validated the capabilities).
    pub fn ipc_call(
        &mut self,
        slot: usize,
        call: IpcCall,
        frame: &mut TrapFrame,
    ) -> Result<usize, Error> {
        let _ = frame;
        match call {
            IpcCall::Send { endpoint, message } => self.ipc_send(slot, endpoint, message, None),
            IpcCall::Recv { endpoint, receive } => self.ipc_recv(slot, endpoint, receive),
            IpcCall::Call {
                endpoint,
                message,
                receive,
            } => self.ipc_send(slot, endpoint, message, Some(receive)),
            IpcCall::Reply { message } => self.ipc_reply(slot, message),
            IpcCall::ReplyRecv {
                endpoint,
                message,
                receive,
            } => {
                self.ipc_reply(slot, message)?;
                self.ipc_recv(slot, endpoint, receive)
            }
        }
    }

    /// Decodes the IPC system calls: capability indices and descriptor alignment.
    pub fn ipc_decode(
        &self,
        slot: usize,
        call: abi::Syscall,
        args: [usize; 5],
    ) -> Result<IpcCall, Error> {
        let aligned = |address: usize| {
            if address.is_multiple_of(8) {
                Ok(address)
            } else {
                Err(Error::BadArgument)
            }
        };
        Ok(match call {
            abi::Syscall::Send => IpcCall::Send {
                endpoint: self.endpoint_cap(slot, args[0])?,
                message: aligned(args[1])?,
            },
            abi::Syscall::Recv => IpcCall::Recv {
                endpoint: self.endpoint_cap(slot, args[0])?,
                receive: aligned(args[1])?,
            },
            abi::Syscall::Call => IpcCall::Call {
                endpoint: self.endpoint_cap(slot, args[0])?,
                message: aligned(args[1])?,
                receive: aligned(args[2])?,
            },
            abi::Syscall::Reply => IpcCall::Reply {
                message: aligned(args[0])?,
            },
            _ => IpcCall::ReplyRecv {
                endpoint: self.endpoint_cap(slot, args[0])?,
                message: aligned(args[1])?,
                receive: aligned(args[2])?,
            },
        })
    }
}

impl Kernel {
    /// Whether a blocked domain waits in a register-sized operation.
    fn waits_for_registers(&self, slot: usize) -> bool {
        self.slots[slot].dcb().is_some_and(|d| d.ipc_registers)
    }

    /// `call_registers`: hands the four words in the caller's x1..x4 to a receiver waiting in
    /// `reply_recv_registers` (or queues the caller until one arrives), then the caller waits
    /// for the reply. No memory is touched and nothing is charged.
    pub fn call_registers(
        &mut self,
        slot: usize,
        endpoint: usize,
        frame: &TrapFrame,
    ) -> Result<usize, Error> {
        let generation = self.slots[slot].generation;
        let ep = self.endpoint(endpoint);
        match ep.receivers.front().copied().map(usize::from) {
            Some(receiver) if self.waits_for_registers(receiver) => {
                self.endpoint_mut(endpoint).receivers.pop_front();
                if let Some(dcb) = self.slots[receiver].dcb_mut() {
                    dcb.frame.x[1..5].copy_from_slice(&frame.x[1..5]);
                    dcb.reply_to = Some((slot as u8, generation));
                    dcb.ipc_registers = false;
                }
                self.wake(receiver, 0);
                self.block_current(Block::Reply);
            }
            Some(_) => return Err(Error::BadArgument),
            None => {
                let _ = self.endpoint_mut(endpoint).senders.push_back(slot as u8);
                if let Some(dcb) = self.slots[slot].dcb_mut() {
                    dcb.ipc_calling = true;
                }
                self.block_current(Block::Send(endpoint as u8));
            }
        }
        if let Some(dcb) = self.slots[slot].dcb_mut() {
            dcb.ipc_registers = true;
        }
        Ok(0)
    }

    /// `reply_recv_registers`: answers the pending register call (if any) with the words in
    /// x1..x4, then takes the next register call from the endpoint, its words into x1..x4, or
    /// waits for one.
    pub fn reply_recv_registers(
        &mut self,
        slot: usize,
        endpoint: usize,
        frame: &mut TrapFrame,
    ) -> Result<usize, Error> {
        if let Some((caller, generation)) = self.slots[slot].dcb().and_then(|d| d.reply_to) {
            let caller = caller as usize;
            let waiting = self.slots[caller].generation == generation
                && matches!(self.slots[caller].state, RunState::Blocked(Block::Reply));
            if waiting && !self.waits_for_registers(caller) {
                return Err(Error::BadArgument);
            }
            if let Some(dcb) = self.slots[slot].dcb_mut() {
                dcb.reply_to = None;
            }
            if waiting {
                if let Some(dcb) = self.slots[caller].dcb_mut() {
                    dcb.frame.x[1..5].copy_from_slice(&frame.x[1..5]);
                    dcb.ipc_registers = false;
                }
                self.wake(caller, 0);
            }
        }
        self.receive_registers(slot, endpoint, frame)
    }

    /// The receiving half of `reply_recv_registers`: the next register call from the endpoint,
    /// its words into x1..x4, or a wait for one.
    fn receive_registers(
        &mut self,
        slot: usize,
        endpoint: usize,
        frame: &mut TrapFrame,
    ) -> Result<usize, Error> {
        let ep = self.endpoint(endpoint);
        match ep.senders.front().copied().map(usize::from) {
            Some(sender) if self.waits_for_registers(sender) => {
                self.endpoint_mut(endpoint).senders.pop_front();
                let generation = self.slots[sender].generation;
                if let Some(dcb) = self.slots[sender].dcb() {
                    frame.x[1..5].copy_from_slice(&dcb.frame.x[1..5]);
                }
                self.slots[sender].state = RunState::Blocked(Block::Reply);
                if let Some(dcb) = self.slots[slot].dcb_mut() {
                    dcb.reply_to = Some((sender as u8, generation));
                }
                Ok(0)
            }
            Some(_) => {
                self.bounce_memory_senders(endpoint);
                self.receive_registers(slot, endpoint, frame)
            }
            None => {
                let _ = self.endpoint_mut(endpoint).receivers.push_back(slot as u8);
                if let Some(dcb) = self.slots[slot].dcb_mut() {
                    dcb.ipc_registers = true;
                }
                self.block_current(Block::Recv(endpoint as u8));
                Ok(0)
            }
        }
    }

    /// Senders with memory descriptors at the front of `endpoint`, where a register receiver
    /// waits, cannot be received in registers: each learns so (as `recv` bounces register
    /// calls) until a register call or nothing is first.
    #[cold]
    #[inline(never)]
    fn bounce_memory_senders(&mut self, endpoint: usize) {
        while let Some(sender) = self.endpoint(endpoint).senders.front().copied() {
            let sender = usize::from(sender);
            if self.waits_for_registers(sender) {
                break;
            }
            self.endpoint_mut(endpoint).senders.pop_front();
            self.wake_with(sender, Err(Error::BadArgument));
        }
    }
}

/// A decoded IPC system call.
pub enum IpcCall {
    /// `send`.
    Send { endpoint: usize, message: usize },
    /// `recv`.
    Recv { endpoint: usize, receive: usize },
    /// `call`.
    Call {
        endpoint: usize,
        message: usize,
        receive: usize,
    },
    /// `reply`.
    Reply { message: usize },
    /// `reply_recv`.
    ReplyRecv {
        endpoint: usize,
        message: usize,
        receive: usize,
    },
}
