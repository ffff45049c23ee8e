//! Draining a process's submission queue and carrying out each operation.
//!
//! Every SQE field is hostile: `Sqe::validate` (in `capos-ring`) checks
//! opcodes, flags, reserved fields and length arithmetic; this module checks
//! capability ids against the caller's table and buffers against the
//! caller's page tables, copies parameters into kernel memory before the
//! object sees them, and copies results back only into writable user pages.
//! Only the CPU running the process drains its ring.

use crate::endpoint::{ClientEndpoint, Endpoint, EndpointOwner, PendingRecv, QueuedCall};
use crate::kcaps::Timer;
use crate::proc::Process;
use crate::spawner::{
    write_wait_result, ExitStatus, ExitWaiter, ProcessHandle, ProcessSpawner, Transferred,
};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use capos_caps::cap_table::{CapError, CapId, Hold, Invocation, Origin, ResultCap, TransferMode};
use capos_caps::ledger::Resource;
use capos_ring::{
    CqCredit, Cqe, Op, RingIndex, TransferResult, TransportError, CQE_FLAG_EXCEPTION,
    CQE_FLAG_TRANSFER_RESULTS, DEFAULT_LAYOUT,
};
use core::sync::atomic::Ordering::Acquire;

/// The ring's indices are inconsistent.
#[derive(Debug)]
pub struct Corrupted;

/// Drains the submission queue, then returns the completions waiting: the
/// whole of `cap_enter`'s non-blocking work under one ring lock.
pub fn enter(process: &Process) -> Result<u32, Corrupted> {
    let actions = {
        let mut ring = process.ring.lock();
        let mut actions = Vec::new();
        drain_locked(process, &mut ring, &mut actions)?;
        if actions.is_empty() {
            return available_locked(&ring);
        }
        actions
    };
    // Endpoint work touches other processes' rings: only with ours unlocked.
    for a in actions {
        run_action(process, a);
    }
    available(process)
}

/// Endpoint work deferred until the caller's ring lock is released.
enum Action {
    Call {
        ep: Arc<Endpoint>,
        user_data: u64,
        credit: CqCredit,
        method_id: u16,
        params: Vec<u8>,
        addr: u64,
        len: u32,
        transfers: Vec<(u64, u32)>,
    },
    Recv {
        ep: Arc<Endpoint>,
        user_data: u64,
        credit: CqCredit,
        addr: u64,
        len: u32,
    },
    Return {
        ep: Arc<Endpoint>,
        user_data: u64,
        credit: CqCredit,
        call_id: u64,
        payload: Vec<u8>,
        exception: bool,
        transfers: Vec<(u64, u32)>,
    },
}

fn run_action(process: &Process, a: Action) {
    match a {
        Action::Call {
            ep,
            user_data,
            credit,
            method_id,
            params,
            addr,
            len,
            transfers,
        } => ep.call(QueuedCall {
            caller: crate::sched::current_weak(),
            caller_pid: process.pid,
            user_data,
            credit,
            method_id,
            params,
            result_addr: addr,
            result_len: len,
            transfers,
        }),
        Action::Recv {
            ep,
            user_data,
            credit,
            addr,
            len,
        } => ep.recv(PendingRecv {
            server: crate::sched::current_weak(),
            user_data,
            credit,
            buf_addr: addr,
            buf_len: len,
        }),
        Action::Return {
            ep,
            user_data,
            credit,
            call_id,
            payload,
            exception,
            transfers,
        } => {
            let cqe = match ep.ret(process, call_id, &payload, exception, &transfers) {
                Ok(()) => Cqe::success(user_data, 0),
                Err(e) => Cqe::error(user_data, e),
            };
            process.ring.lock().poster.post(credit, &cqe);
        }
    }
}

