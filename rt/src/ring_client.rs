//! The ring client: submits SQEs, keeps their buffers alive, and matches
//! completions to submissions by `user_data`, in whatever order they arrive.
//!
//! Every submission gets a fresh `user_data` (a [`Ticket`]). The parameter
//! and result buffers of a CALL are owned `Vec<u8>`s moved into the client's
//! pending table, so the memory the kernel reads and writes stays allocated
//! (and is never touched by Rust code) until the completion for that ticket
//! has been reaped. Completions are reaped in CQ order and parked in a table
//! until their owner asks for them; a blocking [`RingClient::wait`] therefore
//! never loses another caller's completion.
//!
//! The client talks to the kernel only through the [`Enter`] trait, so the
//! whole matching logic runs on the host against an [`capos_ring::OwnedRing`]
//! and a simulated kernel (see the tests below).
//!
//! The heap may make a [direct call](crate::direct) on the same ring in the
//! middle of any operation that allocates. The client therefore takes
//! completions from the direct call's stash before it reads the CQ, empties
//! the stash before each submission, and rebuilds its queue views from the
//! indices in shared memory whenever the direct call's epoch has moved.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use capos_caps::CapException;
use capos_ring::process::TIMEOUT_FOREVER;
use capos_ring::{
    Call, CompletionConsumer, Cqe, CqeStatus, Op, RawRing, Sqe, SubmissionProducer, SubmitError,
    TransferList, UserBuf, CQE_FLAG_EXCEPTION, CQE_FLAG_TRANSFER_RESULTS, MAX_PARAMS_LEN,
    MAX_RESULT_LEN, TRANSFER_RESULT_SIZE,
};

use crate::direct::RingShared;
use crate::error::CallError;
use core::sync::atomic::Ordering;

/// Entry into the kernel: `cap_enter(min_complete, timeout_ns)`.
///
/// In a capOS process this is the system call; host tests supply a
/// simulated kernel.
pub trait Enter {
    /// Lets the kernel drain the submission queue, then waits until at least
    /// `min_complete` completions are available or `timeout_ns` passes.
    /// Returns the number of completions available or a negative error code.
    fn enter(&mut self, min_complete: u64, timeout_ns: u64) -> i64;
}

/// Identifies one submission: its `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

impl Ticket {
    /// The `user_data` the SQE carried.
    pub fn user_data(self) -> u64 {
        self.0
    }
}

/// A reaped completion with the result buffer of its submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The CQE as the kernel posted it.
    pub cqe: Cqe,
    /// The result bytes (plus transfer-result records, if flagged), cut to
    /// what the CQE says was written. Empty for submissions without a
    /// runtime-owned result buffer and for failed ones.
    pub result: Vec<u8>,
    /// Position of this CQE in the completion queue as reaped (the value of
    /// [`RingStats::reaped`] when it was reaped): completions can be ordered
    /// by it even when several arrive before the program looks.
    pub seq: u64,
}

impl Completion {
    /// Interprets the completion of a CALL: the result bytes, the decoded
    /// exception, or the transport error.
    pub fn into_result(self) -> Result<Vec<u8>, CallError> {
        match self.cqe.status() {
            CqeStatus::Ok(_) if self.cqe.flags & CQE_FLAG_EXCEPTION != 0 => {
                Err(CallError::Exception(
                    CapException::decode(&self.result).map_err(CallError::Decode)?,
                ))
            }
            CqeStatus::Ok(_) => Ok(self.result),
            CqeStatus::Err(e) => Err(CallError::Transport(e)),
            CqeStatus::Unknown(code) => Err(CallError::UnknownTransport(code)),
        }
    }
}

/// Counters kept by the client, for diagnostics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// SQEs submitted.
    pub submitted: u64,
    /// CQEs reaped.
    pub reaped: u64,
    /// CQEs whose `user_data` matched no pending submission (dropped).
    pub strays: u64,
    /// RELEASE completions that reported an error (stale or already
    /// released caps; never fatal).
    pub releases_rejected: u64,
    /// `cap_enter` calls made.
    pub enters: u64,
}

/// What a pending submission holds on to.
enum Pending {
    /// A CALL: the buffers the kernel reads and writes.
    Call { _params: Vec<u8>, result: Vec<u8> },
    /// A CALL with transfer descriptors (kept alive like the buffers).
    CallWithTransfers {
        _params: Vec<u8>,
        _transfers: Vec<u8>,
        result: Vec<u8>,
    },
    /// A RELEASE queued by a dropped handle; nobody waits for it.
    Release,
    /// A NOP or raw SQE with no runtime-owned buffers.
    Bare,
}

/// Address ranges of writable process memory (`start..end`). The kernel
/// writes to the result buffer a submission names, so a raw submission may
/// not point its result buffer into any of these.
pub type Protected = Vec<(u64, u64)>;

/// The userspace side of one ring. One per process; shared as
/// [`crate::Ring`].
pub struct RingClient {
    raw: RawRing<'static>,
    sq: SubmissionProducer<RawRing<'static>>,
    cq: CompletionConsumer<RawRing<'static>>,
    kernel: Box<dyn Enter>,
    /// Stash and epoch shared with direct calls on this ring.
    shared: &'static RingShared,
    /// The direct-call epoch the views were last built at.
    epoch: u64,
    next_user_data: u64,
    pending: BTreeMap<u64, Pending>,
    done: BTreeMap<u64, Completion>,
    releases_in_flight: usize,
    protected: Protected,
    stats: RingStats,
    /// The benchmark buffers ([`BenchBuf`]), and benchmark submissions
    /// pushed and not reaped yet (while any is, the kernel may still read or
    /// write the buffers, so Rust code may not touch them).
    bench_bufs: [Vec<u8>; 3],
    bench_outstanding: u32,
}

/// Default capacity of a CALL's result buffer: room for any small result
/// and for a `CapException` with a long message.
pub const DEFAULT_RESULT_CAPACITY: usize = 2048;

impl RingClient {
    /// A client for `raw`, entering the kernel through `kernel`. `protected`
    /// lists the process's writable memory (see [`Protected`]).
    pub fn new(
        raw: RawRing<'static>,
        kernel: Box<dyn Enter>,
        protected: Protected,
    ) -> Result<Self, capos_ring::LayoutError> {
        // A process has one ring and one client; direct calls (the heap)
        // find the same shared state through the static.
        #[cfg(target_os = "none")]
        let shared: &'static RingShared = &crate::direct::PROCESS;
        #[cfg(not(target_os = "none"))]
        let shared: &'static RingShared = Box::leak(Box::new(RingShared::new()));
        Ok(RingClient {
            raw,
            sq: SubmissionProducer::new(raw)?,
            cq: CompletionConsumer::new(raw)?,
            kernel,
            shared,
            // The current epoch only if the stash is empty (see `in_sync`);
            // otherwise the first sync rebuilds the views and adopts it
            // once the stash has been emptied.
            epoch: if shared.stashed() == 0 {
                shared.epoch()
            } else {
                shared.epoch().wrapping_sub(1)
            },
            next_user_data: 1,
            pending: BTreeMap::new(),
            done: BTreeMap::new(),
            releases_in_flight: 0,
            protected,
            stats: RingStats::default(),
            bench_bufs: [
                vec![0; BENCH_BUF_LEN],
                vec![0; BENCH_BUF_LEN],
                vec![0; BENCH_BUF_LEN],
            ],
            bench_outstanding: 0,
        })
    }

