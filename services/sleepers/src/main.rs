//! sleepers: more than 1,000 `Timer` sleeps pending at once across
//! processes, completing in deadline order. One binary in two roles, chosen
//! by the names in its CapSet:
//!
//! * **parent** (init of `manifests/sleepers.capnp`, holds `spawner`):
//!   spawns [`CHILDREN`] children, serving each one's `Sleepers.join` (its
//!   index) as it starts, then hands the common base time to the last
//!   child, collects every child's `report` and prints one line per child
//!   ([`parent`]);
//! * **child** (holds `roster`): joins, waits for the base on its own
//!   endpoint (`SleepChain.go`), passes it on to the child spawned before
//!   it, makes [`SLEEPS`] sleeps, and checks they complete in deadline
//!   order and none early ([`child`]).
//!
//! Why the chain: a process's endpoints hold at most 16 queued and 16
//! delivered calls (its ledger's `QueuedCalls` and `InFlightCalls`), so the
//! parent cannot keep 63 `join`s waiting for the base; and its 64-slot cap
//! table cannot hold a facet of every child. Each child holds only the
//! facet of the one before it, so the parent holds one facet at a time.
//!
//! Child `k` (of `N`) sleeps until `base + (i * N + k) ms` for `i` in
//! `0..16`: deadlines interleave across processes, and all are submitted
//! (the base is [`MARGIN_NS`] plus the spawning time ahead) before the
//! first one passes.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

mod child;
mod parent;

use capos_rt::{Console, ProcessSpawner, Runtime};

capos_rt::entry!(main);

/// Children the parent spawns: 63 × 16 = 1,008 sleeps pending at once.
pub const CHILDREN: u32 = 63;
/// Sleeps per child: the per-process limit (`TimerWaiters`).
pub const SLEEPS: u32 = 16;
/// Between consecutive deadlines (of different children), ns.
pub const STEP_NS: u64 = 1_000_000;
/// How far ahead of `go` the base lies at least, ns, on top of the time
/// spawning took: the time the chain has to reach every child and every
/// child to submit its sleeps.
pub const MARGIN_NS: u64 = 1_000_000_000;

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    if rt.cap::<ProcessSpawner>("spawner").is_ok() {
        parent::run(rt, &say)
    } else {
        child::run(rt, &say)
    }
}
