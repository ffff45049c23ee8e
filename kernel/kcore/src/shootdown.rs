//! TLB shoot-down bookkeeping, free of any machine access so the host tests
//! and loom models run the same code the kernel does.
//!
//! Two pieces:
//!
//! * **Active CPUs.** Each address space keeps a [`CpuSet`] word: bit `i` is
//!   set while CPU `i` may hold TLB entries for it. A CPU [`join`]s *before*
//!   it loads the space's root into CR3 and [`leave`]s *after* it has loaded
//!   a different root (without PCIDs that write flushed every non-global
//!   entry). Whoever changes the space's page tables reads the word with
//!   [`snapshot`] *after* the change. All three are read-modify-writes of
//!   the same word, so they are totally ordered (its modification order):
//!   either the snapshot comes later and sees the bit, or the join comes
//!   later, reads from the snapshot (acquire/release) and so happens after
//!   the page-table change, and every page walk after the CR3 load sees the
//!   new entry.
//! * **Mailboxes.** Every CPU has a [`Station`]: a `pending` word (bit `j` =
//!   CPU `j` has a request for this CPU), its own outgoing request and a
//!   `waiting` word (the targets that have not acknowledged it yet). A CPU
//!   has at most one request outstanding: it [`post`]s it, interrupts the
//!   targets, and [`wait`]s. A target [`service`]s its station (from the
//!   interrupt handler, or wherever it spins): it takes its pending bits,
//!   carries out each request, then acknowledges it. The waiting CPU keeps
//!   servicing its own station while it waits, so two CPUs shooting at each
//!   other with interrupts off both finish.

use core::sync::atomic::{AtomicU64, Ordering};

/// CPUs a [`CpuSet`] can name.
pub const MAX_CPUS: usize = 64;

/// Page-size step between the pages of a [`Flush::Pages`] request.
pub const PAGE_SIZE: u64 = 4096;

/// A set of CPU indices: bit `i` is CPU `i`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuSet(pub u64);

impl CpuSet {
    /// No CPU.
    pub const EMPTY: CpuSet = CpuSet(0);

    /// Just `cpu`.
    pub fn single(cpu: usize) -> Self {
        CpuSet(bit(cpu))
    }

    /// True if `cpu` is in the set.
    pub fn contains(self, cpu: usize) -> bool {
        cpu < MAX_CPUS && self.0 & bit(cpu) != 0
    }

    /// The set without `cpu`.
    pub fn without(self, cpu: usize) -> Self {
        CpuSet(self.0 & !bit(cpu))
    }

    /// True if no CPU is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of CPUs in the set.
    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// The CPU indices in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut rest = self.0;
        core::iter::from_fn(move || {
            if rest == 0 {
                return None;
            }
            let i = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            Some(i)
        })
    }
}

fn bit(cpu: usize) -> u64 {
    assert!(cpu < MAX_CPUS, "cpu index {cpu} out of range");
    1u64 << cpu
}

/// An atomic 64-bit word: `AtomicU64` in the kernel, loom's in the models.
pub trait Word {
    /// Atomic load.
    fn load(&self, order: Ordering) -> u64;
    /// Atomic store.
    fn store(&self, value: u64, order: Ordering);
    /// Atomic swap; returns the old value.
    fn swap(&self, value: u64, order: Ordering) -> u64;
    /// Atomic OR; returns the old value.
    fn fetch_or(&self, value: u64, order: Ordering) -> u64;
    /// Atomic AND; returns the old value.
    fn fetch_and(&self, value: u64, order: Ordering) -> u64;
}

impl Word for AtomicU64 {
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order)
    }
    fn swap(&self, value: u64, order: Ordering) -> u64 {
        AtomicU64::swap(self, value, order)
    }
    fn fetch_or(&self, value: u64, order: Ordering) -> u64 {
        AtomicU64::fetch_or(self, value, order)
    }
    fn fetch_and(&self, value: u64, order: Ordering) -> u64 {
        AtomicU64::fetch_and(self, value, order)
    }
}

/// Marks `cpu` as possibly holding entries of the space whose active-CPU
/// word is `cpus`. Call before loading the space's root on `cpu`.
pub fn join<W: Word>(cpus: &W, cpu: usize) {
    cpus.fetch_or(bit(cpu), Ordering::AcqRel);
}

/// Clears `cpu` from `cpus`. Call only after `cpu` has loaded another root
/// (which flushed the space's entries); it is the CPU's last access to the
/// space's bookkeeping.
pub fn leave<W: Word>(cpus: &W, cpu: usize) {
    cpus.fetch_and(!bit(cpu), Ordering::AcqRel);
}

/// The CPUs that may hold entries of the space, read with a
/// read-modify-write *after* its page tables were changed (see the module
/// comment for why a plain load would not do).
pub fn snapshot<W: Word>(cpus: &W) -> CpuSet {
    CpuSet(cpus.fetch_or(0, Ordering::AcqRel))
}

