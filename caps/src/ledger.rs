//! Per-process resource ledger: limits on everything a process can make the kernel hold.
//!
//! A process's ledger counts cap slots, queued and in-flight calls, scratch bytes,
//! frames, threads and timer waiters, each against its own limit. Charging is done by
//! *reserving* before any side effect: [`Ledger::reserve`] either fails with a
//! [`QuotaError`] or returns a [`Reservation`], an RAII token that gives the amount back
//! when dropped. Whatever holds the resource (a cap-table slot, a queued call, a frame
//! object) keeps the token for as long as the resource lives, so success, error,
//! rollback and process exit all release through the same `Drop` and no path can forget.
//!
//! Counters are atomics updated by compare-and-swap, so a ledger can be shared between
//! CPUs through an [`Arc`] and no interleaving ever takes a counter above its limit.

use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// A kind of resource a process can make the kernel hold on its behalf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// Live capability-table entries.
    CapSlots,
    /// Calls queued at endpoints, waiting for the server to receive them.
    QueuedCalls,
    /// Calls delivered to a server and awaiting its RETURN.
    InFlightCalls,
    /// Kernel scratch bytes held for parameters and results.
    ScratchBytes,
    /// Physical 4 KiB frames.
    Frames,
    /// Threads.
    Threads,
    /// Pending timer wake-ups.
    TimerWaiters,
}

impl Resource {
    /// Number of resource kinds.
    pub const COUNT: usize = 7;
    /// Every resource kind, in index order.
    pub const ALL: [Resource; Self::COUNT] = [
        Resource::CapSlots,
        Resource::QueuedCalls,
        Resource::InFlightCalls,
        Resource::ScratchBytes,
        Resource::Frames,
        Resource::Threads,
        Resource::TimerWaiters,
    ];

    /// Position of this kind in [`Resource::ALL`] and in [`Limits`] arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short lower-case name, e.g. `"cap slots"`.
    pub const fn name(self) -> &'static str {
        match self {
            Resource::CapSlots => "cap slots",
            Resource::QueuedCalls => "queued calls",
            Resource::InFlightCalls => "in-flight calls",
            Resource::ScratchBytes => "scratch bytes",
            Resource::Frames => "frames",
            Resource::Threads => "threads",
            Resource::TimerWaiters => "timer waiters",
        }
    }
}

/// The limit of every resource kind, indexed by [`Resource::index`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits(pub [u64; Resource::COUNT]);

impl Limits {
    /// The bring-up profile: 256 cap slots, 128 queued calls, 64 in-flight calls,
    /// 256 KiB scratch, 4096 frames (16 MiB), 64 threads, 64 timer waiters.
    pub const DEFAULT: Limits = Limits([256, 128, 64, 256 * 1024, 4096, 64, 64]);

    /// Every limit zero: nothing can be reserved.
    pub const NONE: Limits = Limits([0; Resource::COUNT]);

    /// The limit for `resource`.
    pub const fn get(&self, resource: Resource) -> u64 {
        self.0[resource.index()]
    }

    /// These limits with `resource` set to `limit`.
    pub const fn with(mut self, resource: Resource, limit: u64) -> Self {
        self.0[resource.index()] = limit;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A reservation would take a counter above its limit; nothing was charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaError {
    /// The exhausted resource.
    pub resource: Resource,
    /// How much was asked for.
    pub requested: u64,
    /// How much was in use when the request was refused.
    pub used: u64,
    /// The limit.
    pub limit: u64,
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} quota exceeded: {} requested, {} of {} in use",
            self.resource.name(),
            self.requested,
            self.used,
            self.limit
        )
    }
}

/// One process's resource counters and limits. Share it as `Arc<Ledger>`.
#[derive(Debug)]
pub struct Ledger {
    limits: Limits,
    used: [AtomicU64; Resource::COUNT],
}

impl Ledger {
    /// A ledger with nothing in use and the given limits.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            used: Default::default(),
        })
    }

    /// The limits this ledger enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The amount of `resource` currently reserved.
    pub fn used(&self, resource: Resource) -> u64 {
        self.used[resource.index()].load(Ordering::Acquire)
    }

    /// The amount of `resource` that can still be reserved.
    pub fn available(&self, resource: Resource) -> u64 {
        self.limits
            .get(resource)
            .saturating_sub(self.used(resource))
    }

    /// Every counter, indexed by [`Resource::index`].
    pub fn snapshot(&self) -> [u64; Resource::COUNT] {
        core::array::from_fn(|i| self.used[i].load(Ordering::Acquire))
    }

    /// Reserves `amount` of `resource`, or fails without charging anything.
    ///
    /// The returned token releases the amount when dropped. A zero amount always
    /// succeeds and yields an empty token.
    pub fn reserve(
        self: &Arc<Self>,
        resource: Resource,
        amount: u64,
    ) -> Result<Reservation, QuotaError> {
        let limit = self.limits.get(resource);
        let counter = &self.used[resource.index()];
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(amount).filter(|&total| total <= limit)
            })
            .map_err(|used| QuotaError {
                resource,
                requested: amount,
                used,
                limit,
            })?;
        Ok(Reservation {
            ledger: Arc::clone(self),
            resource,
            amount,
        })
    }

    /// Gives back `amount` of `resource`. Only a [`Reservation`] calls this.
    fn release(&self, resource: Resource, amount: u64) {
        if amount == 0 {
            return;
        }
        let previous = self.used[resource.index()].fetch_sub(amount, Ordering::AcqRel);
        // Reservations are the only way to charge, so the counter always covers the
        // amount; an underflow would mean a forged token.
        debug_assert!(
            previous >= amount,
            "ledger underflow on {}",
            resource.name()
        );
    }
}

