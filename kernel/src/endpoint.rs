//! Endpoints: a server holding the owner side (`Endpoint`) receives calls
//! that clients make through client facets (`ClientEndpoint`, CALL only).
//!
//! A CALL copies its parameters into the kernel before anything else; a
//! RECV either takes a queued call at once or waits; delivery writes a
//! `CallHeader` and the parameters into the server's RECV buffer and gives
//! the call a non-zero id; the server's RETURN writes the result (or a
//! serialized `CapException`) into the caller's result buffer and completes
//! the caller's CQE. All of this runs after the acting process's own ring
//! lock is released; the lock order is endpoint → ring → thread state.
//! Queues are bounded; when the last owner hold goes, every queued and
//! in-flight caller completes with `CANCELLED`. A caller that died is
//! skipped at delivery and its in-flight call is dropped at RETURN.

use crate::proc::Process;
use crate::sched::{self, Thread};
use crate::sync::IrqLock;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use capos_caps::cap_table::{CapObject, Invocation, ResultCap};
use capos_caps::exception::CapException;
use capos_caps::interfaces;
use capos_caps::ledger::{Ledger, Reservation, Resource};
use capos_caps::schema::capos_capnp::endpoint;
use capos_caps::transfer::TransferredCap;
use capos_ring::process::{CallHeader, CALL_HEADER_SIZE};
use capos_ring::{CqCredit, Cqe, TransportError, CQE_FLAG_EXCEPTION};

/// RECVs waiting for a call.
pub const MAX_PENDING_RECVS: usize = 16;
/// Largest parameter block one call may queue.
pub const MAX_CALL_PARAMS: usize = 16 * 1024;

/// A call from a client, parameters already in kernel memory.
pub struct QueuedCall {
    /// The calling thread.
    pub caller: Weak<Thread>,
    /// Its process id (delivered to the server).
    pub caller_pid: u32,
    /// The CALL's `user_data`.
    pub user_data: u64,
    /// The caller's reserved CQ slot.
    pub credit: CqCredit,
    /// Method ordinal.
    pub method_id: u16,
    /// Parameter bytes.
    pub params: Vec<u8>,
    /// The caller's result buffer.
    pub result_addr: u64,
    /// Its size.
    pub result_len: u32,
    /// Capabilities sent with the call (`(cap id, mode)`), moved or copied
    /// into the server's table only when the call is delivered.
    pub transfers: Vec<(u64, u32)>,
}

/// A server's RECV waiting for a call.
pub struct PendingRecv {
    /// The receiving thread.
    pub server: Weak<Thread>,
    /// The RECV's `user_data`.
    pub user_data: u64,
    /// The server's reserved CQ slot.
    pub credit: CqCredit,
    /// The server's receive buffer.
    pub buf_addr: u64,
    /// Its size.
    pub buf_len: u32,
}

/// A call in the queue and its charge on the owner's ledger (one queued
/// call, its parameter bytes).
struct Waiting {
    call: QueuedCall,
    charge: (Reservation, Reservation),
}

struct InFlight {
    caller: Weak<Thread>,
    user_data: u64,
    credit: CqCredit,
    result_addr: u64,
    result_len: u32,
    /// One in-flight call on the owner's ledger.
    _charge: Reservation,
}

#[derive(Default)]
struct State {
    calls: VecDeque<Waiting>,
    recvs: VecDeque<PendingRecv>,
    in_flight: BTreeMap<u64, InFlight>,
    next_id: u64,
    closed: bool,
}

/// The kernel object behind both sides. Its queues are bounded by the
/// ledger of the process it was created for (the owner): each queued call
/// charges `QueuedCalls` and its parameter bytes `ScratchBytes`, each
/// delivered call `InFlightCalls`, until it is delivered, answered or
/// cancelled.
pub struct Endpoint {
    state: IrqLock<State>,
    ledger: spin::Once<Arc<Ledger>>,
}

