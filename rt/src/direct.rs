//! Direct calls: one CALL made beside the ring client, without allocating.
//!
//! The heap grows by calling `VirtualMemory.map` from inside the allocator,
//! where nothing may allocate (the allocator's lock is held) and where the
//! ring client may be in the middle of an operation (an allocation in
//! [`crate::RingClient::reap`] or `push` is exactly where the heap runs out).
//! So the call cannot go through the client. It is made here instead:
//!
//! * the parameters and the result live in fixed buffers inside the
//!   process's [`RingShared`], never on the heap or the stack, so a call
//!   abandoned with its SQE still in flight can never make the kernel write
//!   into memory that has been reused;
//! * the SQE is pushed and its CQE reaped through fresh producer and consumer
//!   views that start from the indices in shared memory (userspace is the
//!   only writer of `sq_tail` and `cq_head`, and the client publishes every
//!   SQE it pushes before it can allocate);
//! * every other CQE reaped while waiting is kept, in order, in a fixed
//!   stash of `SQ_ENTRIES + CQ_ENTRIES` entries; the client takes stashed
//!   completions before it reads the CQ, so no other call's completion is
//!   lost or reordered;
//! * an epoch counter tells the client that the indices moved under it: it
//!   rebuilds its views from shared memory before it next touches the SQ or
//!   the CQ.
//!
//! The stash cannot overflow: the client empties it before each submission,
//! and from then until the next submission only completions of requests
//! already in the ring can enter it. The ring holds at most `SQ_ENTRIES`
//! unconsumed SQEs plus `CQ_ENTRIES` consumed ones (each holds a CQ credit
//! until it is reaped). If it ever were full, the direct call gives up
//! without reaping further and disables itself (the buffers may still be
//! written by the kernel); nothing is dropped.

use capos_ring::process::TIMEOUT_FOREVER;
use capos_ring::{
    Call, CompletionConsumer, Cqe, Op, RawRing, SubmissionProducer, SubmitError, TransferList,
    UserBuf, CQ_ENTRIES, MAX_PARAMS_LEN, MAX_RESULT_LEN, SQ_ENTRIES,
};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::ring_client::Enter;

/// Completions a direct call can keep for the ring client.
pub const STASH_CAPACITY: usize = (SQ_ENTRIES + CQ_ENTRIES) as usize;
/// Room for a direct call's serialized parameters.
pub const PARAMS_CAPACITY: usize = 64;
/// Room for a direct call's result (a small struct, or an exception with a
/// message).
pub const RESULT_CAPACITY: usize = 512;
/// `user_data` of direct calls. The ring client's tickets count up from 1
/// and never reach it; benchmarks and the panic report use `u64::MAX`.
pub const DIRECT_USER_DATA: u64 = u64::MAX - 1;

/// How often a direct call waits for SQ room before giving up, and how long
/// each wait may take.
const SUBMIT_ATTEMPTS: u32 = 64;
const SUBMIT_WAIT_NS: u64 = 10_000_000;

/// Why a direct call produced no completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectError {
    /// Another direct call is running (re-entry), or an earlier one was
    /// abandoned in flight and direct calls are disabled.
    Busy,
    /// The ring's indices are inconsistent.
    Corrupted,
    /// The SQ stayed full while the kernel was given time to drain it.
    SqFull,
    /// The stash was full with more completions waiting (never expected; see
    /// the module documentation). Direct calls are disabled from now on.
    StashFull,
    /// `cap_enter` failed with this value.
    Syscall(i64),
    /// A parameter or result buffer was refused before submission.
    BadBuffer,
}

impl DirectError {
    /// A short description, for reports that cannot allocate.
    pub fn describe(self) -> &'static str {
        match self {
            DirectError::Busy => "direct ring call busy or disabled",
            DirectError::Corrupted => "ring indices corrupted",
            DirectError::SqFull => "submission queue stayed full",
            DirectError::StashFull => "completion stash full",
            DirectError::Syscall(_) => "cap_enter failed",
            DirectError::BadBuffer => "buffer refused",
        }
    }
}

#[repr(C, align(8))]
struct Words<const N: usize>([u8; N]);

const EMPTY_CQE: Cqe = Cqe::success(0, 0);

struct State {
    /// Stashed completions, a FIFO: `len` entries starting at `first`.
    stash: [Cqe; STASH_CAPACITY],
    first: usize,
    len: usize,
    params: Words<PARAMS_CAPACITY>,
    result: Words<RESULT_CAPACITY>,
    /// An abandoned call may still be written by the kernel: refuse more.
    disabled: bool,
    /// Direct calls completed.
    calls: u64,
}

