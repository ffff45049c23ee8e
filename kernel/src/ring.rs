//! The kernel's side of one process ring, and the completions parked on
//! kernel objects.
//!
//! Two locks, each covering only queue state:
//!
//! - the *submission side* ([`SqState`]: the SQ consumer and the per-ring
//!   scratch buffers) is taken by the ring's own thread for one drain, with
//!   interrupts on; nothing else ever takes it;
//! - the *completion side* ([`CqState`]: the CQ producer and the parked
//!   registry) is taken for a few instructions by whoever posts a completion:
//!   the ring's own thread, another process's thread answering a call, or
//!   the timer interrupt. It masks interrupts while held.
//!
//! Object calls run inside a drain, so the submission side is held, but
//! never the completion side: an object may complete an operation into the
//! caller's own ring (an endpoint closing under its own pending RECV)
//! without re-entering a lock, and nothing but the ring's own thread ever
//! waits for the submission side.
//!
//! **Parked completions.** Every operation that completes later holds one
//! reserved CQ slot, so at most a CQ's worth can be outstanding; each is
//! registered here, with the queue that holds it, under a [`ParkKey`]. When
//! the process exits, every registered completion is cancelled on its queue
//! ([`WaitQueue::cancel`]), so no waiter and no charge outlives its caller.

use crate::sync::{IrqLock, SpinLock};
use alloc::sync::Weak;
use capos_ring::{
    CompletionPoster, CqCredit, Cqe, Credits, RawRing, RingIndex, RingMemory, SubmissionDrain,
    DEFAULT_LAYOUT,
};
use core::sync::atomic::{AtomicU32, Ordering};

/// CQ entries of every process ring, and so the most completions one ring
/// can have parked.
pub const CQ_ENTRIES: usize = DEFAULT_LAYOUT.cq_entries() as usize;

/// The ring's indices are inconsistent.
#[derive(Debug)]
pub struct Corrupted;

/// Names one parked completion: the owning process, the registry slot and
/// the slot's generation. Unique for the life of the system (pids are never
/// reused; a slot's generation changes at every park).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParkKey(u64);

impl ParkKey {
    fn new(pid: u32, slot: usize, generation: u32) -> Self {
        ParkKey((u64::from(pid) << 32) | (u64::from(generation & 0xff_ffff) << 8) | slot as u64)
    }

    fn slot(self) -> usize {
        (self.0 & 0xff) as usize
    }
}

/// Something that holds parked completions and can drop one of them on
/// request (its caller exited).
pub trait WaitQueue: Send + Sync {
    /// Removes the completion parked under `key`, if this queue still holds
    /// it, and drops it (with its charges).
    fn cancel(&self, key: ParkKey);
}

/// Where a parked completion waits.
#[derive(Clone)]
pub enum Queue {
    /// The kernel's timer heap, entry not made yet.
    Timers,
    /// The kernel's timer heap, at this entry.
    Timer(capos_kcore::timerheap::TimerKey),
    /// An object's queue (weak: a parked call does not keep it alive).
    Object(Weak<dyn WaitQueue>),
}

impl Queue {
    fn cancel(&self, key: ParkKey) {
        match self {
            // Parked for the instant between taking the completion and
            // adding the entry; the adder then names the entry.
            Queue::Timers => {}
            Queue::Timer(entry) => drop(crate::timers::remove(*entry)),
            Queue::Object(q) => {
                if let Some(q) = q.upgrade() {
                    q.cancel(key);
                }
            }
        }
    }
}

/// The parked registry: one slot per CQ entry.
struct Parked {
    queues: [Option<Queue>; CQ_ENTRIES],
    generations: [u32; CQ_ENTRIES],
    used: u64,
}

impl Parked {
    const fn new() -> Self {
        Parked {
            queues: [const { None }; CQ_ENTRIES],
            generations: [0; CQ_ENTRIES],
            used: 0,
        }
    }
}

