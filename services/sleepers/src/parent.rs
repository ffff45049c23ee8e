//! The parent: spawns the children one at a time, serving each one's
//! `join` before spawning the next (so at most one call waits on its
//! endpoint while it spawns), starts the chain with the base time, and
//! collects the reports.
//!
//! The results come back as one `report` from the last child, which
//! gathered them down the chain: had every child called the parent, the
//! reports (all made within [`CHILDREN`] ms of each other) would overrun
//! the 16 queued and 16 delivered calls its endpoint may hold whenever the
//! parent is slow to run.

use crate::child::Seen;
use crate::{CHILDREN, MARGIN_NS, SLEEPS};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capos_rt::api::SleepChain;
use capos_rt::capnp::message::Builder;
use capos_rt::caps::api::sleepers::{dispatch, Server};
use capos_rt::caps::exception::CapException;
use capos_rt::caps::manifest::KernelKind;
use capos_rt::caps::schema::services_capnp::sleepers;
use capos_rt::{
    capnp, Answer, CallError, ClientEndpoint, Endpoint, GrantSpec, Interface, Owned,
    ProcessSpawner, Runtime, ServerCall, Timer,
};
use core::cell::{Cell, RefCell};

/// The roll call's state.
struct Roll {
    joined: Cell<u32>,
    reported: Cell<u32>,
    sleeps: Cell<u32>,
    all_in_order: Cell<bool>,
    early: Cell<u32>,
    late: Cell<u32>,
    /// One line per report, by child index.
    lines: RefCell<Vec<(u32, String)>>,
}

impl Server<ServerCall> for Roll {
    fn join(&self, cx: &mut ServerCall) -> Answer {
        let index = self.joined.get();
        if index >= CHILDREN {
            return Answer::Exception(CapException::failed("every index is taken"));
        }
        self.joined.set(index + 1);
        let mut out = Builder::new_default();
        let mut r = out.init_root::<sleepers::join_results::Builder>();
        r.set_index(index);
        r.set_count(CHILDREN);
        cx.result(&out)
    }

    fn report(&self, cx: &mut ServerCall, p: sleepers::report_params::Reader<'_>) -> Answer {
        let results = match p.get_results() {
            Ok(r) => r,
            Err(e) => return Answer::Exception(CapException::failed(format!("{e}"))),
        };
        for r in results.iter() {
            let s = Seen::read(r);
            self.lines.borrow_mut().push((
                s.index,
                format!(
                    "sleepers: child {} (pid {}): {} sleeps, in deadline order: {}, early {}, late {}",
                    s.index,
                    s.pid,
                    s.sleeps,
                    if s.in_order { "yes" } else { "no" },
                    s.early,
                    s.late
                ),
            ));
            self.reported.set(self.reported.get() + 1);
            self.sleeps.set(self.sleeps.get() + s.sleeps);
            self.all_in_order.set(self.all_in_order.get() && s.in_order);
            self.early.set(self.early.get() + s.early);
            self.late.set(self.late.get() + s.late);
        }
        cx.empty()
    }
}

/// Receives one call on the roster and answers it.
fn serve_one(roster: &Endpoint, roll: &Roll) -> Result<(), CallError> {
    let mut call = roster.recv(8192)?;
    let params = call.aligned_params();
    let mut cx = call.context();
    let answer = dispatch(
        roll,
        &mut cx,
        call.method_id,
        &capnp::Word::words_to_bytes(&params)[..call.params.len()],
    );
    roster.answer(call.call_id, answer)
}

/// Runs the parent.
pub fn run(rt: &Runtime, say: &dyn Fn(&str)) -> i32 {
    let caps = (
        rt.cap::<Timer>("timer"),
        rt.cap::<ProcessSpawner>("spawner"),
        rt.cap::<Endpoint>("roster"),
    );
    let (Ok(timer), Ok(spawner), Ok(roster)) = caps else {
        say("sleepers: FAIL missing caps (timer, spawner, roster)");
        return 2;
    };
    let roll = Roll {
        joined: Cell::new(0),
        reported: Cell::new(0),
        sleeps: Cell::new(0),
        all_in_order: Cell::new(true),
        early: Cell::new(0),
        late: Cell::new(0),
        lines: RefCell::new(Vec::new()),
    };
    let result = spawn_and_collect(&timer, &spawner, &roster, &roll, say);
    let mut lines = roll.lines.take();
    lines.sort_unstable_by_key(|(i, _)| *i);
    for (_, line) in &lines {
        say(line);
    }
    match result {
        Ok(()) => {
            say(&format!(
                "sleepers: {} children reported {} of {} sleeps completed; all in deadline order: {}, early {}, late {}",
                roll.reported.get(),
                roll.sleeps.get(),
                CHILDREN * SLEEPS,
                if roll.all_in_order.get() { "yes" } else { "no" },
                roll.early.get(),
                roll.late.get()
            ));
            0
        }
        Err(e) => {
            say(&format!("sleepers: FAIL {e}"));
            3
        }
    }
}

fn spawn_and_collect(
    timer: &Timer,
    spawner: &ProcessSpawner,
    roster: &Endpoint,
    roll: &Roll,
    say: &dyn Fn(&str),
) -> Result<(), CallError> {
    let roster_facet = roster.client_facet()?;
    let started = timer.now()?;
    // The facet of the child spawned last: the next child gets a copy.
    let mut last: Option<Owned<ClientEndpoint>> = None;
    for k in 0..CHILDREN {
        let name = format!("sleeper-{k}");
        let mut grants = alloc::vec![
            GrantSpec::Kernel {
                name: "console",
                kind: KernelKind::Console,
            },
            GrantSpec::Kernel {
                name: "timer",
                kind: KernelKind::Timer,
            },
            GrantSpec::Copy {
                name: "roster",
                cap: roster_facet.cap(),
            },
            GrantSpec::Kernel {
                name: "chain",
                kind: KernelKind::Endpoint,
            },
        ];
        if let Some(prev) = &last {
            grants.push(GrantSpec::Copy {
                name: "next",
                cap: prev.cap(),
            });
        }
        let spawned = spawner.spawn_with(&name, "sleepers", &grants)?;
        // The report says when the children are done; their handles are
        // not kept (the table could not hold them all).
        drop(spawned.handle);
        last = spawned
            .facets
            .into_iter()
            .find(|(g, _)| g == "chain")
            .map(|(_, f)| f);
        // Its join, before the next child starts.
        serve_one(roster, roll)?;
    }
    // The chain takes guest time in proportion to the spawns (both are
    // CPU-bound work under emulation), so the margin grows with them.
    let now = timer.now()?;
    let spawning = now - started;
    let margin = MARGIN_NS + spawning;
    say(&format!(
        "sleepers: spawned {CHILDREN} children in {} ms; every one joined; base is {} ms ahead",
        spawning / 1_000_000,
        margin / 1_000_000
    ));
    let last = last.ok_or(CallError::Protocol("no chain facet"))?;
    let chain: SleepChain = last.protocol();
    chain.go(now + margin)?;
    // The last child reports every child's result.
    serve_one(roster, roll)
}
