//! Leak test, run as init by `manifests/leak.capnp`: spawns and reaps
//! 10,000 children from this one process (each child is this binary again,
//! which finds no spawner in its CapSet and exits at once with
//! [`CHILD_EXIT`]), then creates and releases 100,000 capabilities (client
//! facets of an endpoint it owns, each released before the next is made,
//! so one table slot is reused throughout). Afterwards a spawn must still
//! work, and its table must still take new capabilities up to its whole
//! cap-slot quota. The kernel's report when every process has exited shows
//! whether any frame was lost on the way.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use capos_rt::ring::TransportError;
use capos_rt::{CallError, Console, Endpoint, Interface, ProcessSpawner, Runtime};

capos_rt::entry!(main);

/// Children to spawn and reap.
const CHILDREN: u32 = 10_000;
/// Capabilities to create and release.
const CAPS: u32 = 100_000;
/// The exit code of a child (a process without a spawner).
const CHILD_EXIT: i32 = 7;

fn main(rt: &mut Runtime) -> i32 {
    let Ok(spawner) = rt.cap::<ProcessSpawner>("spawner") else {
        return CHILD_EXIT;
    };
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    let Ok(endpoint) = rt.cap::<Endpoint>("endpoint") else {
        say("leak-test: FAIL no endpoint");
        return 2;
    };

    let mut failures = 0u32;
    let spawn_child = |failures: &mut u32| match spawner.spawn("leak-child", "leak-test", &[]) {
        Ok(child) => match child.wait() {
            Ok(code) if code == i64::from(CHILD_EXIT) => true,
            other => {
                if *failures == 0 {
                    say(&format!("leak-test: FAIL child exit: {other:?}"));
                }
                *failures += 1;
                false
            }
        },
        Err(e) => {
            if *failures == 0 {
                say(&format!("leak-test: FAIL spawn: {e}"));
            }
            *failures += 1;
            false
        }
    };
    for i in 1..=CHILDREN {
        spawn_child(&mut failures);
        if i % 1000 == 0 {
            say(&format!("leak-test: {i} children spawned and reaped"));
        }
    }
    say(&format!(
        "leak-test: spawned and reaped {CHILDREN} children, {failures} failed"
    ));

    let mut cap_failures = 0u32;
    let mut last = 0u64;
    for i in 1..=CAPS {
        match endpoint.client_facet() {
            Ok(facet) => last = facet.cap().id(),
            Err(e) => {
                if cap_failures == 0 {
                    say(&format!("leak-test: FAIL client facet {i}: {e}"));
                }
                cap_failures += 1;
            }
        }
        if i % 20_000 == 0 {
            say(&format!("leak-test: {i} capabilities created and released"));
        }
    }
    say(&format!(
        "leak-test: created and released {CAPS} capabilities, {cap_failures} failed; the last id was {last:#x}"
    ));

    let mut after = 0u32;
    let spawned_after = spawn_child(&mut after);
    say(&format!(
        "leak-test: a spawn after the loops {}",
        if spawned_after { "works" } else { "FAILED" }
    ));

    // Fill the table: every further insert must work until the quota (the
    // manifest's capSlots) is reached, and then fail with QUOTA.
    let start = rt.capset().len();
    let mut held = Vec::new();
    let stop = loop {
        match endpoint.client_facet() {
            Ok(facet) => held.push(facet),
            Err(e) => break e,
        }
    };
    match stop {
        CallError::Transport(TransportError::Quota) => say(&format!(
            "leak-test: table filled to {} capabilities ({start} from the CapSet), then QUOTA",
            start + held.len()
        )),
        other => say(&format!(
            "leak-test: FAIL filling the table stopped at {} capabilities: {other}",
            start + held.len()
        )),
    }
    drop(held);
    match endpoint.client_facet() {
        Ok(_) => say("leak-test: inserts work again after releasing them"),
        Err(e) => say(&format!("leak-test: FAIL insert after release: {e}")),
    }
    say("leak-test: done");
    0
}
