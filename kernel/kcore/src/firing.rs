//! The check the kernel's timer expiry keeps on itself: events fire in
//! deadline order, how many fired, and the most pending at once.
//!
//! "In order" means the deadlines fired never go backwards, with one
//! allowance: an entry added when a later deadline had already fired (its
//! deadline was overdue when it was added, e.g. `sleepUntil` a past time)
//! fires late by nature. So each entry records a *floor* when it is added,
//! the latest deadline fired so far, and an entry firing below the latest
//! deadline fired counts as out of order only if it was not already
//! overdue when added (its deadline is at or above its floor): the structure
//! then held it while it fired a later one.

/// Counters of one timer structure; the caller holds them under the same
/// lock as the structure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FiringOrder {
    last: u64,
    fired: u64,
    backwards: u64,
    peak: usize,
}

impl FiringOrder {
    /// Nothing fired, nothing pending.
    pub const fn new() -> Self {
        FiringOrder {
            last: 0,
            fired: 0,
            backwards: 0,
            peak: 0,
        }
    }

    /// Notes an entry added, with `pending` entries now present; returns the
    /// floor to keep with it.
    pub fn added(&mut self, pending: usize) -> u64 {
        self.peak = self.peak.max(pending);
        self.last
    }

    /// Notes that an entry due at `deadline`, added with `floor`, fired.
    pub fn fired(&mut self, deadline: u64, floor: u64) {
        if deadline < self.last && deadline >= floor {
            self.backwards += 1;
        }
        self.last = self.last.max(deadline);
        self.fired += 1;
    }

    /// Entries fired.
    pub fn fired_count(&self) -> u64 {
        self.fired
    }

    /// The most entries pending at once.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Whether every entry fired in deadline order.
    pub fn in_order(&self) -> bool {
        self.backwards == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascending_deadlines_are_in_order() {
        let mut f = FiringOrder::new();
        let floors: [u64; 3] = core::array::from_fn(|i| f.added(i + 1));
        for (d, floor) in [10, 20, 20].into_iter().zip(floors) {
            f.fired(d, floor);
        }
        assert!(f.in_order());
        assert_eq!((f.fired_count(), f.peak()), (3, 3));
    }

    #[test]
    fn an_entry_held_past_a_later_one_is_out_of_order() {
        let mut f = FiringOrder::new();
        let (a, b) = (f.added(1), f.added(2));
        f.fired(20, b);
        f.fired(10, a);
        assert!(!f.in_order());
    }

    #[test]
    fn an_entry_overdue_when_added_is_not() {
        let mut f = FiringOrder::new();
        let a = f.added(1);
        f.fired(20, a);
        // Added after 20 fired, due at 5: late by nature.
        let b = f.added(1);
        f.fired(5, b);
        assert!(f.in_order());
        // Added after 20 fired, due at 30, held while 40 fired: not.
        let (c, d) = (f.added(1), f.added(2));
        f.fired(40, d);
        f.fired(30, c);
        assert!(!f.in_order());
    }
}
