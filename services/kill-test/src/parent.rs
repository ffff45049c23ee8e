//! The parent: one child per case, each killed in the state its role puts
//! it in; every exit code is waited for and printed.

use crate::{KILLED, QUICK_CODE};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capos_rt::caps::manifest::KernelKind;
use capos_rt::ring::TransportError;
use capos_rt::{
    CallError, ClientEndpoint, Endpoint, GrantSpec, Interface, Owned, Placement, ProcessSpawner,
    Runtime, Spawned, Timer,
};

/// How long the parent lets a child settle in its state before the kill,
/// ns (each child has already told the parent it got there; this covers
/// the last steps in the kernel).
const SETTLE_NS: u64 = 100_000_000;

/// Runs the parent.
pub fn run(rt: &Runtime, say: &dyn Fn(&str)) -> i32 {
    let caps = (
        rt.cap::<Timer>("timer"),
        rt.cap::<ProcessSpawner>("spawner"),
        rt.cap::<Endpoint>("roster"),
    );
    let (Ok(timer), Ok(spawner), Ok(roster)) = caps else {
        say("kill-test: FAIL missing caps (timer, spawner, roster)");
        return 2;
    };
    let t = Parent {
        rt,
        timer,
        spawner,
        roster,
        say,
    };
    match t.all() {
        Ok(()) => {
            say("kill-test: done");
            0
        }
        Err(e) => {
            say(&format!("kill-test: FAIL {e}"));
            3
        }
    }
}

struct Parent<'a> {
    rt: &'a Runtime,
    timer: Timer,
    spawner: ProcessSpawner,
    roster: Endpoint,
    say: &'a dyn Fn(&str),
}

/// A completion's outcome in words: `ok`, `CANCELLED`, or the error.
fn outcome<T>(r: &Result<T, CallError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(CallError::Transport(TransportError::Cancelled)) => "CANCELLED".into(),
        Err(e) => format!("{e}"),
    }
}

/// An exit code in words: `killed` for the kill's code.
fn code(c: i64) -> String {
    if c == KILLED {
        format!("{c} (killed)")
    } else {
        format!("{c}")
    }
}

