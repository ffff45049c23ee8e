//! The lock-free single-producer/single-consumer views over the two queues.
//!
//! | queue | producer (writes tail)        | consumer (writes head)      |
//! |-------|-------------------------------|-----------------------------|
//! | SQ    | userspace: [`SubmissionProducer`] | kernel: [`SubmissionDrain`] |
//! | CQ    | kernel: [`CompletionPoster`]  | userspace: [`CompletionConsumer`] |
//!
//! Each side is single-threaded per queue. The kernel serialises its own
//! users of a ring (for example completions posted from several CPUs) under
//! one lock around its [`SubmissionDrain`] and [`CompletionPoster`]; the
//! userspace runtime does the same for its two views.
//!
//! # Indices
//!
//! Indices are free-running `u32` counters; slot `i` of a queue of `n`
//! entries is `i & (n - 1)`, and the number of entries between a head and a
//! tail is `tail.wrapping_sub(head)`, which for a consistent pair is at most
//! `n`. Each side keeps the index it owns in its own memory and only ever
//! *stores* it to the ring; it never reads its own index back. The only ring
//! words the kernel reads are `sq_tail` and `cq_head`, and it checks both
//! before use:
//!
//! - `sq_tail` is accepted if `sq_tail - sq_head <= sq_entries`;
//! - `cq_head` is accepted if it lies between the last accepted `cq_head` and
//!   the kernel's `cq_tail` (a consumer only moves forwards, never past what
//!   was posted).
//!
//! Anything else is reported as a [`Corruption`] and nothing is consumed or
//! overwritten; the kernel does not loop on it and never reads out of bounds
//! (every slot access is masked). The process can repair its index and carry
//! on, or the kernel can treat it as fatal for that process.
//!
//! # Memory ordering
//!
//! Entry words are written and read with relaxed atomics; all cross-side
//! ordering comes from the index words:
//!
//! - A producer fills a slot, then stores its tail with **Release**. The
//!   consumer loads the tail with **Acquire**, so the slot's contents written
//!   before the Release are visible to the consumer's slot reads.
//! - A consumer copies a slot out, then stores its head with **Release**. The
//!   producer loads the head with **Acquire** before reusing slots, so the
//!   consumer's reads of a slot happen before the producer's next writes to
//!   it and cannot observe them.
//! - A side loads the index it owns (only at construction) with
//!   **Relaxed**: nobody else writes it.
//!
//! # Overflow policy
//!
//! No completion is ever dropped or overwritten. Before the kernel consumes
//! an SQE it reserves a CQ slot ([`CqCredit`]); the credit is spent when the
//! completion is posted, whether immediately or much later (a RECV waiting
//! for a caller). Posted-but-unread completions plus outstanding credits
//! never exceed the CQ size. When no slot can be reserved the drain stops
//! with [`DrainStop::CqFull`] and leaves the remaining SQEs in the SQ; they are
//! consumed on a later drain after userspace has reaped completions. A drain
//! consumes at most one SQ's worth of entries (the SQ contents at the time
//! the batch began), so its work is bounded however userspace moves `sq_tail`.

use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::entry::{Cqe, Sqe, SQE_WORDS};
use crate::error::TransportError;
use crate::layout::{LayoutError, RingIndex, MAX_ENTRIES};
use crate::memory::RingMemory;
use crate::request::Op;

fn check_entries(entries: u32) -> Result<u32, LayoutError> {
    if !entries.is_power_of_two() {
        Err(LayoutError::NotPowerOfTwo)
    } else if entries > MAX_ENTRIES {
        Err(LayoutError::TooManyEntries)
    } else {
        Ok(entries)
    }
}

/// An inconsistent head/tail pair observed in the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Corruption {
    /// The head value used in the check.
    pub head: u32,
    /// The tail value used in the check.
    pub tail: u32,
}

/// Why [`SubmissionProducer::try_submit`] did not submit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubmitError {
    /// The SQ is full; reap completions and enter the kernel, then retry.
    Full,
    /// `sq_head` is inconsistent with this producer's tail.
    Corrupted(Corruption),
}

/// Why [`CompletionPoster::reserve`] gave no credit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReserveError {
    /// Every CQ slot is either unread or already reserved.
    Full,
    /// `cq_head` moved backwards or past the kernel's tail.
    Corrupted(Corruption),
}

/// Why [`DrainBatch::pop`] returned no submission. None of these consume an SQE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DrainStop {
    /// Every SQE present when the batch began has been consumed.
    Done,
    /// No CQ slot could be reserved; SQEs remain for a later drain.
    CqFull,
    /// `cq_head` is corrupted; SQEs remain.
    CqCorrupted(Corruption),
}

/// Userspace's producer view of the SQ.
pub struct SubmissionProducer<M: RingMemory> {
    mem: M,
    entries: u32,
    /// Next slot to fill, including entries pushed but not yet published.
    tail: u32,
    /// Last `sq_head` seen; never ahead of the kernel's real head.
    head: u32,
}