/// Posts `cqe` into `thread`'s ring with its reserved `credit` and wakes it
/// (to the front of this CPU's queue when `handoff`: direct hand-off).
fn complete(thread: &Arc<Thread>, credit: CqCredit, cqe: &Cqe, handoff: bool) {
    thread.process.ring.lock().poster.post(credit, cqe);
    if handoff {
        sched::wake_here_first(thread);
    } else {
        sched::wake(thread);
    }
}

/// What became of one delivery attempt.
enum Delivery {
    /// The call is in flight and the RECV completed.
    Done,
    /// The RECV's buffer cannot take the call: the RECV failed, the call
    /// comes back untouched.
    RecvFailed(QueuedCall),
    /// The call itself could not be delivered (in-flight quota, a failed
    /// transfer) and was failed; the RECV is still open and comes back.
    CallRefused(PendingRecv),
}

/// Completes a call that will not be delivered with `error`.
fn refuse(c: QueuedCall, error: TransportError) {
    if let Some(t) = c.caller.upgrade() {
        complete(&t, c.credit, &Cqe::error(c.user_data, error), false);
    }
}

impl Endpoint {
    /// An open endpoint with empty queues, not yet charged to anyone; see
    /// [`Endpoint::charge_to`].
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: IrqLock::new(State {
                next_id: 1,
                ..State::default()
            }),
            ledger: spin::Once::new(),
        })
    }

    /// Charges the queues to `ledger` (the owner's; set once, before the
    /// owner runs).
    pub fn charge_to(&self, ledger: &Arc<Ledger>) {
        self.ledger.call_once(|| ledger.clone());
    }

    fn reserve(&self, resource: Resource, amount: u64) -> Result<Reservation, TransportError> {
        self.ledger
            .get()
            .ok_or(TransportError::Cancelled)?
            .reserve(resource, amount)
            .map_err(|_| TransportError::Quota)
    }

    /// A client's CALL.
    pub fn call(&self, c: QueuedCall) {
        let mut st = self.state.lock();
        if st.closed {
            drop(st);
            refuse(c, TransportError::Cancelled);
            return;
        }
        let mut c = c;
        while let Some(r) = st.recvs.pop_front() {
            if let Some(server) = r.server.upgrade() {
                match self.deliver(&server, r, c, &mut st) {
                    Delivery::Done => return,
                    // That RECV could not take it: try the next one.
                    Delivery::RecvFailed(back) => c = back,
                    // The call failed; the RECV waits for the next one.
                    Delivery::CallRefused(r) => {
                        st.recvs.push_front(r);
                        return;
                    }
                }
            }
        }
        // Calls of callers that have exited leave the queue (and give their
        // charge back) before the quota is looked at.
        st.calls.retain(|w| w.call.caller.strong_count() > 0);
        let charge = self.reserve(Resource::QueuedCalls, 1).and_then(|slot| {
            Ok((
                slot,
                self.reserve(Resource::ScratchBytes, c.params.len() as u64)?,
            ))
        });
        match charge {
            Ok(charge) => st.calls.push_back(Waiting { call: c, charge }),
            Err(e) => {
                drop(st);
                refuse(c, e);
            }
        }
    }

    /// A server's RECV.
    pub fn recv(&self, r: PendingRecv) {
        let Some(server) = r.server.upgrade() else {
            return;
        };
        let mut st = self.state.lock();
        let mut r = r;
        while let Some(Waiting { call, charge }) = st.calls.pop_front() {
            if call.caller.upgrade().is_none() {
                continue;
            }
            match self.deliver(&server, r, call, &mut st) {
                Delivery::Done => return,
                Delivery::RecvFailed(back) => {
                    st.calls.push_front(Waiting { call: back, charge });
                    return;
                }
                // That call failed: serve the next queued one.
                Delivery::CallRefused(open) => r = open,
            }
        }
        if st.recvs.len() >= MAX_PENDING_RECVS {
            drop(st);
            complete(
                &server,
                r.credit,
                &Cqe::error(r.user_data, TransportError::QueueFull),
                false,
            );
            return;
        }
        st.recvs.push_back(r);
    }

    /// Writes call `c` into RECV `r`'s buffer and completes the RECV; the
    /// call moves to the in-flight table (see [`Delivery`] for the other
    /// outcomes).
    fn deliver(
        &self,
        server: &Arc<Thread>,
        r: PendingRecv,
        c: QueuedCall,
        st: &mut State,
    ) -> Delivery {
        let need = CALL_HEADER_SIZE
            + c.params.len()
            + c.transfers.len() * capos_ring::TRANSFER_RESULT_SIZE as usize;
        let buffer_error = if need > r.buf_len as usize {
            Some(TransportError::BufferTooSmall)
        } else if server
            .process
            .aspace
            .check(r.buf_addr, need as u64, true)
            .is_err()
        {
            Some(TransportError::BadAddress)
        } else {
            None
        };
        if let Some(e) = buffer_error {
            complete(server, r.credit, &Cqe::error(r.user_data, e), false);
            return Delivery::RecvFailed(c);
        }
        // Charge the owner and move or copy the sent capabilities now, all
        // or nothing; either failing fails the call and leaves both tables
        // as they were.
        let ready = self
            .reserve(Resource::InFlightCalls, 1)
            .and_then(|charge| Ok((charge, Self::commit_transfers(server, &c)?)));
        let (charge, moved) = match ready {
            Ok(x) => x,
            Err(e) => {
                refuse(c, e);
                return Delivery::CallRefused(r);
            }
        };
        let call_id = st.next_id;
        st.next_id += 1;
        let header = CallHeader {
            call_id,
            method_id: c.method_id,
            params_len: c.params.len() as u32,
            caller_pid: c.caller_pid,
        };
        let mut bytes = Vec::with_capacity(need);
        bytes.extend_from_slice(&header.to_bytes());
        bytes.extend_from_slice(&c.params);
        append_records(&mut bytes, &moved);
        st.in_flight.insert(
            call_id,
            InFlight {
                caller: c.caller,
                user_data: c.user_data,
                credit: c.credit,
                result_addr: c.result_addr,
                result_len: c.result_len,
                _charge: charge,
            },
        );
        // The buffer was checked above; it can only have gone if the server
        // unmapped it meanwhile. The call then stays in flight (its caps
        // with the server) until the server answers or exits.
        let cqe = match server.process.aspace.copy_to_user(r.buf_addr, &bytes) {
            Ok(()) => {
                let mut cqe = Cqe::success(r.user_data, (CALL_HEADER_SIZE + c.params.len()) as u32);
                cqe.call_id = call_id;
                if !moved.is_empty() {
                    cqe.flags = capos_ring::CQE_FLAG_TRANSFER_RESULTS;
                    cqe.xfer_count = moved.len() as u32;
                }
                cqe
            }
            Err(_) => Cqe::error(r.user_data, TransportError::BadAddress),
        };
        complete(server, r.credit, &cqe, true);
        Delivery::Done
    }

    /// Commits the call's transfers from the caller's table into the
    /// server's.
    fn commit_transfers(
        server: &Arc<Thread>,
        c: &QueuedCall,
    ) -> Result<Vec<TransferredCap>, TransportError> {
        if c.transfers.is_empty() {
            return Ok(Vec::new());
        }
        let caller = c.caller.upgrade().ok_or(TransportError::Cancelled)?;
        transfer_caps(&caller.process, &server.process, &c.transfers)
    }

    /// A server's RETURN of `call_id` with `payload` and the capabilities
    /// `transfers` names in the server's (`server`) table; the result is
    /// the server's own completion code. A transfer that fails leaves both
    /// tables as they were and the call in flight, so the server can answer
    /// it again.
    pub fn ret(
        &self,
        server: &Process,
        call_id: u64,
        payload: &[u8],
        exception: bool,
        transfers: &[(u64, u32)],
    ) -> Result<(), TransportError> {
        let f = self
            .state
            .lock()
            .in_flight
            .remove(&call_id)
            .ok_or(TransportError::BadCallId)?;
        // A caller that died meanwhile: the result has nowhere to go.
        let caller = f.caller.upgrade().ok_or(TransportError::Cancelled)?;
        let records = transfers.len() * capos_ring::TRANSFER_RESULT_SIZE as usize;
        if payload.len() + records > f.result_len as usize {
            complete(
                &caller,
                f.credit,
                &Cqe::error(f.user_data, TransportError::BufferTooSmall),
                true,
            );
            return Ok(());
        }
        let aspace = &caller.process.aspace;
        if aspace
            .check(f.result_addr, (payload.len() + records) as u64, true)
            .is_err()
        {
            complete(
                &caller,
                f.credit,
                &Cqe::error(f.user_data, TransportError::BadAddress),
                true,
            );
            return Ok(());
        }
        let moved = match transfer_caps(server, &caller.process, transfers) {
            Ok(m) => m,
            Err(e) => {
                let mut st = self.state.lock();
                if st.closed {
                    drop(st);
                    let cqe = Cqe::error(f.user_data, TransportError::Cancelled);
                    complete(&caller, f.credit, &cqe, false);
                } else {
                    st.in_flight.insert(call_id, f);
                }
                return Err(e);
            }
        };
        let mut bytes = Vec::with_capacity(payload.len() + records);
        bytes.extend_from_slice(payload);
        append_records(&mut bytes, &moved);
        let cqe = match aspace.copy_to_user(f.result_addr, &bytes) {
            Ok(()) => {
                let mut c = Cqe::success(f.user_data, payload.len() as u32);
                if exception {
                    c.flags = CQE_FLAG_EXCEPTION;
                }
                if !moved.is_empty() {
                    c.flags |= capos_ring::CQE_FLAG_TRANSFER_RESULTS;
                    c.xfer_count = moved.len() as u32;
                }
                c
            }
            Err(_) => {
                // The caller unmapped its buffer since the check: it cannot
                // learn the new ids, so it does not keep the capabilities.
                let removed: Vec<_> = {
                    let mut table = caller.process.caps.lock();
                    moved.iter().map(|m| table.remove(m.cap)).collect()
                };
                // Dropped with the table unlocked (see `ringops::execute`).
                drop(removed);
                Cqe::error(f.user_data, TransportError::BadAddress)
            }
        };
        complete(&caller, f.credit, &cqe, true);
        Ok(())
    }

    /// The owner side is gone: every queued and in-flight caller completes
    /// with `CANCELLED`; waiting RECVs are dropped (their server is gone).
    fn close(&self) {
        let (calls, in_flight) = {
            let mut st = self.state.lock();
            st.closed = true;
            st.recvs.clear();
            (
                core::mem::take(&mut st.calls),
                core::mem::take(&mut st.in_flight),
            )
        };
        for Waiting { call: c, .. } in calls {
            if let Some(t) = c.caller.upgrade() {
                complete(
                    &t,
                    c.credit,
                    &Cqe::error(c.user_data, TransportError::Cancelled),
                    false,
                );
            }
        }
        for (_, f) in in_flight {
            if let Some(t) = f.caller.upgrade() {
                complete(
                    &t,
                    f.credit,
                    &Cqe::error(f.user_data, TransportError::Cancelled),
                    false,
                );
            }
        }
    }
}