/// A charge against a [`Ledger`], given back when this token is dropped.
///
/// Keep the token inside whatever holds the resource. There is no way to release a
/// charge except dropping its token, and no way to charge except reserving one.
#[must_use = "dropping a reservation immediately gives the resource back"]
#[derive(Debug)]
pub struct Reservation {
    ledger: Arc<Ledger>,
    resource: Resource,
    amount: u64,
}

impl Reservation {
    /// The resource this token charges.
    pub fn resource(&self) -> Resource {
        self.resource
    }

    /// The amount this token charges.
    pub fn amount(&self) -> u64 {
        self.amount
    }

    /// Whether this token charges `ledger`.
    pub fn is_from(&self, ledger: &Arc<Ledger>) -> bool {
        Arc::ptr_eq(&self.ledger, ledger)
    }

    /// Splits `amount` off into a new token, leaving the rest in `self`.
    ///
    /// Returns `None` (and changes nothing) if `self` holds less than `amount`.
    pub fn split_off(&mut self, amount: u64) -> Option<Reservation> {
        self.amount = self.amount.checked_sub(amount)?;
        Some(Reservation {
            ledger: Arc::clone(&self.ledger),
            resource: self.resource,
            amount,
        })
    }

    /// Merges `other` into `self`. Fails, returning `other`, if the two charge different
    /// ledgers or resources.
    pub fn merge(&mut self, mut other: Reservation) -> Result<(), Reservation> {
        if !Arc::ptr_eq(&self.ledger, &other.ledger) || self.resource != other.resource {
            return Err(other);
        }
        self.amount += other.amount;
        other.amount = 0;
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.ledger.release(self.resource, self.amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_up_to_the_limit_then_refuse() {
        let ledger = Ledger::new(Limits::NONE.with(Resource::Frames, 10));
        let a = ledger.reserve(Resource::Frames, 6).unwrap();
        let b = ledger.reserve(Resource::Frames, 4).unwrap();
        assert_eq!(ledger.used(Resource::Frames), 10);
        let err = ledger.reserve(Resource::Frames, 1).unwrap_err();
        assert_eq!(
            err,
            QuotaError {
                resource: Resource::Frames,
                requested: 1,
                used: 10,
                limit: 10
            }
        );
        assert_eq!(
            err.to_string(),
            "frames quota exceeded: 1 requested, 10 of 10 in use"
        );
        drop(a);
        assert_eq!(ledger.used(Resource::Frames), 4);
        drop(b);
        assert_eq!(ledger.snapshot(), [0; Resource::COUNT]);
    }

    #[test]
    fn overflowing_requests_are_refused() {
        let ledger = Ledger::new(Limits::NONE.with(Resource::ScratchBytes, u64::MAX));
        let _a = ledger.reserve(Resource::ScratchBytes, 5).unwrap();
        assert!(ledger.reserve(Resource::ScratchBytes, u64::MAX).is_err());
        assert_eq!(ledger.used(Resource::ScratchBytes), 5);
    }

    #[test]
    fn resources_are_independent() {
        let ledger = Ledger::new(Limits::DEFAULT);
        let _t = ledger.reserve(Resource::Threads, 64).unwrap();
        assert!(ledger.reserve(Resource::Threads, 1).is_err());
        assert!(ledger.reserve(Resource::TimerWaiters, 1).is_ok());
        assert_eq!(ledger.available(Resource::CapSlots), 256);
    }

    #[test]
    fn split_and_merge_conserve_the_charge() {
        let ledger = Ledger::new(Limits::DEFAULT);
        let other = Ledger::new(Limits::DEFAULT);
        let mut r = ledger.reserve(Resource::CapSlots, 3).unwrap();
        let one = r.split_off(1).unwrap();
        assert!(r.split_off(3).is_none());
        assert_eq!((r.amount(), one.amount()), (2, 1));
        assert_eq!(ledger.used(Resource::CapSlots), 3);
        let foreign = other.reserve(Resource::CapSlots, 1).unwrap();
        let foreign = r.merge(foreign).unwrap_err();
        assert!(foreign.is_from(&other) && !foreign.is_from(&ledger));
        r.merge(one).unwrap();
        assert_eq!(r.amount(), 3);
        drop(r);
        drop(foreign);
        assert_eq!(ledger.used(Resource::CapSlots), 0);
        assert_eq!(other.used(Resource::CapSlots), 0);
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_limit() {
        let ledger = Ledger::new(Limits::NONE.with(Resource::QueuedCalls, 100));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let ledger = Arc::clone(&ledger);
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for _ in 0..1000 {
                        if let Ok(r) = ledger.reserve(Resource::QueuedCalls, 3) {
                            assert!(ledger.used(Resource::QueuedCalls) <= 100);
                            held.push(r);
                        }
                        if held.len() > 10 {
                            held.clear();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(ledger.used(Resource::QueuedCalls), 0);
    }
}