/// The submission side: drained only by the ring's own thread.
pub struct SqState {
    /// Consumer of the submission queue.
    pub drain: SubmissionDrain<RawRing<'static>>,
    /// Kernel copies of call parameters (word-aligned for the decoder);
    /// grows to the largest seen, charged to the ledger as it grows.
    pub params: alloc::vec::Vec<capnp::Word>,
    /// Results built by kernel objects before they are copied out.
    pub results: alloc::vec::Vec<u8>,
    /// The `ScratchBytes` charge for both buffers' capacity.
    pub scratch_charge: Option<capos_caps::ledger::Reservation>,
    /// Completions of one drain waiting to be posted together (capacity
    /// for a whole CQ, reserved at creation: pushing never allocates).
    pub done: alloc::vec::Vec<(CqCredit, Cqe)>,
    /// CQ slots reserved ahead for the next drain's submissions (topped up
    /// when a drain posts, so that most drains take the completion side's
    /// lock once).
    pub standing: Credits,
}

/// The completion side.
pub struct CqState {
    poster: CompletionPoster<RawRing<'static>>,
    parked: Parked,
}

/// A process ring as the kernel holds it.
pub struct Ring {
    pid: u32,
    sq: SpinLock<SqState>,
    cq: IrqLock<CqState>,
    /// The CQ tail the kernel last published (a private copy: the shared
    /// word is writable by the process).
    cq_tail: AtomicU32,
    /// The SQ head after the last drain (a private copy, for the check that
    /// lets an entry with nothing submitted skip every lock).
    sq_head: AtomicU32,
    raw: RawRing<'static>,
}

impl Ring {
    /// The kernel views of a freshly initialised ring of process `pid`.
    pub fn new(pid: u32, raw: RawRing<'static>) -> Option<Self> {
        Some(Ring {
            pid,
            sq: SpinLock::new(SqState {
                drain: SubmissionDrain::new(raw).ok()?,
                params: alloc::vec::Vec::new(),
                results: alloc::vec::Vec::new(),
                scratch_charge: None,
                done: alloc::vec::Vec::with_capacity(CQ_ENTRIES),
                standing: Credits::NONE,
            }),
            cq: IrqLock::new(CqState {
                poster: CompletionPoster::new(raw).ok()?,
                parked: Parked::new(),
            }),
            cq_tail: AtomicU32::new(0),
            sq_head: AtomicU32::new(0),
            raw,
        })
    }

