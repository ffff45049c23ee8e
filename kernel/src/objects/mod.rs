//! Kernel capability objects, and the one interface the dispatcher calls
//! them through.
//!
//! An object implements [`KernelObject`]: `call` for CALL (and, for the
//! endpoint owner, `recv`/`ret` for the RECV and RETURN opcodes; every other
//! object refuses those with `INTERFACE_MISMATCH`). A call gets the caller
//! as a typed context ([`Call`]) and answers with an [`Outcome`]: finished
//! now (result bytes, an application exception, a transport error, or a
//! completion the object wrote itself), or [`Outcome::Deferred`], in which
//! case the object took the call's [`Completion`] (the reserved CQ slot and
//! where the result goes) and fires it exactly once later, from whatever
//! event it waits for. A completion that is dropped without firing
//! completes as `CANCELLED`; one whose caller exited is cancelled on its
//! queue at the exit. The dispatcher has no per-type branches: timer
//! sleeps, process waits, spawns, endpoint calls and result capabilities
//! all take this one path.
//!
//! Method ids and parameter decoding come from the schema: each object's
//! `call` hands its params to the generated `capos_caps::api::*::dispatch`,
//! which calls one handler per schema method.

pub mod boot_package;
pub mod console;
pub mod endpoint;
pub mod entropy;
pub mod kinds;
pub mod memory;
pub mod null;
pub mod process;
pub mod session;
pub mod sysinfo;
pub mod terminal;
pub mod timer;
pub mod transfer;
pub mod vm;

use crate::proc::Process;
use crate::ring::{ParkKey, Queue};
use crate::sched::Thread;
use crate::usermem::{UserRead, UserWrite};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use capos_caps::cap_table::CapObject;
use capos_caps::exception::CapException;
use capos_ring::{CqCredit, Cqe, TransferList, TransportError};

/// A kernel object reachable through a capability.
pub trait KernelObject: CapObject {
    /// Runs one CALL.
    fn call(&self, cx: &mut Call<'_>) -> Outcome;

    /// A RECV on this object (only an endpoint's owner side accepts one).
    fn recv(&self, _cx: &mut Recv<'_>) -> Outcome {
        Outcome::Error(TransportError::InterfaceMismatch)
    }

    /// A RETURN on this object (only an endpoint's owner side accepts one).
    fn ret(&self, _cx: &mut Return<'_>) -> Outcome {
        Outcome::Error(TransportError::InterfaceMismatch)
    }

    /// How the dispatcher prepares a CALL on this object (one question per
    /// call, so the fast path pays for one indirect call, not three).
    fn shape(&self) -> CallShape {
        CallShape::PLAIN
    }

    /// Called after the object's capability was moved out of `holder`'s
    /// table (the holder gave it away). An endpoint's owner side cancels
    /// what the old holder was still receiving through it.
    fn moved_from(&self, _holder: &Process) {}

    /// Called when the object's capability has been moved into process
    /// `pid`'s table, before that process can learn its id: an endpoint's
    /// owner side refuses receives from anyone else from then on.
    fn moved_to(&self, _pid: u32) {}

    /// Called when the object is installed in a new process's CapSet,
    /// before that process runs: objects tied to their holder (its address
    /// space, its ledger) remember it. Later holders do not rebind.
    fn bind_holder(&self, _holder: &Arc<Process>) {}

    /// A CALL made through a capability scoped to `session`
    /// ([`session::Scoped`]): an endpoint's client facet delivers it as
    /// that session's call; every other object runs it as a plain call.
    fn call_as(&self, cx: &mut Call<'_>, _session: &Arc<session::SessionCore>) -> Outcome {
        self.call(cx)
    }

    /// The session this object is, if it is a `UserSession` (or a live
    /// scoped one): how spawns and `SessionAuthority` read a transferred
    /// session.
    fn session(&self) -> Option<Arc<session::SessionCore>> {
        None
    }

    /// The endpoint scope id, if this is an endpoint's owner side (for
    /// `SessionAuthority.reference`).
    fn endpoint_scope(&self) -> Option<u64> {
        None
    }
}

/// How the dispatcher prepares a CALL on an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallShape {
    /// Whether the parameters are copied into kernel memory first (a
    /// forwarding object reads them from the caller later).
    pub copies_params: bool,
    /// Whether capabilities may be sent with the call.
    pub accepts_transfers: bool,
    /// Whether the caller's result buffer is checked writable before the
    /// call (so that a bad buffer never lets a side effect happen without
    /// its result). An object that writes its result only when the call
    /// completes later, and checks the buffer then, says no.
    pub probes_result: bool,
}

impl CallShape {
    /// Parameters copied, no transfers, result buffer checked first: most
    /// objects.
    pub const PLAIN: CallShape = CallShape {
        copies_params: true,
        accepts_transfers: false,
        probes_result: true,
    };
}