/// Consumes every SQE present (at most one queue's worth) and posts a
/// completion for each; stops early if the CQ is full.
fn drain_locked(
    process: &Process,
    ring: &mut crate::proc::RingState,
    actions: &mut Vec<Action>,
) -> Result<(), Corrupted> {
    let mut batch = ring.drain.begin().map_err(|_| Corrupted)?;
    loop {
        match batch.pop(&mut ring.poster) {
            Ok(sub) => match sub.op {
                Ok(op) => match execute(process, sub.user_data, op) {
                    Outcome::Now(cqe) => ring.poster.post(sub.credit, &cqe),
                    Outcome::Sleep { deadline, charge } => {
                        crate::timers::add(crate::timers::PendingSleep {
                            thread: crate::sched::current_weak(),
                            user_data: sub.user_data,
                            credit: sub.credit,
                            deadline,
                            _charge: charge,
                        })
                    }
                    Outcome::Endpoint(make) => actions.push(make(sub.user_data, sub.credit)),
                    Outcome::Wait { exit, addr, len } => {
                        let waiter = ExitWaiter {
                            thread: crate::sched::current_weak(),
                            user_data: sub.user_data,
                            credit: sub.credit,
                            result_addr: addr,
                            result_len: len,
                        };
                        // The child may have exited since the call looked.
                        if let Err(w) = exit.add_waiter(waiter) {
                            let code = exit.code().unwrap_or(0);
                            let cqe =
                                write_wait_result(&process.aspace, w.user_data, addr, len, code);
                            ring.poster.post(w.credit, &cqe);
                        }
                    }
                },
                Err(e) => ring.poster.post(sub.credit, &Cqe::error(sub.user_data, e)),
            },
            Err(capos_ring::DrainStop::Done) | Err(capos_ring::DrainStop::CqFull) => return Ok(()),
            Err(capos_ring::DrainStop::CqCorrupted(_)) => return Err(Corrupted),
        }
    }
}

/// Completions posted and not yet reaped.
pub fn available(process: &Process) -> Result<u32, Corrupted> {
    available_locked(&process.ring.lock())
}

fn available_locked(ring: &crate::proc::RingState) -> Result<u32, Corrupted> {
    use capos_ring::RingMemory;
    let head = ring.raw.load_index(RingIndex::CqHead, Acquire);
    let n = ring.poster.tail().wrapping_sub(head);
    if n > DEFAULT_LAYOUT.cq_entries() {
        return Err(Corrupted);
    }
    Ok(n)
}

/// What an operation produced: a completion now, or one posted later (the
/// reserved CQ slot travels with it).
enum Outcome {
    Now(Cqe),
    /// A timer sleep; the tick posts it.
    Sleep {
        deadline: u64,
        charge: capos_caps::ledger::Reservation,
    },
    /// Endpoint work, built once its `user_data` and CQ slot are known.
    Endpoint(alloc::boxed::Box<dyn FnOnce(u64, CqCredit) -> Action>),
    /// A `wait` on a running child; its exit posts it.
    Wait {
        exit: Arc<ExitStatus>,
        addr: u64,
        len: u32,
    },
}

fn execute(process: &Process, user_data: u64, op: Op) -> Outcome {
    let now = |cqe| Outcome::Now(cqe);
    match op {
        Op::Nop => now(Cqe::success(user_data, 0)),
        Op::Release { cap_id } => {
            let removed = {
                let mut table = process.caps.lock();
                table.remove(CapId::from_raw(cap_id))
            };
            // Dropped only now, with the table unlocked: dropping the last
            // hold of an object may take its own locks (an endpoint's owner
            // side closes the endpoint), which are taken before table locks
            // elsewhere.
            match removed {
                Ok(entry) => {
                    drop(entry);
                    now(Cqe::success(user_data, 0))
                }
                Err(_) => now(Cqe::error(user_data, TransportError::BadCap)),
            }
        }
        Op::Call(call) => match do_call(process, &call) {
            Ok(Called::Done { len, flags, caps }) => {
                let mut c = Cqe::success(user_data, len);
                c.flags = flags;
                c.xfer_count = caps;
                now(c)
            }
            Ok(Called::Sleep(deadline, charge)) => Outcome::Sleep { deadline, charge },
            Ok(Called::Wait(exit)) => Outcome::Wait {
                exit,
                addr: call.result.addr(),
                len: call.result.len(),
            },
            Ok(Called::Endpoint(ep, method_id, params, transfers)) => {
                let (addr, len) = (call.result.addr(), call.result.len());
                Outcome::Endpoint(alloc::boxed::Box::new(move |user_data, credit| {
                    Action::Call {
                        ep,
                        user_data,
                        credit,
                        method_id,
                        params,
                        addr,
                        len,
                        transfers,
                    }
                }))
            }
            Err(e) => now(Cqe::error(user_data, e)),
        },
        Op::Recv(r) => match endpoint_owner(process, r.cap_id) {
            Err(e) => now(Cqe::error(user_data, e)),
            Ok(ep) => {
                let (addr, len) = (r.buffer.addr(), r.buffer.len());
                if len == 0 || process.aspace.check(addr, u64::from(len), true).is_err() {
                    return now(Cqe::error(user_data, TransportError::BadAddress));
                }
                Outcome::Endpoint(alloc::boxed::Box::new(move |user_data, credit| {
                    Action::Recv {
                        ep,
                        user_data,
                        credit,
                        addr,
                        len,
                    }
                }))
            }
        },
        Op::Return(r) => match endpoint_owner(process, r.cap_id) {
            Err(e) => now(Cqe::error(user_data, e)),
            Ok(ep) => {
                // Capabilities go back only with a result, not an exception.
                if r.transfers.count() != 0 && r.exception {
                    return now(Cqe::error(user_data, TransportError::InvalidTransfer));
                }
                let transfers = match resolve_transfers(process, r.transfers) {
                    Ok(t) => abi_transfers(&t),
                    Err(e) => return now(Cqe::error(user_data, e)),
                };
                let mut payload = vec![0u8; r.payload.len() as usize];
                if !payload.is_empty()
                    && process
                        .aspace
                        .copy_from_user(r.payload.addr(), &mut payload)
                        .is_err()
                {
                    return now(Cqe::error(user_data, TransportError::BadAddress));
                }
                let (call_id, exception) = (r.call_id.get(), r.exception);
                Outcome::Endpoint(alloc::boxed::Box::new(move |user_data, credit| {
                    Action::Return {
                        ep,
                        user_data,
                        credit,
                        call_id,
                        payload,
                        exception,
                        transfers,
                    }
                }))
            }
        },
    }
}

