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
use crate::object::capability::{Capability, Object};
use crate::object::domain::{Block, RunState};
use abi::{
    Error, Message, Receive, Rights, SharedRegion, MAX_MESSAGE_BYTES, MAX_MESSAGE_CAPS,
    MAX_MESSAGE_REGIONS,
};
use accounting::DomainId;
use heapless::{Deque, Vec};
use kcore::bootcfg::Transfer;
use kcore::queue::SlotQueue;

mod choice;
mod endpoint;
mod fast;
mod keeper;
mod message;
mod queue;
mod registers;
mod rendezvous;
mod transfer;

/// A fast path's "not taken" (false): cold and out of line, so that no early exit costs the
/// taken path an instruction (the compiler otherwise sets the `false` result ahead of each
/// test it makes).
#[cold]
#[inline(never)]
fn declined() -> bool {
    false
}

pub use crate::object::endpoint::{Endpoint, Queued, MAX_ENDPOINTS, MESSAGE_FRAMES};
pub use crate::object::region::MAX_REGION_OBJECTS;

/// A message taken from a sender and checked.
pub struct Outgoing {
    sender: DomainId,
    data_address: usize,
    length: usize,
    caps: Vec<Capability, MAX_MESSAGE_CAPS>,
    regions: Vec<SharedRegion, MAX_MESSAGE_REGIONS>,
    /// Two-stage: the data is in these kernel frames instead of the sender's memory.
    buffered: Option<[Frame; MESSAGE_FRAMES]>,
}