/// What a target does with a request naming its loaded root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// Invalidate `count` pages from `start`.
    Pages {
        /// First page.
        start: u64,
        /// Pages (at least 1, at most [`MAX_PAGES`]).
        count: u64,
    },
    /// Invalidate every non-global entry.
    All,
    /// The space is being freed: load the kernel's own root instead (and
    /// leave the space's active set).
    Release,
}

/// Largest [`Flush::Pages`] request; bigger ranges flush everything (one
/// CR3 reload is cheaper than many single-page invalidations).
pub const MAX_PAGES: u64 = 32;

const KIND_ALL: u64 = u64::MAX;
const KIND_RELEASE: u64 = u64::MAX - 1;

/// How to flush the pages `[start, end)` (page-aligned, `start < end`):
/// page by page up to [`MAX_PAGES`], everything above.
pub fn plan(start: u64, end: u64) -> Flush {
    let count = end.saturating_sub(start) / PAGE_SIZE;
    if count == 0 || count > MAX_PAGES {
        Flush::All
    } else {
        Flush::Pages { start, count }
    }
}

/// A shoot-down request: the root (physical PML4 address) of the space it
/// is about, and what to flush if that root is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Root of the address space.
    pub root: u64,
    /// What to do.
    pub flush: Flush,
}

impl Request {
    fn encode(self) -> [u64; 3] {
        match self.flush {
            Flush::Pages { start, count } => [self.root, start, count],
            Flush::All => [self.root, 0, KIND_ALL],
            Flush::Release => [self.root, 0, KIND_RELEASE],
        }
    }

    fn decode(w: [u64; 3]) -> Self {
        let flush = match w[2] {
            KIND_ALL => Flush::All,
            KIND_RELEASE => Flush::Release,
            count => Flush::Pages { start: w[1], count },
        };
        Request { root: w[0], flush }
    }
}

/// One CPU's mailbox.
pub struct Station<W> {
    /// CPUs with a request for this CPU that it has not taken yet.
    pending: W,
    /// This CPU's outgoing request (root, start, count or kind).
    request: [W; 3],
    /// Targets of the outgoing request that have not acknowledged it.
    waiting: W,
}

impl Station<AtomicU64> {
    /// An empty station (for statics).
    #[allow(clippy::declare_interior_mutable_const)]
    pub const EMPTY: Self = Station {
        pending: AtomicU64::new(0),
        request: [const { AtomicU64::new(0) }; 3],
        waiting: AtomicU64::new(0),
    };
}

impl<W: Word> Station<W> {
    /// An empty station whose words `zero` makes (each must start at 0).
    pub fn new(mut zero: impl FnMut() -> W) -> Self {
        Station {
            pending: zero(),
            request: [zero(), zero(), zero()],
            waiting: zero(),
        }
    }

    /// True if another CPU has posted a request this station has not taken.
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed) != 0
    }
}

/// Posts `req` from CPU `me` to every CPU in `targets` (which must not
/// contain `me`). `me` must have no request outstanding ([`wait`] returned).
/// The caller then interrupts each target and calls [`wait`].
pub fn post<W: Word>(stations: &[Station<W>], me: usize, req: Request, targets: CpuSet) {
    debug_assert!(!targets.contains(me));
    let own = &stations[me];
    debug_assert_eq!(own.waiting.load(Ordering::Relaxed), 0);
    for (w, v) in own.request.iter().zip(req.encode()) {
        w.store(v, Ordering::Relaxed);
    }
    own.waiting.store(targets.0, Ordering::Relaxed);
    // Release: a target that takes this bit (acquire swap) sees the
    // request words and the waiting word above.
    for t in targets.iter() {
        stations[t].pending.fetch_or(bit(me), Ordering::Release);
    }
}

/// Takes every request pending for CPU `me`, calls `apply` on each, then
/// acknowledges it. Returns the number handled. `apply` must finish the
/// flush before returning: the acknowledgement lets the requester go on.
pub fn service<W: Word>(stations: &[Station<W>], me: usize, mut apply: impl FnMut(Request)) -> u32 {
    let from = CpuSet(stations[me].pending.swap(0, Ordering::Acquire));
    for i in from.iter() {
        let st = &stations[i];
        let words = [
            st.request[0].load(Ordering::Relaxed),
            st.request[1].load(Ordering::Relaxed),
            st.request[2].load(Ordering::Relaxed),
        ];
        apply(Request::decode(words));
        // Release: orders the request reads above before the requester's
        // next post (which rewrites them once it sees every acknowledgement).
        st.waiting.fetch_and(!bit(me), Ordering::Release);
    }
    from.len()
}

/// True once every target of CPU `me`'s request has acknowledged it.
pub fn acknowledged<W: Word>(stations: &[Station<W>], me: usize) -> bool {
    stations[me].waiting.load(Ordering::Acquire) == 0
}

