//! Endpoints: a server holding the owner side ([`EndpointOwner`]) receives
//! the calls clients make through client facets ([`ClientEndpoint`], CALL
//! only).
//!
//! A CALL parks its completion on the endpoint at once: it waits for the
//! RETURN whether or not a server is ready. If a RECV is waiting, the call
//! is delivered on the spot: a `CallHeader`, then the parameters copied
//! straight from the caller's memory into the server's RECV buffer (no
//! kernel copy; the caller keeps its parameter buffer valid until the CALL
//! completes), then one transfer-result record per capability sent. The
//! server's RECV completes, and it is handed this CPU next. Otherwise the
//! call waits in a bounded queue. RETURN copies the result from the
//! server's memory straight into the caller's result buffer, completes the
//! caller (again handing it this CPU) and then the RETURN itself.
//!
//! Queues are fixed-capacity (allocated when the endpoint is made) and
//! charged to the owner's ledger: a queued call one `QueuedCalls`, a
//! delivered call one `InFlightCalls`. Nothing on the CALL/RECV/RETURN path
//! allocates unless capabilities travel with the call.
//!
//! When the owner side goes, every queued, waiting and in-flight operation
//! completes with `CANCELLED` (including the owner's own pending RECVs, and
//! its own CALLs if it called itself). A caller that exits has its parked
//! completions cancelled here; its in-flight call stays until the server
//! answers it (`CANCELLED` for the server) or goes.
//!
//! Lock order: endpoint → cap tables → address spaces → ring completion
//! side (waking a thread takes no lock of its own: its scheduling state is
//! one atomic word).

use super::session::SessionCore;
use super::transfer::{self, RECORD};
use super::{
    names, serve, Call, CallShape, Completion, KernelObject, Outcome, Recv, ResultCap, Return,
};
use crate::proc::aspace::{AddressSpace, CopySide};
use crate::proc::Process;
use crate::ring::{ParkKey, Queue, WaitQueue};
use crate::sync::SpinLock;
use crate::usermem::{UserRead, UserWrite};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use capnp::message::Builder;
use capos_caps::ledger::{Ledger, Reservation, Resource};
use capos_caps::schema::capos_capnp::endpoint;
use capos_kcore::session::ReferenceCache;
use capos_ring::process::{
    CallHeader, CALLER_REFERENCE_PRESENT, CALLER_SESSION_LIVE, CALL_HEADER_SESSION_SIZE,
    CALL_HEADER_SIZE,
};
use capos_ring::{Cqe, TransportError, CQE_FLAG_EXCEPTION, CQE_FLAG_TRANSFER_RESULTS};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// RECVs waiting for a call.
pub const MAX_PENDING_RECVS: usize = 16;
/// Calls waiting for a RECV.
pub const MAX_QUEUED_CALLS: usize = 16;
/// Calls delivered and not yet answered.
pub const MAX_IN_FLIGHT: usize = 16;
/// Largest parameter block one call may carry.
pub const MAX_CALL_PARAMS: u32 = 16 * 1024;

/// A call on its way to a server.
struct Incoming {
    /// The caller's CALL completion (parked here until RETURN).
    completion: Completion,
    caller_pid: u32,
    method_id: u16,
    /// The session the call speaks for when it came through a scoped
    /// capability; `None`: the caller's process's (read at delivery, and
    /// only by a RECV that asks for the reference).
    scoped: Option<Arc<SessionCore>>,
    /// Whether the session it speaks for was live when it was made.
    session_live: bool,
    /// The parameters, in the caller's memory.
    params: UserRead,
    /// Capabilities sent with the call (`(cap id, ABI mode)`), committed
    /// into the server's table only at delivery.
    transfers: Option<Box<[(u64, u32)]>>,
}

/// A call in the queue, with its `QueuedCalls` charge.
struct Queued {
    call: Incoming,
    _charge: Reservation,
}

/// A server's RECV waiting for a call.
struct Waiting {
    completion: Completion,
    buffer: UserWrite,
    /// The receiving process.
    pid: u32,
    /// It asked for the caller reference.
    caller_session: bool,
}

