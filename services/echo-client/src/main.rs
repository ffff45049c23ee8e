//! Echo client: calls the echo server through its client facet and checks
//! the reply, a typed application error, that its facet cannot RECV, and
//! copy and move transfers with its own table checked afterwards, a failed
//! transfer leaving its table as it was, that a call to a server that has
//! exited completes with CANCELLED, and that an endpoint's queue is bounded
//! by its owner's ledger (on an endpoint of its own that nobody serves
//! until it does so itself). With a `registry` cap it also reads the
//! `Echo` interface back from the schema registry ([`registry_check`]).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

mod registry_check;

use alloc::format;
use alloc::vec::Vec;
use capos_rt::api::Echo;
use capos_rt::ring::TransportError;
use capos_rt::ring::{TRANSFER_COPY, TRANSFER_MOVE};
use capos_rt::{CallError, Cap, ClientEndpoint, Console, Endpoint, Interface, Runtime, Timer};

capos_rt::entry!(main);

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    let Ok(echo) = rt.cap::<ClientEndpoint>("echo") else {
        say("echo-client: FAIL no echo cap");
        return 2;
    };
    let proto: Echo = echo.protocol();
    match proto.echo(b"hello capOS") {
        Ok(r) if r == b"hello capOS" => say(&format!(
            "echo-client: reply \"{}\"",
            core::str::from_utf8(&r).unwrap_or("?")
        )),
        other => say(&format!("echo-client: FAIL echo: {other:?}")),
    }
    match proto.fail() {
        Err(CallError::Exception(e)) => say(&format!("echo-client: typed error: {}", e.message)),
        other => say(&format!("echo-client: FAIL exception: {other:?}")),
    }
    let recv = rt
        .ring()
        .submit_recv(echo.cap().id(), 64)
        .and_then(|t| rt.ring().wait(t))
        .and_then(|c| c.into_result());
    match recv {
        Err(CallError::Transport(TransportError::InterfaceMismatch)) => {
            say("echo-client: RECV on the client facet refused: INTERFACE_MISMATCH")
        }
        other => say(&format!("echo-client: FAIL recv on facet: {other:?}")),
    }
    // Copy: the server gets the cap, and this process still holds it.
    match proto.call_inspect_caps(|_| {}, &[(echo.cap(), TRANSFER_COPY)]) {
        Ok(_) if proto.echo(b"still here").is_ok() => {
            say("echo-client: copied its echo cap to the server; its own copy still works")
        }
        other => say(&format!("echo-client: FAIL copy transfer: {other:?}")),
    }
    // A transfer that cannot happen (a cap id this process does not hold)
    // fails the call and changes nothing here.
    let bogus = Cap::new(
        echo.cap().id() + 0x10,
        echo.cap().interface_id(),
        rt.ring().clone(),
    );
    match proto.call_inspect_caps(|_| {}, &[(&bogus, TRANSFER_MOVE)]) {
        Err(CallError::Transport(TransportError::BadCap)) if proto.echo(b"unchanged").is_ok() => {
            say("echo-client: failed transfer refused (BAD_CAP); its table is unchanged")
        }
        other => say(&format!("echo-client: FAIL bad transfer: {other:?}")),
    }
    // Move: the server can use the timer; here it is gone.
    if let Ok(timer) = rt.cap::<Timer>("timer") {
        match proto.call_use_timer(|_| {}, &[(timer.cap(), TRANSFER_MOVE)]) {
            Ok(_) => match timer.now() {
                Err(CallError::Transport(TransportError::BadCap)) => {
                    say("echo-client: moved its timer to the server; its own id is now BAD_CAP")
                }
                other => say(&format!(
                    "echo-client: FAIL timer still usable after a move: {other:?}"
                )),
            },
            Err(e) => say(&format!("echo-client: FAIL move transfer: {e}")),
        }
    }
    match rt.cap::<Endpoint>("own") {
        Ok(own) => {
            flood(rt, &own, 20, &say);
            // The charges of answered calls came back: a full queue again.
            flood(rt, &own, 16, &say);
            failed_delivery(rt, &own, &say);
            move_away(rt, &own, &proto, &say);
        }
        Err(e) => say(&format!("echo-client: FAIL no own endpoint: {e}")),
    }
    registry_check::run(rt, &say);
    if let Err(e) = proto.quit() {
        say(&format!("echo-client: FAIL quit: {e}"));
    }
    match proto.echo(b"anyone?") {
        Err(CallError::Transport(TransportError::Cancelled)) => {
            say("echo-client: call after the server exited: CANCELLED")
        }
        other => say(&format!(
            "echo-client: FAIL call to exited server: {other:?}"
        )),
    }
    0
}