impl Outgoing {
    /// No message yet (decode fills it in).
    const EMPTY: Outgoing = Outgoing {
        sender: DomainId(0),
        data_address: 0,
        length: 0,
        caps: Vec::new(),
        regions: Vec::new(),
        buffered: None,
    };
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
                queue.remove(slot as u8);
            }
        }
        if let Some((caller, generation)) = self.slots[slot].dcb().and_then(|d| d.reply_to) {
            let caller = caller as usize;
            if self.slots[caller].generation == generation
                && matches!(self.slots[caller].state, RunState::Blocked(Block::Reply))
            {
                let fault = self.slots[caller].dcb().and_then(|d| d.fault);
                match fault {
                    // Its keeper ended before choosing who pays: the fallback.
                    Some(fault) if fault.kind == abi::FAULT_CHARGE_QUERY => {
                        self.expire_charge_query(caller)
                    }
                    // Its keeper ended before answering its fault: a request to reclaim needs no
                    // answer (it goes on); any other fault stops it, as without a keeper.
                    Some(fault) => {
                        if let Some(dcb) = self.slots[caller].dcb_mut() {
                            dcb.fault = None;
                            dcb.fault_owner = None;
                        }
                        if fault.kind == abi::FAULT_OVER_HIGH {
                            self.resume(caller)
                        } else {
                            self.stop_faulted(caller, Some(fault))
                        }
                    }
                    None => self.wake_with(caller, Err(Error::PeerGone)),
                }
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

    /// An IPC system call: decode (which reads and checks the message), then invoke. Kept out
    /// of the general dispatch's decoded-call type so a message is never copied between them.
    pub fn ipc_system_call(
        &mut self,
        slot: usize,
        call: abi::Syscall,
        args: [usize; 5],
    ) -> Result<usize, Error> {
        if call == abi::Syscall::Recv {
            // No message of its own: decode is the capability and the descriptor's alignment.
            let endpoint = self.endpoint_cap(slot, args[0], Rights::RECEIVE)?;
            if !args[1].is_multiple_of(8) {
                return Err(Error::BadArgument);
            }
            return self.ipc_recv(slot, endpoint, args[1]);
        }
        let mut message = Outgoing::EMPTY;
        let decoded = self.ipc_decode(slot, call, args, &mut message)?;
        self.ipc_call(slot, decoded, &message)
    }

    /// Invokes a decoded IPC system call.
    fn ipc_call(&mut self, slot: usize, call: IpcCall, message: &Outgoing) -> Result<usize, Error> {
        match call {
            IpcCall::Send { endpoint, address } => {
                self.ipc_send(slot, endpoint, address, message, None)
            }
            IpcCall::Call {
                endpoint,
                address,
                receive,
            } => self.ipc_send(slot, endpoint, address, message, Some(receive)),
            IpcCall::Reply { caller } => self.ipc_reply(slot, caller, message),
            IpcCall::ReplyRecv {
                endpoint,
                caller,
                receive,
            } => {
                self.ipc_reply(slot, caller, message)?;
                self.ipc_recv(slot, endpoint, receive)
            }
        }
    }

    /// Decodes the IPC system calls: the capability, the message descriptor with its data,
    /// capabilities and regions (read and checked: [`Kernel::take_message`]), a reply's caller,
    /// a receive descriptor's alignment. Changes nothing.
    pub fn ipc_decode(
        &mut self,
        slot: usize,
        call: abi::Syscall,
        args: [usize; 5],
        message: &mut Outgoing,
    ) -> Result<IpcCall, Error> {
        let aligned = |address: usize| {
            if address.is_multiple_of(8) {
                Ok(address)
            } else {
                Err(Error::BadArgument)
            }
        };
        Ok(match call {
            abi::Syscall::Send => {
                let endpoint = self.endpoint_cap(slot, args[0], Rights::SEND)?;
                self.take_message(slot, args[1], message)?;
                self.check_grant(slot, args[0], message)?;
                IpcCall::Send {
                    endpoint,
                    address: args[1],
                }
            }
            abi::Syscall::Call => {
                let endpoint = self.endpoint_cap(slot, args[0], Rights::SEND)?;
                self.take_message(slot, args[1], message)?;
                self.check_grant(slot, args[0], message)?;
                IpcCall::Call {
                    endpoint,
                    address: args[1],
                    receive: aligned(args[2])?,
                }
            }
            abi::Syscall::Reply => {
                let caller = self.reply_caller(slot)?;
                self.take_message(slot, args[0], message)?;
                IpcCall::Reply { caller }
            }
            abi::Syscall::ReplyRecv => {
                let endpoint = self.endpoint_cap(slot, args[0], Rights::RECEIVE)?;
                let caller = self.reply_caller(slot)?;
                self.take_message(slot, args[1], message)?;
                IpcCall::ReplyRecv {
                    endpoint,
                    caller,
                    receive: aligned(args[2])?,
                }
            }
            // ipc_system_call decodes `recv` itself; no other call reaches here.
            _ => return Err(Error::BadSyscall),
        })
    }
}

impl Kernel {
    /// A message with capabilities needs the `grant` right on the endpoint capability it is
    /// sent through (a reply's travel back on the call's, with no capability named).
    fn check_grant(
        &self,
        slot: usize,
        endpoint_cap: usize,
        message: &Outgoing,
    ) -> Result<(), Error> {
        if message.caps.is_empty() {
            return Ok(());
        }
        self.endpoint_cap(slot, endpoint_cap, Rights::SEND.union(Rights::GRANT))
            .map(|_| ())
    }
}

/// Whether a system call is an IPC call with memory descriptors (`call` and `reply_recv`
/// with no descriptor are register-sized messages, decoded by the general dispatch).
#[inline(always)]
pub fn carries_message(call: abi::Syscall, args: [usize; 5]) -> bool {
    match call {
        abi::Syscall::Send | abi::Syscall::Recv | abi::Syscall::Reply => true,
        abi::Syscall::Call | abi::Syscall::ReplyRecv => args[1] != 0 || args[2] != 0,
        _ => false,
    }
}

/// A decoded IPC system call (its message, read by decode, beside it).
pub enum IpcCall {
    /// `send` of the message at `address`.
    Send { endpoint: usize, address: usize },
    /// `call` with the message at `address`.
    Call {
        endpoint: usize,
        address: usize,
        receive: usize,
    },
    /// `reply` to `caller`.
    Reply { caller: usize },
    /// `reply_recv`.
    ReplyRecv {
        endpoint: usize,
        caller: usize,
        receive: usize,
    },
}
