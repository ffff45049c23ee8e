//! The victim role: leaves operations waiting in the kernel and dies with
//! them. It hands the abuser a client facet of its own `notice` endpoint
//! (`watch`; the endpoint closes at its exit, which completes the abuser's
//! call on it: the death notice), starts 8 sleeps of an hour and 16 calls
//! on the abuser's `sink` endpoint (nobody serves it, so they fill the
//! owner's `QueuedCalls` quota of 16), checks that all 24 are still
//! waiting, says so (`full`), then takes a page fault. The kernel must
//! cancel all 24 at the kill (and say so), give the abuser its quota back
//! and leave no sleep in the timer heap.

use alloc::format;
use alloc::vec::Vec;
use capos_rt::api::Watch;
use capos_rt::ring::TRANSFER_COPY;
use capos_rt::{ClientEndpoint, Endpoint, Interface, Runtime, Timer};

/// Sleeps it leaves waiting.
const SLEEPS: usize = 8;
/// Calls it leaves queued on the sink (the owner's whole quota).
const CALLS: usize = 16;
/// An hour, in ns.
const HOUR: u64 = 3600 * 1_000_000_000;

/// Runs the victim; returns only if the fault did not kill it.
pub fn run(rt: &Runtime, say: &dyn Fn(&str)) -> i32 {
    let caps = (
        rt.cap::<Timer>("timer"),
        rt.cap::<ClientEndpoint>("sink"),
        rt.cap::<ClientEndpoint>("watch"),
        rt.cap::<Endpoint>("notice"),
    );
    let (Ok(timer), Ok(sink), Ok(watch), Ok(notice)) = caps else {
        say("self-abuse victim: FAIL missing caps (timer, sink, watch, notice)");
        return 2;
    };
    // First the death notice: the abuser keeps a client facet of
    // `notice` (while the sink is empty, so the call may queue).
    let facet = match notice.client_facet() {
        Ok(f) => f,
        Err(e) => {
            say(&format!("self-abuse victim: FAIL notice facet: {e}"));
            return 5;
        }
    };
    let watcher: Watch = watch.protocol();
    if let Err(e) = watcher.call_watch(|_| {}, &[(facet.cap(), TRANSFER_COPY)]) {
        say(&format!("self-abuse victim: FAIL watch: {e}"));
        return 5;
    }
    let ring = rt.ring();
    let mut tickets = Vec::new();
    for _ in 0..SLEEPS {
        match timer.start_sleep(HOUR) {
            Ok(t) => tickets.push(t),
            Err(e) => {
                say(&format!("self-abuse victim: FAIL sleep: {e}"));
                return 3;
            }
        }
    }
    for i in 0..CALLS {
        match ring.submit(
            sink.cap().id(),
            0,
            format!("victim call {i}").into_bytes(),
            64,
        ) {
            Ok(t) => tickets.push(t),
            Err(e) => {
                say(&format!("self-abuse victim: FAIL call: {e}"));
                return 3;
            }
        }
    }
    if let Err(e) = ring.poll() {
        say(&format!("self-abuse victim: FAIL poll: {e}"));
        return 3;
    }
    let finished: Vec<&str> = tickets
        .iter()
        .filter_map(|t| ring.take(*t))
        .map(|c| crate::name(&c))
        .collect();
    if !finished.is_empty() {
        say(&format!(
            "self-abuse victim: FAIL {} of its operations completed at once: {finished:?}",
            finished.len()
        ));
        return 4;
    }
    say(&format!(
        "self-abuse victim: {SLEEPS} sleeps of an hour and {CALLS} calls on the unserved sink are waiting"
    ));
    // The abuser waits for this in a RECV it made before answering
    // `watch`: the call is delivered, never queued (the sink's calls hold
    // the abuser's whole `QueuedCalls` quota now).
    if let Err(e) = watcher.full() {
        say(&format!("self-abuse victim: FAIL full: {e}"));
        return 5;
    }
    say(&format!(
        "self-abuse victim: faulting with {} operations waiting",
        SLEEPS + CALLS
    ));
    capos_rt::fault::page_fault();
    say("self-abuse victim: FAIL still running after the fault");
    1
}