impl Parent<'_> {
    fn say(&self, s: &str) {
        (self.say)(s)
    }

    fn settle(&self) -> Result<(), CallError> {
        self.timer.sleep(SETTLE_NS)
    }

    fn grants<'g>(
        role: &'g str,
        roster: Option<&'g capos_rt::Cap>,
        extra: &[(&'g str, KernelKind)],
    ) -> Vec<GrantSpec<'g>> {
        let mut g = alloc::vec![
            GrantSpec::Kernel {
                name: "console",
                kind: KernelKind::Console,
            },
            GrantSpec::Kernel {
                name: role,
                kind: KernelKind::Null,
            },
        ];
        if let Some(cap) = roster {
            g.push(GrantSpec::Copy {
                name: "roster",
                cap,
            });
        }
        for (name, kind) in extra {
            g.push(GrantSpec::Kernel { name, kind: *kind });
        }
        g
    }

    fn spawn(&self, name: &str, grants: &[GrantSpec<'_>]) -> Result<Spawned, CallError> {
        self.spawner.spawn_with(name, "kill-test", grants)
    }

    fn facet(spawned: &mut Spawned) -> Result<Owned<ClientEndpoint>, CallError> {
        let at = spawned
            .facets
            .iter()
            .position(|(g, _)| g == "own")
            .ok_or(CallError::Protocol("no facet of the child's endpoint"))?;
        Ok(spawned.facets.swap_remove(at).1)
    }

    fn all(&self) -> Result<(), CallError> {
        let facet = self.roster.client_facet()?;
        self.spinning(facet.cap())?;
        self.sleeping(facet.cap())?;
        self.serving(facet.cap())?;
        self.exited()?;
        self.itself()?;
        self.early()?;
        Ok(())
    }

    /// (a) A child spinning in user mode with no system calls, pinned to
    /// the last of 4 CPUs (where the parent does not run) or, with one CPU,
    /// sharing it.
    fn spinning(&self, roster: &capos_rt::Cap) -> Result<(), CallError> {
        let grants = Self::grants("role-spin", Some(roster), &[]);
        let ready = self.roster.start_recv(64)?;
        let mut pinned = None;
        let mut spawned = None;
        for cpu in [3, 1] {
            if let Ok(s) =
                self.spawner
                    .spawn_placed("spinner", "kill-test", &grants, Placement::Cpu(cpu))
            {
                pinned = Some(cpu);
                spawned = Some(s);
                break;
            }
        }
        let child = match spawned {
            Some(s) => s,
            None => self.spawn("spinner", &grants)?,
        };
        let call = self.roster.finish_recv(self.rt.ring().wait(ready)?)?;
        self.settle()?;
        child.handle.kill()?;
        let exit = child.handle.wait()?;
        let late = self.roster.reply(call.call_id, Vec::new());
        let place = match pinned {
            Some(cpu) => format!("pinned to CPU {cpu}"),
            None => "on the parent's CPU".into(),
        };
        self.say(&format!(
            "kill-test: (a) a child spinning in user mode {place} killed: exit code {}; its call, answered after: {}",
            code(exit),
            outcome(&late)
        ));
        if exit != KILLED {
            return Err(CallError::Protocol("the spinner did not exit as killed"));
        }
        Ok(())
    }

    /// (b) A child blocked in an hour's sleep; (e) killed twice before it
    /// is gone and once after.
    fn sleeping(&self, roster: &capos_rt::Cap) -> Result<(), CallError> {
        let grants = Self::grants("role-sleep", Some(roster), &[("timer", KernelKind::Timer)]);
        let ready = self.roster.start_recv(64)?;
        let child = self.spawn("sleeper", &grants)?;
        let call = self.roster.finish_recv(self.rt.ring().wait(ready)?)?;
        self.settle()?;
        let first = child.handle.kill();
        let second = child.handle.kill();
        let exit = child.handle.wait()?;
        let after = child.handle.kill();
        let again = child.handle.wait()?;
        let late = self.roster.reply(call.call_id, Vec::new());
        self.say(&format!(
            "kill-test: (b) a child blocked in an hour's sleep killed: exit code {}; its call, answered after: {}",
            code(exit),
            outcome(&late)
        ));
        self.say(&format!(
            "kill-test: (e) the same child killed twice before it was gone: {}, {}; once more after: {}; waited again: {}",
            outcome(&first),
            outcome(&second),
            outcome(&after),
            code(again)
        ));
        if exit != KILLED || again != KILLED {
            return Err(CallError::Protocol("the sleeper did not exit as killed"));
        }
        first.and(second).and(after)
    }

    /// (c) A child blocked in a RECV on its own endpoint, with the
    /// parent's call to it delivered and unanswered, one call of its own
    /// delivered to the parent and another queued there.
    fn serving(&self, roster: &capos_rt::Cap) -> Result<(), CallError> {
        let grants = Self::grants("role-serve", Some(roster), &[("own", KernelKind::Endpoint)]);
        let mut child = self.spawn("server", &grants)?;
        let own = Self::facet(&mut child)?;
        let ring = self.rt.ring();
        let holding = self.roster.start_recv(64)?;
        let call = ring.submit(own.cap().id(), 0, b"hello".to_vec(), 64)?;
        let held = self.roster.finish_recv(ring.wait(holding)?)?;
        self.settle()?;
        child.handle.kill()?;
        let exit = child.handle.wait()?;
        let answer = ring.wait(call)?.into_result();
        let late = self.roster.reply(held.call_id, Vec::new());
        self.say(&format!(
            "kill-test: (c) a child blocked in a RECV with the parent's call in flight to it killed: exit code {}; the parent's call: {}; its delivered call, answered after: {}",
            code(exit),
            outcome(&answer),
            outcome(&late)
        ));
        if exit != KILLED {
            return Err(CallError::Protocol("the server did not exit as killed"));
        }
        Ok(())
    }

    /// (d) A child that has exited already.
    fn exited(&self) -> Result<(), CallError> {
        let child = self.spawn("quick", &Self::grants("role-quick", None, &[]))?;
        let exit = child.handle.wait()?;
        let killed = child.handle.kill();
        let again = child.handle.wait()?;
        self.say(&format!(
            "kill-test: (d) a child that had exited with code {} killed: {}; waited again: {}",
            code(exit),
            outcome(&killed),
            code(again)
        ));
        if exit != i64::from(QUICK_CODE) || again != exit {
            return Err(CallError::Protocol("the quick child's code changed"));
        }
        killed
    }

    /// (g) A child killed right after its spawn (with one CPU, before it
    /// first runs: it ends on its first way to user mode).
    fn early(&self) -> Result<(), CallError> {
        let child = self.spawn("early", &Self::grants("role-early", None, &[]))?;
        child.handle.kill()?;
        let exit = child.handle.wait()?;
        self.say(&format!(
            "kill-test: (g) a child killed right after its spawn: exit code {}",
            code(exit)
        ));
        if exit != KILLED {
            return Err(CallError::Protocol(
                "the early child did not exit as killed",
            ));
        }
        Ok(())
    }

    /// (f) A child that kills itself through its own handle, sent to it
    /// with a call it never answers.
    fn itself(&self) -> Result<(), CallError> {
        let grants = Self::grants("role-self", None, &[("own", KernelKind::Endpoint)]);
        let mut child = self.spawn("selfish", &grants)?;
        let own = Self::facet(&mut child)?;
        let ring = self.rt.ring();
        let call = ring.submit_with_transfers(
            own.cap().id(),
            0,
            Vec::new(),
            64,
            &[capos_rt::ring::TransferDescriptor {
                cap_id: child.handle.cap().id(),
                mode: capos_rt::ring::TRANSFER_COPY,
                reserved0: 0,
            }],
        )?;
        let exit = child.handle.wait()?;
        let answer = ring.wait(call)?.into_result();
        self.say(&format!(
            "kill-test: (f) a child that killed itself through its own handle: exit code {}; the call that carried the handle: {}",
            code(exit),
            outcome(&answer)
        ));
        if exit != KILLED {
            return Err(CallError::Protocol("the child did not exit as killed"));
        }
        Ok(())
    }
}
