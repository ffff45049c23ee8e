//! Draining a process's submission queue and carrying out each operation.
//!
//! Every SQE field is hostile: `Sqe::validate` (in `capos-ring`) checks
//! opcodes, flags, reserved fields and length arithmetic; here capability
//! ids are checked against the caller's table, and buffers against the
//! caller's page tables (under the address-space lock, in the same hold as
//! the copy). CALL, RECV and RETURN go to the object the cap id names,
//! through [`KernelObject`]; there is no branch on the object's type. An
//! operation completes now (its completion is posted here) or is deferred
//! (the object took its completion and fires it later).
//!
//! The ring's submission side is held for the whole drain (objects run
//! under it; only this thread ever takes it), its completion side only to
//! reserve slots and to post; objects run with the completion side free and
//! with interrupts on.

use crate::objects::{Call, Object, Outcome, Recv, Return, Submitted};
use crate::proc::Process;
use crate::ring::Corrupted;
use crate::sched::Thread;
use crate::usermem::{UserRead, UserWrite};
use alloc::sync::Arc;
use alloc::vec::Vec;
use capos_caps::cap_table::CapId;
use capos_caps::ledger::{Reservation, Resource};
use capos_ring::{
    CqCredit, Cqe, DrainStop, Op, Submission, TransportError, CQE_FLAG_EXCEPTION,
    CQE_FLAG_TRANSFER_RESULTS, DEFAULT_LAYOUT,
};

/// Drains the submission queue (at most one queue's worth), then returns
/// the completions waiting: the whole of `cap_enter`'s non-blocking work.
pub fn enter(thread: &Arc<Thread>) -> Result<u32, Corrupted> {
    let ring = &thread.process.ring;
    // Nothing submitted since the last drain: no lock, no work.
    if !ring.has_submissions() {
        return ring.available();
    }
    {
        let mut guard = ring.submissions();
        let crate::ring::SqState {
            drain,
            params,
            results,
            scratch_charge,
            done,
            standing,
        } = &mut *guard;
        let mut scratch = Scratch {
            params,
            results,
            charge: scratch_charge,
        };
        let mut batch = drain.begin().map_err(|_| Corrupted)?;
        // One CQ slot per submission present, reserved ahead (usually by
        // the previous drain); completions that are ready now are posted
        // together at the end.
        ring.reserve_credits(standing, batch.remaining(), DEFAULT_LAYOUT.sq_entries())?;
        let stop = loop {
            match batch.pop_credited(standing) {
                Ok(sub) => {
                    if let Some(c) = execute(thread, &mut scratch, sub) {
                        done.push(c);
                    }
                }
                Err(stop) => break stop,
            }
        };
        drop(batch);
        ring.post_batch(standing, DEFAULT_LAYOUT.sq_entries(), done);
        ring.drained_to(drain.head());
        if let DrainStop::CqCorrupted(_) = stop {
            return Err(Corrupted);
        }
    }
    ring.available()
}

/// The per-ring kernel buffers a call uses, grown on demand and charged to
/// the process's `ScratchBytes` as they grow (then reused: no allocation in
/// steady state).
struct Scratch<'a> {
    params: &'a mut Vec<capnp::Word>,
    results: &'a mut Vec<u8>,
    charge: &'a mut Option<Reservation>,
}

impl Scratch<'_> {
    /// Makes room for `params` parameter bytes and `results` result bytes.
    fn fit(
        &mut self,
        process: &Process,
        params: usize,
        results: usize,
    ) -> Result<(), TransportError> {
        let words = params.div_ceil(8);
        let grow_params = words.saturating_sub(self.params.capacity());
        let grow_results = results.saturating_sub(self.results.capacity());
        if grow_params == 0 && grow_results == 0 {
            return Ok(());
        }
        let bytes = (grow_params * 8 + grow_results) as u64;
        let more = process
            .ledger
            .reserve(Resource::ScratchBytes, bytes)
            .map_err(|_| TransportError::Quota)?;
        match self.charge.as_mut() {
            Some(c) => {
                let _ = c.merge(more);
            }
            None => *self.charge = Some(more),
        }
        self.params
            .reserve_exact(words.saturating_sub(self.params.len()));
        self.results
            .reserve_exact(results.saturating_sub(self.results.len()));
        Ok(())
    }
}