/// Appends one transfer-result record per received capability.
fn append_records(bytes: &mut Vec<u8>, caps: &[TransferredCap]) {
    for m in caps {
        bytes.extend_from_slice(
            &capos_ring::TransferResult {
                cap_id: m.cap.to_raw(),
                interface_id: m.interface_id,
            }
            .to_bytes(),
        );
    }
}

/// Moves or copies the capabilities `transfers` names (`(cap id, ABI
/// mode)`) from `sender`'s table into `receiver`'s through the caps
/// transaction, all or nothing. The tables are locked in pid order, so two
/// transfers in opposite directions cannot deadlock.
fn transfer_caps(
    sender: &Process,
    receiver: &Process,
    transfers: &[(u64, u32)],
) -> Result<Vec<TransferredCap>, TransportError> {
    use capos_caps::transfer::{self, TransferError};
    if transfers.is_empty() {
        return Ok(Vec::new());
    }
    let descs =
        transfer::decode_descriptors(transfers).map_err(|_| TransportError::InvalidTransfer)?;
    let map = |e: TransferError| match e {
        TransferError::Quota(_) | TransferError::ReceiverFull { .. } => TransportError::Quota,
        TransferError::Cap { .. } => TransportError::BadCap,
        TransferError::NotTransferable { .. } | TransferError::MoveOnly { .. } => {
            TransportError::TransferDenied
        }
        _ => TransportError::InvalidTransfer,
    };
    if sender.pid == receiver.pid {
        let mut t = sender.caps.lock();
        let txn = transfer::TransferTxn::prepare(&t, &t, &descs).map_err(map)?;
        return txn.commit_local(&mut t).map_err(map);
    }
    let (mut first, mut second) = if sender.pid < receiver.pid {
        (
            sender.caps.lock_ordered(sender.pid.into()),
            receiver.caps.lock_ordered(receiver.pid.into()),
        )
    } else {
        (
            receiver.caps.lock_ordered(receiver.pid.into()),
            sender.caps.lock_ordered(sender.pid.into()),
        )
    };
    let (from, to) = if sender.pid < receiver.pid {
        (&mut *first, &mut *second)
    } else {
        (&mut *second, &mut *first)
    };
    transfer::transfer(from, to, &descs).map_err(map)
}