/// Result of a CALL.
enum Called {
    /// Result bytes written, CQE flags, and result capabilities appended.
    Done { len: u32, flags: u32, caps: u32 },
    /// A timer sleep to complete later.
    Sleep(u64, capos_caps::ledger::Reservation),
    /// A wait on a child that has not exited.
    Wait(Arc<ExitStatus>),
    /// A call on a client facet, queued at the endpoint.
    Endpoint(Arc<Endpoint>, u16, Vec<u8>, Vec<(u64, u32)>),
}

/// A transfer descriptor checked against the sender's table: the cap, its
/// object and interface, and the mode asked for.
type CheckedTransfer = (
    CapId,
    Arc<dyn capos_caps::cap_table::CapObject>,
    u64,
    capos_ring::TransferMode,
);

/// Reads and checks the transfer descriptors of a CALL or RETURN: each
/// names a live, transferable capability of the sender.
fn resolve_transfers(
    process: &Process,
    list: capos_ring::TransferList,
) -> Result<Vec<CheckedTransfer>, TransportError> {
    let size = capos_ring::TRANSFER_DESCRIPTOR_SIZE as usize;
    let mut raw = vec![0u8; usize::from(list.count()) * size];
    process
        .aspace
        .copy_from_user(list.addr(), &mut raw)
        .map_err(|_| TransportError::BadAddress)?;
    let table = process.caps.lock();
    let mut out = Vec::new();
    for chunk in raw.chunks_exact(size) {
        let bytes: &[u8; 16] = chunk
            .try_into()
            .map_err(|_| TransportError::InvalidTransfer)?;
        let (cap, mode) = capos_ring::TransferDescriptor::from_bytes(bytes).validate()?;
        let id = CapId::from_raw(cap);
        let entry = table.get(id).map_err(|_| TransportError::BadCap)?;
        let allowed = match entry.hold.mode {
            TransferMode::Copy => true,
            TransferMode::Move => mode == capos_ring::TransferMode::Move,
            TransferMode::NonTransferable => false,
        };
        if !allowed {
            return Err(TransportError::TransferDenied);
        }
        out.push((id, entry.object.clone(), entry.interface_id, mode));
    }
    Ok(out)
}

/// Checked transfers as `(cap id, ABI mode)`, the form an endpoint carries
/// them in until it commits them.
fn abi_transfers(checked: &[CheckedTransfer]) -> Vec<(u64, u32)> {
    checked
        .iter()
        .map(|(id, _, _, mode)| {
            let abi = match mode {
                capos_ring::TransferMode::Copy => capos_ring::TRANSFER_COPY,
                capos_ring::TransferMode::Move => capos_ring::TRANSFER_MOVE,
            };
            (id.to_raw(), abi)
        })
        .collect()
}