/// Moves the owner side of its own endpoint to the echo server (which
/// releases what it is sent) while a call the client received from itself
/// is in flight and another RECV waits: both must complete with
/// `CANCELLED`, the old id must be gone, and the endpoint must be closed.
fn move_away(rt: &Runtime, own: &Endpoint, proto: &Echo, say: &dyn Fn(&str)) {
    let facet = match own.client_facet() {
        Ok(f) => f,
        Err(e) => return say(&format!("echo-client: FAIL client facet: {e}")),
    };
    let ring = rt.ring();
    let submitted = (
        ring.submit_recv(own.cap().id(), 64),
        ring.submit(facet.cap().id(), 0, b"in flight".to_vec(), 64),
        ring.submit_recv(own.cap().id(), 64),
    );
    let (Ok(first_recv), Ok(call), Ok(second_recv)) = submitted else {
        return say("echo-client: FAIL submitting the move-away setup");
    };
    if ring.poll().is_err() {
        return say("echo-client: FAIL poll");
    }
    let delivered = ring.wait(first_recv).and_then(|c| c.into_result());
    let moved = proto.call_inspect_caps(|_| {}, &[(own.cap(), TRANSFER_MOVE)]);
    let call = ring.wait(call).and_then(|c| c.into_result());
    let second = ring.wait(second_recv).and_then(|c| c.into_result());
    let stale = own.client_facet().err();
    let closed = facet.call(0, b"anyone?".to_vec());
    match (delivered, moved, call, second, stale, closed) {
        (
            Ok(_),
            Ok(_),
            Err(CallError::Transport(TransportError::Cancelled)),
            Err(CallError::Transport(TransportError::Cancelled)),
            Some(CallError::Transport(TransportError::BadCap)),
            Err(CallError::Transport(TransportError::Cancelled)),
        ) => say("echo-client: moved its endpoint away with a received call unanswered and a RECV waiting: both CANCELLED, its id BAD_CAP, the endpoint closed once the server released it"),
        other => say(&format!("echo-client: FAIL move away: {other:?}")),
    }
}

/// Makes `count` calls at once on a client facet of `own`, which nobody is
/// receiving on, then serves them itself; reports how many were queued and
/// refused, and checks that the queued ones are answered in order.
fn flood(rt: &Runtime, own: &Endpoint, count: u64, say: &dyn Fn(&str)) {
    let facet = match own.client_facet() {
        Ok(f) => f,
        Err(e) => return say(&format!("echo-client: FAIL client facet: {e}")),
    };
    let ring = rt.ring();
    let mut tickets = Vec::new();
    for i in 0..count {
        match ring.submit(facet.cap().id(), 0, i.to_le_bytes().to_vec(), 64) {
            Ok(t) => tickets.push((i, t)),
            Err(e) => return say(&format!("echo-client: FAIL submit: {e}")),
        }
    }
    if let Err(e) = ring.poll() {
        return say(&format!("echo-client: FAIL poll: {e}"));
    }
    // Refused calls complete at once; queued ones wait for a RETURN.
    let mut queued = Vec::new();
    let mut refused = 0;
    for (i, t) in tickets {
        match ring.take(t).map(|c| c.into_result()) {
            None => queued.push((i, t)),
            Some(Err(CallError::Transport(TransportError::Quota))) => refused += 1,
            Some(other) => return say(&format!("echo-client: FAIL call {i}: {other:?}")),
        }
    }
    for _ in 0..queued.len() {
        let answered = own
            .recv(64)
            .and_then(|call| own.reply(call.call_id, call.params));
        if let Err(e) = answered {
            return say(&format!("echo-client: FAIL serving its own endpoint: {e}"));
        }
    }
    let in_order = queued.iter().all(|(i, t)| {
        ring.wait(*t)
            .and_then(|c| c.into_result())
            .is_ok_and(|r| r == i.to_le_bytes())
    });
    say(&format!(
        "echo-client: {count} calls on its own unserved endpoint: {} queued, {refused} refused (QUOTA); answered in order: {in_order}",
        queued.len()
    ));
}

/// Queues a call carrying a cap, releases that cap, and queues a second
/// call: the first fails at delivery (`BAD_CAP`) and the same RECV must
/// take the second one.
fn failed_delivery(rt: &Runtime, own: &Endpoint, say: &dyn Fn(&str)) {
    let (facet, spare) = match (own.client_facet(), own.client_facet()) {
        (Ok(f), Ok(s)) => (f, s),
        _ => return say("echo-client: FAIL client facets"),
    };
    let ring = rt.ring();
    let desc = capos_rt::ring::TransferDescriptor {
        cap_id: spare.cap().id(),
        mode: TRANSFER_COPY,
        reserved0: 0,
    };
    let first = ring.submit_with_transfers(facet.cap().id(), 0, b"first".to_vec(), 64, &[desc]);
    let second = ring.submit(facet.cap().id(), 0, b"second".to_vec(), 64);
    let (Ok(first), Ok(second)) = (first, second) else {
        return say("echo-client: FAIL submitting the two calls");
    };
    drop(spare);
    // Enter the kernel: both calls queue, then the release goes through.
    if ring.poll().and_then(|_| ring.poll()).is_err() {
        return say("echo-client: FAIL poll");
    }
    let served = own.recv(64).and_then(|call| {
        own.reply(call.call_id, call.params.clone())
            .map(|_| call.params)
    });
    let first = ring.wait(first).and_then(|c| c.into_result());
    let second = ring.wait(second).and_then(|c| c.into_result());
    match (served, first, second) {
        (Ok(p), Err(CallError::Transport(TransportError::BadCap)), Ok(r))
            if p == b"second" && r == b"second" =>
        {
            say("echo-client: a queued call whose cap was released failed at delivery (BAD_CAP); the same RECV took the next call")
        }
        other => say(&format!("echo-client: FAIL failed delivery: {other:?}")),
    }
}