impl<M: RingMemory> SubmissionProducer<M> {
    /// Creates the view, starting from the ring's current indices.
    pub fn new(mem: M) -> Result<Self, LayoutError> {
        let entries = check_entries(mem.sq_entries())?;
        // Relaxed: userspace is the only writer of sq_tail.
        let tail = mem.load_index(RingIndex::SqTail, Relaxed);
        // Acquire: pairs with the kernel's Release of sq_head, so slots it
        // has finished copying are safe to overwrite.
        let head = mem.load_index(RingIndex::SqHead, Acquire);
        Ok(SubmissionProducer {
            mem,
            entries,
            tail,
            head,
        })
    }

    /// Free SQ slots, re-reading `sq_head`.
    pub fn space(&mut self) -> Result<u32, Corruption> {
        self.refresh_head()?;
        Ok(self.entries - self.tail.wrapping_sub(self.head))
    }

    fn refresh_head(&mut self) -> Result<(), Corruption> {
        // Acquire: see `new`.
        let head = self.mem.load_index(RingIndex::SqHead, Acquire);
        if self.tail.wrapping_sub(head) > self.entries {
            return Err(Corruption {
                head,
                tail: self.tail,
            });
        }
        self.head = head;
        Ok(())
    }

    /// Re-reads `sq_head` because fewer than `n` slots look free by the
    /// cached one; `Full` if there still are not `n`. Out of line: the
    /// cached head only lags, so this runs once per queue's worth of
    /// pushes.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, n: u32) -> Result<(), SubmitError> {
        self.refresh_head().map_err(SubmitError::Corrupted)?;
        if self.entries - self.tail.wrapping_sub(self.head) < n {
            return Err(SubmitError::Full);
        }
        Ok(())
    }

    /// Writes `sqe` into the next slot without publishing it. Call
    /// [`SubmissionProducer::publish`] to make pushed entries visible.
    pub fn try_push(&mut self, sqe: &Sqe) -> Result<(), SubmitError> {
        self.try_push_words(&sqe.to_words())
    }

    /// [`Self::try_push`] for an entry already encoded as its slot words
    /// ([`Sqe::to_words`]).
    #[inline]
    pub fn try_push_words(&mut self, words: &[u64; SQE_WORDS]) -> Result<(), SubmitError> {
        if self.tail.wrapping_sub(self.head) >= self.entries {
            // Looks full by the cached head (which only lags); re-read it.
            self.make_room(1)?;
        }
        // Relaxed word stores: published by the Release in `publish`.
        self.mem.store_sqe(self.tail & self.slot_mask(), words);
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }

    /// Reduces an index to a slot. The memory's own size (equal to
    /// `entries`, checked at construction) rather than the copy in `self`,
    /// so that the compiler can fold this mask into the one the memory
    /// applies again.
    #[inline(always)]
    fn slot_mask(&self) -> u32 {
        self.mem.sq_entries() - 1
    }

    /// Writes the entries whose slot words are `entries`, in order, without
    /// publishing them (all or none: `Full` if fewer slots are free).
    #[inline]
    pub fn push_all(&mut self, entries: &[&[u64; SQE_WORDS]]) -> Result<(), SubmitError> {
        let n = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        if self.entries - self.tail.wrapping_sub(self.head) < n {
            self.make_room(n)?;
        }
        let mask = self.slot_mask();
        let mut tail = self.tail;
        for words in entries {
            // Relaxed word stores: published by the Release in `publish`.
            self.mem.store_sqe(tail & mask, words);
            tail = tail.wrapping_add(1);
        }
        self.tail = tail;
        Ok(())
    }

    /// Writes `n` copies of the entry whose slot words are `words` without
    /// publishing them (all or none: `Full` if fewer than `n` slots are
    /// free).
    #[inline]
    pub fn push_copies(&mut self, words: &[u64; SQE_WORDS], n: u32) -> Result<(), SubmitError> {
        if self.entries - self.tail.wrapping_sub(self.head) < n {
            self.make_room(n)?;
        }
        // Relaxed word stores: published by the Release in `publish`.
        self.mem
            .store_sqe_copies(self.tail & self.slot_mask(), n, words);
        self.tail = self.tail.wrapping_add(n);
        Ok(())
    }

    /// Publishes every pushed entry to the kernel.
    #[inline]
    pub fn publish(&self) {
        // Release: the slot writes above happen before the kernel's Acquire
        // load of sq_tail that observes this value.
        self.mem.store_index(RingIndex::SqTail, self.tail, Release);
    }

    /// Pushes and publishes one entry.
    pub fn try_submit(&mut self, sqe: &Sqe) -> Result<(), SubmitError> {
        self.try_push(sqe)?;
        self.publish();
        Ok(())
    }

    /// This producer's tail (including unpublished entries).
    pub fn tail(&self) -> u32 {
        self.tail
    }
}

/// Userspace's consumer view of the CQ.
pub struct CompletionConsumer<M: RingMemory> {
    mem: M,
    entries: u32,
    /// Next slot to read.
    head: u32,
    /// Last validated `cq_tail`; never ahead of the kernel's real tail.
    tail: u32,
}