    /// The mapped ring this client drives.
    pub fn raw(&self) -> RawRing<'static> {
        self.raw
    }

    /// Counters.
    pub fn stats(&self) -> RingStats {
        self.stats
    }

    /// The stash and epoch this client shares with direct calls.
    pub fn shared(&self) -> &'static RingShared {
        self.shared
    }

    /// [`Self::shared`] for the hot paths: in a capOS process it is always
    /// the process's static, so no pointer is loaded.
    #[inline(always)]
    fn shared_state(&self) -> &'static RingShared {
        #[cfg(target_os = "none")]
        {
            &crate::direct::PROCESS
        }
        #[cfg(not(target_os = "none"))]
        {
            self.shared
        }
    }

    /// The kernel entry, for tests that make direct calls on this ring.
    #[cfg(test)]
    pub(crate) fn kernel_for_test(&mut self) -> &mut (dyn Enter + 'static) {
        &mut *self.kernel
    }

    /// Whether the queue views are current and the direct calls' stash is
    /// empty: one compare of the shared epoch with the one last adopted.
    /// [`Self::resync`] adopts an epoch only while the stash is empty, and
    /// a direct call moves the epoch before it moves an index or stashes a
    /// completion, so an unchanged epoch means both.
    #[inline(always)]
    fn in_sync(&self) -> bool {
        self.shared_state().epoch() == self.epoch
    }

    /// Rebuilds the queue views from the indices in shared memory if a
    /// direct call may have moved them. Called before every use of `sq` or
    /// `cq`; allocates nothing.
    #[inline]
    fn sync(&mut self) -> Result<(), CallError> {
        if self.in_sync() {
            return Ok(());
        }
        self.resync()
    }

    #[cold]
    #[inline(never)]
    fn resync(&mut self) -> Result<(), CallError> {
        let epoch = self.shared_state().epoch();
        // Everything this client pushed is published, so the shared
        // `sq_tail` is its real tail; `cq_head` is only written by
        // consumers, which always store it as they reap.
        self.sq = SubmissionProducer::new(self.raw)
            .map_err(|_| CallError::InvalidArgument("ring geometry changed"))?;
        self.cq = CompletionConsumer::new(self.raw)
            .map_err(|_| CallError::InvalidArgument("ring geometry changed"))?;
        // Adopted only with the stash empty (see `in_sync`); until then
        // every sync rebuilds the views, which is always correct.
        if self.shared_state().stashed() == 0 {
            self.epoch = epoch;
        }
        Ok(())
    }

    /// The next completion: a stashed one first (they were reaped from the
    /// CQ earlier), then the CQ's.
    fn next_cqe(&mut self) -> Result<Option<Cqe>, CallError> {
        if let Some(cqe) = self.shared_state().take_stashed() {
            return Ok(Some(cqe));
        }
        self.sync()?;
        self.cq.try_reap().map_err(CallError::Corrupted)
    }

    /// Submissions whose completion has not been reaped yet.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    fn enter(&mut self, min_complete: u64, timeout_ns: u64) -> Result<u64, CallError> {
        self.stats.enters += 1;
        let n = self.kernel.enter(min_complete, timeout_ns);
        if n < 0 {
            return Err(CallError::Syscall(n));
        }
        Ok(n as u64)
    }

    /// Pushes and publishes `sqe` (its `user_data` replaced by a fresh one),
    /// making room first if the SQ is full. The kernel sees it at the next
    /// `cap_enter`.
    fn push(&mut self, mut sqe: Sqe, pending: Pending) -> Result<Ticket, CallError> {
        let user_data = self.next_user_data;
        self.next_user_data += 1;
        sqe.user_data = user_data;
        loop {
            // Hand stashed completions to their owners first, so that the
            // stash only ever holds completions of requests already in the
            // ring (which bounds it). Delivering may allocate, and so make
            // a direct call that stashes more: repeat until it is empty.
            while let Some(cqe) = self.shared_state().take_stashed() {
                self.deliver(cqe);
            }
            self.sync()?;
            match self.sq.try_submit(&sqe) {
                Ok(()) => break,
                Err(SubmitError::Corrupted(c)) => return Err(CallError::Corrupted(c)),
                Err(SubmitError::Full) => self.make_room()?,
            }
        }
        if matches!(pending, Pending::Release) {
            self.releases_in_flight += 1;
        }
        self.pending.insert(user_data, pending);
        self.stats.submitted += 1;
        Ok(Ticket(user_data))
    }

    /// Frees SQ space: reap what is there (so the kernel has CQ room), let
    /// the kernel drain, and if that is not enough wait for a completion.
    fn make_room(&mut self) -> Result<(), CallError> {
        self.reap()?;
        self.enter(0, 0)?;
        self.reap()?;
        self.sync()?;
        if self.sq.space().map_err(CallError::Corrupted)? > 0 {
            return Ok(());
        }
        if self.pending.is_empty() {
            return Err(CallError::SqStuck);
        }
        self.enter(1, TIMEOUT_FOREVER)?;
        self.reap()?;
        Ok(())
    }

    /// Moves every posted completion (stashed by a direct call, then from
    /// the CQ) into the completed table. Returns how many were reaped.
    pub fn reap(&mut self) -> Result<u32, CallError> {
        let mut n = 0;
        while let Some(cqe) = self.next_cqe()? {
            n += 1;
            self.deliver(cqe);
        }
        Ok(n)
    }

    /// Files one reaped completion under its submission. May allocate (the
    /// completed table grows), so a direct call may run inside it.
    fn deliver(&mut self, cqe: Cqe) {
        self.stats.reaped += 1;
        match self.pending.remove(&cqe.user_data) {
            Some(Pending::Call { result, .. })
            | Some(Pending::CallWithTransfers { result, .. }) => {
                let result = cut_result(&cqe, result);
                let seq = self.stats.reaped;
                self.done
                    .insert(cqe.user_data, Completion { cqe, result, seq });
            }
            Some(Pending::Bare) => {
                self.done.insert(
                    cqe.user_data,
                    Completion {
                        cqe,
                        result: Vec::new(),
                        seq: self.stats.reaped,
                    },
                );
            }
            Some(Pending::Release) => {
                self.releases_in_flight -= 1;
                if cqe.result < 0 {
                    self.stats.releases_rejected += 1;
                }
            }
            None => self.stats.strays += 1,
        }
    }

    /// Submits a CALL of `method` on `cap_id` with serialized `params` and a
    /// result buffer of `result_capacity` bytes. Does not enter the kernel.
    ///
    /// Lengths above the ring limits fail here with `BAD_LENGTH`, exactly as
    /// the kernel would answer.
    pub fn submit_call(
        &mut self,
        cap_id: u64,
        method: u16,
        params: Vec<u8>,
        result_capacity: usize,
    ) -> Result<Ticket, CallError> {
        let params_len = u32::try_from(params.len()).unwrap_or(u32::MAX);
        let result_len = u32::try_from(result_capacity).unwrap_or(u32::MAX);
        let mut result = Vec::with_capacity(result_capacity.min(MAX_RESULT_LEN as usize));
        let params_buf = UserBuf::new(buf_addr(&params), params_len, MAX_PARAMS_LEN)
            .map_err(CallError::Transport)?;
        let result_buf = UserBuf::new(buf_addr_mut(&mut result), result_len, MAX_RESULT_LEN)
            .map_err(CallError::Transport)?;
        let sqe = Op::Call(Call {
            cap_id,
            method_id: method,
            params: params_buf,
            result: result_buf,
            transfers: TransferList::NONE,
        })
        .encode(0);
        self.push(
            sqe,
            Pending::Call {
                _params: params,
                result,
            },
        )
    }

    /// Submits a NOP. Does not enter the kernel.
    pub fn submit_nop(&mut self) -> Result<Ticket, CallError> {
        self.push(Op::Nop.encode(0), Pending::Bare)
    }

    /// Submits a RELEASE of `cap_id` whose completion nobody waits for (it
    /// is counted in [`RingStats::releases_rejected`] if refused).
    pub fn submit_release(&mut self, cap_id: u64) -> Result<(), CallError> {
        self.push(Op::Release { cap_id }.encode(0), Pending::Release)
            .map(|_| ())
    }

    /// Submits `sqe` exactly as given, except that `user_data` is replaced by
    /// a fresh ticket. For tests of the kernel's input checks.
    ///
    /// The runtime owns no buffers for it. A non-empty result buffer that
    /// overlaps the process's writable memory is refused with
    /// [`CallError::UnsafeBuffer`]; pointing it at unmapped, read-only or
    /// kernel memory is allowed (that is what such tests are for).
    pub fn submit_raw(&mut self, sqe: Sqe) -> Result<Ticket, CallError> {
        if sqe.result_len != 0 {
            let start = sqe.result_addr;
            let end = start.saturating_add(u64::from(sqe.result_len));
            if self
                .protected
                .iter()
                .any(|&(lo, hi)| start < hi && lo < end)
            {
                return Err(CallError::UnsafeBuffer);
            }
        }
        self.push(sqe, Pending::Bare)
    }

    /// [`Self::submit_raw`] for a submission whose result buffer lies
    /// inside `[lo, hi)`, memory the caller has handed over for the
    /// operation (an [`crate::AnonBuffer`] moved into a
    /// [`crate::handle::RawTicket`]): the writable-memory check is replaced
    /// by that containment. An empty result buffer is refused too (use
    /// [`Self::submit_raw`]).
    #[cfg(any(target_os = "none", test))]
    pub(crate) fn submit_raw_within(
        &mut self,
        sqe: Sqe,
        lo: u64,
        hi: u64,
    ) -> Result<Ticket, CallError> {
        let start = sqe.result_addr;
        let inside = start
            .checked_add(u64::from(sqe.result_len))
            .is_some_and(|end| sqe.result_len != 0 && lo <= start && end <= hi);
        if !inside {
            return Err(CallError::UnsafeBuffer);
        }
        self.push(sqe, Pending::Bare)
    }

    /// Lets the kernel drain the SQ without waiting, then reaps. Returns the
    /// number of completions reaped.
    pub fn poll(&mut self) -> Result<u32, CallError> {
        self.enter(0, 0)?;
        self.reap()
    }

    /// The completion of `ticket` if it has arrived (after a [`Self::poll`]
    /// or another call reaped it). Each completion is handed out once.
    pub fn take(&mut self, ticket: Ticket) -> Option<Completion> {
        self.done.remove(&ticket.0)
    }

    /// Blocks until `ticket` completes, keeping every other completion that
    /// arrives meanwhile for its own owner.
    pub fn wait(&mut self, ticket: Ticket) -> Result<Completion, CallError> {
        loop {
            if let Some(c) = self.done.remove(&ticket.0) {
                return Ok(c);
            }
            if !self.pending.contains_key(&ticket.0) {
                return Err(CallError::UnknownTicket);
            }
            // Reap first so that the kernel has room for our completion and
            // so that a completion already posted is not waited for again.
            if self.reap()? > 0 {
                continue;
            }
            self.enter(1, TIMEOUT_FOREVER)?;
        }
    }

    /// Blocks until one of `tickets` completes and returns it; its
    /// completion stays for [`Self::take`], and every other completion that
    /// arrives meanwhile is kept for its own owner. A server waiting on
    /// more than one endpoint (or on a RECV and a sleep) waits here.
    pub fn wait_any(&mut self, tickets: &[Ticket]) -> Result<Ticket, CallError> {
        loop {
            if let Some(t) = tickets.iter().find(|t| self.done.contains_key(&t.0)) {
                return Ok(*t);
            }
            if !tickets.iter().any(|t| self.pending.contains_key(&t.0)) {
                return Err(CallError::UnknownTicket);
            }
            if self.reap()? > 0 {
                continue;
            }
            self.enter(1, TIMEOUT_FOREVER)?;
        }
    }

    /// A blocking CALL: submit, then [`Self::wait`]. Returns the result bytes
    /// (possibly empty for methods without results).
    pub fn call(
        &mut self,
        cap_id: u64,
        method: u16,
        params: Vec<u8>,
        result_capacity: usize,
    ) -> Result<Vec<u8>, CallError> {
        let ticket = self.submit_call(cap_id, method, params, result_capacity)?;
        self.wait(ticket)?.into_result()
    }

    /// A blocking NOP round trip.
    pub fn nop(&mut self) -> Result<(), CallError> {
        let ticket = self.submit_nop()?;
        match self.wait(ticket)?.cqe.status() {
            CqeStatus::Ok(0) => Ok(()),
            CqeStatus::Ok(_) => Err(CallError::Protocol("NOP completed with a non-zero result")),
            CqeStatus::Err(e) => Err(CallError::Transport(e)),
            CqeStatus::Unknown(code) => Err(CallError::UnknownTransport(code)),
        }
    }

    /// Enters the kernel once with `sq_tail` in shared memory moved
    /// `distance` entries past `sq_head`, then puts the real tail back, and
    /// returns what `cap_enter` said. For the hostile-input test of the
    /// kernel's ring-corruption check, which must answer `RING_CORRUPTED`
    /// and consume nothing.
    ///
    /// `distance` must exceed the SQ size, so that under the ABI the kernel
    /// can only refuse the index; anything else is
    /// [`CallError::InvalidArgument`] (a smaller bogus tail would make the
    /// kernel run stale SQ slots, whose buffers may be gone).
    pub fn enter_with_bogus_sq_tail(&mut self, distance: u32) -> Result<i64, CallError> {
        if distance <= self.raw.layout().sq_entries() {
            return Err(CallError::InvalidArgument(
                "a bogus sq_tail must be more than one SQ ahead of sq_head",
            ));
        }
        // Publish nothing of ours by accident: everything pushed is already
        // published, so the real tail is `self.sq.tail()`.
        self.sync()?;
        let header = self.raw.header();
        let head = header.sq_head.value.load(Ordering::Acquire);
        header
            .sq_tail
            .value
            .store(head.wrapping_add(distance), Ordering::Release);
        self.stats.enters += 1;
        let result = self.kernel.enter(0, 0);
        header
            .sq_tail
            .value
            .store(self.sq.tail(), Ordering::Release);
        Ok(result)
    }

    /// Waits until every submitted RELEASE has completed.
    pub fn wait_releases(&mut self) -> Result<(), CallError> {
        loop {
            self.reap()?;
            if self.releases_in_flight == 0 {
                return Ok(());
            }
            self.enter(1, TIMEOUT_FOREVER)?;
        }
    }
}

