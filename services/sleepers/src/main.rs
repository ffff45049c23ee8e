//! sleepers: more than 1,000 `Timer` sleeps pending at once across
//! processes, completing in deadline order. One binary in two roles, chosen
//! by the names in its CapSet:
//!
//! * **parent** (init of `manifests/sleepers.capnp`, holds `spawner`):
//!   spawns [`CHILDREN`] children, serving each one's `Sleepers.join` (its
//!   index) as it starts, then sends every child the common base time at
//!   once (`Sleeper.go` on each child's endpoint), asks each for its
//!   `result`, waits for every child's exit and prints one line per child
//!   ([`parent`]);
//! * **child** (holds `roster`): joins, waits for the base on its own
//!   endpoint, makes [`SLEEPS`] sleeps, checks they complete in deadline
//!   order and none early, and answers `result` ([`child`]).
//!
//! Child `k` (of `N`) sleeps until `base + (i * N + k) ms` for `i` in
//! `0..16`: deadlines interleave across processes, and all are submitted
//! (the base is [`MARGIN_NS`] plus the spawning time ahead) before the
//! first one passes. The parent starts every child with calls it submits
//! together, so no child waits on another to learn the base.
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
/// spawning took: the time every child has to learn the base and submit
/// its sleeps.
pub const MARGIN_NS: u64 = 500_000_000;

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