/// Carries out one submission; the completion to post now, if it is not
/// deferred.
fn execute(
    thread: &Arc<Thread>,
    scratch: &mut Scratch<'_>,
    sub: Submission,
) -> Option<(CqCredit, Cqe)> {
    let Submission {
        user_data,
        op,
        credit,
    } = sub;
    let op = match op {
        Ok(op) => op,
        Err(e) => return Some((credit, Cqe::error(user_data, e))),
    };
    let process = &thread.process;
    match op {
        Op::Nop => Some((credit, Cqe::success(user_data, 0))),
        Op::Release { cap_id } => {
            let removed = process.caps.lock().remove(CapId::from_raw(cap_id));
            // Dropped only now, with the table unlocked: dropping the last
            // hold of an object may take its own locks (an endpoint's owner
            // side closes the endpoint and completes what waits on it, this
            // process's own operations included).
            let cqe = match removed {
                Ok(entry) => {
                    drop(entry);
                    Cqe::success(user_data, 0)
                }
                Err(_) => Cqe::error(user_data, TransportError::BadCap),
            };
            Some((credit, cqe))
        }
        Op::Call(call) => {
            let object = match lookup(process, call.cap_id) {
                Ok(o) => o,
                Err(e) => return Some((credit, Cqe::error(user_data, e))),
            };
            run_call(thread, user_data, credit, scratch, object, call)
        }
        Op::Recv(r) => {
            let buffer = UserWrite::from_buf(r.buffer);
            let object = match lookup(process, r.cap_id) {
                Ok(o) => o,
                Err(e) => return Some((credit, Cqe::error(user_data, e))),
            };
            let mut cx = Recv {
                sub: Submitted::new(thread, user_data, credit, buffer),
                buffer,
                caller_session: r.caller_session,
            };
            let outcome = object.0.recv(&mut cx);
            simple(cx.sub, outcome)
        }
        Op::Return(r) => {
            let object = match lookup(process, r.cap_id) {
                Ok(o) => o,
                Err(e) => return Some((credit, Cqe::error(user_data, e))),
            };
            let mut cx = Return {
                sub: Submitted::new(thread, user_data, credit, UserWrite::EMPTY),
                call_id: r.call_id.get(),
                payload: UserRead::from_buf(r.payload),
                exception: r.exception,
                transfers: r.transfers,
            };
            let outcome = object.0.ret(&mut cx);
            simple(cx.sub, outcome)
        }
    }
}

/// The object a cap id names and the interface it is held as.
fn lookup(process: &Process, cap_id: u64) -> Result<(Object, u64), TransportError> {
    process
        .caps
        .lock()
        .lookup(CapId::from_raw(cap_id))
        .map_err(|_| TransportError::BadCap)
}

/// The completion of an operation that writes no result bytes itself.
fn simple(mut sub: Submitted<'_>, outcome: Outcome) -> Option<(CqCredit, Cqe)> {
    let user_data = sub.user_data();
    let credit = sub.take_credit()?;
    let cqe = match outcome {
        Outcome::Deferred(_) => return None,
        Outcome::Complete(cqe) => cqe,
        Outcome::Error(e) => Cqe::error(user_data, e),
        // RECV and RETURN answer with transport codes only.
        Outcome::Done(_) | Outcome::Exception(_) => {
            Cqe::error(user_data, TransportError::InterfaceMismatch)
        }
    };
    Some((credit, cqe))
}