/// A delivered call: the caller's completion (gone if the caller exited,
/// or out with a RETURN that is answering it), and its `InFlightCalls`
/// charge.
struct InFlight {
    completion: Option<Completion>,
    /// The process it was delivered to.
    server_pid: u32,
    /// A RETURN is answering it now.
    answering: bool,
    _charge: Reservation,
}

struct State {
    calls: VecDeque<Queued>,
    recvs: VecDeque<Waiting>,
    in_flight: [Option<InFlight>; MAX_IN_FLIGHT],
    /// Generation of each in-flight slot (part of its call ids).
    generations: [u32; MAX_IN_FLIGHT],
    closed: bool,
    /// The last session's reference at this endpoint.
    references: ReferenceCache,
}

impl State {
    /// The call id of slot `slot` at its current generation (never 0).
    fn call_id(&self, slot: usize) -> u64 {
        (u64::from(self.generations[slot]) << 8) | (slot as u64 + 1)
    }

    /// The slot a call id names, if that call is in flight.
    fn slot_of(&self, call_id: u64) -> Option<usize> {
        let slot = (call_id & 0xff).checked_sub(1)? as usize;
        (slot < MAX_IN_FLIGHT && self.in_flight[slot].is_some() && self.call_id(slot) == call_id)
            .then_some(slot)
    }
}

/// The kernel object behind both sides.
pub struct Endpoint {
    state: SpinLock<State>,
    ledger: spin::Once<Arc<Ledger>>,
    /// The pid of the process holding the owner side ([`NO_HOLDER`] before
    /// it is granted). Stored when a move commits, before the old holder
    /// is told: a receive the old holder raced in after that is refused
    /// (checked under the state lock), one it queued before is cancelled.
    holder: AtomicU32,
    /// This endpoint's scope for caller references: given when it is made,
    /// never reused within a boot.
    scope: u64,
    me: Weak<Endpoint>,
}

/// The next endpoint scope id.
static NEXT_SCOPE: AtomicU64 = AtomicU64::new(1);

/// `Endpoint::holder` of an endpoint not yet granted to anyone.
const NO_HOLDER: u32 = u32::MAX;

/// Objects a delivery moved out of a caller's table, told after the
/// endpoint's lock is released (`moved_from` may take another endpoint's
/// lock; two endpoint locks are never held together).
#[derive(Default)]
struct Moved {
    objects: Vec<super::Object>,
    from: Option<Arc<crate::sched::Thread>>,
}

impl Moved {
    fn tell(self) {
        if let Some(from) = self.from {
            for object in self.objects {
                object.moved_from(&from.process);
            }
        }
    }
}

/// What became of one delivery attempt.
enum Delivery {
    /// The call is in flight and the RECV completed.
    Done,
    /// The RECV failed (its buffer cannot take the call); the call comes
    /// back untouched.
    RecvFailed(Incoming),
    /// The RECV's thread is gone; the call comes back untouched.
    RecvGone(Incoming),
    /// The call failed and was completed with an error; the RECV is still
    /// open and comes back.
    CallFailed(Waiting),
    /// Both were completed with an error (the server's buffer went away
    /// half-way through the delivery).
    Aborted,
}

impl Endpoint {
    /// An open endpoint with empty queues, not yet charged to anyone; see
    /// [`Endpoint::charge_to`].
    pub fn new() -> Arc<Self> {
        Arc::new_cyclic(|me| Endpoint {
            state: SpinLock::new(State {
                calls: VecDeque::with_capacity(MAX_QUEUED_CALLS),
                recvs: VecDeque::with_capacity(MAX_PENDING_RECVS),
                in_flight: [const { None }; MAX_IN_FLIGHT],
                generations: [1; MAX_IN_FLIGHT],
                closed: false,
                references: ReferenceCache::new(),
            }),
            ledger: spin::Once::new(),
            holder: AtomicU32::new(NO_HOLDER),
            scope: NEXT_SCOPE.fetch_add(1, Ordering::Relaxed),
            me: me.clone(),
        })
    }

    /// Charges the queues to `ledger` (the owner's; set once, before the
    /// owner runs).
    pub fn charge_to(&self, ledger: &Arc<Ledger>) {
        self.ledger.call_once(|| ledger.clone());
    }