impl State {
    fn push(&mut self, cqe: Cqe) -> bool {
        if self.len == STASH_CAPACITY {
            return false;
        }
        self.stash[(self.first + self.len) % STASH_CAPACITY] = cqe;
        self.len += 1;
        true
    }

    fn pop(&mut self) -> Option<Cqe> {
        if self.len == 0 {
            return None;
        }
        let cqe = self.stash[self.first];
        self.first = (self.first + 1) % STASH_CAPACITY;
        self.len -= 1;
        Some(cqe)
    }
}

/// The process's ring's shared state (one ring per process).
#[cfg(target_os = "none")]
pub(crate) static PROCESS: RingShared = RingShared::new();

/// What a direct call and the ring client share: the stash, the epoch and
/// the direct call's buffers. One per ring; a process's lives in a static.
pub struct RingShared {
    /// Bumped whenever a direct call may have moved `sq_tail` or `cq_head`.
    epoch: AtomicU64,
    /// Copy of the stash's length, so the client's every reap need not take
    /// the lock to find it empty. Written under the lock.
    stashed: AtomicUsize,
    state: spin::Mutex<State>,
}

impl Default for RingShared {
    fn default() -> Self {
        Self::new()
    }
}

impl RingShared {
    /// An empty stash.
    pub const fn new() -> Self {
        RingShared {
            epoch: AtomicU64::new(0),
            stashed: AtomicUsize::new(0),
            state: spin::Mutex::new(State {
                stash: [EMPTY_CQE; STASH_CAPACITY],
                first: 0,
                len: 0,
                params: Words([0; PARAMS_CAPACITY]),
                result: Words([0; RESULT_CAPACITY]),
                disabled: false,
                calls: 0,
            }),
        }
    }

    /// Changes whenever a direct call may have moved the ring's indices.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The oldest stashed completion, if any. Never allocates, so it can be
    /// called at any point of a ring operation.
    pub fn take_stashed(&self) -> Option<Cqe> {
        // Relaxed: the stash is only used by the process's one thread.
        if self.stashed.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut st = self.state.lock();
        let cqe = st.pop();
        self.stashed.store(st.len, Ordering::Relaxed);
        cqe
    }

    /// Completions waiting in the stash.
    pub fn stashed(&self) -> usize {
        self.stashed.load(Ordering::Relaxed)
    }

    /// Direct calls completed so far.
    pub fn calls(&self) -> u64 {
        self.state.lock().calls
    }

