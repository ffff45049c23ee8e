//! A simulated kernel for host tests: drains the SQ of an `OwnedRing` with
//! the kernel's own queue views and answers a few fixed capabilities,
//! including a `VirtualMemory` (cap 10) over a region of host memory.

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
    /// `VirtualMemory.map` calls on cap 10: (hint, size, address or 0).
    pub maps: Vec<(u64, u64, u64)>,
    pub vm: SimVm,
}

/// The simulated `VirtualMemory`: hands out page-aligned pieces of a leaked
/// host buffer in address order, up to a quota.
#[derive(Default)]
pub struct SimVm {
    next: u64,
    end: u64,
    /// Bytes that may still be mapped.
    pub quota: u64,
    /// Leave a page unmapped before the next mapping (as if the program had
    /// mapped something there itself).
    pub skip_page: bool,
}

impl SimVm {
    /// A window of `bytes` of host memory, all of it within the quota.
    pub fn with_window(bytes: usize) -> Self {
        let buf: &'static mut [u8] = Vec::leak(vec![0u8; bytes + 4096]);
        let base = (buf.as_mut_ptr() as u64).next_multiple_of(4096);
        SimVm {
            next: base,
            end: base + bytes as u64,
            quota: bytes as u64,
            skip_page: false,
        }
    }

    /// Maps `size` bytes: the address, or an exception.
    pub fn map(&mut self, size: u64) -> Result<u64, CapException> {
        if size == 0 || !size.is_multiple_of(4096) {
            return Err(CapException::failed("sizes are whole pages"));
        }
        if self.skip_page {
            self.skip_page = false;
            self.next += 4096;
        }
        if size > self.quota || self.next + size > self.end {
            return Err(CapException::overloaded(alloc::format!(
                "frame quota: {size} bytes asked, {} left",
                self.quota
            )));
        }
        let addr = self.next;
        self.next += size;
        self.quota -= size;
        Ok(addr)
    }
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
            Op::Call(call) if call.cap_id == 10 => {
                // SAFETY: the direct call's parameter buffer is a fixed
                // buffer of `params.len()` bytes that nothing writes until
                // this completion is reaped.
                let params = unsafe {
                    core::slice::from_raw_parts(
                        call.params.addr() as *const u8,
                        call.params.len() as usize,
                    )
                };
                let (hint, size, reply) = map_call(&mut log.borrow_mut().vm, params);
                let mut log = log.borrow_mut();
                log.maps.push((hint, size, *reply.as_ref().unwrap_or(&0)));
                let (bytes, exception) = match reply {
                    Ok(addr) => {
                        use capos_caps::schema::capos_capnp::virtual_memory as vm;
                        let mut m = capnp::message::Builder::new_default();
                        m.init_root::<vm::map_results::Builder>().set_addr(addr);
                        (crate::wire::to_bytes(&m), false)
                    }
                    Err(e) => (e.encode(), true),
                };
                if bytes.len() > call.result.len() as usize {
                    return Cqe::error(user_data, TransportError::BufferTooSmall);
                }
                // SAFETY: a live result buffer of `result.len()` bytes that
                // nothing reads or writes until this completion is reaped.
                let result = unsafe {
                    core::slice::from_raw_parts_mut(
                        call.result.addr() as *mut u8,
                        call.result.len() as usize,
                    )
                };
                result[..bytes.len()].copy_from_slice(&bytes);
                let mut c = Cqe::success(user_data, bytes.len() as u32);
                if exception {
                    c.flags = CQE_FLAG_EXCEPTION;
                }
                c
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

/// Decodes `VirtualMemory.map` parameters with the Cap'n Proto library (so
/// the runtime's hand encoding is checked against it) and maps.
fn map_call(vm: &mut SimVm, params: &[u8]) -> (u64, u64, Result<u64, CapException>) {
    use capos_caps::schema::capos_capnp::virtual_memory as v;
    let msg = crate::wire::read(params).expect("map parameters decode");
    let p = msg.get_root::<v::map_params::Reader>().unwrap();
    assert_eq!(p.get_prot(), 3, "the heap maps read-write");
    (p.get_hint(), p.get_size(), vm.map(p.get_size()))
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
