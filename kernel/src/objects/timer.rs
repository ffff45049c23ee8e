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

/// Parks the call until `deadline`.
fn sleep_until(cx: &mut Call<'_>, deadline: u64) -> Outcome {
    let Ok(charge) = cx.caller().ledger.reserve(Resource::TimerWaiters, 1) else {
        return Outcome::Error(TransportError::Quota);
    };
    let (completion, deferred) = cx.sub.defer(Queue::Timers);
    let park = completion.key();
    let ring = &cx.caller().ring;
    let key = crate::timers::add(deadline, crate::timers::Event::Sleep { completion, charge });
    ring.set_queue(park, Queue::Timer(key));
    Outcome::Deferred(deferred)
}

fn now() -> u64 {
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