impl<M: RingMemory> CompletionConsumer<M> {
    /// Creates the view, starting from the ring's current `cq_head`.
    pub fn new(mem: M) -> Result<Self, LayoutError> {
        let entries = check_entries(mem.cq_entries())?;
        // Relaxed: userspace is the only writer of cq_head.
        let head = mem.load_index(RingIndex::CqHead, Relaxed);
        Ok(CompletionConsumer {
            mem,
            entries,
            head,
            tail: head,
        })
    }

    #[inline]
    fn refresh_tail(&mut self) -> Result<(), Corruption> {
        // Acquire: pairs with the kernel's Release of cq_tail, making the
        // CQE words it wrote before that store visible to the reads below.
        let tail = self.mem.load_index(RingIndex::CqTail, Acquire);
        if tail.wrapping_sub(self.head) > self.entries {
            return Err(Corruption {
                head: self.head,
                tail,
            });
        }
        self.tail = tail;
        Ok(())
    }

    /// Completions ready to reap, re-reading `cq_tail`.
    pub fn ready(&mut self) -> Result<u32, Corruption> {
        self.refresh_tail()?;
        Ok(self.tail.wrapping_sub(self.head))
    }

    /// Takes the oldest completion, if any.
    pub fn try_reap(&mut self) -> Result<Option<Cqe>, Corruption> {
        if self.head == self.tail {
            self.refresh_tail()?;
            if self.head == self.tail {
                return Ok(None);
            }
        }
        let cqe = Cqe::from_words(&self.mem.load_cqe(self.head & (self.entries - 1)));
        self.head = self.head.wrapping_add(1);
        // Release: our reads of the slot happen before the kernel's Acquire
        // load of cq_head that lets it reuse the slot.
        self.mem.store_index(RingIndex::CqHead, self.head, Release);
        Ok(Some(cqe))
    }

    /// Takes up to `max` completions, oldest first, handing each to `f`, and
    /// releases their slots with one `cq_head` store; returns how many.
    #[inline]
    pub fn reap_batch(&mut self, max: u32, mut f: impl FnMut(Cqe)) -> Result<u32, Corruption> {
        self.reap_while(max, |cqe| {
            f(*cqe);
            true
        })
    }

    /// Like [`Self::reap_batch`], but stops at the first completion for
    /// which `take` says `false`: that one is released too (it is the last
    /// one taken), and the ones after it stay in the queue. Returns how
    /// many were taken (counting that one). Reads `cq_tail` once.
    #[inline]
    pub fn reap_while(
        &mut self,
        max: u32,
        mut take: impl FnMut(&Cqe) -> bool,
    ) -> Result<u32, Corruption> {
        self.refresh_tail()?;
        let start = self.head;
        let end = start.wrapping_add(max.min(self.tail.wrapping_sub(start)));
        // The memory's own size (equal to `entries`, checked at
        // construction), so that this mask folds into the one it applies.
        let mask = self.mem.cq_entries() - 1;
        let mut head = start;
        while head != end {
            let cqe = Cqe::from_words(&self.mem.load_cqe(head & mask));
            head = head.wrapping_add(1);
            if !take(&cqe) {
                break;
            }
        }
        self.head = head;
        // Release: our reads of the slots happen before the kernel's
        // Acquire load of cq_head that lets it reuse them. (Storing an
        // unchanged head is harmless: the kernel accepts any head between
        // the last one and its tail.)
        self.mem.store_index(RingIndex::CqHead, head, Release);
        Ok(head.wrapping_sub(start))
    }

    /// This consumer's head.
    pub fn head(&self) -> u32 {
        self.head
    }
}

/// A reserved CQ slot. Obtained from [`CompletionPoster::reserve`] (or with
/// each [`Submission`]) and spent by [`CompletionPoster::post`] on the same
/// poster. Dropping one without posting leaks a CQ slot for the life of the
/// ring.
#[must_use = "a CQ credit must be spent on exactly one completion"]
#[derive(Debug, PartialEq, Eq)]
pub struct CqCredit {
    _private: (),
}

/// CQ slots reserved together ([`CompletionPoster::reserve_up_to`]), handed
/// out one credit at a time; what is left goes back with
/// [`CompletionPoster::unreserve`].
#[must_use = "unused credits must go back to their poster"]
#[derive(Debug, PartialEq, Eq)]
pub struct Credits {
    left: u32,
}

impl Credits {
    /// No credits.
    pub const NONE: Credits = Credits { left: 0 };

    /// Takes one credit, if any is left.
    pub fn take(&mut self) -> Option<CqCredit> {
        self.left = self.left.checked_sub(1)?;
        Some(CqCredit { _private: () })
    }

    /// Credits left.
    pub fn len(&self) -> u32 {
        self.left
    }

    /// Whether none is left.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }
}

/// The kernel's producer view of the CQ.
pub struct CompletionPoster<M: RingMemory> {
    mem: M,
    entries: u32,
    /// Next slot to fill. Kernel-private; the ring copy is write-only to us.
    tail: u32,
    /// Last `cq_head` accepted from userspace.
    seen_head: u32,
    /// Credits handed out and not yet posted.
    reserved: u32,
}

impl<M: RingMemory> CompletionPoster<M> {
    /// Creates the view for a freshly initialised ring (all indices zero).
    pub fn new(mem: M) -> Result<Self, LayoutError> {
        Self::starting_at(mem, 0)
    }

