//! Draining a process's submission queue and carrying out each operation.
//!
//! Every SQE field is hostile: `Sqe::validate` (in `capos-ring`) checks
//! opcodes, flags, reserved fields and length arithmetic; this module checks
//! capability ids against the caller's table and buffers against the
//! caller's page tables, copies parameters into kernel memory before the
//! object sees them, and copies results back only into writable user pages.
//! Only the CPU running the process drains its ring.

use crate::proc::Process;
use alloc::vec;
use capos_caps::cap_table::{CapError, CapId, Invocation};
use capos_caps::ledger::Resource;
use capos_ring::{Cqe, Op, RingIndex, TransportError, CQE_FLAG_EXCEPTION, DEFAULT_LAYOUT};
use core::sync::atomic::Ordering::Acquire;

/// The ring's indices are inconsistent.
#[derive(Debug)]
pub struct Corrupted;

/// Drains the submission queue, then returns the completions waiting: the
/// whole of `cap_enter`'s non-blocking work under one ring lock.
pub fn enter(process: &Process) -> Result<u32, Corrupted> {
    let mut ring = process.ring.lock();
    drain_locked(process, &mut ring)?;
    available_locked(&ring)
}

/// Consumes every SQE present (at most one queue's worth) and posts a
/// completion for each; stops early if the CQ is full.
fn drain_locked(process: &Process, ring: &mut crate::proc::RingState) -> Result<(), Corrupted> {
    let mut batch = ring.drain.begin().map_err(|_| Corrupted)?;
    loop {
        match batch.pop(&mut ring.poster) {
            Ok(sub) => match sub.op {
                Ok(op) => match execute(process, sub.user_data, op) {
                    Outcome::Now(cqe) => ring.poster.post(sub.credit, &cqe),
                    Outcome::Later { deadline, charge } => {
                        crate::timers::add(crate::timers::PendingSleep {
                            thread: crate::sched::current_weak(),
                            user_data: sub.user_data,
                            credit: sub.credit,
                            deadline,
                            _charge: charge,
                        })
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

/// What an operation produced: a completion now, or a sleep whose
/// completion the timer posts later (keeping the reserved CQ slot).
enum Outcome {
    Now(Cqe),
    Later {
        deadline: u64,
        charge: capos_caps::ledger::Reservation,
    },
}

fn execute(process: &Process, user_data: u64, op: Op) -> Outcome {
    let now = |cqe| Outcome::Now(cqe);
    match op {
        Op::Nop => now(Cqe::success(user_data, 0)),
        Op::Release { cap_id } => match process.caps.lock().remove(CapId::from_raw(cap_id)) {
            Ok(_) => now(Cqe::success(user_data, 0)),
            Err(_) => now(Cqe::error(user_data, TransportError::BadCap)),
        },
        Op::Call(call) => match do_call(process, &call) {
            Ok(Called::Done(n, flags)) => {
                let mut c = Cqe::success(user_data, n);
                c.flags = flags;
                now(c)
            }
            Ok(Called::Sleep(deadline, charge)) => Outcome::Later { deadline, charge },
            Err(e) => now(Cqe::error(user_data, e)),
        },
        // Endpoints (RECV/RETURN) come with IPC; no object accepts them yet.
        Op::Recv(_) | Op::Return(_) => {
            now(Cqe::error(user_data, TransportError::InterfaceMismatch))
        }
    }
}

/// Result of a CALL: bytes and CQE flags now, or a deferred sleep.
enum Called {
    Done(u32, u32),
    Sleep(u64, capos_caps::ledger::Reservation),
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
    if call.transfers.count() != 0 {
        return Err(TransportError::TransferDenied);
    }
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
    let mut results = vec![0u8; result_len];
    // Check the result buffer is writable before running the method, so a
    // bad buffer never lets a side effect happen without its result.
    if result_len > 0 {
        process
            .aspace
            .check(call.result.addr(), result_len as u64, true)
            .map_err(|_| TransportError::BadAddress)?;
    }
    if interface_id == capos_caps::interfaces::TIMER && object.label() == crate::kcaps::TIMER_LABEL
    {
        if let Some(deadline) = crate::kcaps::sleep_deadline(call.method_id, &params) {
            let deadline = deadline.map_err(|_| TransportError::BadLength)?;
            let charge = process
                .ledger
                .reserve(Resource::TimerWaiters, 1)
                .map_err(|_| TransportError::Quota)?;
            return Ok(Called::Sleep(deadline, charge));
        }
    }
    let outcome = object.call(Invocation {
        interface_id,
        method_id: call.method_id,
        params: &params,
        results: &mut results,
    });
    let (bytes, flags) = match outcome {
        Ok(n) => (&results[..n.min(result_len)], 0),
        Err(exc) => {
            if exc.kind == capos_caps::exception::ExceptionKind::Unimplemented {
                return Err(TransportError::NoSuchMethod);
            }
            let encoded = exc.encode();
            if encoded.len() > result_len {
                return Err(TransportError::BufferTooSmall);
            }
            results[..encoded.len()].copy_from_slice(&encoded);
            (&results[..encoded.len()], CQE_FLAG_EXCEPTION)
        }
    };
    process
        .aspace
        .copy_to_user(call.result.addr(), bytes)
        .map_err(|_| TransportError::BadAddress)?;
    Ok(Called::Done(bytes.len() as u32, flags))
}
