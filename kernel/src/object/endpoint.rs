//! The endpoint object: the domains waiting to send and to receive, and (two-stage transfer)
//! the queue of messages in kernel buffer frames; in a frame of its own, charged `kernel`.
//! Sending, receiving and the queue's operations are in [`crate::ipc`].

use crate::arch::aarch64::mmu::PAGE_BYTES;
use crate::memory::frames::Frame;
use crate::object::capability::Capability;
use crate::object::domain::MAX_DOMAINS;
use abi::{MAX_MESSAGE_BYTES, MAX_MESSAGE_CAPS};
use accounting::DomainId;
use heapless::Deque;
use kcore::queue::SlotQueue;

/// Most endpoints.
pub const MAX_ENDPOINTS: usize = 16;
/// Buffer frames one message can need.
pub const MESSAGE_FRAMES: usize = MAX_MESSAGE_BYTES / PAGE_BYTES;

/// A message waiting in an endpoint's queue (two-stage transfer), in kernel buffer frames.
#[derive(Clone, Copy)]
pub struct Queued {
    pub sender: DomainId,
    /// For a `call`: the caller (slot, generation) that waits for the reply to this message;
    /// the receiver that takes the message answers it.
    pub caller: Option<(u8, u32)>,
    pub length: usize,
    pub frames: [Frame; MESSAGE_FRAMES],
    pub caps: [Capability; MAX_MESSAGE_CAPS],
    pub cap_count: usize,
}

/// An endpoint, in its own frame (charged `kernel`).
pub struct Endpoint {
    pub senders: SlotQueue<MAX_DOMAINS>,
    pub receivers: SlotQueue<MAX_DOMAINS>,
    pub queue: Deque<Queued, { abi::MAX_QUEUED_MESSAGES }>,
    /// The domain that pays as "receiver" for queued messages: the first domain in the config
    /// given a capability to the endpoint.
    pub owner: Option<DomainId>,
}

const _: () = assert!(core::mem::size_of::<Endpoint>() <= PAGE_BYTES);
