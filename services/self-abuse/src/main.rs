//! self-abuse: a process that turns its own capabilities on itself, and the
//! two helpers its cases need, as one binary in three roles chosen by the
//! names in its CapSet:
//!
//! * **abuser** (has `release`): releases and moves the owner side of its
//!   own endpoints while its own CALLs and RECVs are pending on them, and
//!   other self-directed abuse ([`abuser`]); it also owns the `sink` the
//!   victim floods and watches the victim die;
//! * **keeper** (has `keeper` as an endpoint owner): takes over an endpoint
//!   owner the abuser moves to it and serves it ([`keeper`]);
//! * **victim** (has `notice`): makes 8 long sleeps and 16 calls on the
//!   abuser's unserved `sink`, then faults ([`victim`]).
//!
//! Every case prints one line with the completions it observed; the smoke
//! (`scripts/smoke.sh`, `manifests/abuse.capnp`) asserts them.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

mod abuser;
mod keeper;
mod victim;

use capos_rt::ring::{CqeStatus, TransportError, CQE_FLAG_EXCEPTION};
use capos_rt::{CallError, Completion, Console, Endpoint, Ring, Runtime, Ticket};

capos_rt::entry!(main);

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    if rt.cap::<Endpoint>("keeper").is_ok() {
        keeper::run(rt, &say)
    } else if rt.cap::<Endpoint>("notice").is_ok() {
        victim::run(rt, &say)
    } else {
        abuser::run(rt, &say)
    }
}

/// A completion's outcome by its ABI name: `ok`, `exception`, or the
/// transport error (`CANCELLED`, `BAD_CAP`, ...).
pub fn name(c: &Completion) -> &'static str {
    match c.cqe.status() {
        CqeStatus::Ok(_) if c.cqe.flags & CQE_FLAG_EXCEPTION != 0 => "exception",
        CqeStatus::Ok(_) => "ok",
        CqeStatus::Err(e) => e.name(),
        CqeStatus::Unknown(_) => "unknown",
    }
}

/// The outcome of a call that failed in the runtime or the kernel.
pub fn error_name(e: &CallError) -> &'static str {
    match e {
        CallError::Transport(t) => t.name(),
        CallError::Exception(_) => "exception",
        _ => "runtime error",
    }
}

/// Waits for `ticket` and names its outcome.
pub fn wait_name(ring: &Ring, ticket: Ticket) -> &'static str {
    match ring.wait(ticket) {
        Ok(c) => name(&c),
        Err(e) => error_name(&e),
    }
}

/// Names the outcome of a blocking call.
pub fn result_name<T>(r: &Result<T, CallError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => error_name(e),
    }
}

/// The transport error a blocking call ended with, if any.
pub fn transport<T>(r: &Result<T, CallError>) -> Option<TransportError> {
    r.as_ref().err().and_then(CallError::transport)
}