/// Address of a buffer the kernel may read, 0 when empty (the ABI requires
/// it).
fn buf_addr(buf: &[u8]) -> u64 {
    if buf.is_empty() {
        0
    } else {
        buf.as_ptr() as u64
    }
}

/// Address of a result buffer the kernel may write: the spare capacity of
/// `buf` (which stays empty, and uninitialized, until the completion says
/// how many bytes the kernel wrote; see [`cut_result`]); 0 when it has none.
fn buf_addr_mut(buf: &mut Vec<u8>) -> u64 {
    if buf.capacity() == 0 {
        0
    } else {
        buf.as_mut_ptr() as u64
    }
}

/// Sets a result buffer's length to what the CQE says the kernel wrote:
/// `result` bytes, plus the transfer-result records when flagged. Nothing
/// for a failure.
fn cut_result(cqe: &Cqe, mut result: Vec<u8>) -> Vec<u8> {
    let len = match cqe.status() {
        CqeStatus::Ok(n) => {
            let mut len = n as usize;
            if cqe.flags & CQE_FLAG_TRANSFER_RESULTS != 0 {
                len += cqe.xfer_count as usize * TRANSFER_RESULT_SIZE as usize;
            }
            len
        }
        _ => 0,
    };
    let len = len.min(result.capacity());
    // SAFETY: the buffer was handed to the kernel empty, with its whole
    // capacity as the SQE's length (`Vec::with_capacity(n)` has exactly `n`),
    // and the CQE counts the bytes the kernel wrote from its start; `len` is
    // at most that count and at most the capacity, so those bytes are
    // initialized. None of them was read before.
    unsafe { result.set_len(len) };
    result
}

