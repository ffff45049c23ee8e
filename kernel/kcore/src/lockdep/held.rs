//! The locks one CPU holds, oldest first.

use super::{Capacity, HeldLock, Violation, MAX_HELD};

/// The locks one CPU holds (or is spinning for), oldest first. Locks may be
/// released in any order.
#[derive(Clone, Debug)]
pub struct HeldStack {
    locks: [Option<HeldLock>; MAX_HELD],
    len: usize,
}

impl Default for HeldStack {
    fn default() -> Self {
        Self::new()
    }
}

impl HeldStack {
    /// An empty stack.
    pub const fn new() -> Self {
        Self {
            locks: [None; MAX_HELD],
            len: 0,
        }
    }

    /// Number of locks held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no lock is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The held locks, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &HeldLock> {
        self.locks[..self.len].iter().flatten()
    }

    /// Checks `new` against what this CPU holds: taking a lock it already
    /// holds is [`Violation::Reentry`]; taking another lock of a class it
    /// holds is [`Violation::SameClass`] unless both carry keys and the new
    /// key is greater than every held key of that class (locks of one class
    /// nested in a global key order, such as two processes' capability
    /// tables in pid order, cannot deadlock).
    pub fn check(&self, new: &HeldLock, cpu: u32) -> Result<(), Violation> {
        for h in self.iter() {
            if h.instance == new.instance {
                return Err(Violation::Reentry {
                    cpu,
                    new: *new,
                    held: *h,
                });
            }
        }
        for h in self.iter() {
            if h.class == new.class {
                let ordered = matches!((h.key, new.key), (Some(a), Some(b)) if a < b);
                if !ordered {
                    return Err(Violation::SameClass {
                        cpu,
                        new: *new,
                        held: *h,
                    });
                }
            }
        }
        Ok(())
    }

    /// Records `lock` as held (newest).
    pub fn push(&mut self, lock: HeldLock) -> Result<(), Capacity> {
        let slot = self
            .locks
            .get_mut(self.len)
            .ok_or(Capacity::Held(MAX_HELD))?;
        *slot = Some(lock);
        self.len += 1;
        Ok(())
    }

    /// Forgets the newest entry for `instance`, keeping the others in order;
    /// `None` if this CPU does not hold it.
    pub fn release(&mut self, instance: usize) -> Option<HeldLock> {
        let at = self.locks[..self.len]
            .iter()
            .rposition(|h| h.is_some_and(|h| h.instance == instance))?;
        let lock = self.locks[at].take();
        self.locks.copy_within(at + 1..self.len, at);
        self.len -= 1;
        self.locks[self.len] = None;
        lock
    }

    /// The held entry for `instance`, if any.
    pub fn find(&self, instance: usize) -> Option<&HeldLock> {
        self.iter().rev().find(|h| h.instance == instance)
    }
}
