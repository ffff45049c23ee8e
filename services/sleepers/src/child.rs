//! A child: joins the roll call, waits for the base time on its own
//! endpoint (`go`), sleeps and checks the completions, then answers the
//! parent's `result` and exits.

use crate::{SLEEPS, STEP_NS};
use alloc::vec::Vec;
use capos_rt::api::Sleepers;
use capos_rt::capnp::message::Builder;
use capos_rt::caps::api::sleeper::{dispatch, Server};
use capos_rt::caps::exception::CapException;
use capos_rt::caps::schema::capos_capnp::timer;
use capos_rt::caps::schema::services_capnp::{sleeper, sleeper_result};
use capos_rt::ring::CqeStatus;
use capos_rt::{
    capnp, wire, Answer, CallError, ClientEndpoint, Endpoint, Interface, Runtime, ServerCall, Timer,
};
use core::cell::Cell;

/// What one child saw (a `SleeperResult`).
#[derive(Clone, Copy)]
pub struct Seen {
    /// Its index.
    pub index: u32,
    /// Its pid.
    pub pid: u32,
    /// Sleeps completed.
    pub sleeps: u32,
    /// In deadline order.
    pub in_order: bool,
    /// Completed before the deadline.
    pub early: u32,
    /// Deadlines passed before submission.
    pub late: u32,
}

impl Seen {
    /// Reads a `SleeperResult`.
    pub fn read(r: sleeper_result::Reader<'_>) -> Self {
        Seen {
            index: r.get_index(),
            pid: r.get_pid(),
            sleeps: r.get_sleeps(),
            in_order: r.get_in_order(),
            early: r.get_early(),
            late: r.get_late(),
        }
    }

    /// Writes a `SleeperResult`.
    pub fn write(&self, mut w: sleeper_result::Builder<'_>) {
        w.set_index(self.index);
        w.set_pid(self.pid);
        w.set_sleeps(self.sleeps);
        w.set_in_order(self.in_order);
        w.set_early(self.early);
        w.set_late(self.late);
    }
}

/// Serves the parent: takes the base from `go`, answers `result` once the
/// sleeps are done.
struct Child {
    base: Cell<Option<u64>>,
    seen: Cell<Option<Seen>>,
}

impl Server<ServerCall> for Child {
    fn go(&self, cx: &mut ServerCall, p: sleeper::go_params::Reader<'_>) -> Answer {
        self.base.set(Some(p.get_base()));
        cx.empty()
    }

    fn result(&self, cx: &mut ServerCall) -> Answer {
        let Some(seen) = self.seen.get() else {
            return Answer::Exception(CapException::failed("the sleeps are not done"));
        };
        let mut out = Builder::new_default();
        seen.write(
            out.init_root::<sleeper::result_results::Builder>()
                .init_result(),
        );
        cx.result(&out)
    }
}

/// Receives one call on the child's endpoint and answers it.
fn serve_one(own: &Endpoint, child: &Child) -> Result<(), CallError> {
    let mut call = own.recv(256)?;
    let params = call.aligned_params();
    let mut cx = call.context();
    let answer = dispatch(
        child,
        &mut cx,
        call.method_id,
        &capnp::Word::words_to_bytes(&params)[..call.params.len()],
    );
    own.answer(call.call_id, answer)
}

/// Runs a child.
pub fn run(rt: &Runtime, say: &dyn Fn(&str)) -> i32 {
    let caps = (
        rt.cap::<Timer>("timer"),
        rt.cap::<ClientEndpoint>("roster"),
        rt.cap::<Endpoint>("own"),
    );
    let (Ok(timer), Ok(roster), Ok(own)) = caps else {
        say("sleepers: FAIL a child is missing caps (timer, roster, own)");
        return 2;
    };
    let child = Child {
        base: Cell::new(None),
        seen: Cell::new(None),
    };
    let run = || -> Result<(), CallError> {
        let roll: Sleepers = roster.protocol();
        let joined = roll.call_join(|_| {}, &[])?;
        let (index, count) = {
            let r = joined.get()?;
            (r.get_index(), r.get_count())
        };
        serve_one(&own, &child)?;
        let base = child
            .base
            .get()
            .ok_or(CallError::Protocol("no base in go"))?;
        let mut seen = sleep(rt, &timer, base, index, count)?;
        seen.pid = rt.pid() as u32;
        child.seen.set(Some(seen));
        serve_one(&own, &child)
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            say(&alloc::format!(
                "sleepers: FAIL child pid {}: {e}",
                rt.pid()
            ));
            3
        }
    }
}

/// The parameters of `Timer.sleepUntil(deadline)`.
fn sleep_until(deadline: u64) -> Vec<u8> {
    let mut m = Builder::new_default();
    m.init_root::<timer::sleep_until_params::Builder>()
        .set_deadline(deadline);
    wire::to_bytes(&m)
}

/// Makes the sleeps (all in one `cap_enter`) and checks their completions.
fn sleep(
    rt: &Runtime,
    timer: &Timer,
    base: u64,
    index: u32,
    count: u32,
) -> Result<Seen, CallError> {
    let ring = rt.ring();
    let deadlines: Vec<u64> = (0..u64::from(SLEEPS))
        .map(|i| base + (i * u64::from(count) + u64::from(index)) * STEP_NS)
        .collect();
    let tickets = deadlines
        .iter()
        .map(|d| {
            ring.submit(
                timer.cap().id(),
                capos_rt::caps::api::timer::SLEEP_UNTIL,
                sleep_until(*d),
                0,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    ring.poll()?;
    let now = timer.now()?;
    let late = deadlines.iter().filter(|d| **d <= now).count() as u32;
    let (mut sleeps, mut early) = (0, 0);
    let mut order = Vec::new();
    for (i, t) in tickets.into_iter().enumerate() {
        let c = ring.wait(t)?;
        let seen = timer.now()?;
        if matches!(c.cqe.status(), CqeStatus::Ok(_)) {
            sleeps += 1;
        }
        if seen < deadlines[i] {
            early += 1;
        }
        order.push((c.seq, i));
    }
    order.sort_unstable();
    let in_order = order.windows(2).all(|w| w[0].1 < w[1].1);
    Ok(Seen {
        index,
        pid: 0,
        sleeps,
        in_order,
        early,
        late,
    })
}