    /// Records process `pid` as the owner side's holder.
    fn set_holder(&self, pid: u32) {
        self.holder.store(pid, Ordering::Release);
    }

    /// Whether process `pid` holds the owner side (or nobody was recorded).
    fn held_by(&self, pid: u32) -> bool {
        let holder = self.holder.load(Ordering::Acquire);
        holder == NO_HOLDER || holder == pid
    }

    fn reserve(&self, resource: Resource) -> Result<Reservation, TransportError> {
        self.ledger
            .get()
            .ok_or(TransportError::Cancelled)?
            .reserve(resource, 1)
            .map_err(|_| TransportError::Quota)
    }

    fn queue(&self) -> Queue {
        Queue::Object(self.me.clone() as Weak<dyn WaitQueue>)
    }

    /// A client's CALL: parks it, then delivers or queues it; `scoped` is
    /// the session it speaks for when it came through a scoped capability.
    #[inline(always)]
    fn call(
        &self,
        cx: &mut Call<'_>,
        transfers: Option<Box<[(u64, u32)]>>,
        scoped: Option<Arc<SessionCore>>,
    ) -> Outcome {
        let mut moved = Moved::default();
        let outcome = self.call_locked(cx, transfers, scoped, &mut moved);
        moved.tell();
        outcome
    }

    #[inline(always)]
    fn call_locked(
        &self,
        cx: &mut Call<'_>,
        transfers: Option<Box<[(u64, u32)]>>,
        scoped: Option<Arc<SessionCore>>,
        moved: &mut Moved,
    ) -> Outcome {
        let mut st = self.state.lock();
        if st.closed {
            return Outcome::Error(TransportError::Cancelled);
        }
        let (completion, deferred) = cx.sub.defer(self.queue());
        let session_live = scoped
            .as_ref()
            .unwrap_or(&cx.sub.process().session)
            .is_live();
        let mut call = Incoming {
            completion,
            caller_pid: cx.caller().pid,
            method_id: cx.method_id,
            scoped,
            session_live,
            params: cx.params_user,
            transfers,
        };
        while let Some(r) = st.recvs.pop_front() {
            match self.deliver(&mut st, r, call, moved) {
                Delivery::Done | Delivery::Aborted => return Outcome::Deferred(deferred),
                Delivery::RecvFailed(back) | Delivery::RecvGone(back) => call = back,
                Delivery::CallFailed(r) => {
                    st.recvs.push_front(r);
                    return Outcome::Deferred(deferred);
                }
            }
        }
        // The owner's quota first (QUOTA), then the queue's own bound.
        match self.reserve(Resource::QueuedCalls) {
            Ok(charge) if st.calls.len() < MAX_QUEUED_CALLS => st.calls.push_back(Queued {
                call,
                _charge: charge,
            }),
            Ok(_) => {
                drop(st);
                call.completion.fail(TransportError::QueueFull);
            }
            Err(e) => {
                drop(st);
                call.completion.fail(e);
            }
        }
        Outcome::Deferred(deferred)
    }

    /// A server's RECV: takes a queued call or waits for one.
    fn recv(&self, cx: &mut Recv<'_>) -> Outcome {
        let mut moved = Moved::default();
        let outcome = self.recv_locked(cx, &mut moved);
        moved.tell();
        outcome
    }