/// Runs a CALL on `object` and writes what it returns now.
fn run_call(
    thread: &Arc<Thread>,
    user_data: u64,
    credit: CqCredit,
    scratch: &mut Scratch<'_>,
    (object, _): (Object, u64),
    call: capos_ring::Call,
) -> Option<(CqCredit, Cqe)> {
    let process = &thread.process;
    let fail = |credit, e| Some((credit, Cqe::error(user_data, e)));
    let shape = object.shape();
    if call.transfers.count() != 0 && !shape.accepts_transfers {
        return fail(credit, TransportError::TransferDenied);
    }
    let params_user = UserRead::from_buf(call.params);
    let result_buf = UserWrite::from_buf(call.result);
    let params_len = if shape.copies_params {
        params_user.len() as usize
    } else {
        0
    };
    // An object that writes its result only when the call completes later
    // does not write it through the scratch buffer either.
    let results_len = if shape.probes_result {
        result_buf.len() as usize
    } else {
        0
    };
    let params: &[u8] = if params_len | results_len == 0 {
        &[]
    } else {
        if let Err(e) = scratch.fit(process, params_len, results_len) {
            return fail(credit, e);
        }
        // The result buffer must be writable before the method runs, so a
        // bad buffer never lets a side effect happen without its result.
        if results_len != 0 && process.aspace.probe_write(result_buf, results_len).is_err() {
            return fail(credit, TransportError::BadAddress);
        }
        if params_len == 0 {
            &[]
        } else {
            scratch
                .params
                .resize(params_len.div_ceil(8), capnp::word(0, 0, 0, 0, 0, 0, 0, 0));
            let bytes = &mut capnp::Word::words_to_bytes_mut(scratch.params)[..params_len];
            if process.aspace.read(params_user, bytes).is_err() {
                return fail(credit, TransportError::BadAddress);
            }
            bytes
        }
    };
    scratch.results.clear();
    let mut cx = Call {
        sub: Submitted::new(thread, user_data, credit, result_buf),
        method_id: call.method_id,
        params,
        params_user,
        result_buf,
        results: scratch.results,
        result_caps: Vec::new(),
        transfers: call.transfers,
    };
    let outcome = object.call(&mut cx);
    let credit = cx.sub.take_credit()?;
    let cqe = match outcome {
        Outcome::Deferred(_) => return None,
        Outcome::Complete(cqe) => cqe,
        Outcome::Error(e) => Cqe::error(user_data, e),
        Outcome::Exception(exc) => {
            // A failed method returns no capabilities.
            cx.result_caps.clear();
            let encoded = exc.encode();
            if encoded.len() > result_buf.len() as usize {
                Cqe::error(user_data, TransportError::BufferTooSmall)
            } else if process.aspace.write(result_buf, 0, &[&encoded]).is_err() {
                Cqe::error(user_data, TransportError::BadAddress)
            } else {
                let mut c = Cqe::success(user_data, encoded.len() as u32);
                c.flags = CQE_FLAG_EXCEPTION;
                c
            }
        }
        // Nothing to copy out and no capabilities to install.
        Outcome::Done(0) if cx.result_caps.is_empty() => Cqe::success(user_data, 0),
        Outcome::Done(len) => finish_done(process, &mut cx, len),
    };
    Some((credit, cqe))
}

/// Result bytes and capabilities of a method that finished now: the caps go
/// into the caller's table (all or none) with their records after the
/// bytes, then everything is copied out.
fn finish_done(process: &Process, cx: &mut Call<'_>, len: usize) -> Cqe {
    let user_data = cx.sub.user_data();
    let caps = core::mem::take(&mut cx.result_caps);
    cx.results.truncate(len);
    let ids = if caps.is_empty() {
        Vec::new()
    } else {
        if len + caps.len() * crate::objects::transfer::RECORD > cx.result_buf.len() as usize {
            return Cqe::error(user_data, TransportError::BufferTooSmall);
        }
        match crate::objects::transfer::install(process, &caps, cx.results) {
            Ok(ids) => ids,
            Err(e) => return Cqe::error(user_data, e),
        }
    };
    drop(caps);
    if !cx.results.is_empty()
        && process
            .aspace
            .write(cx.result_buf, 0, &[cx.results])
            .is_err()
    {
        // The caller cannot learn the new ids: it does not keep the caps.
        crate::objects::transfer::uninstall(process, &ids);
        return Cqe::error(user_data, TransportError::BadAddress);
    }
    let mut cqe = Cqe::success(user_data, len as u32);
    if !ids.is_empty() {
        cqe.flags = CQE_FLAG_TRANSFER_RESULTS;
        cqe.xfer_count = ids.len() as u32;
    }
    cqe
}