/// The endpoint behind an owner capability (RECV and RETURN need one; a
/// client facet or any other object is refused).
fn endpoint_owner(process: &Process, cap_id: u64) -> Result<Arc<Endpoint>, TransportError> {
    let (object, _) = process
        .caps
        .lock()
        .lookup(CapId::from_raw(cap_id))
        .map_err(|_| TransportError::BadCap)?;
    object
        .as_any()
        .and_then(|a| a.downcast_ref::<EndpointOwner>())
        .map(|o| o.ep.clone())
        .ok_or(TransportError::InterfaceMismatch)
}

fn do_call(process: &Process, call: &capos_ring::Call) -> Result<Called, TransportError> {
    let (object, interface_id) = process
        .caps
        .lock()
        .lookup(CapId::from_raw(call.cap_id))
        .map_err(|e: CapError| match e {
            CapError::Quota(_) => TransportError::Quota,
            _ => TransportError::BadCap,
        })?;
    let spawner = object
        .as_any()
        .and_then(|a| a.downcast_ref::<ProcessSpawner>())
        .is_some();
    let client = object
        .as_any()
        .and_then(|a| a.downcast_ref::<ClientEndpoint>())
        .is_some();
    // Capabilities sent with a CALL: the spawner takes them as grants for
    // the child, an endpoint delivers them to the server; other objects
    // refuse them.
    let transferred = if call.transfers.count() == 0 {
        Vec::new()
    } else if spawner || client {
        resolve_transfers(process, call.transfers)?
    } else {
        return Err(TransportError::TransferDenied);
    };
    let params_len = call.params.len() as usize;
    let result_len = call.result.len() as usize;
    let _scratch = process
        .ledger
        .reserve(Resource::ScratchBytes, (params_len + result_len) as u64)
        .map_err(|_| TransportError::Quota)?;
    let mut params = vec![0u8; params_len];
    if params_len > 0 {
        process
            .aspace
            .copy_from_user(call.params.addr(), &mut params)
            .map_err(|_| TransportError::BadAddress)?;
    }
    // Check the result buffer is writable before running the method, so a
    // bad buffer never lets a side effect happen without its result.
    if result_len > 0 {
        process
            .aspace
            .check(call.result.addr(), result_len as u64, true)
            .map_err(|_| TransportError::BadAddress)?;
    }

    // Kernel objects whose calls complete later or return capabilities.
    let any = object.as_any();
    if let Some(client) = any.and_then(|a| a.downcast_ref::<ClientEndpoint>()) {
        if params.len() > crate::endpoint::MAX_CALL_PARAMS {
            return Err(TransportError::BadLength);
        }
        return Ok(Called::Endpoint(
            client.ep.clone(),
            call.method_id,
            params,
            abi_transfers(&transferred),
        ));
    }
    if any.is_some_and(|a| a.is::<Timer>()) {
        if let Some(deadline) = crate::kcaps::sleep_deadline(call.method_id, &params) {
            let deadline = deadline.map_err(|_| TransportError::BadLength)?;
            let charge = process
                .ledger
                .reserve(Resource::TimerWaiters, 1)
                .map_err(|_| TransportError::Quota)?;
            return Ok(Called::Sleep(deadline, charge));
        }
    }
    if let Some(h) = any.and_then(|a| a.downcast_ref::<ProcessHandle>()) {
        if call.method_id == 0 && h.exit.code().is_none() {
            return Ok(Called::Wait(h.exit.clone()));
        }
    }
    let mut results = vec![0u8; result_len];
    let mut result_caps: Vec<ResultCap> = Vec::new();
    let outcome = match any.and_then(|a| a.downcast_ref::<ProcessSpawner>()) {
        Some(spawner) if call.method_id == 0 => {
            let sent: Vec<Transferred> = transferred
                .iter()
                .map(|(_, object, interface_id, _)| Transferred {
                    object: object.clone(),
                    interface_id: *interface_id,
                })
                .collect();
            let before = Footprint::of(process);
            let spawned = spawner.spawn(process, &params, result_len, &sent);
            if let Err(e) = &spawned {
                Footprint::of(process).report_refusal(process, &before, &e.message);
            }
            spawned.map(|s| {
                results[..s.results.len()].copy_from_slice(&s.results);
                result_caps = s.caps;
                // A moved capability leaves the sender once the child has it.
                for (id, _, _, mode) in &transferred {
                    if *mode == capos_ring::TransferMode::Move {
                        let moved = process.caps.lock().remove(*id);
                        drop(moved);
                    }
                }
                s.results.len()
            })
        }
        _ => object.call(Invocation {
            interface_id,
            method_id: call.method_id,
            params: &params,
            results: &mut results,
            caller: process,
            result_caps: &mut result_caps,
        }),
    };
    let (len, mut flags) = match outcome {
        Ok(n) => (n.min(result_len), 0),
        Err(exc) => {
            if exc.kind == capos_caps::exception::ExceptionKind::Unimplemented {
                return Err(TransportError::NoSuchMethod);
            }
            // A failed method returns no capabilities.
            result_caps.clear();
            let encoded = exc.encode();
            if encoded.len() > result_len {
                return Err(TransportError::BufferTooSmall);
            }
            results[..encoded.len()].copy_from_slice(&encoded);
            (encoded.len(), CQE_FLAG_EXCEPTION)
        }
    };
    let end = install_result_caps(process, &result_caps, &mut results, len)?;
    if !result_caps.is_empty() {
        flags |= CQE_FLAG_TRANSFER_RESULTS;
    }
    process
        .aspace
        .copy_to_user(call.result.addr(), &results[..end])
        .map_err(|_| TransportError::BadAddress)?;
    Ok(Called::Done {
        len: len as u32,
        flags,
        caps: result_caps.len() as u32,
    })
}