    fn recv_locked(&self, cx: &mut Recv<'_>, moved: &mut Moved) -> Outcome {
        if cx.buffer.is_empty() {
            return Outcome::Error(TransportError::BadAddress);
        }
        let mut st = self.state.lock();
        if st.closed {
            return Outcome::Error(TransportError::Cancelled);
        }
        if !self.held_by(cx.sub.process().pid) {
            return Outcome::Error(TransportError::BadCap);
        }
        let (completion, deferred) = cx.sub.defer(self.queue());
        let mut r = Waiting {
            completion,
            buffer: cx.buffer,
            pid: cx.sub.process().pid,
            caller_session: cx.caller_session,
        };
        while let Some(Queued { call, _charge }) = st.calls.pop_front() {
            if !call.completion.caller_alive() {
                continue;
            }
            match self.deliver(&mut st, r, call, moved) {
                Delivery::Done | Delivery::RecvGone(_) | Delivery::Aborted => {
                    return Outcome::Deferred(deferred)
                }
                Delivery::RecvFailed(back) => {
                    st.calls.push_front(Queued {
                        call: back,
                        _charge,
                    });
                    return Outcome::Deferred(deferred);
                }
                Delivery::CallFailed(open) => r = open,
            }
        }
        if st.recvs.len() >= MAX_PENDING_RECVS {
            drop(st);
            r.completion.fail(TransportError::QueueFull);
            return Outcome::Deferred(deferred);
        }
        // A RECV that waits must have a buffer that can take a call now (a
        // delivery checks it again); one that was served at once has been
        // checked by its delivery.
        let process = cx.sub.process();
        if process
            .aspace
            .probe_write(r.buffer, r.buffer.len() as usize)
            .is_err()
        {
            drop(st);
            r.completion.fail(TransportError::BadAddress);
            return Outcome::Deferred(deferred);
        }
        st.recvs.push_back(r);
        Outcome::Deferred(deferred)
    }

    /// Delivers `call` into RECV `r` (see [`Delivery`]). Objects the call
    /// moved out of the caller's table are noted in `moved`, to be told once
    /// the endpoint's lock is released.
    fn deliver(&self, st: &mut State, r: Waiting, call: Incoming, moved: &mut Moved) -> Delivery {
        let Some(server) = r.completion.thread() else {
            return Delivery::RecvGone(call);
        };
        let Some(caller) = call.completion.thread() else {
            // The caller is gone: nothing to deliver, the RECV stays open.
            drop(call);
            return Delivery::CallFailed(r);
        };
        let records = call.transfers.as_ref().map_or(0, |t| t.len());
        let params_len = call.params.len() as usize;
        let header_len = if r.caller_session {
            CALL_HEADER_SESSION_SIZE
        } else {
            CALL_HEADER_SIZE
        };
        let need = header_len + params_len + records * RECORD;
        if need > r.buffer.len() as usize {
            r.completion.fail(TransportError::BufferTooSmall);
            return Delivery::RecvFailed(call);
        }
        let Some(slot) = st.in_flight.iter().position(Option::is_none) else {
            call.completion.fail(TransportError::Quota);
            return Delivery::CallFailed(r);
        };
        let charge = match self.reserve(Resource::InFlightCalls) {
            Ok(c) => c,
            Err(e) => {
                call.completion.fail(e);
                return Delivery::CallFailed(r);
            }
        };
        let call_id = st.call_id(slot);
        let mut header = CallHeader {
            call_id,
            method_id: call.method_id,
            session_flags: if call.session_live {
                CALLER_SESSION_LIVE
            } else {
                0
            },
            params_len: params_len as u32,
            caller_pid: call.caller_pid,
        };
        let plain;
        let with_reference;
        let header: &[u8] = if r.caller_session {
            let session = call.scoped.as_ref().unwrap_or(&caller.process.session);
            // One HMAC per change of session at this endpoint.
            let (reference, _) =
                st.references
                    .get(crate::entropy::boot_secret(), self.scope, &session.identity);
            header.session_flags |= CALLER_REFERENCE_PRESENT;
            with_reference = header.to_bytes_with_reference(&reference);
            &with_reference
        } else {
            plain = header.to_bytes();
            &plain
        };
        // The header and the parameters in one checked copy (with no
        // capabilities travelling, that is the whole delivery); a failure
        // here changes nothing anywhere.
        match AddressSpace::copy_framed(
            &caller.process.aspace,
            call.params,
            &server.process.aspace,
            r.buffer,
            header_len,
            params_len,
            header,
        ) {
            Ok(()) => {}
            Err(CopySide::Source) => {
                call.completion.fail(TransportError::BadAddress);
                return Delivery::CallFailed(r);
            }
            Err(CopySide::Destination) => {
                r.completion.fail(TransportError::BadAddress);
                return Delivery::RecvFailed(call);
            }
        }
        // Then the capabilities, all or nothing, and their records after
        // the parameters.
        let moved = match &call.transfers {
            None => Vec::new(),
            Some(t) => match transfer::commit_noting_moves(
                &caller.process,
                &server.process,
                t,
                &mut moved.objects,
            ) {
                Ok(m) => {
                    if !moved.objects.is_empty() {
                        moved.from = Some(caller.clone());
                    }
                    m
                }
                Err(e) => {
                    call.completion.fail(e);
                    return Delivery::CallFailed(r);
                }
            },
        };
        if !moved.is_empty() {
            let mut recs = Vec::new();
            transfer::records(&moved, &mut recs);
            let written = server
                .process
                .aspace
                .write(r.buffer, header_len + params_len, &[&recs]);
            if written.is_err() {
                // The server unmapped its buffer since the copy above: the
                // caps it received stay with it, the call cannot be
                // answered.
                r.completion.fail(TransportError::BadAddress);
                call.completion.fail(TransportError::Cancelled);
                return Delivery::Aborted;
            }
        }
        st.in_flight[slot] = Some(InFlight {
            completion: Some(call.completion),
            server_pid: r.pid,
            answering: false,
            _charge: charge,
        });
        r.completion.finish(true, |_, user_data, _| {
            let mut cqe = Cqe::success(user_data, (header_len + params_len) as u32);
            cqe.call_id = call_id;
            if !moved.is_empty() {
                cqe.flags = CQE_FLAG_TRANSFER_RESULTS;
                cqe.xfer_count = moved.len() as u32;
            }
            cqe
        });
        Delivery::Done
    }