impl RingClient {
    /// Submits a CALL that sends `transfers` (copy or move descriptors)
    /// with it. Does not enter the kernel.
    pub fn submit_call_with_transfers(
        &mut self,
        cap_id: u64,
        method: u16,
        params: Vec<u8>,
        result_capacity: usize,
        transfers: &[capos_ring::TransferDescriptor],
    ) -> Result<Ticket, CallError> {
        let (descriptors, list) = transfer_list(transfers)?;
        let params_len = u32::try_from(params.len()).unwrap_or(u32::MAX);
        let result_len = u32::try_from(result_capacity).unwrap_or(u32::MAX);
        let mut result = Vec::with_capacity(result_capacity.min(MAX_RESULT_LEN as usize));
        let params_buf = UserBuf::new(buf_addr(&params), params_len, MAX_PARAMS_LEN)
            .map_err(CallError::Transport)?;
        let result_buf = UserBuf::new(buf_addr_mut(&mut result), result_len, MAX_RESULT_LEN)
            .map_err(CallError::Transport)?;
        let sqe = Op::Call(Call {
            cap_id,
            method_id: method,
            params: params_buf,
            result: result_buf,
            transfers: list,
        })
        .encode(0);
        self.push(
            sqe,
            Pending::CallWithTransfers {
                _params: params,
                _transfers: descriptors,
                result,
            },
        )
    }

    /// Submits a RECV on endpoint `cap_id` with a buffer of `capacity`
    /// bytes (the delivered call: a `CallHeader` and its parameters).
    pub fn submit_recv(&mut self, cap_id: u64, capacity: usize) -> Result<Ticket, CallError> {
        self.submit_recv_flagged(cap_id, capacity, false)
    }

    /// [`Self::submit_recv`], asking with `caller_session` for the caller's
    /// reference ([`capos_ring::RECV_FLAG_CALLER_SESSION`]: the header is
    /// [`capos_ring::process::CALL_HEADER_SESSION_SIZE`] bytes).
    pub fn submit_recv_flagged(
        &mut self,
        cap_id: u64,
        capacity: usize,
        caller_session: bool,
    ) -> Result<Ticket, CallError> {
        let mut result = Vec::with_capacity(capacity.min(MAX_RESULT_LEN as usize));
        let len = u32::try_from(result.capacity()).unwrap_or(u32::MAX);
        let buffer = UserBuf::new(buf_addr_mut(&mut result), len, MAX_RESULT_LEN)
            .map_err(CallError::Transport)?;
        let sqe = Op::Recv(capos_ring::Recv {
            cap_id,
            buffer,
            caller_session,
        })
        .encode(0);
        self.push(
            sqe,
            Pending::Call {
                _params: Vec::new(),
                result,
            },
        )
    }

    /// Submits a RETURN of `call_id` on endpoint `cap_id` with `payload`,
    /// sending `transfers` (copy or move descriptors) to the caller with
    /// it. Does not enter the kernel.
    pub fn submit_return(
        &mut self,
        cap_id: u64,
        call_id: u64,
        payload: Vec<u8>,
        exception: bool,
        transfers: &[capos_ring::TransferDescriptor],
    ) -> Result<Ticket, CallError> {
        let call_id =
            core::num::NonZeroU64::new(call_id).ok_or(CallError::InvalidArgument("call id 0"))?;
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let buf =
            UserBuf::new(buf_addr(&payload), len, MAX_PARAMS_LEN).map_err(CallError::Transport)?;
        let (descriptors, list) = transfer_list(transfers)?;
        let sqe = Op::Return(capos_ring::Return {
            cap_id,
            call_id,
            payload: buf,
            transfers: list,
            exception,
        })
        .encode(0);
        self.push(
            sqe,
            Pending::CallWithTransfers {
                _params: payload,
                _transfers: descriptors,
                result: Vec::new(),
            },
        )
    }
}

/// Serialized `transfers` and the list naming them (kept alive with the
/// submission until it completes).
fn transfer_list(
    transfers: &[capos_ring::TransferDescriptor],
) -> Result<(Vec<u8>, TransferList), CallError> {
    let mut descriptors = Vec::with_capacity(transfers.len() * 16);
    for t in transfers {
        descriptors.extend_from_slice(&t.to_bytes());
    }
    let count = u16::try_from(transfers.len())
        .map_err(|_| CallError::InvalidArgument("too many transfers"))?;
    let list = TransferList::new(
        if count == 0 {
            0
        } else {
            buf_addr(&descriptors)
        },
        count,
    )
    .map_err(CallError::Transport)?;
    Ok((descriptors, list))
}

/// `user_data` of benchmark submissions (never handed out as a ticket:
/// tickets count up from 1).
pub const BENCH_USER_DATA: u64 = u64::MAX;

/// Size of each benchmark buffer ([`BenchBuf`]); the client allocates the
/// three when it is created.
pub const BENCH_BUF_LEN: usize = 64;

/// The buffers benchmark CALLs, RECVs and RETURNs name. The client owns
/// them (so the kernel never writes memory that Rust code holds a reference
/// to); [`RingClient::bench_buf`] hands them out only while no benchmark
/// submission is outstanding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchBuf {
    /// What a benchmark CALL sends and a benchmark RETURN answers with.
    Out = 0,
    /// Where a benchmark CALL's result lands.
    Result = 1,
    /// Where a benchmark RECV's call lands (a `CallHeader`, then the
    /// parameters).
    Recv = 2,
}

/// The error a completion reaped on the benchmark path stands for: a
/// completion of another submission, or a negative result. Only called for
/// completions that are one of the two.
#[cold]
#[inline(never)]
fn bench_error(cqe: &Cqe) -> CallError {
    if cqe.user_data != BENCH_USER_DATA {
        return CallError::InvalidArgument("unexpected completion during a benchmark");
    }
    match cqe.status() {
        CqeStatus::Ok(_) => CallError::Protocol("benchmark completion reported as failed"),
        CqeStatus::Err(e) => CallError::Transport(e),
        CqeStatus::Unknown(code) => CallError::UnknownTransport(code),
    }
}

/// Whether `cqe` is a successful benchmark completion.
#[inline(always)]
fn bench_ok(cqe: &Cqe) -> bool {
    cqe.user_data == BENCH_USER_DATA && cqe.result >= 0
}

#[cold]
#[inline(never)]
fn bench_refused(why: &'static str) -> CallError {
    CallError::InvalidArgument(why)
}

/// One benchmark submission, encoded once (outside the timed loop) and
/// pushed as it is by [`RingClient::bench_push`] and friends: the slot
/// words of an SQE tagged [`BENCH_USER_DATA`].
///
/// Only a [`RingClient`] makes them, and only with no result buffer or
/// with its own benchmark buffers ([`BenchBuf`]) as the buffers; each
/// remembers which client made it, and another client refuses to push it.
/// So the kernel only ever writes memory the runtime holds for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchSqe {
    words: [u64; capos_ring::entry::SQE_WORDS],
    /// The benchmark buffers of the client that made it.
    owner: u64,
}

impl BenchSqe {
    /// Index of `call_id` among the slot words (see `Sqe::to_words`).
    const CALL_ID_WORD: usize = 7;

    /// The entry as it will be written to the ring.
    pub fn sqe(&self) -> Sqe {
        Sqe::from_words(&self.words)
    }

    /// Sets the call a RETURN answers (the `call_id` of the RECV
    /// completion that delivered it). The kernel refuses a `call_id` on
    /// any other opcode.
    #[inline]
    pub fn set_call_id(&mut self, call_id: core::num::NonZeroU64) {
        self.words[Self::CALL_ID_WORD] = call_id.get();
    }
}

impl RingClient {
    /// Identifies this client's benchmark buffers in a [`BenchSqe`].
    #[inline(always)]
    fn bench_owner(&self) -> u64 {
        self.bench_bufs[0].as_ptr() as u64
    }

    fn bench_sqe_of(&self, op: Op) -> BenchSqe {
        BenchSqe {
            words: op.encode(BENCH_USER_DATA).to_words(),
            owner: self.bench_owner(),
        }
    }

    /// Encodes `op` (a NOP, or a CALL or RETURN whose only buffers the
    /// kernel reads) as a benchmark submission. An op with a result buffer
    /// is refused with [`CallError::UnsafeBuffer`]: the kernel would write
    /// memory the runtime does not hold for it (use [`Self::bench_call`]
    /// and [`Self::bench_recv`], whose buffers are the runtime's own).
    pub fn bench_sqe(&self, op: Op) -> Result<BenchSqe, CallError> {
        let sqe = self.bench_sqe_of(op);
        if sqe.sqe().result_len != 0 {
            return Err(CallError::UnsafeBuffer);
        }
        Ok(sqe)
    }