/// Waits until every target of CPU `me`'s request has acknowledged it,
/// servicing `me`'s own station meanwhile (with `apply`) and calling `spin`
/// between checks. Returns the requests of others it handled.
pub fn wait<W: Word>(
    stations: &[Station<W>],
    me: usize,
    mut apply: impl FnMut(Request),
    mut spin: impl FnMut(),
) -> u32 {
    let mut served = 0;
    while !acknowledged(stations, me) {
        served += service(stations, me, &mut apply);
        spin();
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn stations(n: usize) -> Vec<Station<AtomicU64>> {
        (0..n).map(|_| Station::new(|| AtomicU64::new(0))).collect()
    }

    #[test]
    fn cpuset_ops() {
        let s = CpuSet(0b1010_0101);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 2, 5, 7]);
        assert_eq!(s.len(), 4);
        assert!(s.contains(5) && !s.contains(1) && !s.contains(200));
        assert_eq!(s.without(5).0, 0b1000_0101);
        assert!(CpuSet::EMPTY.is_empty());
        assert_eq!(CpuSet::single(63).iter().collect::<Vec<_>>(), [63]);
    }

    #[test]
    fn join_leave_snapshot() {
        let w = AtomicU64::new(0);
        join(&w, 3);
        join(&w, 0);
        assert_eq!(snapshot(&w), CpuSet(0b1001));
        leave(&w, 3);
        assert_eq!(snapshot(&w), CpuSet(0b1));
        // A snapshot changes nothing.
        assert_eq!(snapshot(&w), CpuSet(0b1));
    }

    #[test]
    fn plan_pages_then_all() {
        assert_eq!(
            plan(0x1000, 0x3000),
            Flush::Pages {
                start: 0x1000,
                count: 2
            }
        );
        assert_eq!(
            plan(0, MAX_PAGES * PAGE_SIZE),
            Flush::Pages {
                start: 0,
                count: MAX_PAGES
            }
        );
        assert_eq!(plan(0, (MAX_PAGES + 1) * PAGE_SIZE), Flush::All);
        assert_eq!(plan(0x5000, 0x5000), Flush::All);
    }

    #[test]
    fn request_round_trips() {
        for flush in [
            Flush::Pages {
                start: 0x1000_0000_0000,
                count: 7,
            },
            Flush::All,
            Flush::Release,
        ] {
            let r = Request {
                root: 0x1234_5000,
                flush,
            };
            assert_eq!(Request::decode(r.encode()), r);
        }
    }

    #[test]
    fn post_service_acknowledge() {
        let st = stations(4);
        let req = Request {
            root: 0x8000,
            flush: Flush::Pages {
                start: 0x4000,
                count: 1,
            },
        };
        post(&st, 1, req, CpuSet(0b1101));
        assert!(!acknowledged(&st, 1));
        assert!(st[0].has_pending() && st[2].has_pending() && st[3].has_pending());
        assert!(!st[1].has_pending());
        let mut seen = Vec::new();
        assert_eq!(service(&st, 0, |r| seen.push((0, r))), 1);
        assert_eq!(service(&st, 0, |r| seen.push((0, r))), 0);
        assert!(!acknowledged(&st, 1));
        service(&st, 2, |r| seen.push((2, r)));
        service(&st, 3, |r| seen.push((3, r)));
        assert!(acknowledged(&st, 1));
        assert_eq!(seen, [(0, req), (2, req), (3, req)]);
    }

    #[test]
    fn two_requesters_one_target() {
        let st = stations(3);
        let a = Request {
            root: 0xa000,
            flush: Flush::All,
        };
        let b = Request {
            root: 0xb000,
            flush: Flush::Release,
        };
        post(&st, 0, a, CpuSet::single(2));
        post(&st, 1, b, CpuSet::single(2));
        let mut seen = Vec::new();
        assert_eq!(service(&st, 2, |r| seen.push(r)), 2);
        assert_eq!(seen, [a, b]);
        assert!(acknowledged(&st, 0) && acknowledged(&st, 1));
    }

    #[test]
    fn waiter_services_its_own_station() {
        // CPU 0 and CPU 1 each shoot at the other; each waits while
        // servicing its own station, so neither waits for ever.
        let st = stations(2);
        let r0 = Request {
            root: 0x1000,
            flush: Flush::All,
        };
        let r1 = Request {
            root: 0x2000,
            flush: Flush::All,
        };
        post(&st, 0, r0, CpuSet::single(1));
        post(&st, 1, r1, CpuSet::single(0));
        let mut spins = 0;
        // CPU 0 waits: handles CPU 1's request, then (simulated) CPU 1's
        // wait handles CPU 0's.
        let served0 = wait(
            &st,
            0,
            |r| assert_eq!(r, r1),
            || {
                spins += 1;
                service(&st, 1, |r| assert_eq!(r, r0));
            },
        );
        assert_eq!(served0, 1);
        assert!(spins >= 1);
        assert!(acknowledged(&st, 1));
    }
}