    /// A server's RETURN of `call_id`.
    fn ret(&self, cx: &mut Return<'_>) -> Outcome {
        let server = cx.sub.process().clone();
        if cx.exception && cx.transfers.count() != 0 {
            return Outcome::Error(TransportError::InvalidTransfer);
        }
        let transfers: Vec<(u64, u32)> = if cx.transfers.count() == 0 {
            Vec::new()
        } else {
            match transfer::resolve(&server, cx.transfers) {
                Ok(t) => t.iter().map(|c| c.abi()).collect(),
                Err(e) => return Outcome::Error(e),
            }
        };
        let (slot, completion) = {
            let mut st = self.state.lock();
            let Some(slot) = st.slot_of(cx.call_id) else {
                return Outcome::Error(TransportError::BadCallId);
            };
            let f = st.in_flight[slot]
                .as_mut()
                .expect("slot_of names an occupied slot");
            // Only the process the call was delivered to answers it.
            if f.answering || f.server_pid != server.pid {
                return Outcome::Error(TransportError::BadCallId);
            }
            let taken = f.completion.take();
            f.answering = taken.is_some();
            (slot, taken)
        };
        // A caller that exited: the answer has nowhere to go.
        let Some(completion) = completion.filter(Completion::caller_alive) else {
            self.finish_slot(slot);
            return Outcome::Error(TransportError::Cancelled);
        };
        let Some(caller) = completion.thread() else {
            self.finish_slot(slot);
            return Outcome::Error(TransportError::Cancelled);
        };
        let done = Outcome::Complete(Cqe::success(cx.sub.user_data(), 0));
        let len = cx.payload.len() as usize;
        let room = completion.result();
        if len + transfers.len() * RECORD > room.len() as usize {
            self.finish_slot(slot);
            completion.finish(true, |_, ud, _| {
                Cqe::error(ud, TransportError::BufferTooSmall)
            });
            return done;
        }
        match AddressSpace::copy_between(
            &server.aspace,
            cx.payload,
            &caller.process.aspace,
            room,
            0,
            len,
        ) {
            Ok(()) => {}
            Err(CopySide::Source) => {
                self.put_back(slot, completion);
                return Outcome::Error(TransportError::BadAddress);
            }
            Err(CopySide::Destination) => {
                self.finish_slot(slot);
                completion.finish(true, |_, ud, _| Cqe::error(ud, TransportError::BadAddress));
                return done;
            }
        }
        let moved = if transfers.is_empty() {
            Vec::new()
        } else {
            match transfer::commit(&server, &caller.process, &transfers) {
                Ok(m) => m,
                Err(e) => {
                    // Both tables as they were: the server may answer again.
                    self.put_back(slot, completion);
                    return Outcome::Error(e);
                }
            }
        };
        let recorded = if moved.is_empty() {
            Ok(())
        } else {
            let mut recs = Vec::new();
            transfer::records(&moved, &mut recs);
            caller.process.aspace.write(room, len, &[&recs])
        };
        self.finish_slot(slot);
        let exception = cx.exception;
        completion.finish(true, |_, ud, _| match recorded {
            Ok(()) => {
                let mut c = Cqe::success(ud, len as u32);
                if exception {
                    c.flags = CQE_FLAG_EXCEPTION;
                }
                if !moved.is_empty() {
                    c.flags |= CQE_FLAG_TRANSFER_RESULTS;
                    c.xfer_count = moved.len() as u32;
                }
                c
            }
            Err(_) => {
                // The caller unmapped its buffer meanwhile: it cannot learn
                // the new ids, so it does not keep the capabilities.
                let ids: Vec<_> = moved.iter().map(|m| m.cap).collect();
                transfer::uninstall(&caller.process, &ids);
                Cqe::error(ud, TransportError::BadAddress)
            }
        });
        done
    }