    /// A benchmark CALL of `method` on `cap_id` sending the first
    /// `params_len` bytes of [`BenchBuf::Out`], its result going to
    /// [`BenchBuf::Result`] (`result_len` bytes of room).
    pub fn bench_call(
        &mut self,
        cap_id: u64,
        method: u16,
        params_len: u32,
        result_len: u32,
    ) -> Result<BenchSqe, CallError> {
        let params = self.bench_user_buf(BenchBuf::Out, params_len)?;
        let result = self.bench_user_buf(BenchBuf::Result, result_len)?;
        Ok(self.bench_sqe_of(Op::Call(Call {
            cap_id,
            method_id: method,
            params,
            result,
            transfers: TransferList::NONE,
        })))
    }

    /// A benchmark RECV on endpoint `cap_id` into [`BenchBuf::Recv`],
    /// asking for the caller's session reference when `caller_session`.
    pub fn bench_recv(&mut self, cap_id: u64, caller_session: bool) -> Result<BenchSqe, CallError> {
        let buffer = self.bench_user_buf(BenchBuf::Recv, BENCH_BUF_LEN as u32)?;
        Ok(self.bench_sqe_of(Op::Recv(capos_ring::Recv {
            cap_id,
            buffer,
            caller_session,
        })))
    }

    /// A benchmark RETURN on endpoint `cap_id` with the first `len` bytes
    /// of [`BenchBuf::Out`] as the result. Name the call it answers with
    /// [`BenchSqe::set_call_id`] before pushing it (the kernel refuses
    /// call id 0).
    pub fn bench_return(&mut self, cap_id: u64, len: u32) -> Result<BenchSqe, CallError> {
        let payload = self.bench_user_buf(BenchBuf::Out, len)?;
        let mut sqe = self.bench_sqe_of(Op::Return(capos_ring::Return {
            cap_id,
            call_id: core::num::NonZeroU64::MIN,
            payload,
            transfers: TransferList::NONE,
            exception: false,
        }));
        sqe.words[BenchSqe::CALL_ID_WORD] = 0;
        Ok(sqe)
    }

    /// Checks that a benchmark push may go ahead: nothing the runtime
    /// tracks is in flight (so the benchmark's completions can never be
    /// mistaken for a real call's), every entry in `sqes` was made by this
    /// client, and the queue views are current.
    #[inline(always)]
    fn bench_push_check(&mut self, sqes: &[&BenchSqe]) -> Result<(), CallError> {
        if !self.pending.is_empty() {
            return Err(bench_refused("benchmark while calls are in flight"));
        }
        let owner = self.bench_owner();
        for sqe in sqes {
            if sqe.owner != owner {
                return Err(bench_refused("benchmark entry of another ring client"));
            }
        }
        self.sync()
    }

    /// Pushes `sqes` in order and publishes them with one tail store (all
    /// or nothing).
    #[inline(always)]
    fn bench_push_all<const N: usize>(&mut self, sqes: [&BenchSqe; N]) -> Result<(), CallError> {
        self.bench_push_check(&sqes)?;
        self.sq
            .push_all(&sqes.map(|s| &s.words))
            .map_err(|_| bench_refused("the submission queue is full"))?;
        self.bench_outstanding += N as u32;
        self.sq.publish();
        Ok(())
    }

    /// Pushes `sqe` and publishes it (one tail store). Refused while
    /// anything the runtime tracks is in flight.
    #[inline]
    pub fn bench_push(&mut self, sqe: &BenchSqe) -> Result<(), CallError> {
        self.bench_push_all([sqe])
    }

    /// Pushes `first` and `second`, in that order, and publishes both with
    /// one tail store (all or nothing).
    #[inline]
    pub fn bench_push_pair(
        &mut self,
        first: &BenchSqe,
        second: &BenchSqe,
    ) -> Result<(), CallError> {
        self.bench_push_all([first, second])
    }

    /// Pushes `n` copies of `sqe` and publishes them with one tail store
    /// (all or nothing: refused if fewer than `n` SQ slots are free).
    #[inline]
    pub fn bench_push_batch(&mut self, sqe: &BenchSqe, n: u32) -> Result<(), CallError> {
        self.bench_push_check(&[sqe])?;
        self.sq
            .push_copies(&sqe.words, n)
            .map_err(|_| bench_refused("benchmark batch larger than the free SQ"))?;
        self.bench_outstanding += n;
        self.sq.publish();
        Ok(())
    }

    /// Reaps up to `n` benchmark completions (with one `cq_head` store)
    /// and returns how many. Fails on any other completion and on a
    /// negative result: the failing completion is the last one reaped
    /// (later ones stay in the queue), and one of another submission does
    /// not count as a benchmark completion (the benchmark buffers stay the
    /// kernel's).
    #[inline]
    pub fn bench_reap(&mut self, n: u32) -> Result<u32, CallError> {
        self.bench_reap_with(n, |_| {})
    }

    /// [`Self::bench_reap`] of exactly `n` completions (fewer is an error),
    /// returning the call id carried by the last RECV completion among them
    /// (0 if none).
    #[inline]
    pub fn bench_reap_call(&mut self, n: u32) -> Result<u64, CallError> {
        let mut call_id = 0;
        let got = self.bench_reap_with(n, |cqe| {
            if cqe.call_id != 0 {
                call_id = cqe.call_id;
            }
        })?;
        if got != n {
            return Err(bench_refused("a benchmark completion went missing"));
        }
        Ok(call_id)
    }

    #[inline(always)]
    fn bench_reap_with(&mut self, n: u32, mut seen: impl FnMut(&Cqe)) -> Result<u32, CallError> {
        if !self.in_sync() {
            return self.bench_reap_slow(n, &mut seen);
        }
        let mut bad = None;
        let got = self
            .cq
            .reap_while(n, |cqe| {
                if bench_ok(cqe) {
                    seen(cqe);
                    true
                } else {
                    bad = Some(*cqe);
                    false
                }
            })
            .map_err(CallError::Corrupted)?;
        if let Some(cqe) = bad {
            return Err(self.bench_reap_failed(got, &cqe));
        }
        // Every completion taken here is a benchmark one, so `got` are
        // outstanding (were the kernel to post more than were pushed, the
        // count would wrap to a huge one, and the buffers stay locked).
        self.bench_outstanding = self.bench_outstanding.wrapping_sub(got);
        Ok(got)
    }

    /// The end of a reap of `got` completions whose last one, `cqe`, is a
    /// failed or foreign one.
    #[cold]
    #[inline(never)]
    fn bench_reap_failed(&mut self, got: u32, cqe: &Cqe) -> CallError {
        let foreign = u32::from(cqe.user_data != BENCH_USER_DATA);
        self.bench_outstanding = self.bench_outstanding.saturating_sub(got - foreign);
        bench_error(cqe)
    }

    /// [`Self::bench_reap`] while a direct call has moved the indices or
    /// left completions in the stash: one completion at a time, stashed
    /// ones first.
    #[cold]
    #[inline(never)]
    fn bench_reap_slow(&mut self, n: u32, seen: &mut dyn FnMut(&Cqe)) -> Result<u32, CallError> {
        let mut got = 0;
        while got < n {
            match self.bench_reap_cqe()? {
                Some(cqe) => {
                    seen(&cqe);
                    got += 1;
                }
                None => break,
            }
        }
        Ok(got)
    }

    /// Reaps one benchmark completion, if one is posted, and returns it
    /// (a RECV's carries the call id). Fails on any other completion and on
    /// a negative result.
    pub fn bench_reap_cqe(&mut self) -> Result<Option<Cqe>, CallError> {
        match self.next_cqe()? {
            Some(cqe) => {
                if cqe.user_data == BENCH_USER_DATA {
                    self.bench_outstanding = self.bench_outstanding.saturating_sub(1);
                }
                if bench_ok(&cqe) {
                    Ok(Some(cqe))
                } else {
                    Err(bench_error(&cqe))
                }
            }
            None => Ok(None),
        }
    }