    /// Makes one CALL of `method` on `cap_id` through `ring`, entering the
    /// kernel through `kernel`, and waits for its completion. `encode`
    /// writes the parameters into the buffer it is given and returns their
    /// length; `decode` sees the CQE and the result bytes it announces.
    ///
    /// Allocates nothing. Completions of other requests reaped meanwhile are
    /// stashed for the ring client.
    pub fn call<R>(
        &self,
        ring: RawRing<'static>,
        kernel: &mut dyn Enter,
        cap_id: u64,
        method: u16,
        encode: impl FnOnce(&mut [u8]) -> usize,
        decode: impl FnOnce(&Cqe, &[u8]) -> R,
    ) -> Result<R, DirectError> {
        let mut guard = self.state.try_lock().ok_or(DirectError::Busy)?;
        let result = self.call_locked(&mut guard, ring, kernel, cap_id, method, encode, decode);
        self.stashed.store(guard.len, Ordering::Relaxed);
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn call_locked<R>(
        &self,
        st: &mut State,
        ring: RawRing<'static>,
        kernel: &mut dyn Enter,
        cap_id: u64,
        method: u16,
        encode: impl FnOnce(&mut [u8]) -> usize,
        decode: impl FnOnce(&Cqe, &[u8]) -> R,
    ) -> Result<R, DirectError> {
        if st.disabled {
            return Err(DirectError::Busy);
        }
        let n = encode(&mut st.params.0).min(PARAMS_CAPACITY);
        // The ABI wants address 0 for an empty buffer.
        let params_addr = if n == 0 {
            0
        } else {
            st.params.0.as_ptr() as u64
        };
        let params = UserBuf::new(params_addr, n as u32, MAX_PARAMS_LEN)
            .map_err(|_| DirectError::BadBuffer)?;
        let result = UserBuf::new(
            st.result.0.as_mut_ptr() as u64,
            RESULT_CAPACITY as u32,
            MAX_RESULT_LEN,
        )
        .map_err(|_| DirectError::BadBuffer)?;
        let sqe = Op::Call(Call {
            cap_id,
            method_id: method,
            params,
            result,
            transfers: TransferList::NONE,
        })
        .encode(DIRECT_USER_DATA);

        // From here on the indices may move: the client must resync.
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let mut sq = SubmissionProducer::new(ring).map_err(|_| DirectError::Corrupted)?;
        let mut cq = CompletionConsumer::new(ring).map_err(|_| DirectError::Corrupted)?;

        // Submit, making room if the SQ is full. Nothing of ours is in
        // flight yet, so giving up here is harmless.
        let mut attempt = 0;
        loop {
            match sq.try_submit(&sqe) {
                Ok(()) => break,
                Err(SubmitError::Corrupted(_)) => return Err(DirectError::Corrupted),
                Err(SubmitError::Full) => {}
            }
            if attempt == SUBMIT_ATTEMPTS {
                return Err(DirectError::SqFull);
            }
            // A full stash stops reaping; the kernel may still drain the SQ.
            let _ = stash_until(st, &mut cq, None);
            let (min, timeout) = if attempt == 0 {
                (0, 0)
            } else {
                (1, SUBMIT_WAIT_NS)
            };
            let r = kernel.enter(min, timeout);
            if r < 0 {
                return Err(DirectError::Syscall(r));
            }
            attempt += 1;
        }

        // Our SQE is in flight: from here on, failing means the kernel may
        // still write the result buffer, so direct calls are disabled.
        let own = loop {
            match stash_until(st, &mut cq, Some(DIRECT_USER_DATA)) {
                Ok(Some(cqe)) => break cqe,
                Ok(None) => {}
                Err(e) => {
                    st.disabled = true;
                    return Err(e);
                }
            }
            // The CQ is empty (everything was reaped): wait for more.
            let r = kernel.enter(1, TIMEOUT_FOREVER);
            if r < 0 {
                st.disabled = true;
                return Err(DirectError::Syscall(r));
            }
        };
        st.calls += 1;
        let len = match own.status() {
            capos_ring::CqeStatus::Ok(n) => (n as usize).min(RESULT_CAPACITY),
            _ => 0,
        };
        Ok(decode(&own, &st.result.0[..len]))
    }
}

/// Reaps every posted CQE: returns the one for `own` as soon as it comes,
/// stashes the others. `Ok(None)` once the CQ is empty.
fn stash_until(
    st: &mut State,
    cq: &mut CompletionConsumer<RawRing<'static>>,
    own: Option<u64>,
) -> Result<Option<Cqe>, DirectError> {
    loop {
        if st.len == STASH_CAPACITY {
            // Reap nothing more unless we know where it can go.
            return match cq.ready() {
                Ok(0) => Ok(None),
                Ok(_) => Err(DirectError::StashFull),
                Err(_) => Err(DirectError::Corrupted),
            };
        }
        match cq.try_reap() {
            Ok(Some(cqe)) if Some(cqe.user_data) == own => return Ok(Some(cqe)),
            Ok(Some(cqe)) => {
                let stored = st.push(cqe);
                debug_assert!(stored);
            }
            Ok(None) => return Ok(None),
            Err(_) => return Err(DirectError::Corrupted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::setup;
    use alloc::vec::Vec;

    /// Echo cap 7 of the simulated kernel: the result is the parameters.
    fn echo(
        shared: &RingShared,
        ring: RawRing<'static>,
        kernel: &mut dyn Enter,
        byte: u8,
    ) -> Vec<u8> {
        shared
            .call(
                ring,
                kernel,
                7,
                0,
                |buf| {
                    buf[..5].fill(byte);
                    5
                },
                |cqe, bytes| {
                    assert_eq!(cqe.user_data, DIRECT_USER_DATA);
                    bytes.to_vec()
                },
            )
            .unwrap()
    }

    #[test]
    fn a_direct_call_keeps_other_completions_for_the_client() {
        let (mut c, _, _) = setup();
        let shared = c.shared();
        let ring = c.raw();
        // Calls of the client in flight: the kernel completes them together
        // with the direct call, in reverse order.
        let tickets: Vec<_> = (0..5u8)
            .map(|i| c.submit_call(7, 0, alloc::vec![i; 3], 16).unwrap())
            .collect();
        let nop = c.submit_nop().unwrap();
        // The kernel completes them before the direct call is submitted, and
        // the client has not reaped them yet.
        assert_eq!(c.kernel_for_test().enter(0, 0), 6);
        assert_eq!(echo(shared, ring, c.kernel_for_test(), 0xAA), [0xAA; 5]);
        assert_eq!(shared.stashed(), 6, "every other completion was kept");
        assert_eq!(shared.calls(), 1);
        // The client takes the stashed completions and resyncs its views:
        // the CQ head moved under it.
        for (i, t) in tickets.iter().enumerate() {
            assert_eq!(c.wait(*t).unwrap().result, alloc::vec![i as u8; 3]);
        }
        assert_eq!(c.wait(nop).unwrap().cqe.result, 0);
        assert_eq!(shared.stashed(), 0);
        assert_eq!(c.stats().strays, 0);
        // And the ring keeps working in both directions.
        assert_eq!(c.call(7, 0, b"after".to_vec(), 16).unwrap(), b"after");
    }

    #[test]
    fn direct_calls_interleave_with_a_busy_client() {
        let (mut c, _, _) = setup();
        let shared = c.shared();
        let ring = c.raw();
        for round in 0..40u8 {
            // Leave a few client calls in flight, some submitted and some
            // already completed in the CQ, then make a direct call.
            let a = c.submit_call(7, 0, alloc::vec![round; 2], 8).unwrap();
            c.poll().unwrap();
            let b = c.submit_call(7, 0, alloc::vec![round, 1], 8).unwrap();
            if round % 2 == 1 {
                // `b` completes before the direct call is submitted: it is
                // stashed. Otherwise it completes after (the simulated
                // kernel posts in reverse) and stays in the CQ.
                c.kernel_for_test().enter(0, 0);
            }
            assert_eq!(echo(shared, ring, c.kernel_for_test(), round), [round; 5]);
            assert_eq!(shared.stashed(), usize::from(round % 2));
            assert_eq!(c.wait(b).unwrap().result, alloc::vec![round, 1]);
            assert_eq!(c.wait(a).unwrap().result, alloc::vec![round; 2]);
        }
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.stats().strays, 0);
        assert_eq!(shared.calls(), 40);
    }

    #[test]
    fn a_full_sq_is_drained_for_the_direct_call() {
        let (mut c, _, _) = setup();
        let shared = c.shared();
        let ring = c.raw();
        let tickets: Vec<_> = (0..SQ_ENTRIES)
            .map(|i| c.submit_call(7, 0, i.to_le_bytes().to_vec(), 8).unwrap())
            .collect();
        assert_eq!(echo(shared, ring, c.kernel_for_test(), 3), [3; 5]);
        assert_eq!(shared.stashed(), SQ_ENTRIES as usize);
        for (i, t) in tickets.into_iter().enumerate() {
            assert_eq!(c.wait(t).unwrap().result, (i as u32).to_le_bytes());
        }
    }

    #[test]
    fn re_entry_is_refused_and_errors_are_reported() {
        let (mut c, _, _) = setup();
        let shared = c.shared();
        let ring = c.raw();
        let guard = shared.state.lock();
        let r = shared.call(ring, c.kernel_for_test(), 7, 0, |_| 0, |_, _| ());
        assert_eq!(r, Err(DirectError::Busy));
        drop(guard);
        // A transport error is a completion like any other.
        let r = shared.call(
            ring,
            c.kernel_for_test(),
            99,
            0,
            |_| 0,
            |cqe, b| (cqe.result, b.len()),
        );
        assert_eq!(r, Ok((capos_ring::TransportError::BadCap.code(), 0)));
        assert_eq!(c.stats().strays, 0);
    }

    #[test]
    fn a_failing_enter_disables_direct_calls_once_in_flight() {
        use capos_ring::RingIndex;
        use core::sync::atomic::Ordering::Relaxed;
        let (mut c, _, owned) = setup();
        let shared = c.shared();
        let ring = c.raw();
        // A bogus CQ tail: the direct call's first reap sees corruption
        // after its SQE is in flight.
        owned
            .header()
            .index_word(RingIndex::CqTail)
            .store(1000, Relaxed);
        let r = shared.call(ring, c.kernel_for_test(), 7, 0, |_| 1, |_, _| ());
        assert_eq!(r, Err(DirectError::Corrupted));
        owned
            .header()
            .index_word(RingIndex::CqTail)
            .store(0, Relaxed);
        assert_eq!(
            shared.call(ring, c.kernel_for_test(), 7, 0, |_| 1, |_, _| ()),
            Err(DirectError::Busy)
        );
    }

    #[test]
    fn the_stash_is_a_bounded_fifo() {
        let shared = RingShared::new();
        let mut st = shared.state.lock();
        for i in 0..STASH_CAPACITY as u64 {
            assert!(st.push(Cqe::success(i, 0)));
        }
        assert!(!st.push(Cqe::success(999, 0)));
        for i in 0..10 {
            assert_eq!(st.pop().unwrap().user_data, i);
        }
        for i in 0..10 {
            assert!(st.push(Cqe::success(100 + i, 0)));
        }
        let order: Vec<u64> = core::iter::from_fn(|| st.pop())
            .map(|c| c.user_data)
            .collect();
        let want: Vec<u64> = (10..STASH_CAPACITY as u64).chain(100..110).collect();
        assert_eq!(order, want);
    }
}
