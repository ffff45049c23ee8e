//! quickcheck properties of the kernel's timer heap (`capos_kcore::timerheap`)
//! against a sorted-list oracle: every pop takes the earliest due entry (ties
//! in insertion order), removal by key takes exactly that entry, stale keys
//! take nothing, and the earliest deadline is always the oracle's.

use capos_kcore::timerheap::{TimerHeap, TimerKey};
use quickcheck::{Arbitrary, Gen, QuickCheck};

#[derive(Clone, Debug)]
enum Op {
    /// Insert with this deadline (small range, so ties happen).
    Insert(u8),
    /// Remove the n-th key ever issued (live or not).
    Remove(u16),
    /// Pop everything due at this time.
    PopDue(u8),
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 8 {
            0..=3 => Op::Insert(u8::arbitrary(g) % 64),
            4..=5 => Op::Remove(u16::arbitrary(g)),
            _ => Op::PopDue(u8::arbitrary(g) % 64),
        }
    }
}

/// The oracle: `(deadline, sequence, value)` kept sorted.
#[derive(Default)]
struct Oracle {
    items: Vec<(u64, u64, u32)>,
}

impl Oracle {
    fn insert(&mut self, deadline: u64, seq: u64, value: u32) {
        self.items.push((deadline, seq, value));
        self.items.sort();
    }
    fn remove(&mut self, value: u32) -> Option<u32> {
        let at = self.items.iter().position(|x| x.2 == value)?;
        Some(self.items.remove(at).2)
    }
    fn pop_due(&mut self, now: u64) -> Option<(u64, u32)> {
        match self.items.first() {
            Some(&(d, _, v)) if d <= now => {
                self.items.remove(0);
                Some((d, v))
            }
            _ => None,
        }
    }
}

fn prop_heap_matches_oracle(ops: Vec<Op>) -> bool {
    let mut heap = TimerHeap::new();
    let mut oracle = Oracle::default();
    let mut keys: Vec<(TimerKey, u32)> = Vec::new();
    let mut next = 0u32;
    for op in ops {
        match op {
            Op::Insert(d) => {
                let key = heap.insert(u64::from(d), next);
                oracle.insert(u64::from(d), u64::from(next), next);
                keys.push((key, next));
                next += 1;
            }
            Op::Remove(n) => {
                if keys.is_empty() {
                    continue;
                }
                let (key, value) = keys[usize::from(n) % keys.len()];
                if heap.remove(key) != oracle.remove(value) {
                    return false;
                }
            }
            Op::PopDue(now) => loop {
                let (h, o) = (heap.pop_due(u64::from(now)), oracle.pop_due(u64::from(now)));
                if h != o {
                    return false;
                }
                if h.is_none() {
                    break;
                }
            },
        }
        if heap.len() != oracle.items.len()
            || heap.next_deadline() != oracle.items.first().map(|x| x.0)
        {
            return false;
        }
    }
    // Everything left comes out in oracle order.
    loop {
        let (h, o) = (heap.pop_due(u64::MAX), oracle.pop_due(u64::MAX));
        if h != o {
            return false;
        }
        if h.is_none() {
            return true;
        }
    }
}

#[test]
fn timer_heap_matches_sorted_list_oracle() {
    QuickCheck::new()
        .tests(500)
        .quickcheck(prop_heap_matches_oracle as fn(Vec<Op>) -> bool);
}

#[test]
fn a_thousand_deadlines_leave_in_order() {
    let mut heap = TimerHeap::new();
    heap.reserve(1000);
    // A fixed scrambled order of 1,000 distinct deadlines.
    for i in 0..1000u64 {
        let d = (i * 7919) % 1000;
        heap.insert(d, d);
    }
    let mut last = None;
    let mut n = 0;
    while let Some((d, v)) = heap.pop_due(u64::MAX) {
        assert_eq!(d, v);
        assert!(last.is_none_or(|l| l < d));
        last = Some(d);
        n += 1;
    }
    assert_eq!(n, 1000);
}
