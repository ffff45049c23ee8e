//! The parent: spawns the children one at a time, serving each one's
//! `join` before spawning the next (so at most one call waits on its
//! endpoint while it spawns), keeps a handle and a client facet of each,
//! starts them all with one `go` each (submitted together), then asks each
//! for its result in turn and waits for its exit.

use crate::child::Seen;
use crate::{CHILDREN, MARGIN_NS, SLEEPS};
use alloc::format;
use alloc::vec::Vec;
use capos_rt::api::Sleeper;
use capos_rt::capnp::message::Builder;
use capos_rt::caps::api::sleeper::GO;
use capos_rt::caps::api::sleepers::{dispatch, Server};
use capos_rt::caps::exception::CapException;
use capos_rt::caps::manifest::KernelKind;
use capos_rt::caps::schema::services_capnp::{sleeper, sleepers};
use capos_rt::{
    capnp, wire, Answer, CallError, ClientEndpoint, Endpoint, GrantSpec, Interface, Owned,
    ProcessHandle, ProcessSpawner, Runtime, ServerCall, Timer,
};
use core::cell::Cell;

/// The roll call: the next index to hand out.
struct Roll {
    joined: Cell<u32>,
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
}

/// Receives one call on the roster and answers it.
fn serve_one(roster: &Endpoint, roll: &Roll) -> Result<(), CallError> {
    let mut call = roster.recv(256)?;
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
    match run_children(rt, &timer, &spawner, &roster, say) {
        Ok(results) => {
            for s in &results {
                say(&format!(
                    "sleepers: child {} (pid {}): {} sleeps, in deadline order: {}, early {}, late {}",
                    s.index,
                    s.pid,
                    s.sleeps,
                    if s.in_order { "yes" } else { "no" },
                    s.early,
                    s.late
                ));
            }
            let sum = |f: fn(&Seen) -> u32| results.iter().map(f).sum::<u32>();
            say(&format!(
                "sleepers: {} children reported {} of {} sleeps completed; all in deadline order: {}, early {}, late {}",
                results.len(),
                sum(|s| s.sleeps),
                CHILDREN * SLEEPS,
                if results.iter().all(|s| s.in_order) { "yes" } else { "no" },
                sum(|s| s.early),
                sum(|s| s.late)
            ));
            0
        }
        Err(e) => {
            say(&format!("sleepers: FAIL {e}"));
            3
        }
    }
}

/// The parameters of `Sleeper.go(base)`.
fn go_params(base: u64) -> Vec<u8> {
    let mut m = Builder::new_default();
    m.init_root::<sleeper::go_params::Builder>().set_base(base);
    wire::to_bytes(&m)
}

fn run_children(
    rt: &Runtime,
    timer: &Timer,
    spawner: &ProcessSpawner,
    roster: &Endpoint,
    say: &dyn Fn(&str),
) -> Result<Vec<Seen>, CallError> {
    let roll = Roll {
        joined: Cell::new(0),
    };
    let roster_facet = roster.client_facet()?;
    let started = timer.now()?;
    let mut children: Vec<(Owned<ProcessHandle>, Owned<ClientEndpoint>)> = Vec::new();
    for k in 0..CHILDREN {
        let grants = [
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
                name: "own",
                kind: KernelKind::Endpoint,
            },
        ];
        let spawned = spawner.spawn_with(&format!("sleeper-{k}"), "sleepers", &grants)?;
        let facet = spawned
            .facets
            .into_iter()
            .find(|(g, _)| g == "own")
            .map(|(_, f)| f)
            .ok_or(CallError::Protocol("no facet of the child's endpoint"))?;
        children.push((spawned.handle, facet));
        // Its join, before the next child starts.
        serve_one(roster, &roll)?;
    }
    // Sending `go` takes guest time in proportion to the spawns (both are
    // CPU-bound work under emulation), so the margin grows with them.
    let now = timer.now()?;
    let spawning = now - started;
    let margin = MARGIN_NS + spawning;
    say(&format!(
        "sleepers: spawned {CHILDREN} children in {} ms; every one joined; base is {} ms ahead",
        spawning / 1_000_000,
        margin / 1_000_000
    ));
    let ring = rt.ring();
    let base = now + margin;
    let go = children
        .iter()
        .map(|(_, f)| ring.submit(f.cap().id(), GO, go_params(base), 64))
        .collect::<Result<Vec<_>, _>>()?;
    for t in go {
        ring.wait(t)?.into_result()?;
    }
    let mut results = Vec::new();
    for (_, facet) in &children {
        let child: Sleeper = facet.protocol();
        let reply = child.call_result(|_| {}, &[])?;
        results.push(Seen::read(reply.get()?.get_result()?));
    }
    for (handle, _) in &children {
        if handle.wait()? != 0 {
            return Err(CallError::Protocol("a child exited with a non-zero code"));
        }
    }
    Ok(results)
}