/// A kernel object as the capability table holds it.
pub type Object = Arc<dyn KernelObject>;

/// Proof that an object took a call's [`Completion`] (only
/// [`Submitted::defer`] makes one).
pub struct Deferred(());

/// What an operation produced.
pub enum Outcome {
    /// Finished: this many result bytes are in [`Call::results`].
    Done(usize),
    /// Finished with an application exception.
    Exception(CapException),
    /// Refused with a transport error.
    Error(TransportError),
    /// Finished; the object wrote whatever the completion describes.
    Complete(Cqe),
    /// Completes later, through the completion the object took.
    Deferred(Deferred),
}

/// A capability a method returns.
pub struct ResultCap {
    /// The object.
    pub object: Object,
    /// The interface the caller receives it as.
    pub interface_id: u64,
}

impl ResultCap {
    /// `object` returned as its own interface.
    pub fn new(object: Object) -> ResultCap {
        let interface_id = object.interface_id();
        ResultCap {
            object,
            interface_id,
        }
    }
}

/// What every submission carries: the submitting thread, and the CQ slot
/// reserved for its completion until something completes it.
pub struct Submitted<'a> {
    /// The submitting thread.
    pub thread: &'a Arc<Thread>,
    user_data: u64,
    credit: Option<CqCredit>,
    result: UserWrite,
}

impl<'a> Submitted<'a> {
    /// A submission of `thread` with `user_data`, completing into `credit`;
    /// a deferred completion writes its result into `result`.
    pub fn new(
        thread: &'a Arc<Thread>,
        user_data: u64,
        credit: CqCredit,
        result: UserWrite,
    ) -> Self {
        Submitted {
            thread,
            user_data,
            credit: Some(credit),
            result,
        }
    }

    /// The submitting process.
    pub fn process(&self) -> &'a Arc<Process> {
        &self.thread.process
    }

    /// The SQE's `user_data`.
    pub fn user_data(&self) -> u64 {
        self.user_data
    }

    /// Takes the completion to fire later, parked on `queue` so that the
    /// caller's exit can cancel it.
    pub fn defer(&mut self, queue: Queue) -> (Completion, Deferred) {
        let key = self.thread.process.ring.park(queue);
        let credit = self.credit.take();
        debug_assert!(credit.is_some(), "a submission deferred twice");
        (
            Completion {
                thread: Arc::downgrade(self.thread),
                user_data: self.user_data,
                credit,
                key,
                result: self.result,
            },
            Deferred(()),
        )
    }

    /// The credit, unless the operation deferred (dispatcher only).
    pub(crate) fn take_credit(&mut self) -> Option<CqCredit> {
        self.credit.take()
    }
}

/// A completion owed to a caller: its reserved CQ slot, where its result
/// goes, and its parking. Fired exactly once: by [`Completion::finish`], or,
/// if dropped unfired, as `CANCELLED`. Holds its thread weakly: a caller
/// that exited gets nothing (and its exit already cancelled the parking).
pub struct Completion {
    thread: Weak<Thread>,
    user_data: u64,
    credit: Option<CqCredit>,
    key: ParkKey,
    result: UserWrite,
}

impl Completion {
    /// The key it is parked under.
    pub fn key(&self) -> ParkKey {
        self.key
    }

    /// The caller's result buffer.
    pub fn result(&self) -> UserWrite {
        self.result
    }

    /// The calling thread, if it still exists.
    pub fn thread(&self) -> Option<Arc<Thread>> {
        self.thread.upgrade()
    }

    /// Whether the caller still exists.
    pub fn caller_alive(&self) -> bool {
        self.thread.strong_count() > 0
    }

    /// Completes with the CQE `make` builds from the calling thread, the
    /// SQE's `user_data` and the caller's result buffer (it may write the
    /// result into the caller's memory first), and wakes the caller; with
    /// `handoff`, to run next on this CPU.
    pub fn finish(mut self, handoff: bool, make: impl FnOnce(&Arc<Thread>, u64, UserWrite) -> Cqe) {
        let Some(credit) = self.credit.take() else {
            return;
        };
        let Some(thread) = self.thread.upgrade() else {
            return;
        };
        let cqe = make(&thread, self.user_data, self.result);
        thread.process.ring.unpark_and_post(self.key, credit, &cqe);
        if handoff {
            crate::sched::wake_handoff(&thread);
        } else {
            crate::sched::wake(&thread);
        }
        // May fire from the timer interrupt for a thread reaped meanwhile.
        crate::sched::release_thread(thread);
    }

    /// Whether this completion answers a call of `thread`.
    pub fn is_for(&self, thread: &Thread) -> bool {
        core::ptr::eq(self.thread.as_ptr(), thread)
    }