    /// The call in slot `slot` is answered (or abandoned): the slot is free
    /// for a new call id, and its charge is given back.
    fn finish_slot(&self, slot: usize) {
        let gone = {
            let mut st = self.state.lock();
            st.generations[slot] = st.generations[slot].wrapping_add(1).max(1);
            st.in_flight[slot].take()
        };
        drop(gone);
    }

    /// Puts the completion of a call whose RETURN failed back, so the
    /// server can answer it again; if the endpoint closed meanwhile the
    /// caller gets `CANCELLED`.
    fn put_back(&self, slot: usize, completion: Completion) {
        let mut st = self.state.lock();
        let closed = st.closed;
        match st.in_flight[slot].as_mut() {
            Some(f) if !closed => {
                f.completion = Some(completion);
                f.answering = false;
            }
            _ => {
                drop(st);
                completion.fail(TransportError::Cancelled);
            }
        }
    }

    /// The owner side left process `pid`: the RECVs it has waiting and the
    /// calls it received and has not answered complete with `CANCELLED`
    /// (it can no longer answer them, and must not receive calls meant for
    /// the new holder).
    fn abandoned_by(&self, pid: u32) {
        let (recvs, calls) = {
            let mut st = self.state.lock();
            let mut recvs = Vec::new();
            let mut i = 0;
            while i < st.recvs.len() {
                if st.recvs[i].pid == pid {
                    recvs.extend(st.recvs.remove(i));
                } else {
                    i += 1;
                }
            }
            let mut calls = Vec::new();
            for slot in 0..MAX_IN_FLIGHT {
                if st.in_flight[slot]
                    .as_ref()
                    .is_some_and(|f| f.server_pid == pid && !f.answering)
                {
                    st.generations[slot] = st.generations[slot].wrapping_add(1).max(1);
                    calls.extend(st.in_flight[slot].take());
                }
            }
            (recvs, calls)
        };
        drop(recvs);
        drop(calls);
    }

    /// The owner side is gone: everything queued, waiting or in flight
    /// completes with `CANCELLED`.
    fn close(&self) {
        let (calls, recvs, in_flight) = {
            let mut st = self.state.lock();
            st.closed = true;
            (
                core::mem::take(&mut st.calls),
                core::mem::take(&mut st.recvs),
                core::mem::replace(&mut st.in_flight, [const { None }; MAX_IN_FLIGHT]),
            )
        };
        // Each completion, dropped unfired, completes as CANCELLED.
        drop(calls);
        drop(recvs);
        drop(in_flight);
    }
}