    /// Locks the submission side (the ring's own thread, for one drain).
    pub fn submissions(&self) -> crate::sync::SpinGuard<'_, SqState> {
        self.sq.lock()
    }

    /// For the serial dump key: completions posted and not yet reaped, and
    /// submissions not yet consumed (no lock: the private and shared
    /// indices as they stand).
    pub fn backlog(&self) -> (u32, u32) {
        let cq_head = self.raw.load_index(RingIndex::CqHead, Ordering::Acquire);
        let sq_tail = self.raw.load_index(RingIndex::SqTail, Ordering::Acquire);
        (
            self.cq_tail.load(Ordering::Acquire).wrapping_sub(cq_head),
            sq_tail.wrapping_sub(self.sq_head.load(Ordering::Relaxed)),
        )
    }

    /// Whether the process has published submissions the kernel has not
    /// drained (an inconsistent tail counts as yes: the drain reports it).
    pub fn has_submissions(&self) -> bool {
        self.raw.load_index(RingIndex::SqTail, Ordering::Acquire)
            != self.sq_head.load(Ordering::Relaxed)
    }

    /// Records where the SQ head stands after a drain.
    pub fn drained_to(&self, head: u32) {
        self.sq_head.store(head, Ordering::Relaxed);
    }

    /// Makes sure `credits` holds a CQ slot for each of `want` submissions
    /// about to be consumed (fewer if the CQ has no more room). When it must
    /// take the completion side's lock, it tops up to `keep` (at least
    /// `want`), so that the next drains find their credits standing.
    pub fn reserve_credits(
        &self,
        credits: &mut Credits,
        want: u32,
        keep: u32,
    ) -> Result<(), Corrupted> {
        if credits.len() >= want {
            return Ok(());
        }
        self.cq
            .lock()
            .poster
            .top_up(credits, want.max(keep))
            .map_err(|_| Corrupted)
    }

    /// Posts a drain's completions `done` under one lock hold, publishing
    /// once, and tops `credits` up to `keep` for the next drain while the
    /// lock is held.
    pub fn post_batch(
        &self,
        credits: &mut Credits,
        keep: u32,
        done: &mut alloc::vec::Vec<(CqCredit, Cqe)>,
    ) {
        if done.is_empty() {
            return;
        }
        let mut cq = self.cq.lock();
        for (credit, cqe) in done.drain(..) {
            cq.poster.post_unpublished(credit, &cqe);
        }
        cq.poster.publish();
        self.cq_tail.store(cq.poster.tail(), Ordering::Release);
        // A corrupted head only stops the top-up; the next drain reports it.
        let _ = cq.poster.top_up(credits, keep);
    }

    /// Registers a completion about to wait on `queue`; returns its key.
    pub fn park(&self, queue: Queue) -> ParkKey {
        let mut cq = self.cq.lock();
        let p = &mut cq.parked;
        // Each parked completion holds a CQ credit, so a free slot exists.
        let slot = (!p.used).trailing_zeros() as usize;
        debug_assert!(slot < CQ_ENTRIES, "more parked completions than CQ slots");
        let slot = slot.min(CQ_ENTRIES - 1);
        p.used |= 1 << slot;
        p.generations[slot] = p.generations[slot].wrapping_add(1);
        p.queues[slot] = Some(queue);
        ParkKey::new(self.pid, slot, p.generations[slot])
    }

    /// Records where the completion parked under `key` now waits.
    pub fn set_queue(&self, key: ParkKey, queue: Queue) {
        let mut cq = self.cq.lock();
        let slot = key.slot();
        if cq.parked.used & (1 << slot) != 0
            && ParkKey::new(self.pid, slot, cq.parked.generations[slot]) == key
        {
            cq.parked.queues[slot] = Some(queue);
        }
    }

    /// Posts the completion parked under `key` and forgets the parking.
    pub fn unpark_and_post(&self, key: ParkKey, credit: CqCredit, cqe: &Cqe) {
        let mut cq = self.cq.lock();
        let slot = key.slot();
        if cq.parked.used & (1 << slot) != 0
            && ParkKey::new(self.pid, slot, cq.parked.generations[slot]) == key
        {
            cq.parked.used &= !(1 << slot);
            cq.parked.queues[slot] = None;
        }
        cq.poster.post(credit, cqe);
        self.cq_tail.store(cq.poster.tail(), Ordering::Release);
    }

    /// Cancels every parked completion on its queue (the process is gone);
    /// returns how many there were.
    pub fn cancel_parked(&self) -> usize {
        let taken: [Option<(ParkKey, Queue)>; CQ_ENTRIES] = {
            let mut cq = self.cq.lock();
            let p = &mut cq.parked;
            let used = core::mem::take(&mut p.used);
            core::array::from_fn(|slot| {
                if used & (1 << slot) == 0 {
                    return None;
                }
                let key = ParkKey::new(self.pid, slot, p.generations[slot]);
                p.queues[slot].take().map(|q| (key, q))
            })
        };
        let mut count = 0;
        for (key, queue) in taken.into_iter().flatten() {
            queue.cancel(key);
            count += 1;
        }
        count
    }

    /// Completions posted and not yet reaped by the process.
    pub fn available(&self) -> Result<u32, Corrupted> {
        let head = self.raw.load_index(RingIndex::CqHead, Ordering::Acquire);
        let n = self.cq_tail.load(Ordering::Acquire).wrapping_sub(head);
        if n > CQ_ENTRIES as u32 {
            return Err(Corrupted);
        }
        Ok(n)
    }
}