    /// The benchmark buffer `which` ([`BENCH_BUF_LEN`] bytes, zeroed at
    /// first), to fill before a push or read after the reap. Refused while a
    /// benchmark submission is outstanding.
    #[inline]
    pub fn bench_buf(&mut self, which: BenchBuf) -> Result<&mut [u8], CallError> {
        if self.bench_outstanding != 0 {
            return Err(bench_refused("benchmark buffer in use by the kernel"));
        }
        Ok(&mut self.bench_bufs[which as usize])
    }

    /// A ring buffer descriptor for the first `len` bytes of `which`. Takes
    /// the address without making a reference to the bytes, which the
    /// kernel may be writing for an earlier submission.
    fn bench_user_buf(&mut self, which: BenchBuf, len: u32) -> Result<UserBuf, CallError> {
        if len as usize > BENCH_BUF_LEN {
            return Err(CallError::InvalidArgument("longer than a benchmark buffer"));
        }
        let addr = if len == 0 {
            0
        } else {
            self.bench_bufs[which as usize].as_mut_ptr() as u64
        };
        UserBuf::new(addr, len, MAX_RESULT_LEN).map_err(CallError::Transport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{setup, setup_with};
    use capos_ring::{CompletionPoster, Recv, RingIndex, TransportError, SQ_ENTRIES};
    use core::sync::atomic::Ordering::Relaxed;

    #[test]
    fn call_round_trip_echoes_params() {
        let (mut c, log, _) = setup();
        let out = c.call(7, 3, b"hello".to_vec(), 64).unwrap();
        assert_eq!(out, b"hello");
        assert_eq!(c.in_flight(), 0);
        assert_eq!(log.borrow().enters, vec![(1, TIMEOUT_FOREVER)]);
    }

    #[test]
    fn transport_errors_and_exceptions_are_told_apart() {
        let (mut c, _, _) = setup();
        let err = c.call(99, 0, vec![1], 64).unwrap_err();
        assert_eq!(err.transport(), Some(TransportError::BadCap));
        match c.call(8, 0, Vec::new(), 256).unwrap_err() {
            CallError::Exception(e) => assert_eq!(e, CapException::failed("no")),
            other => panic!("expected an exception, got {other:?}"),
        }
        let err = c.call(7, 0, vec![0; 100], 10).unwrap_err();
        assert_eq!(err.transport(), Some(TransportError::BufferTooSmall));
    }

    #[test]
    fn oversized_buffers_fail_before_submission() {
        let (mut c, log, _) = setup();
        let err = c
            .call(7, 0, vec![0; MAX_PARAMS_LEN as usize + 1], 64)
            .unwrap_err();
        assert_eq!(err.transport(), Some(TransportError::BadLength));
        let err = c
            .submit_call(7, 0, Vec::new(), MAX_RESULT_LEN as usize + 1)
            .unwrap_err();
        assert_eq!(err.transport(), Some(TransportError::BadLength));
        assert!(log.borrow().enters.is_empty());
        assert_eq!(c.stats().submitted, 0);
    }

    #[test]
    fn out_of_order_completions_reach_their_owners() {
        let (mut c, _, _) = setup();
        let tickets: Vec<_> = (0..5u8)
            .map(|i| {
                c.submit_call(7, 0, vec![i; usize::from(i) + 1], 64)
                    .unwrap()
            })
            .collect();
        // The simulated kernel posts this drain's completions in reverse.
        assert_eq!(c.poll().unwrap(), 5);
        // Ask in submission order, then out of order; each gets its own.
        assert_eq!(c.take(tickets[0]).unwrap().into_result().unwrap(), vec![0]);
        assert_eq!(
            c.wait(tickets[3]).unwrap().into_result().unwrap(),
            vec![3; 4]
        );
        assert_eq!(c.take(tickets[3]), None, "completions are handed out once");
        for (i, t) in tickets.iter().enumerate().skip(1).filter(|(i, _)| *i != 3) {
            assert_eq!(c.wait(*t).unwrap().result, vec![i as u8; i + 1]);
        }
        assert_eq!(c.wait(tickets[0]).unwrap_err().transport(), None);
        assert!(matches!(c.wait(tickets[0]), Err(CallError::UnknownTicket)));
    }

    #[test]
    fn wait_any_returns_a_completed_ticket_and_keeps_the_rest() {
        let (mut c, _, _) = setup_with(true, Vec::new());
        let a = c.submit_call(7, 0, b"a".to_vec(), 8).unwrap();
        let b = c.submit_call(7, 0, b"b".to_vec(), 8).unwrap();
        let first = c.wait_any(&[a, b]).unwrap();
        assert!(first == a || first == b);
        let other = if first == a { b } else { a };
        assert!(c.take(first).is_some());
        assert_eq!(c.wait_any(&[first, other]).unwrap(), other);
        assert!(c.take(other).is_some());
        assert!(matches!(c.wait_any(&[a, b]), Err(CallError::UnknownTicket)));
    }

    #[test]
    fn blocking_call_stashes_other_completions() {
        let (mut c, _, _) = setup();
        let early = c.submit_call(7, 0, b"early".to_vec(), 64).unwrap();
        let nop = c.submit_nop().unwrap();
        // This call's completion is posted before the other two (reverse
        // order); the others must survive the wait.
        assert_eq!(c.call(7, 0, b"late".to_vec(), 64).unwrap(), b"late");
        assert_eq!(c.take(nop).unwrap().cqe.result, 0);
        assert_eq!(c.take(early).unwrap().into_result().unwrap(), b"early");
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn completions_held_across_enters_are_still_matched() {
        // The kernel keeps the first drain's completions back until the next
        // enter, as it does for calls that wait: `wait` must enter again.
        let (mut c, log, _) = setup_with(true, Vec::new());
        let other = c.submit_nop().unwrap();
        let x = c.submit_call(7, 0, b"x".to_vec(), 8).unwrap();
        assert_eq!(c.wait(x).unwrap().result, b"x");
        assert_eq!(log.borrow().enters.len(), 2);
        assert_eq!(c.take(other).unwrap().cqe.result, 0);
    }

    #[test]
    fn many_calls_wrap_both_queues() {
        let (mut c, _, _) = setup();
        for i in 0..200u32 {
            let bytes = i.to_le_bytes().to_vec();
            assert_eq!(c.call(7, 1, bytes.clone(), 8).unwrap(), bytes);
        }
        c.nop().unwrap();
        assert_eq!(c.stats().submitted, 201);
        assert_eq!(c.stats().reaped, 201);
    }

    #[test]
    fn a_full_sq_is_drained_before_submitting_more() {
        let (mut c, _, _) = setup();
        // More submissions than SQ slots, with nobody polling: the client
        // must let the kernel drain and keep every completion.
        let tickets: Vec<_> = (0..80u32)
            .map(|i| c.submit_call(7, 0, i.to_le_bytes().to_vec(), 8).unwrap())
            .collect();
        for (i, t) in tickets.into_iter().enumerate() {
            assert_eq!(c.wait(t).unwrap().result, (i as u32).to_le_bytes());
        }
    }

    #[test]
    fn releases_are_counted_not_returned() {
        let (mut c, log, _) = setup();
        c.submit_release(7).unwrap();
        c.submit_release(1234).unwrap();
        c.wait_releases().unwrap();
        assert_eq!(log.borrow().released, vec![7, 1234]);
        assert_eq!(c.stats().releases_rejected, 1);
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn raw_submissions_keep_their_fields_but_not_their_user_data() {
        let (mut c, _, _) = setup();
        let bad = Sqe {
            opcode: 200,
            user_data: 0xdead,
            ..Sqe::default()
        };
        let t = c.submit_raw(bad).unwrap();
        assert_ne!(t.user_data(), 0xdead);
        let done = c.wait(t).unwrap();
        assert_eq!(done.cqe.user_data, t.user_data());
        assert_eq!(done.cqe.result, TransportError::InvalidOpcode.code());
        // A result buffer inside protected memory is refused.
        let writes = Sqe {
            result_addr: 0x1800,
            result_len: 16,
            ..Op::Nop.encode(0)
        };
        assert!(matches!(c.submit_raw(writes), Err(CallError::UnsafeBuffer)));
        let beside = Sqe {
            result_addr: 0x2000,
            result_len: 16,
            ..Op::Nop.encode(0)
        };
        let t = c.submit_raw(beside).unwrap();
        assert_eq!(
            c.wait(t).unwrap().cqe.result,
            TransportError::ReservedNonZero.code()
        );
    }

    #[test]
    fn raw_results_inside_a_handed_over_range_only() {
        let (mut c, _, _) = setup();
        let recv = |addr: u64, len: u32| Sqe {
            result_addr: addr,
            result_len: len,
            ..Op::Nop.encode(0)
        };
        // Inside [0x1000, 0x3000): accepted even though it is protected.
        assert!(c
            .submit_raw_within(recv(0x1800, 16), 0x1000, 0x3000)
            .is_ok());
        assert!(c
            .submit_raw_within(recv(0x2ff0, 16), 0x1000, 0x3000)
            .is_ok());
        // Crossing either end, empty, or wrapping: refused.
        for (addr, len) in [(0x0ff0, 32), (0x2ff8, 16), (0x1800, 0), (u64::MAX - 4, 16)] {
            assert!(matches!(
                c.submit_raw_within(recv(addr, len), 0x1000, 0x3000),
                Err(CallError::UnsafeBuffer)
            ));
        }
    }

    #[test]
    fn bench_entries_carry_no_foreign_result_buffer() {
        let (mut c, _, _) = setup();
        let recv = Op::Recv(Recv {
            cap_id: 1,
            buffer: UserBuf::new(0x1800, 64, MAX_RESULT_LEN).unwrap(),
            caller_session: false,
        });
        assert!(matches!(c.bench_sqe(recv), Err(CallError::UnsafeBuffer)));
        let nop = c.bench_sqe(Op::Nop).unwrap();
        assert_eq!(nop.sqe(), Op::Nop.encode(BENCH_USER_DATA));
        // The runtime's own RECV buffer is fine.
        let recv = c.bench_recv(1, false).unwrap();
        assert_eq!(recv.sqe().result_len, BENCH_BUF_LEN as u32);
        // Entries made by another client are refused, even without buffers.
        let (mut other, _, _) = setup();
        assert!(matches!(
            other.bench_push(&recv),
            Err(CallError::InvalidArgument(_))
        ));
        assert!(other.bench_push(&nop).is_err());
        assert!(other.bench_push_batch(&nop, 2).is_err());
        assert!(c.bench_push(&nop).is_ok());
    }

    #[test]
    fn bench_push_and_reap_one_at_a_time() {
        let (mut c, log, ring) = setup();
        let nop = c.bench_sqe(Op::Nop).unwrap();
        // More than a queue's worth, so both indices wrap and the cached
        // SQ head has to be re-read.
        for _ in 0..100 {
            c.bench_push(&nop).unwrap();
            assert!(c.bench_buf(BenchBuf::Out).is_err());
            assert_eq!(c.kernel.enter(1, 0), 1);
            assert_eq!(c.bench_reap(1).unwrap(), 1);
            assert!(c.bench_buf(BenchBuf::Out).is_ok());
        }
        assert_eq!(c.bench_reap(1).unwrap(), 0);
        assert_eq!(log.borrow().enters.len(), 100);
        let header = ring.header();
        assert_eq!(header.index_word(RingIndex::SqTail).load(Relaxed), 100);
        assert_eq!(header.index_word(RingIndex::CqHead).load(Relaxed), 100);
        assert_eq!(c.stats().submitted, 0, "bench pushes bypass the tickets");
    }

    #[test]
    fn bench_batches_fill_the_queue() {
        let (mut c, _, _) = setup();
        let nop = c.bench_sqe(Op::Nop).unwrap();
        for _ in 0..5 {
            c.bench_push_batch(&nop, SQ_ENTRIES).unwrap();
            // No room for one more until the kernel drains.
            assert!(c.bench_push(&nop).is_err());
            assert_eq!(
                c.kernel.enter(u64::from(SQ_ENTRIES), 0),
                i64::from(SQ_ENTRIES)
            );
            assert_eq!(c.bench_reap(SQ_ENTRIES).unwrap(), SQ_ENTRIES);
        }
        assert!(c.bench_push_batch(&nop, SQ_ENTRIES + 1).is_err());
        assert!(c.bench_buf(BenchBuf::Out).is_ok(), "nothing outstanding");
    }

    #[test]
    fn bench_pushes_wait_for_ticketed_calls() {
        let (mut c, _, _) = setup();
        let nop = c.bench_sqe(Op::Nop).unwrap();
        let t = c.submit_nop().unwrap();
        assert!(matches!(
            c.bench_push(&nop),
            Err(CallError::InvalidArgument(_))
        ));
        c.wait(t).unwrap();
        c.bench_push(&nop).unwrap();
    }

    #[test]
    fn other_completions_do_not_release_the_bench_buffers() {
        let (mut c, _, ring) = setup();
        let recv = c.bench_recv(7, false).unwrap();
        c.bench_push(&recv).unwrap();
        // Another submission's completion arrives while the RECV waits.
        let mut poster = CompletionPoster::new(ring.ring()).unwrap();
        let credit = poster.reserve().unwrap();
        poster.post(credit, &Cqe::success(0xffff, 0));
        assert!(c.bench_reap_cqe().is_err());
        // The RECV is still outstanding: its buffer stays the kernel's.
        assert!(c.bench_buf(BenchBuf::Recv).is_err());
        let credit = poster.reserve().unwrap();
        poster.post(credit, &Cqe::success(0xfffe, 0));
        assert!(c.bench_reap(1).is_err());
        assert!(c.bench_buf(BenchBuf::Recv).is_err());
        // The same through a batch: a benchmark completion, then a foreign
        // one, then another benchmark one. The reap stops at the foreign
        // one; the first counts, the last stays in the queue.
        let nop = c.bench_sqe(Op::Nop).unwrap();
        c.bench_push(&nop).unwrap();
        for user_data in [BENCH_USER_DATA, 0xfffd, BENCH_USER_DATA] {
            let credit = poster.reserve().unwrap();
            poster.post(credit, &Cqe::success(user_data, 0));
        }
        assert!(matches!(
            c.bench_reap(3),
            Err(CallError::InvalidArgument(_))
        ));
        assert_eq!(c.bench_reap(3).unwrap(), 1);
        // Both benchmark submissions are accounted for: the RECV's buffer
        // would be free now had its completion been a real one.
        assert!(c.bench_buf(BenchBuf::Recv).is_ok());
    }

    #[test]
    fn bench_failures_are_reported_and_counted() {
        let (mut c, _, ring) = setup();
        let nop = c.bench_sqe(Op::Nop).unwrap();
        c.bench_push_batch(&nop, 2).unwrap();
        let mut poster = CompletionPoster::new(ring.ring()).unwrap();
        let credit = poster.reserve().unwrap();
        poster.post(credit, &Cqe::error(BENCH_USER_DATA, TransportError::BadCap));
        let credit = poster.reserve().unwrap();
        poster.post(credit, &Cqe::success(BENCH_USER_DATA, 0));
        assert_eq!(
            c.bench_reap(2).unwrap_err().transport(),
            Some(TransportError::BadCap)
        );
        // The failed one was a benchmark completion: one left outstanding.
        assert!(c.bench_buf(BenchBuf::Out).is_err());
        assert_eq!(c.bench_reap(2).unwrap(), 1);
        assert!(c.bench_buf(BenchBuf::Out).is_ok());
    }

    #[test]
    fn bench_reap_detects_corrupted_indices() {
        let (mut c, _, ring) = setup();
        let nop = c.bench_sqe(Op::Nop).unwrap();
        c.bench_push(&nop).unwrap();
        assert_eq!(c.kernel.enter(1, 0), 1);
        let tail = ring.header().index_word(RingIndex::CqTail);
        tail.store(1000, Relaxed);
        assert!(matches!(c.bench_reap(1), Err(CallError::Corrupted(_))));
        tail.store(1, Relaxed);
        assert_eq!(c.bench_reap(1).unwrap(), 1);
        // A corrupted SQ head is caught when the push re-reads it.
        let head = ring.header().index_word(RingIndex::SqHead);
        for _ in 0..SQ_ENTRIES {
            c.bench_push(&nop).unwrap();
        }
        head.store(0x8000_0000, Relaxed);
        assert!(c.bench_push(&nop).is_err());
    }

    #[test]
    fn bench_reap_takes_stashed_completions_first() {
        let (mut c, _, ring) = setup();
        let nop = c.bench_sqe(Op::Nop).unwrap();
        c.bench_push_batch(&nop, 2).unwrap();
        assert_eq!(c.kernel.enter(2, 0), 2);
        // A direct call on the same ring reaps both completions and keeps
        // them for the client.
        let shared = c.shared();
        let raw = ring.ring();
        let kernel = c.kernel_for_test();
        shared
            .call(
                raw,
                kernel,
                7,
                0,
                |b| {
                    b[0] = 1;
                    1
                },
                |_, _| (),
            )
            .unwrap();
        assert_eq!(shared.stashed(), 2);
        assert!(c.bench_buf(BenchBuf::Out).is_err());
        assert_eq!(c.bench_reap(1).unwrap(), 1);
        assert_eq!(c.bench_reap(8).unwrap(), 1);
        assert_eq!(shared.stashed(), 0);
        assert!(c.bench_buf(BenchBuf::Out).is_ok());
        // Back on the fast path with the views rebuilt.
        c.bench_push(&nop).unwrap();
        assert_eq!(c.kernel.enter(1, 0), 1);
        assert_eq!(c.bench_reap(1).unwrap(), 1);
    }

    #[test]
    fn bench_server_round_trip() {
        let (mut c, _, ring) = setup();
        let recv = c.bench_recv(5, false).unwrap();
        let mut ret = c.bench_return(5, 8).unwrap();
        assert_eq!(ret.sqe().call_id, 0);
        c.bench_push(&recv).unwrap();
        // The kernel delivers a call to the RECV: drain it by hand and
        // post its completion with a call id.
        let mut drain = capos_ring::SubmissionDrain::new(ring.ring()).unwrap();
        let mut poster = CompletionPoster::new(ring.ring()).unwrap();
        let mut batch = drain.begin().unwrap();
        let sub = batch.pop(&mut poster).unwrap();
        drop(batch);
        let mut done = Cqe::success(sub.user_data, 24);
        done.call_id = 42;
        poster.post(sub.credit, &done);
        assert_eq!(c.bench_reap_call(1).unwrap(), 42);
        ret.set_call_id(core::num::NonZeroU64::new(42).unwrap());
        c.bench_push_pair(&ret, &recv).unwrap();
        let mut batch = drain.begin().unwrap();
        let first = batch.pop(&mut poster).unwrap();
        let second = batch.pop(&mut poster).unwrap();
        drop(batch);
        assert!(matches!(first.op, Ok(Op::Return(r)) if r.call_id.get() == 42));
        assert!(matches!(second.op, Ok(Op::Recv(_))));
        poster.post(first.credit, &Cqe::success(first.user_data, 0));
        // Only one of two has completed: reaping two is an error.
        assert!(c.bench_reap_call(2).is_err());
        let mut done = Cqe::success(second.user_data, 24);
        done.call_id = 43;
        poster.post(second.credit, &done);
        assert_eq!(c.bench_reap_call(1).unwrap(), 43);
        assert!(c.bench_buf(BenchBuf::Recv).is_ok());
    }

    #[test]
    fn stray_completions_are_dropped_and_counted() {
        let (mut c, _, ring) = setup();
        // Post a completion nobody asked for, straight into the ring.
        let raw = ring.ring();
        let mut poster = CompletionPoster::new(raw).unwrap();
        let credit = poster.reserve().unwrap();
        poster.post(credit, &Cqe::success(0xffff, 0));
        assert_eq!(c.reap().unwrap(), 1);
        assert_eq!(c.stats().strays, 1);
    }

    #[test]
    fn corrupted_kernel_indices_are_reported() {
        let (mut c, _, ring) = setup();
        ring.header()
            .index_word(RingIndex::CqTail)
            .store(1000, Relaxed);
        assert!(matches!(c.reap(), Err(CallError::Corrupted(_))));
        ring.header()
            .index_word(RingIndex::CqTail)
            .store(0, Relaxed);
        assert_eq!(c.reap().unwrap(), 0);
    }

    #[test]
    fn bogus_sq_tail_is_put_back() {
        let (mut c, log, ring) = setup();
        let t = c.submit_nop().unwrap();
        let tail = ring.header().index_word(RingIndex::SqTail);
        let before = tail.load(Relaxed);
        assert!(matches!(
            c.enter_with_bogus_sq_tail(32),
            Err(CallError::InvalidArgument(_))
        ));
        assert_eq!(
            c.enter_with_bogus_sq_tail(1000).unwrap(),
            i64::from(TransportError::RingCorrupted.code())
        );
        assert_eq!(tail.load(Relaxed), before);
        assert_eq!(log.borrow().enters.len(), 1);
        // Nothing was consumed; the NOP still completes.
        assert_eq!(c.wait(t).unwrap().cqe.result, 0);
        c.nop().unwrap();
    }

    #[test]
    fn bench_calls_use_client_owned_buffers() {
        let (mut c, _, _) = setup();
        c.bench_buf(BenchBuf::Out).unwrap()[..16].copy_from_slice(&[7u8; 16]);
        let call = c.bench_call(7, 0, 16, 16).unwrap();
        c.bench_push(&call).unwrap();
        // Pushed, not reaped: the kernel may still write the buffers.
        assert!(matches!(
            c.bench_buf(BenchBuf::Result),
            Err(CallError::InvalidArgument(_))
        ));
        assert_eq!(c.kernel.enter(1, 0), 1);
        let cqe = c.bench_reap_cqe().unwrap().unwrap();
        assert_eq!(cqe.user_data, BENCH_USER_DATA);
        assert_eq!(cqe.status(), CqeStatus::Ok(16));
        // The simulated kernel echoes the parameters into the result.
        assert_eq!(&c.bench_buf(BenchBuf::Result).unwrap()[..16], &[7u8; 16]);
        assert_eq!(c.bench_reap_cqe().unwrap(), None);
        // Errors come back as errors; buffers longer than the bench buffers
        // are refused before anything is pushed.
        let bad = c.bench_call(99, 0, 0, 0).unwrap();
        c.bench_push(&bad).unwrap();
        c.kernel.enter(1, 0);
        assert_eq!(
            c.bench_reap_cqe().unwrap_err().transport(),
            Some(TransportError::BadCap)
        );
        c.bench_push(&bad).unwrap();
        c.kernel.enter(1, 0);
        assert_eq!(
            c.bench_reap(1).unwrap_err().transport(),
            Some(TransportError::BadCap)
        );
        assert!(c.bench_call(7, 0, BENCH_BUF_LEN as u32 + 1, 0).is_err());
        assert!(c.bench_return(7, BENCH_BUF_LEN as u32 + 1).is_err());
        assert!(c.bench_buf(BenchBuf::Out).is_ok());
        assert_eq!(c.stats().submitted, 0, "bench pushes bypass the tickets");
    }

    #[test]
    fn a_failing_cap_enter_is_a_syscall_error() {
        let (mut c, _, ring) = setup();
        // A bogus sq_tail makes the simulated kernel report corruption.
        let t = c.submit_nop().unwrap();
        let tail = ring.header().index_word(RingIndex::SqTail);
        let good = tail.load(Relaxed);
        tail.store(good + 1000, Relaxed);
        match c.wait(t) {
            Err(CallError::Syscall(code)) => {
                assert_eq!(code, i64::from(TransportError::RingCorrupted.code()))
            }
            other => panic!("expected a syscall error, got {other:?}"),
        }
        tail.store(good, Relaxed);
        assert_eq!(c.wait(t).unwrap().cqe.result, 0);
    }
}
