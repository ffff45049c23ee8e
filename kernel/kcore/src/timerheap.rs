//! Deadlines in an indexed binary min-heap: O(log n) insert and removal by
//! key, O(1) look at the earliest deadline, and no allocation once capacity
//! is reserved (the timer interrupt only pops and removes).
//!
//! Entries live in a slab; the heap orders slab indices by
//! `(deadline, insertion sequence)`, so equal deadlines leave in the order
//! they were inserted. Each slot remembers its heap position, which is what
//! makes removal by key O(log n). Keys carry the slot's generation: a key
//! whose entry already left (popped or removed) is refused, never mistaken
//! for the slot's next occupant.

use alloc::vec::Vec;

/// Names one inserted entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerKey {
    index: u32,
    generation: u32,
}

impl TimerKey {
    /// The key as one word (for keeping it in an atomic); never 0.
    pub fn to_raw(self) -> u64 {
        (u64::from(self.generation) << 32 | u64::from(self.index)) + 1
    }

    /// The key [`TimerKey::to_raw`] made `raw` from; `None` for 0.
    pub fn from_raw(raw: u64) -> Option<TimerKey> {
        let raw = raw.checked_sub(1)?;
        Some(TimerKey {
            index: raw as u32,
            generation: (raw >> 32) as u32,
        })
    }
}

struct Slot<T> {
    deadline: u64,
    seq: u64,
    generation: u32,
    /// Position in `heap` while the slot is occupied.
    pos: u32,
    value: Option<T>,
}

/// A set of values ordered by deadline.
pub struct TimerHeap<T> {
    heap: Vec<u32>,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<T> Default for TimerHeap<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TimerHeap<T> {
    /// An empty heap that has allocated nothing.
    pub const fn new() -> Self {
        TimerHeap {
            heap: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
        }
    }

    /// Entries present.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no entry is present.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Makes room for `more` further entries, so that the next `more`
    /// inserts allocate nothing.
    pub fn reserve(&mut self, more: usize) {
        let spare = self.free.len() + (self.slots.capacity() - self.slots.len());
        if spare < more {
            self.slots.reserve(more - spare);
        }
        // Every slot may be in the heap, or on the free list, at once.
        let cap = self.slots.capacity();
        self.heap.reserve(cap - self.heap.len());
        self.free.reserve(cap - self.free.len());
    }

    /// Whether an insert would allocate.
    pub fn is_full(&self) -> bool {
        self.free.is_empty() && self.slots.len() == self.slots.capacity()
    }

    /// Adds `value` due at `deadline`.
    pub fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let pos = self.heap.len() as u32;
        let index = match self.free.pop() {
            Some(i) => {
                let s = &mut self.slots[i as usize];
                s.deadline = deadline;
                s.seq = seq;
                s.pos = pos;
                s.value = Some(value);
                i
            }
            None => {
                self.slots.push(Slot {
                    deadline,
                    seq,
                    generation: 0,
                    pos,
                    value: Some(value),
                });
                self.slots.len() as u32 - 1
            }
        };
        self.heap.push(index);
        self.sift_up(pos as usize);
        TimerKey {
            index,
            generation: self.slots[index as usize].generation,
        }
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.heap.first().map(|&i| self.slots[i as usize].deadline)
    }

