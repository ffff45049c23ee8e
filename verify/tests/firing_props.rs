//! quickcheck properties of the timers' firing-order check
//! (`capos_kcore::firing`) driven the way the kernel drives it, over the
//! timer heap: entries added at any time (some already overdue), removed,
//! and fired by an advancing clock. The heap never trips the check, and
//! the counts are exact; a structure that fires a later deadline first
//! does trip it.

use capos_kcore::firing::FiringOrder;
use capos_kcore::timerheap::{TimerHeap, TimerKey};
use quickcheck::{Arbitrary, Gen, QuickCheck};

#[derive(Clone, Debug)]
enum Op {
    /// Add an entry due this far from now (below 16: in the past).
    Add(u8),
    /// Remove the n-th entry ever added (live or not).
    Remove(u16),
    /// Move the clock on and fire what is due.
    Tick(u8),
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 8 {
            0..=3 => Op::Add(u8::arbitrary(g) % 64),
            4 => Op::Remove(u16::arbitrary(g)),
            _ => Op::Tick(u8::arbitrary(g) % 16),
        }
    }
}

fn prop_heap_fires_in_order(ops: Vec<Op>) -> bool {
    let mut heap: TimerHeap<u64> = TimerHeap::new();
    let mut order = FiringOrder::new();
    let mut keys: Vec<TimerKey> = Vec::new();
    let (mut now, mut fired, mut peak) = (16u64, 0u64, 0usize);
    for op in ops {
        match op {
            Op::Add(d) => {
                let floor = order.added(heap.len() + 1);
                keys.push(heap.insert(now + u64::from(d) - 16, floor));
                peak = peak.max(heap.len());
            }
            Op::Remove(n) => {
                if !keys.is_empty() {
                    let _ = heap.remove(keys[usize::from(n) % keys.len()]);
                }
            }
            Op::Tick(step) => {
                now += u64::from(step);
                while let Some((deadline, floor)) = heap.pop_due(now) {
                    order.fired(deadline, floor);
                    fired += 1;
                }
            }
        }
    }
    order.in_order() && order.fired_count() == fired && order.peak() == peak
}

#[test]
fn the_timer_heap_fires_in_deadline_order() {
    QuickCheck::new()
        .tests(500)
        .quickcheck(prop_heap_fires_in_order as fn(Vec<Op>) -> bool);
}

#[test]
fn firing_the_latest_due_entry_first_is_caught() {
    // Two entries added before anything fired, both due by the tick, fired
    // latest first.
    let mut order = FiringOrder::new();
    let due: Vec<(u64, u64)> = [30u64, 10]
        .iter()
        .enumerate()
        .map(|(i, d)| (*d, order.added(i + 1)))
        .collect();
    let mut sorted = due.clone();
    sorted.sort_by_key(|(d, _)| core::cmp::Reverse(*d));
    for (d, floor) in sorted {
        order.fired(d, floor);
    }
    assert!(!order.in_order());
    assert_eq!(order.fired_count(), 2);
}