    /// Creates the view for a ring whose CQ indices were both initialised to
    /// `start` (tests use this to run across the `u32` wrap point).
    pub fn starting_at(mem: M, start: u32) -> Result<Self, LayoutError> {
        let entries = check_entries(mem.cq_entries())?;
        Ok(CompletionPoster {
            mem,
            entries,
            tail: start,
            seen_head: start,
            reserved: 0,
        })
    }

    /// Slots known free: not unread (as of the last accepted head) and not
    /// reserved. The invariant `unread + reserved <= entries` keeps this from
    /// underflowing.
    fn known_free(&self) -> u32 {
        self.entries - self.tail.wrapping_sub(self.seen_head) - self.reserved
    }

    fn refresh_head(&mut self) -> Result<(), Corruption> {
        // Acquire: pairs with userspace's Release of cq_head, so its reads of
        // the slots it released happen before our later writes to them.
        let head = self.mem.load_index(RingIndex::CqHead, Acquire);
        if head.wrapping_sub(self.seen_head) > self.tail.wrapping_sub(self.seen_head) {
            return Err(Corruption {
                head,
                tail: self.tail,
            });
        }
        self.seen_head = head;
        Ok(())
    }

    /// Reserves one CQ slot.
    pub fn reserve(&mut self) -> Result<CqCredit, ReserveError> {
        if self.known_free() == 0 {
            self.refresh_head().map_err(ReserveError::Corrupted)?;
            if self.known_free() == 0 {
                return Err(ReserveError::Full);
            }
        }
        self.reserved += 1;
        Ok(CqCredit { _private: () })
    }

    /// Reserves up to `want` CQ slots at once (fewer if the CQ has fewer
    /// free), re-reading `cq_head` only if the slots known free do not
    /// cover `want`.
    pub fn reserve_up_to(&mut self, want: u32) -> Result<Credits, Corruption> {
        if self.known_free() < want {
            self.refresh_head()?;
        }
        let n = want.min(self.known_free());
        self.reserved += n;
        Ok(Credits { left: n })
    }

    /// Reserves more slots into `credits` until it holds `want` (or as many
    /// as the CQ has free), re-reading `cq_head` only if needed.
    pub fn top_up(&mut self, credits: &mut Credits, want: u32) -> Result<(), Corruption> {
        let more = want.saturating_sub(credits.left);
        if more > 0 {
            let got = self.reserve_up_to(more)?;
            credits.left += got.left;
        }
        Ok(())
    }

    /// Gives back credits that were not spent.
    pub fn unreserve(&mut self, credits: Credits) {
        self.reserved = self.reserved.saturating_sub(credits.left);
    }

    /// Writes `cqe` into the slot reserved by `credit` without publishing
    /// it; [`CompletionPoster::publish`] makes every such write visible at
    /// once.
    pub fn post_unpublished(&mut self, credit: CqCredit, cqe: &Cqe) {
        let CqCredit { _private: () } = credit;
        debug_assert!(self.reserved > 0, "CQ credit posted on the wrong ring");
        self.reserved = self.reserved.saturating_sub(1);
        // Relaxed word stores: published by the Release in `publish`.
        self.mem
            .store_cqe(self.tail & (self.entries - 1), &cqe.to_words());
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes every completion written so far.
    pub fn publish(&self) {
        // Release: the slot writes happen before userspace's Acquire load of
        // cq_tail that observes this value.
        self.mem.store_index(RingIndex::CqTail, self.tail, Release);
    }

    /// Writes `cqe` into the slot reserved by `credit` and publishes it.
    ///
    /// Never fails and never overwrites an unread completion: the credit
    /// guarantees the slot at the tail is free as of the last accepted head,
    /// whatever userspace has since written to `cq_head`.
    pub fn post(&mut self, credit: CqCredit, cqe: &Cqe) {
        // A credit from another poster would break the slot accounting; it
        // is a kernel bug, not something userspace can cause.
        self.post_unpublished(credit, cqe);
        self.publish();
    }

    /// Shorthand for posting a transport error.
    pub fn post_error(&mut self, credit: CqCredit, user_data: u64, err: TransportError) {
        self.post(credit, &Cqe::error(user_data, err));
    }

    /// Credits outstanding.
    pub fn reserved(&self) -> u32 {
        self.reserved
    }

    /// The kernel's CQ tail (number of completions ever posted, wrapping).
    pub fn tail(&self) -> u32 {
        self.tail
    }
}

/// One consumed SQE: its `user_data`, the validated request or the error to
/// complete it with, and the CQ slot reserved for its completion.
#[must_use = "every consumed submission must be completed"]
#[derive(Debug)]
pub struct Submission {
    /// Copied from the SQE; goes back in the CQE.
    pub user_data: u64,
    /// [`Sqe::validate`] of the copied entry.
    pub op: Result<Op, TransportError>,
    /// The CQ slot for this submission's completion.
    pub credit: CqCredit,
}

/// The kernel's consumer view of the SQ.
pub struct SubmissionDrain<M: RingMemory> {
    mem: M,
    entries: u32,
    /// Next slot to consume. Kernel-private; the ring copy is write-only to us.
    head: u32,
}

impl<M: RingMemory> SubmissionDrain<M> {
    /// Creates the view for a freshly initialised ring (all indices zero).
    pub fn new(mem: M) -> Result<Self, LayoutError> {
        Self::starting_at(mem, 0)
    }