    /// Completes with `error`.
    pub fn fail(self, error: TransportError) {
        self.finish(false, |_, user_data, _| Cqe::error(user_data, error));
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(credit) = self.credit.take() {
            if let Some(thread) = self.thread.upgrade() {
                let cqe = Cqe::error(self.user_data, TransportError::Cancelled);
                thread.process.ring.unpark_and_post(self.key, credit, &cqe);
                crate::sched::wake(&thread);
                crate::sched::release_thread(thread);
            }
        }
    }
}

/// One CALL as an object sees it.
pub struct Call<'a> {
    /// The submission (caller, completion).
    pub sub: Submitted<'a>,
    /// The method ordinal.
    pub method_id: u16,
    /// The parameters, copied into kernel memory (empty for objects that
    /// do not copy them; see [`CallShape::copies_params`]).
    pub params: &'a [u8],
    /// The parameters where the caller keeps them.
    pub params_user: UserRead,
    /// The caller's result buffer.
    pub result_buf: UserWrite,
    /// Result bytes of a method that finishes now ([`Outcome::Done`]).
    pub results: &'a mut Vec<u8>,
    /// Result capabilities of a method that finishes now, in result-cap
    /// index order; inserted into the caller's table only if the call
    /// succeeds, and described after the result bytes.
    pub result_caps: Vec<ResultCap>,
    /// The transfer descriptors sent with the call.
    pub transfers: TransferList,
}

impl Call<'_> {
    /// The calling process.
    pub fn caller(&self) -> &Arc<Process> {
        self.sub.process()
    }

    /// Serialises `message` as the result; an exception if it does not fit
    /// the caller's buffer.
    pub fn reply(
        &mut self,
        message: &capnp::message::Builder<impl capnp::message::Allocator>,
    ) -> Outcome {
        self.results.clear();
        let need = capnp::serialize::compute_serialized_size_in_words(message) * 8;
        if need > self.result_buf.len() as usize {
            return Outcome::Exception(CapException::failed(alloc::format!(
                "result buffer too small: {need} bytes needed"
            )));
        }
        if capnp::serialize::write_message(&mut *self.results, message).is_err() {
            return Outcome::Exception(CapException::failed("result did not serialise"));
        }
        Outcome::Done(self.results.len())
    }

    /// An empty result (every field at its default: zero bytes).
    pub fn reply_empty(&mut self) -> Outcome {
        self.results.clear();
        Outcome::Done(0)
    }

    /// Adds a result capability; returns its result-cap index.
    pub fn push_result_cap(&mut self, cap: ResultCap) -> u16 {
        self.result_caps.push(cap);
        (self.result_caps.len() - 1) as u16
    }
}

impl capos_caps::server::Context for Call<'_> {
    type Reply = Outcome;

    fn bad_params(&mut self, _interface: u64, _method: u16, error: capnp::Error) -> Outcome {
        Outcome::Exception(bad_params(error))
    }

    fn no_such_method(&mut self, _interface: u64, _method: u16) -> Outcome {
        Outcome::Error(TransportError::NoSuchMethod)
    }
}

/// The exception for parameters that do not decode.
pub fn bad_params(e: capnp::Error) -> CapException {
    CapException::failed(alloc::format!("malformed parameters: {e}"))
}

/// `?` for handlers: an exception ends the call with it.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $crate::objects::Outcome::Exception(e.into()),
        }
    };
}
pub(crate) use tri;

/// A capnp accessor's failure inside a handler is malformed parameters.
pub fn param<T>(r: capnp::Result<T>) -> Result<T, CapException> {
    r.map_err(bad_params)
}

/// One RECV as an endpoint sees it.
pub struct Recv<'a> {
    /// The submission.
    pub sub: Submitted<'a>,
    /// Where the delivered call goes.
    pub buffer: UserWrite,
    /// Whether the header carries the caller reference
    /// (`RECV_FLAG_CALLER_SESSION`).
    pub caller_session: bool,
}

/// One RETURN as an endpoint sees it.
pub struct Return<'a> {
    /// The submission.
    pub sub: Submitted<'a>,
    /// The call being answered.
    pub call_id: u64,
    /// The result bytes (or serialized exception) in the server's memory.
    pub payload: UserRead,
    /// Whether `payload` is an exception.
    pub exception: bool,
    /// Capabilities returned with the result.
    pub transfers: TransferList,
}

/// Implements `CapObject` (interface id and label) for a kernel object.
macro_rules! names {
    ($ty:ty, $module:ident, $label:literal) => {
        impl capos_caps::cap_table::CapObject for $ty {
            fn interface_id(&self) -> u64 {
                capos_caps::api::$module::ID
            }
            fn label(&self) -> &str {
                $label
            }
        }
    };
}
pub(crate) use names;

/// Runs the generated dispatch of interface `$module` for a CALL.
macro_rules! serve {
    ($module:ident, $self:ident, $cx:ident) => {{
        let (method, params) = ($cx.method_id, $cx.params);
        capos_caps::api::$module::dispatch($self, $cx, method, params)
    }};
}
pub(crate) use serve;