impl WaitQueue for Endpoint {
    fn cancel(&self, key: ParkKey) {
        let mut gone_call = None;
        let mut gone_recv = None;
        let mut gone_flight = None;
        {
            let mut st = self.state.lock();
            if let Some(i) = st.calls.iter().position(|q| q.call.completion.key() == key) {
                gone_call = st.calls.remove(i);
            } else if let Some(i) = st.recvs.iter().position(|w| w.completion.key() == key) {
                gone_recv = st.recvs.remove(i);
            } else {
                for f in st.in_flight.iter_mut().flatten() {
                    if f.completion.as_ref().is_some_and(|c| c.key() == key) {
                        gone_flight = f.completion.take();
                    }
                }
            }
        }
        drop((gone_call, gone_recv, gone_flight));
    }
}

/// The owner side: RECV and RETURN, and `clientFacet`.
pub struct EndpointOwner {
    ep: Arc<Endpoint>,
}

impl EndpointOwner {
    /// The owner side of `ep`.
    pub fn new(ep: Arc<Endpoint>) -> Self {
        EndpointOwner { ep }
    }
}

impl Drop for EndpointOwner {
    fn drop(&mut self) {
        self.ep.close();
    }
}

names!(EndpointOwner, endpoint, "endpoint");

impl KernelObject for EndpointOwner {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(endpoint, self, cx)
    }

    fn recv(&self, cx: &mut Recv<'_>) -> Outcome {
        self.ep.recv(cx)
    }

    fn ret(&self, cx: &mut Return<'_>) -> Outcome {
        self.ep.ret(cx)
    }

    /// The endpoint's queues are charged to the process it is granted to.
    fn bind_holder(&self, holder: &Arc<Process>) {
        self.ep.charge_to(&holder.ledger);
        self.ep.set_holder(holder.pid);
    }

    fn moved_to(&self, pid: u32) {
        self.ep.set_holder(pid);
    }

    fn moved_from(&self, holder: &Process) {
        self.ep.abandoned_by(holder.pid);
    }

    fn endpoint_scope(&self) -> Option<u64> {
        Some(self.ep.scope)
    }
}

impl<'a> capos_caps::api::endpoint::Server<Call<'a>> for EndpointOwner {
    fn client_facet(&self, cx: &mut Call<'a>) -> Outcome {
        let index = cx.push_result_cap(ResultCap::new(Arc::new(ClientEndpoint::new(
            self.ep.clone(),
        ))));
        let mut out = Builder::new_default();
        out.init_root::<endpoint::client_facet_results::Builder>()
            .set_client(index);
        cx.reply(&out)
    }
}

/// The client side: CALL only, any method id (the server's protocol).
pub struct ClientEndpoint {
    ep: Arc<Endpoint>,
}

impl ClientEndpoint {
    /// A client facet of `ep`.
    pub fn new(ep: Arc<Endpoint>) -> Self {
        ClientEndpoint { ep }
    }
}

names!(ClientEndpoint, client_endpoint, "client-endpoint");

impl ClientEndpoint {
    /// Sends the call to the server, as a call of `scoped` when it came
    /// through a scoped capability.
    #[inline(always)]
    fn forward(&self, cx: &mut Call<'_>, scoped: Option<Arc<SessionCore>>) -> Outcome {
        if cx.params_user.len() > MAX_CALL_PARAMS {
            return Outcome::Error(TransportError::BadLength);
        }
        let transfers = if cx.transfers.count() == 0 {
            None
        } else {
            match transfer::resolve(cx.caller(), cx.transfers) {
                Ok(t) => Some(t.iter().map(|c| c.abi()).collect()),
                Err(e) => return Outcome::Error(e),
            }
        };
        self.ep.call(cx, transfers, scoped)
    }
}

impl KernelObject for ClientEndpoint {
    /// Forwards the call to the server, whatever its method.
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        self.forward(cx, None)
    }

    /// A call through a capability scoped to `session` speaks for it.
    fn call_as(&self, cx: &mut Call<'_>, session: &Arc<SessionCore>) -> Outcome {
        self.forward(cx, Some(session.clone()))
    }

    /// Parameters go straight from the caller to the server at delivery;
    /// capabilities sent with a call go to the server; the result is written
    /// (and its buffer checked) at the RETURN: the server's work is not a
    /// side effect of the caller's buffer.
    fn shape(&self) -> CallShape {
        CallShape {
            copies_params: false,
            accepts_transfers: true,
            probes_result: false,
        }
    }
}
