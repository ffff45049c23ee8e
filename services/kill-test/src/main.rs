//! kill-test: `ProcessHandle.kill` against children in every state a
//! process can be in. One binary in several roles, chosen by the names in
//! its CapSet:
//!
//! * **parent** (init of `manifests/kill.capnp`, holds `spawner`): spawns
//!   each child, lets it reach its state, kills it, waits on its handle
//!   and prints the exit code ([`parent`]);
//! * **children** ([`child`]), one role each, named by a `Null` cap:
//!   `role-spin` spins in user mode with no system calls (pinned to another
//!   CPU when there is one), `role-sleep` blocks in an hour's `Timer`
//!   sleep, `role-serve` blocks in a RECV on its own endpoint with the
//!   parent's call delivered and unanswered, a call of its own queued on
//!   the parent's endpoint and another delivered there, `role-quick` exits
//!   at once with code 7, and `role-self` kills itself through its own
//!   handle, which the parent sends it; `role-early` spins, but is
//!   killed right after its spawn (with one CPU, before it first runs).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

mod child;
mod parent;

use capos_rt::{Console, ProcessSpawner, Runtime};

capos_rt::entry!(main);

/// The exit code of a killed process (`ProcessHandle.kill`): 2^32, outside
/// the `i32` a `main` returns.
pub const KILLED: i64 = 1 << 32;

/// The exit code of the `role-quick` child.
pub const QUICK_CODE: i32 = 7;

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