/// The owner side: RECV and RETURN (ring opcodes), and `clientFacet`.
pub struct EndpointOwner {
    /// The endpoint.
    pub ep: Arc<Endpoint>,
}

impl Drop for EndpointOwner {
    fn drop(&mut self) {
        self.ep.close();
    }
}

impl CapObject for EndpointOwner {
    fn interface_id(&self) -> u64 {
        interfaces::ENDPOINT
    }
    fn label(&self) -> &str {
        "endpoint"
    }
    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }
    /// The endpoint's queues are charged to the process it is granted to.
    fn bind_holder(&self, holder: &dyn core::any::Any) {
        if let Some(process) = holder.downcast_ref::<Arc<Process>>() {
            self.ep.charge_to(&process.ledger);
        }
    }
    fn call(&self, inv: Invocation<'_>) -> Result<usize, CapException> {
        match inv.method_id {
            0 => {
                let mut out = capnp::message::Builder::new_default();
                out.init_root::<endpoint::client_facet_results::Builder>()
                    .set_client(inv.result_caps.len() as u16);
                let n = crate::kcaps::write_results(&out, inv.results)?;
                inv.result_caps
                    .push(ResultCap::new(Arc::new(ClientEndpoint {
                        ep: self.ep.clone(),
                    })));
                Ok(n)
            }
            m => Err(CapException::unimplemented(interfaces::ENDPOINT, m)),
        }
    }
}

/// The client side: CALL only (any method id; the server's protocol).
pub struct ClientEndpoint {
    /// The endpoint.
    pub ep: Arc<Endpoint>,
}

impl CapObject for ClientEndpoint {
    fn interface_id(&self) -> u64 {
        interfaces::CLIENT_ENDPOINT
    }
    fn label(&self) -> &str {
        "client-endpoint"
    }
    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }
    fn call(&self, inv: Invocation<'_>) -> Result<usize, CapException> {
        Err(CapException::unimplemented(
            interfaces::CLIENT_ENDPOINT,
            inv.method_id,
        ))
    }
}