    /// Creates the view for a ring whose SQ indices were both initialised to
    /// `start` (tests use this to run across the `u32` wrap point).
    pub fn starting_at(mem: M, start: u32) -> Result<Self, LayoutError> {
        let entries = check_entries(mem.sq_entries())?;
        Ok(SubmissionDrain {
            mem,
            entries,
            head: start,
        })
    }

    /// Starts a drain: reads and checks `sq_tail` once. The batch will hand
    /// out at most the entries present now (never more than the SQ size).
    pub fn begin(&mut self) -> Result<DrainBatch<'_, M>, Corruption> {
        // Acquire: pairs with userspace's Release of sq_tail, making the SQE
        // words it wrote before that store visible to our copies.
        let tail = self.mem.load_index(RingIndex::SqTail, Acquire);
        let pending = tail.wrapping_sub(self.head);
        if pending > self.entries {
            return Err(Corruption {
                head: self.head,
                tail,
            });
        }
        Ok(DrainBatch {
            drain: self,
            remaining: pending,
            consumed: false,
        })
    }

    /// The kernel's SQ head (number of SQEs ever consumed, wrapping).
    pub fn head(&self) -> u32 {
        self.head
    }
}

/// One bounded pass over the SQ, from [`SubmissionDrain::begin`]. The new
/// `sq_head` is published once, when the batch ends (is dropped).
pub struct DrainBatch<'d, M: RingMemory> {
    drain: &'d mut SubmissionDrain<M>,
    remaining: u32,
    /// Whether an entry was consumed (so `sq_head` moved).
    consumed: bool,
}

impl<M: RingMemory> Drop for DrainBatch<'_, M> {
    fn drop(&mut self) {
        if self.consumed {
            // Release: our copies of the consumed slots happen before
            // userspace's Acquire load of sq_head that lets it overwrite
            // them.
            let d = &*self.drain;
            d.mem.store_index(RingIndex::SqHead, d.head, Release);
        }
    }
}

