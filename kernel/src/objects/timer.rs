//! `Timer`: the monotonic clock, and sleeps that complete later, from the
//! timer tick, into the caller's ring (`crate::timers`). Each pending sleep
//! is charged to the caller's `TimerWaiters` quota.

use super::{names, serve, Call, KernelObject, Outcome};
use crate::ring::Queue;
use capnp::message::Builder;
use capos_caps::api::timer::Server;
use capos_caps::ledger::Resource;
use capos_caps::schema::capos_capnp::timer;
use capos_ring::TransportError;

/// The clock; one per holder, no state.
pub struct Timer;

names!(Timer, timer, "timer");

impl KernelObject for Timer {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(timer, self, cx)
    }
}

/// Parks the call until `deadline`, when it completes with `result` (the
/// serialized result message; empty for every field at its default).
pub fn complete_at(cx: &mut Call<'_>, deadline: u64, result: alloc::vec::Vec<u8>) -> Outcome {
    if result.len() > cx.result_buf.len() as usize {
        return Outcome::Error(TransportError::BufferTooSmall);
    }
    let Ok(charge) = cx.caller().ledger.reserve(Resource::TimerWaiters, 1) else {
        return Outcome::Error(TransportError::Quota);
    };
    let (completion, deferred) = cx.sub.defer(Queue::Timers);
    let park = completion.key();
    let ring = &cx.caller().ring;
    let event = crate::timers::Event::Complete {
        completion,
        result,
        charge,
    };
    ring.set_queue(park, Queue::Timer(crate::timers::add(deadline, event)));
    Outcome::Deferred(deferred)
}

/// Parks the call until `deadline`.
fn sleep_until(cx: &mut Call<'_>, deadline: u64) -> Outcome {
    complete_at(cx, deadline, alloc::vec::Vec::new())
}

/// The monotonic clock in nanoseconds.
pub fn now() -> u64 {
    crate::time::now_ns().unwrap_or(0)
}

impl<'a> Server<Call<'a>> for Timer {
    fn now(&self, cx: &mut Call<'a>) -> Outcome {
        let mut out = Builder::new_default();
        out.init_root::<timer::now_results::Builder>()
            .set_nanos(now());
        cx.reply(&out)
    }

    fn sleep(&self, cx: &mut Call<'a>, p: timer::sleep_params::Reader<'_>) -> Outcome {
        sleep_until(cx, now().saturating_add(p.get_nanos()))
    }

    fn sleep_until(&self, cx: &mut Call<'a>, p: timer::sleep_until_params::Reader<'_>) -> Outcome {
        sleep_until(cx, p.get_deadline())
    }
}