    /// Takes the earliest entry if its deadline is at or before `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, T)> {
        let &first = self.heap.first()?;
        let deadline = self.slots[first as usize].deadline;
        if deadline > now {
            return None;
        }
        self.take_at(0).map(|v| (deadline, v))
    }

    /// Removes the entry `key` names, if it is still present.
    pub fn remove(&mut self, key: TimerKey) -> Option<T> {
        let slot = self.slots.get(key.index as usize)?;
        if slot.generation != key.generation || slot.value.is_none() {
            return None;
        }
        self.take_at(slot.pos as usize)
    }

    /// Every entry present with its deadline, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.slots
            .iter()
            .filter_map(|s| s.value.as_ref().map(|v| (s.deadline, v)))
    }

    /// The deadline of the entry `key` names, if it is still present.
    pub fn deadline_of(&self, key: TimerKey) -> Option<u64> {
        let slot = self.slots.get(key.index as usize)?;
        (slot.generation == key.generation && slot.value.is_some()).then_some(slot.deadline)
    }

    /// Removes the heap entry at `pos` and frees its slot.
    fn take_at(&mut self, pos: usize) -> Option<T> {
        let index = self.heap[pos];
        let last = self.heap.len() - 1;
        self.heap.swap(pos, last);
        self.heap.pop();
        if pos < self.heap.len() {
            self.slots[self.heap[pos] as usize].pos = pos as u32;
            self.sift_down(pos);
            self.sift_up(pos);
        }
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        let value = slot.value.take();
        self.free.push(index);
        value
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let (x, y) = (
            &self.slots[self.heap[a] as usize],
            &self.slots[self.heap[b] as usize],
        );
        (x.deadline, x.seq) < (y.deadline, y.seq)
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.slots[self.heap[a] as usize].pos = a as u32;
        self.slots[self.heap[b] as usize].pos = b as u32;
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if !self.less(pos, parent) {
                break;
            }
            self.swap(pos, parent);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        loop {
            let (l, r) = (2 * pos + 1, 2 * pos + 2);
            let mut smallest = pos;
            if l < self.heap.len() && self.less(l, smallest) {
                smallest = l;
            }
            if r < self.heap.len() && self.less(r, smallest) {
                smallest = r;
            }
            if smallest == pos {
                break;
            }
            self.swap(pos, smallest);
            pos = smallest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_then_insertion_order() {
        let mut h = TimerHeap::new();
        h.insert(30, "c");
        h.insert(10, "a");
        h.insert(20, "b1");
        h.insert(20, "b2");
        assert_eq!(h.next_deadline(), Some(10));
        assert_eq!(h.pop_due(5), None);
        let mut out = Vec::new();
        while let Some((_, v)) = h.pop_due(100) {
            out.push(v);
        }
        assert_eq!(out, ["a", "b1", "b2", "c"]);
        assert!(h.is_empty());
    }

    #[test]
    fn iter_lists_exactly_the_entries_present() {
        let mut h = TimerHeap::new();
        let a = h.insert(10, 'a');
        h.insert(30, 'c');
        h.insert(20, 'b');
        h.remove(a);
        h.pop_due(20);
        let mut seen: Vec<(u64, char)> = h.iter().map(|(d, v)| (d, *v)).collect();
        seen.sort();
        assert_eq!(seen, [(30, 'c')]);
    }

    #[test]
    fn removed_and_popped_keys_are_stale() {
        let mut h = TimerHeap::new();
        let a = h.insert(10, 1);
        let b = h.insert(20, 2);
        assert_eq!(h.remove(a), Some(1));
        assert_eq!(h.remove(a), None);
        let c = h.insert(5, 3);
        // c reuses a's slot; a's key must not name it.
        assert_eq!(h.remove(a), None);
        assert_eq!(h.deadline_of(c), Some(5));
        assert_eq!(h.pop_due(100), Some((5, 3)));
        assert_eq!(h.remove(c), None);
        assert_eq!(h.remove(b), Some(2));
        assert!(h.is_empty());
    }

    #[test]
    fn keys_round_trip_through_a_word() {
        let mut h = TimerHeap::new();
        for i in 0..3 {
            let k = h.insert(i, i);
            assert_ne!(k.to_raw(), 0);
            assert_eq!(TimerKey::from_raw(k.to_raw()), Some(k));
            h.remove(k);
        }
        assert_eq!(TimerKey::from_raw(0), None);
    }

    #[test]
    fn reserved_capacity_is_not_reallocated() {
        let mut h = TimerHeap::new();
        h.reserve(8);
        let (hp, sp) = (h.heap.as_ptr(), h.slots.as_ptr());
        for i in 0..8 {
            h.insert(i, i);
        }
        assert!(h.is_full());
        assert_eq!((h.heap.as_ptr(), h.slots.as_ptr()), (hp, sp));
        while h.pop_due(u64::MAX).is_some() {}
        assert!(!h.is_full());
    }
}