/// What a process (and all processes together) hold, compared around a
/// refused spawn to show it left nothing behind.
struct Footprint {
    frames_held: u64,
    ledger: [u64; Resource::COUNT],
}

impl Footprint {
    fn of(process: &Process) -> Self {
        Footprint {
            frames_held: crate::proc::aspace::frames_held(),
            ledger: process.ledger.snapshot(),
        }
    }

    /// Logs a refused spawn with the counts before and after it: the frames
    /// all processes hold, and every counter of the caller's ledger (cap
    /// slots, queued and in-flight calls, scratch bytes, frames, threads,
    /// timer waiters, in `Resource` order). The caller's ledger must come
    /// back exactly: only the caller acts on it while its spawn runs. The
    /// system-wide frame count may fall meanwhile (an exited child being
    /// torn down), so there only a rise counts as a leak.
    fn report_refusal(&self, process: &Process, before: &Footprint, why: &str) {
        crate::info!(
            "spawner: refused a spawn by pid {}: {why}; frames held {} -> {}, caller ledger {:?} -> {:?}: {}",
            process.pid,
            before.frames_held,
            self.frames_held,
            before.ledger,
            self.ledger,
            if self.frames_held <= before.frames_held && self.ledger == before.ledger {
                "nothing leaked"
            } else {
                "LEAKED"
            }
        );
    }
}

/// Puts a method's result capabilities into the caller's table, all or
/// none, and writes one transfer-result record per capability after the
/// `len` result bytes; returns the end of the records. Nothing is inserted
/// if the records do not fit the result buffer or the table is short of
/// room or quota.
fn install_result_caps(
    process: &Process,
    caps: &[ResultCap],
    results: &mut [u8],
    len: usize,
) -> Result<usize, TransportError> {
    let record = capos_ring::TRANSFER_RESULT_SIZE as usize;
    let end = len + caps.len() * record;
    if end > results.len() {
        return Err(TransportError::BufferTooSmall);
    }
    let mut table = process.caps.lock();
    let mut ids = Vec::with_capacity(caps.len());
    for cap in caps {
        match table.insert(
            cap.object.clone(),
            Hold::new(
                crate::proc::transfer_mode_for(cap.interface_id),
                Origin::ResultCap,
            ),
        ) {
            Ok(id) => ids.push(id),
            Err(_) => {
                for id in ids {
                    let _ = table.remove(id);
                }
                return Err(TransportError::Quota);
            }
        }
    }
    for (i, (cap, id)) in caps.iter().zip(ids).enumerate() {
        let bytes = TransferResult {
            cap_id: id.to_raw(),
            interface_id: cap.interface_id,
        }
        .to_bytes();
        let at = len + i * record;
        results[at..at + record].copy_from_slice(&bytes);
    }
    Ok(end)
}