impl<M: RingMemory> DrainBatch<'_, M> {
    /// Consumes the next SQE, reserving its completion slot in `cq` first.
    ///
    /// The entry is copied out of shared memory before it is validated, so
    /// later writes by userspace cannot change what the kernel acts on.
    pub fn pop<C: RingMemory>(
        &mut self,
        cq: &mut CompletionPoster<C>,
    ) -> Result<Submission, DrainStop> {
        if self.remaining == 0 {
            return Err(DrainStop::Done);
        }
        let credit = cq.reserve().map_err(|e| match e {
            ReserveError::Full => DrainStop::CqFull,
            ReserveError::Corrupted(c) => DrainStop::CqCorrupted(c),
        })?;
        Ok(self.consume(credit))
    }

    /// Consumes the next SQE with a credit from `credits` (reserved for the
    /// whole batch with [`CompletionPoster::reserve_up_to`]).
    pub fn pop_credited(&mut self, credits: &mut Credits) -> Result<Submission, DrainStop> {
        if self.remaining == 0 {
            return Err(DrainStop::Done);
        }
        let credit = credits.take().ok_or(DrainStop::CqFull)?;
        Ok(self.consume(credit))
    }

    /// Copies, consumes and validates the next SQE, completing into `credit`.
    fn consume(&mut self, credit: CqCredit) -> Submission {
        let d = &mut *self.drain;
        let words = d.mem.load_sqe(d.head & (d.entries - 1));
        d.head = d.head.wrapping_add(1);
        self.remaining -= 1;
        self.consumed = true;
        Submission {
            user_data: words[2],
            op: Sqe::validate_words(&words),
            credit,
        }
    }

    /// SQEs left in this batch.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::OwnedRing;
    use crate::CqeStatus;

    fn nop(user_data: u64) -> Sqe {
        Op::Nop.encode(user_data)
    }

    #[test]
    fn round_trip_fifo() {
        let ring = OwnedRing::<4, 4>::new();
        let mut sq = SubmissionProducer::new(&ring).unwrap();
        let mut cq = CompletionConsumer::new(&ring).unwrap();
        let mut drain = SubmissionDrain::new(&ring).unwrap();
        let mut post = CompletionPoster::new(&ring).unwrap();

        for i in 0..3 {
            sq.try_submit(&nop(i)).unwrap();
        }
        let mut batch = drain.begin().unwrap();
        assert_eq!(batch.remaining(), 3);
        let mut seen = vec![];
        loop {
            match batch.pop(&mut post) {
                Ok(s) => {
                    assert_eq!(s.op, Ok(Op::Nop));
                    seen.push(s.user_data);
                    post.post(s.credit, &Cqe::success(s.user_data, 0));
                }
                Err(stop) => {
                    assert_eq!(stop, DrainStop::Done);
                    break;
                }
            }
        }
        assert_eq!(seen, [0, 1, 2]);
        drop(batch);
        let reaped: Vec<u64> = std::iter::from_fn(|| cq.try_reap().unwrap())
            .map(|c| c.user_data)
            .collect();
        assert_eq!(reaped, [0, 1, 2]);
        assert_eq!(ring.header().sq_head.value.load(Relaxed), 3);
        assert_eq!(ring.header().cq_head.value.load(Relaxed), 3);
    }

    #[test]
    fn sq_full_then_space_after_drain() {
        let ring = OwnedRing::<2, 4>::new();
        let mut sq = SubmissionProducer::new(&ring).unwrap();
        let mut drain = SubmissionDrain::new(&ring).unwrap();
        let mut post = CompletionPoster::new(&ring).unwrap();
        sq.try_submit(&nop(1)).unwrap();
        sq.try_submit(&nop(2)).unwrap();
        assert_eq!(sq.try_submit(&nop(3)), Err(SubmitError::Full));
        assert_eq!(sq.space(), Ok(0));
        let s = drain.begin().unwrap().pop(&mut post).unwrap();
        post.post(s.credit, &Cqe::success(s.user_data, 0));
        assert_eq!(sq.space(), Ok(1));
        sq.try_submit(&nop(3)).unwrap();
    }

    #[test]
    fn push_is_invisible_until_publish() {
        let ring = OwnedRing::<4, 4>::new();
        let mut sq = SubmissionProducer::new(&ring).unwrap();
        let mut drain = SubmissionDrain::new(&ring).unwrap();
        sq.try_push(&nop(1)).unwrap();
        sq.try_push(&nop(2)).unwrap();
        assert_eq!(drain.begin().unwrap().remaining(), 0);
        sq.publish();
        assert_eq!(drain.begin().unwrap().remaining(), 2);
    }

    #[test]
    fn drain_stops_when_cq_full_without_consuming() {
        let ring = OwnedRing::<4, 2>::new();
        let mut sq = SubmissionProducer::new(&ring).unwrap();
        let mut cq = CompletionConsumer::new(&ring).unwrap();
        let mut drain = SubmissionDrain::new(&ring).unwrap();
        let mut post = CompletionPoster::new(&ring).unwrap();
        for i in 0..4 {
            sq.try_submit(&nop(i)).unwrap();
        }
        let mut batch = drain.begin().unwrap();
        let a = batch.pop(&mut post).unwrap();
        let b = batch.pop(&mut post).unwrap();
        // Two credits outstanding, CQ of two: the drain must stop.
        assert_eq!(batch.pop(&mut post).err(), Some(DrainStop::CqFull));
        assert_eq!(batch.remaining(), 2);
        // sq_head is published when the batch ends.
        assert_eq!(ring.load_index(RingIndex::SqHead, Acquire), 0);
        drop(batch);
        assert_eq!(drain.head(), 2);
        assert_eq!(ring.load_index(RingIndex::SqHead, Acquire), 2);
        post.post(a.credit, &Cqe::success(a.user_data, 0));
        post.post(b.credit, &Cqe::success(b.user_data, 0));
        // Still full until userspace reaps.
        assert_eq!(post.reserve().err(), Some(ReserveError::Full));
        assert_eq!(cq.try_reap().unwrap().unwrap().user_data, 0);
        let mut batch = drain.begin().unwrap();
        assert_eq!(batch.remaining(), 2);
        let c = batch.pop(&mut post).unwrap();
        assert_eq!(c.user_data, 2);
        assert_eq!(batch.pop(&mut post).err(), Some(DrainStop::CqFull));
        drop(batch);
        post.post(c.credit, &Cqe::success(c.user_data, 0));
    }

    #[test]
    fn push_all_and_reap_while_across_the_wrap() {
        let ring = OwnedRing::<4, 4>::new();
        let mut sq = SubmissionProducer::new(&ring).unwrap();
        let mut cq = CompletionConsumer::new(&ring).unwrap();
        let mut drain = SubmissionDrain::new(&ring).unwrap();
        let mut post = CompletionPoster::new(&ring).unwrap();
        let words: Vec<_> = (0..5).map(|i| nop(i).to_words()).collect();
        let five: Vec<_> = words.iter().collect();
        assert_eq!(sq.push_all(&five), Err(SubmitError::Full));
        for round in 0..10u64 {
            // Three in a row, over the slot wrap on most rounds.
            let a = nop(3 * round).to_words();
            let b = nop(3 * round + 1).to_words();
            let c = nop(3 * round + 2).to_words();
            sq.push_all(&[&a, &b]).unwrap();
            sq.try_push_words(&c).unwrap();
            sq.publish();
            let mut batch = drain.begin().unwrap();
            while let Ok(s) = batch.pop(&mut post) {
                let result = if s.user_data % 3 == 1 { -1 } else { 0 };
                let mut cqe = Cqe::success(s.user_data, 0);
                cqe.result = result;
                post.post(s.credit, &cqe);
            }
            drop(batch);
            // Stops at the failed one, which it takes; the rest stays.
            let mut seen = Vec::new();
            let took = cq
                .reap_while(8, |c| {
                    seen.push(c.user_data);
                    c.result >= 0
                })
                .unwrap();
            assert_eq!(took, 2);
            assert_eq!(seen, [3 * round, 3 * round + 1]);
            assert_eq!(ring.header().cq_head.value.load(Relaxed), cq.head());
            assert_eq!(cq.reap_while(8, |_| true).unwrap(), 1);
            assert_eq!(cq.reap_while(8, |_| unreachable!()).unwrap(), 0);
        }
        // A corrupted tail is reported and nothing is taken.
        let head = cq.head();
        ring.header()
            .index_word(RingIndex::CqTail)
            .store(head.wrapping_add(5), Relaxed);
        assert_eq!(
            cq.reap_while(1, |_| unreachable!()),
            Err(Corruption {
                head,
                tail: head.wrapping_add(5)
            })
        );
        assert_eq!(cq.head(), head);
        // So is a corrupted head on the producer side, once it is re-read.
        ring.header()
            .index_word(RingIndex::SqHead)
            .store(0x8000_0000, Relaxed);
        let w = nop(0).to_words();
        let err = (0..5).find_map(|_| sq.try_push_words(&w).err());
        assert!(matches!(err, Some(SubmitError::Corrupted(_))));
    }

    #[test]
    fn push_copies_and_reap_batch() {
        let ring = OwnedRing::<4, 4>::new();
        let mut sq = SubmissionProducer::new(&ring).unwrap();
        let mut cq = CompletionConsumer::new(&ring).unwrap();
        let mut drain = SubmissionDrain::new(&ring).unwrap();
        let mut post = CompletionPoster::new(&ring).unwrap();
        assert_eq!(
            sq.push_copies(&nop(7).to_words(), 5),
            Err(SubmitError::Full)
        );
        sq.push_copies(&nop(7).to_words(), 3).unwrap();
        sq.publish();
        let mut batch = drain.begin().unwrap();
        assert_eq!(batch.remaining(), 3);
        while let Ok(s) = batch.pop(&mut post) {
            assert_eq!(s.op, Ok(Op::Nop));
            post.post(s.credit, &Cqe::success(s.user_data, 0));
        }
        drop(batch);
        let mut seen = Vec::new();
        assert_eq!(cq.reap_batch(2, |c| seen.push(c.user_data)).unwrap(), 2);
        assert_eq!(ring.header().cq_head.value.load(Relaxed), 2);
        assert_eq!(cq.reap_batch(8, |c| seen.push(c.user_data)).unwrap(), 1);
        assert_eq!(cq.reap_batch(8, |_| unreachable!()).unwrap(), 0);
        assert_eq!(seen, [7, 7, 7]);
    }

    #[test]
    fn bulk_credits_and_one_publish() {
        let ring = OwnedRing::<4, 4>::new();
        let mut sq = SubmissionProducer::new(&ring).unwrap();
        let mut cq = CompletionConsumer::new(&ring).unwrap();
        let mut drain = SubmissionDrain::new(&ring).unwrap();
        let mut post = CompletionPoster::new(&ring).unwrap();
        for i in 0..3 {
            sq.try_push(&nop(i)).unwrap();
        }
        sq.publish();
        let mut credits = post.reserve_up_to(8).unwrap();
        assert_eq!(credits.len(), 4, "only the CQ's four slots");
        let mut batch = drain.begin().unwrap();
        let mut subs = Vec::new();
        while let Ok(s) = batch.pop_credited(&mut credits) {
            subs.push(s);
        }
        drop(batch);
        assert_eq!((subs.len(), credits.len()), (3, 1));
        post.unreserve(credits);
        assert_eq!(post.reserved(), 3);
        for s in subs {
            post.post_unpublished(s.credit, &Cqe::success(s.user_data, 0));
        }
        // Nothing visible until the one publish.
        assert_eq!(cq.try_reap().unwrap(), None);
        post.publish();
        let got: Vec<u64> = core::iter::from_fn(|| cq.try_reap().unwrap())
            .map(|c| c.user_data)
            .collect();
        assert_eq!(got, [0, 1, 2]);
        assert_eq!(post.reserved(), 0);
        // Credits never exceed the free slots, counting unread completions.
        let credits = post.reserve_up_to(8).unwrap();
        assert_eq!(credits.len(), 4);
        post.unreserve(credits);
        // A standing reservation topped up to what a batch needs.
        let mut standing = Credits::NONE;
        post.top_up(&mut standing, 2).unwrap();
        assert_eq!((standing.len(), post.reserved()), (2, 2));
        post.top_up(&mut standing, 9).unwrap();
        assert_eq!((standing.len(), post.reserved()), (4, 4));
        post.unreserve(standing);
        assert_eq!(post.reserved(), 0);
    }

    #[test]
    fn deferred_completion_keeps_its_slot() {
        let ring = OwnedRing::<2, 2>::new();
        let mut sq = SubmissionProducer::new(&ring).unwrap();
        let mut cq = CompletionConsumer::new(&ring).unwrap();
        let mut drain = SubmissionDrain::new(&ring).unwrap();
        let mut post = CompletionPoster::new(&ring).unwrap();
        sq.try_submit(&nop(10)).unwrap();
        let held = drain.begin().unwrap().pop(&mut post).unwrap();
        // Kernel-originated completions can use the one remaining slot.
        let extra = post.reserve().unwrap();
        post.post(extra, &Cqe::success(99, 0));
        assert_eq!(post.reserve().err(), Some(ReserveError::Full));
        assert_eq!(cq.try_reap().unwrap().unwrap().user_data, 99);
        post.post(
            held.credit,
            &Cqe::error(held.user_data, TransportError::Cancelled),
        );
        let c = cq.try_reap().unwrap().unwrap();
        assert_eq!(c.user_data, 10);
        assert_eq!(c.status(), CqeStatus::Err(TransportError::Cancelled));
        assert_eq!(cq.try_reap(), Ok(None));
    }

    #[test]
    fn invalid_sqe_still_consumed_with_error() {
        let ring = OwnedRing::<2, 2>::new();
        let mut sq = SubmissionProducer::new(&ring).unwrap();
        let mut drain = SubmissionDrain::new(&ring).unwrap();
        let mut post = CompletionPoster::new(&ring).unwrap();
        let bad = Sqe {
            opcode: 0xEE,
            user_data: 5,
            ..Sqe::default()
        };
        sq.try_submit(&bad).unwrap();
        let s = drain.begin().unwrap().pop(&mut post).unwrap();
        assert_eq!(s.user_data, 5);
        assert_eq!(s.op, Err(TransportError::InvalidOpcode));
        post.post_error(s.credit, s.user_data, TransportError::InvalidOpcode);
    }

    #[test]
    fn corrupted_sq_tail_is_reported_not_consumed() {
        let ring = OwnedRing::<4, 4>::new();
        let mut drain = SubmissionDrain::new(&ring).unwrap();
        let tail = ring.header().index_word(RingIndex::SqTail);
        for bad in [5, u32::MAX, 0x8000_0000] {
            tail.store(bad, Relaxed);
            assert_eq!(drain.begin().err(), Some(Corruption { head: 0, tail: bad }));
        }
        assert_eq!(drain.head(), 0);
        // Repair and carry on.
        tail.store(4, Relaxed);
        assert_eq!(drain.begin().unwrap().remaining(), 4);
    }

    #[test]
    fn corrupted_cq_head_is_reported_and_credits_still_post() {
        let ring = OwnedRing::<4, 2>::new();
        let mut post = CompletionPoster::new(&ring).unwrap();
        let a = post.reserve().unwrap();
        let b = post.reserve().unwrap();
        let head = ring.header().index_word(RingIndex::CqHead);
        // Ahead of the tail (nothing posted yet): corrupt.
        head.store(1, Relaxed);
        assert_eq!(
            post.reserve().err(),
            Some(ReserveError::Corrupted(Corruption { head: 1, tail: 0 }))
        );
        post.post(a, &Cqe::success(1, 0));
        post.post(b, &Cqe::success(2, 0));
        assert_eq!(post.tail(), 2);
        // Backwards from the last accepted head: corrupt.
        head.store(u32::MAX, Relaxed);
        assert!(matches!(post.reserve(), Err(ReserveError::Corrupted(_))));
        head.store(2, Relaxed);
        let c = post.reserve().unwrap();
        post.post(c, &Cqe::success(3, 0));
    }

    #[test]
    fn user_side_detects_kernel_index_garbage() {
        let ring = OwnedRing::<2, 2>::new();
        let mut sq = SubmissionProducer::new(&ring).unwrap();
        let mut cq = CompletionConsumer::new(&ring).unwrap();
        sq.try_submit(&nop(1)).unwrap();
        sq.try_submit(&nop(2)).unwrap();
        ring.header()
            .index_word(RingIndex::SqHead)
            .store(7, Relaxed);
        assert!(matches!(
            sq.try_submit(&nop(3)),
            Err(SubmitError::Corrupted(_))
        ));
        ring.header()
            .index_word(RingIndex::CqTail)
            .store(9, Relaxed);
        assert!(cq.try_reap().is_err());
        assert_eq!(cq.head(), 0);
    }

    #[test]
    fn indices_wrap_around_u32() {
        let ring = OwnedRing::<2, 2>::new();
        let start = u32::MAX - 2;
        for which in RingIndex::ALL {
            ring.header().index_word(which).store(start, Relaxed);
        }
        let mut sq = SubmissionProducer::new(&ring).unwrap();
        let mut cq = CompletionConsumer::new(&ring).unwrap();
        // Kernel-side views of a ring that has already been running.
        let mut drain = SubmissionDrain::starting_at(&ring, start).unwrap();
        let mut post = CompletionPoster::starting_at(&ring, start).unwrap();
        for i in 0..8u64 {
            sq.try_submit(&nop(i)).unwrap();
            let s = drain.begin().unwrap().pop(&mut post).unwrap();
            assert_eq!(s.user_data, i);
            post.post(s.credit, &Cqe::success(s.user_data, 0));
            assert_eq!(cq.try_reap().unwrap().unwrap().user_data, i);
        }
        assert_eq!(drain.head(), start.wrapping_add(8));
    }
}
