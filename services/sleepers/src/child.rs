//! A child: joins the roll call, waits for the base time on its own
//! endpoint (`go`), passes it down the chain, sleeps and checks the
//! completions; then gathers the results of the children before it
//! (`collect` on the next child down), adds its own, and hands them up to
//! the child after it, or, as the last child, reports them all to the
//! parent. Every endpoint on the chain holds at most one call at a time.

use crate::{SLEEPS, STEP_NS};
use alloc::vec::Vec;
use capos_rt::api::{SleepChain, Sleepers};
use capos_rt::capnp::message::Builder;
use capos_rt::caps::api::sleep_chain::{dispatch, Server, GO};
use capos_rt::caps::exception::CapException;
use capos_rt::caps::schema::capos_capnp::timer;
use capos_rt::caps::schema::services_capnp::{sleep_chain, sleeper_result};
use capos_rt::ring::CqeStatus;
use capos_rt::{
    capnp, wire, Answer, CallError, ClientEndpoint, Endpoint, Interface, Runtime, ServerCall, Timer,
};
use core::cell::{Cell, RefCell};

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
    /// Reads one list element.
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

    /// Writes one list element.
    pub fn write(&self, mut w: sleeper_result::Builder<'_>) {
        w.set_index(self.index);
        w.set_pid(self.pid);
        w.set_sleeps(self.sleeps);
        w.set_in_order(self.in_order);
        w.set_early(self.early);
        w.set_late(self.late);
    }
}

/// Serves the chain: takes the base from `go`, hands out the gathered
/// results on `collect` once they exist.
struct Chain {
    base: Cell<Option<u64>>,
    results: RefCell<Option<Vec<Seen>>>,
}

impl Server<ServerCall> for Chain {
    fn go(&self, cx: &mut ServerCall, p: sleep_chain::go_params::Reader<'_>) -> Answer {
        self.base.set(Some(p.get_base()));
        cx.empty()
    }

    fn collect(&self, cx: &mut ServerCall) -> Answer {
        let Some(results) = self.results.borrow_mut().take() else {
            return Answer::Exception(CapException::failed("no results yet"));
        };
        let mut out = Builder::new_default();
        let mut list = out
            .init_root::<sleep_chain::collect_results::Builder>()
            .init_results(results.len() as u32);
        for (i, s) in results.iter().enumerate() {
            s.write(list.reborrow().get(i as u32));
        }
        cx.result(&out)
    }
}

/// Receives one call on the chain endpoint and answers it.
fn serve_one(chain: &Endpoint, server: &Chain) -> Result<(), CallError> {
    let mut call = chain.recv(8192)?;
    let params = call.aligned_params();
    let mut cx = call.context();
    let answer = dispatch(
        server,
        &mut cx,
        call.method_id,
        &capnp::Word::words_to_bytes(&params)[..call.params.len()],
    );
    chain.answer(call.call_id, answer)
}

/// Runs a child.
pub fn run(rt: &Runtime, say: &dyn Fn(&str)) -> i32 {
    let caps = (
        rt.cap::<Timer>("timer"),
        rt.cap::<ClientEndpoint>("roster"),
        rt.cap::<Endpoint>("chain"),
    );
    let (Ok(timer), Ok(roster), Ok(chain)) = caps else {
        say("sleepers: FAIL a child is missing caps (timer, roster, chain)");
        return 2;
    };
    let next: Option<SleepChain> = rt.cap::<ClientEndpoint>("next").ok().map(|n| n.protocol());
    let roll: Sleepers = roster.protocol();
    let server = Chain {
        base: Cell::new(None),
        results: RefCell::new(None),
    };
    match child(rt, &timer, &roll, &chain, &server, next.as_ref()) {
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

fn child(
    rt: &Runtime,
    timer: &Timer,
    roll: &Sleepers,
    chain: &Endpoint,
    server: &Chain,
    next: Option<&SleepChain>,
) -> Result<(), CallError> {
    let joined = roll.call_join(|_| {}, &[])?;
    let (index, count) = {
        let r = joined.get()?;
        (r.get_index(), r.get_count())
    };
    // The base arrives on this child's own endpoint.
    serve_one(chain, server)?;
    let base = server
        .base
        .get()
        .ok_or(CallError::Protocol("no base in go"))?;
    let mut seen = sleep(rt, timer, base, index, count, next)?;
    seen.pid = rt.pid() as u32;
    // Everything gathered below this child, then its own result.
    let mut results = match next {
        Some(n) => {
            let reply = n.call_collect(|_| {}, &[])?;
            let list = reply.get()?.get_results()?;
            list.iter().map(Seen::read).collect()
        }
        None => Vec::new(),
    };
    results.push(seen);
    if index + 1 == count {
        roll.call_report(
            |p| {
                let mut list = p.init_results(results.len() as u32);
                for (i, s) in results.iter().enumerate() {
                    s.write(list.reborrow().get(i as u32));
                }
            },
            &[],
        )?;
    } else {
        *server.results.borrow_mut() = Some(results);
        serve_one(chain, server)?;
    }
    Ok(())
}

/// The parameters of `Timer.sleepUntil(deadline)`.
fn sleep_until(deadline: u64) -> Vec<u8> {
    let mut m = Builder::new_default();
    m.init_root::<timer::sleep_until_params::Builder>()
        .set_deadline(deadline);
    wire::to_bytes(&m)
}

/// Passes the base on, makes the sleeps (all in one `cap_enter`) and
/// checks their completions.
fn sleep(
    rt: &Runtime,
    timer: &Timer,
    base: u64,
    index: u32,
    count: u32,
    next: Option<&SleepChain>,
) -> Result<Seen, CallError> {
    let ring = rt.ring();
    let forward = match next {
        Some(n) => {
            let mut m = Builder::new_default();
            m.init_root::<sleep_chain::go_params::Builder>()
                .set_base(base);
            Some(ring.submit(n.cap().id(), GO, wire::to_bytes(&m), 64)?)
        }
        None => None,
    };
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
    if let Some(f) = forward {
        ring.wait(f)?.into_result()?;
    }
    Ok(Seen {
        index,
        pid: 0,
        sleeps,
        in_order,
        early,
        late,
    })
}
