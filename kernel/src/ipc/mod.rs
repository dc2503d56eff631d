//! Message passing (the seed's model): endpoints, `send`/`recv`/`call`/`reply`/`reply_recv`,
//! bounded atomic messages, direct cross-space copy (KeyKOS/EROS) or two-stage copy through
//! queued kernel buffers (Mach), out-of-line copy-on-write regions and capability transfer.
//! (Shared-memory region objects are in [`crate::object::region`] and
//! [`crate::syscall`]'s `region`.)
//!
//! Atomicity. A transfer first checks everything that cannot change state (bounds, the
//! receiver's descriptor, room for capabilities and regions, the receive pages lying in
//! writable regions), then maps the out-of-line regions copy-on-write, then makes the
//! receiver's descriptor and buffer pages present and private (populating, copying) together
//! with any transient buffer in one transaction ([`crate::charge::Transaction`]): every charge
//! reserved at once, so either all are made or none. Only then does it copy. If a step fails,
//! the regions mapped before it are removed again and nothing is delivered: no page of the
//! receiver is populated or charged (the cumulative charged/uncharged totals show the regions'
//! attempt). Then:
//! - the *sender* gets the error (over-limit, out-of-memory, receiver-too-small, bad-address)
//!   and a blocked receiver stays blocked, still waiting; the send is not retried by itself;
//! - a receive that finds a queued message (two-stage) it cannot take returns the error to the
//!   *receiver* and the message stays first in the queue.
//!
//! Out-of-line regions are transferred by direct transfer only (a two-stage send with regions
//! is `bad-argument`): queued messages carry data and capabilities. A receive whose transfer
//! from the first waiting sender fails goes on to the next waiting sender.
//!
//! Files, by concern: this one holds the types, the dispatch of decoded IPC calls and the
//! teardown of a dying domain's IPC state; [`endpoint`] endpoints' creation and end (the
//! object itself is [`crate::object::endpoint`]); [`message`] message decode; [`transfer`] the
//! transfer and kernel buffer frames; [`rendezvous`] send, receive, call and reply with memory
//! descriptors; [`queue`] two-stage (Mach) queues; [`registers`] register-sized messages and
//! their fast path; [`fast`] the fast path of small memory-descriptor messages.

use crate::arch::aarch64::mmu::{self, UserAccess, PAGE_BYTES};
use crate::charge::Transaction;
use crate::kernel::Kernel;
use crate::memory::frames::Frame;
use crate::memory::object::ObjectFrame;
use crate::object::capability::Capability;
use crate::object::domain::{Block, RunState};
use abi::{
    Error, Message, Receive, SharedRegion, MAX_MESSAGE_BYTES, MAX_MESSAGE_CAPS, MAX_MESSAGE_REGIONS,
};
use accounting::DomainId;
use heapless::{Deque, Vec};
use kcore::bootcfg::Transfer;

mod endpoint;
mod fast;
mod message;
mod queue;
mod registers;
mod rendezvous;
mod transfer;

pub use crate::object::endpoint::{Endpoint, Queued, MAX_ENDPOINTS, MESSAGE_FRAMES};
pub use crate::object::region::MAX_REGION_OBJECTS;

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
    /// Wakes a blocked domain with a system-call result in x0.
    fn wake_with(&mut self, slot: usize, result: Result<usize, Error>) {
        let value = match result {
            Ok(v) => v as u64,
            Err(e) => e.to_return_value() as u64,
        };
        self.wake(slot, value);
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
    pub fn ipc_call(&mut self, slot: usize, call: IpcCall) -> Result<usize, Error> {
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
