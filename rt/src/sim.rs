//! A simulated kernel for host tests: drains the SQ of an `OwnedRing` with
//! the kernel's own queue views and answers a few fixed capabilities.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use capos_caps::CapException;
use capos_ring::{
    CompletionPoster, CqCredit, Cqe, DefaultRing, DrainStop, Op, OwnedRing, RawRing, RingIndex,
    SubmissionDrain, TransportError, CQE_FLAG_EXCEPTION,
};
use core::cell::RefCell;
use core::sync::atomic::Ordering::Relaxed;

use crate::ring_client::{Enter, Protected, RingClient};

/// What the simulated kernel did, for assertions.
#[derive(Default)]
pub struct Log {
    pub enters: Vec<(u64, u64)>,
    pub released: Vec<u64>,
}

/// A kernel stand-in over the same ring memory: on every `enter` it
/// drains the SQ, answers CALLs on cap 7 by echoing the parameters (cap
/// 8 answers with an exception, anything else is BAD_CAP), and posts the
/// completions of each drain in reverse order.
pub struct SimKernel {
    raw: RawRing<'static>,
    drain: SubmissionDrain<RawRing<'static>>,
    post: CompletionPoster<RawRing<'static>>,
    log: Rc<RefCell<Log>>,
    /// Completions held back until the next enter.
    held: Vec<(CqCredit, Cqe)>,
    hold_next: bool,
}

impl Enter for SimKernel {
    fn enter(&mut self, min_complete: u64, timeout_ns: u64) -> i64 {
        self.log
            .borrow_mut()
            .enters
            .push((min_complete, timeout_ns));
        let mut out = Vec::new();
        let Ok(mut batch) = self.drain.begin() else {
            return i64::from(TransportError::RingCorrupted.code());
        };
        loop {
            match batch.pop(&mut self.post) {
                Ok(sub) => {
                    let cqe = match sub.op {
                        Err(e) => Cqe::error(sub.user_data, e),
                        Ok(op) => execute(&self.log, sub.user_data, op),
                    };
                    out.push((sub.credit, cqe));
                }
                Err(DrainStop::Done) | Err(DrainStop::CqFull) => break,
                Err(DrainStop::CqCorrupted(_)) => {
                    return i64::from(TransportError::RingCorrupted.code())
                }
            }
        }
        let earlier = core::mem::take(&mut self.held);
        if self.hold_next && !out.is_empty() {
            // Keep this drain's completions for the next enter.
            self.held = out;
            self.hold_next = false;
            out = Vec::new();
        }
        for (credit, cqe) in earlier.into_iter().chain(out.into_iter().rev()) {
            self.post.post(credit, &cqe);
        }
        use capos_ring::RingMemory;
        let head = self.raw.load_index(RingIndex::CqHead, Relaxed);
        i64::from(self.post.tail().wrapping_sub(head))
    }
}

fn execute(log: &RefCell<Log>, user_data: u64, op: Op) -> Cqe {
    {
        match op {
            Op::Nop => Cqe::success(user_data, 0),
            Op::Release { cap_id } => {
                log.borrow_mut().released.push(cap_id);
                if cap_id == 7 {
                    Cqe::success(user_data, 0)
                } else {
                    Cqe::error(user_data, TransportError::BadCap)
                }
            }
            Op::Call(call) if call.cap_id == 7 => {
                // SAFETY: in these tests every CALL comes from the
                // RingClient, whose params buffer is a live Vec of
                // `params.len()` bytes kept in its pending table until
                // this completion is reaped, and nothing writes it.
                let params = unsafe {
                    core::slice::from_raw_parts(
                        call.params.addr() as *const u8,
                        call.params.len() as usize,
                    )
                };
                if params.len() > call.result.len() as usize {
                    return Cqe::error(user_data, TransportError::BufferTooSmall);
                }
                // SAFETY: likewise the result buffer is a live Vec of
                // `result.len()` bytes that nothing reads or writes until
                // the completion is reaped; it never overlaps `params`.
                let result = unsafe {
                    core::slice::from_raw_parts_mut(
                        call.result.addr() as *mut u8,
                        call.result.len() as usize,
                    )
                };
                result[..params.len()].copy_from_slice(params);
                Cqe::success(user_data, params.len() as u32)
            }
            Op::Call(call) if call.cap_id == 8 => {
                let bytes = CapException::failed("no").encode();
                // SAFETY: as above, a live runtime-owned result buffer.
                let result = unsafe {
                    core::slice::from_raw_parts_mut(
                        call.result.addr() as *mut u8,
                        call.result.len() as usize,
                    )
                };
                result[..bytes.len()].copy_from_slice(&bytes);
                let mut c = Cqe::success(user_data, bytes.len() as u32);
                c.flags = CQE_FLAG_EXCEPTION;
                c
            }
            _ => Cqe::error(user_data, TransportError::BadCap),
        }
    }
}

pub fn setup_with(
    hold_first: bool,
    protected: Protected,
) -> (RingClient, Rc<RefCell<Log>>, &'static DefaultRing) {
    let ring: &'static DefaultRing = Box::leak(Box::new(OwnedRing::new()));
    let raw = ring.ring();
    let log = Rc::new(RefCell::new(Log::default()));
    let kernel = SimKernel {
        raw,
        drain: SubmissionDrain::new(raw).unwrap(),
        post: CompletionPoster::new(raw).unwrap(),
        log: log.clone(),
        held: Vec::new(),
        hold_next: hold_first,
    };
    let client = RingClient::new(raw, Box::new(kernel), protected).unwrap();
    (client, log, ring)
}

pub fn setup() -> (RingClient, Rc<RefCell<Log>>, &'static DefaultRing) {
    setup_with(false, vec![(0x1000, 0x2000)])
}
