//! `ProcessSpawner` and `ProcessHandle`: starting a boot binary as a new
//! process with an explicit list of grants, and waiting for a child's exit.
//!
//! A spawn checks everything it can before it creates anything (the result
//! fits, the caller's table has room for the handle and facets, every grant
//! is allowed and has the interface it claims, the binary exists); process
//! creation itself rolls back on failure, so a refused spawn leaves no
//! child and no charge. The handle arrives as a result capability. `wait`
//! on a running child parks on the child's [`ExitStatus`] until its last
//! thread is reaped.

use super::boot_package::BootPackage;
use super::endpoint::ClientEndpoint;
use super::kinds;
use super::transfer::{self, Checked};
use super::{
    names, param, serve, tri, Call, CallShape, Completion, KernelObject, Outcome, ResultCap,
};
use crate::proc::{self, Grant, Process};
use crate::ring::{ParkKey, Queue, WaitQueue};
use crate::sched::Thread;
use crate::sync::IrqLock;
use crate::usermem::UserWrite;
use alloc::format;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use capnp::message::Builder;
use capos_caps::exception::CapException;
use capos_caps::ledger::Resource;
use capos_caps::manifest::{kind_from_schema, placement_from_schema, Placement};
use capos_caps::schema::capos_capnp::{cap_grant, process_handle, process_spawner};
use capos_ring::{Cqe, TransportError};

/// A process's exit code once known, and the `wait`s parked on it.
pub struct ExitStatus {
    state: IrqLock<(Option<i64>, Vec<Completion>)>,
}

impl ExitStatus {
    /// Not exited, no waiters.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: IrqLock::new((None, Vec::new())),
        })
    }

    /// Records the exit code and completes every waiter.
    pub fn complete(&self, code: i64) {
        let waiters = {
            let mut st = self.state.lock();
            st.0 = Some(code);
            core::mem::take(&mut st.1)
        };
        for w in waiters {
            w.finish(false, |thread, user_data, result| {
                wait_result(&thread.process, user_data, result, code)
            });
        }
    }
}

impl WaitQueue for ExitStatus {
    fn cancel(&self, key: ParkKey) {
        let gone = {
            let mut st = self.state.lock();
            st.1.iter()
                .position(|c| c.key() == key)
                .map(|i| st.1.swap_remove(i))
        };
        drop(gone);
    }
}

/// Writes `wait`'s result (`exitCode`) into the waiter's buffer; the
/// completion to post.
fn wait_result(process: &Process, user_data: u64, result: UserWrite, code: i64) -> Cqe {
    let mut out = Builder::new_default();
    out.init_root::<process_handle::wait_results::Builder>()
        .set_exit_code(code);
    let words = capnp::serialize::write_message_to_words(&out);
    if words.len() > result.len() as usize {
        return Cqe::error(user_data, TransportError::BufferTooSmall);
    }
    match process.aspace.write(result, 0, &[&words]) {
        Ok(()) => Cqe::success(user_data, words.len() as u32),
        Err(_) => Cqe::error(user_data, TransportError::BadAddress),
    }
}

/// A child process: its pid, exit status, and (weakly: a handle does not
/// keep an exited child alive) its thread, which a kill reaches the
/// process through.
pub struct ProcessHandle {
    /// The child's pid.
    pub pid: u32,
    /// The child's exit status.
    pub exit: Arc<ExitStatus>,
    /// The child's thread.
    pub thread: Weak<Thread>,
}

names!(ProcessHandle, process_handle, "process-handle");

impl KernelObject for ProcessHandle {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(process_handle, self, cx)
    }
}

impl<'a> capos_caps::api::process_handle::Server<Call<'a>> for ProcessHandle {
    fn wait(&self, cx: &mut Call<'a>) -> Outcome {
        let mut st = self.exit.state.lock();
        if let Some(code) = st.0 {
            drop(st);
            let mut out = Builder::new_default();
            out.init_root::<process_handle::wait_results::Builder>()
                .set_exit_code(code);
            return cx.reply(&out);
        }
        let queue: alloc::sync::Weak<dyn WaitQueue> =
            Arc::downgrade(&self.exit) as alloc::sync::Weak<dyn WaitQueue>;
        let (completion, deferred) = cx.sub.defer(Queue::Object(queue));
        st.1.push(completion);
        Outcome::Deferred(deferred)
    }

    fn pid(&self, cx: &mut Call<'a>) -> Outcome {
        let mut out = Builder::new_default();
        out.init_root::<process_handle::pid_results::Builder>()
            .set_pid(u64::from(self.pid));
        cx.reply(&out)
    }

    /// Ends the child: marks it killed, then stops each of its threads
    /// wherever it is ([`crate::sched::kick`]); each one ends the process
    /// at its next return to user mode, through the same path as `exit`,
    /// with [`proc::KILLED_EXIT_CODE`]. Answers at once (`wait` tells when
    /// the child is gone). A second kill, or a kill of a child that has
    /// exited or is exiting on its own, answers ok and does nothing. A
    /// process killing itself gets the answer posted, and ends on the way
    /// out of this `cap_enter`.
    fn kill(&self, cx: &mut Call<'a>) -> Outcome {
        // The thread is the way to the process: once it is reaped, the
        // child is exiting or gone, and there is nothing to kill.
        if let Some(thread) = self.thread.upgrade() {
            let process = &thread.process;
            if process.kill() {
                let mut found = String::new();
                for t in process.threads() {
                    let kicked = crate::sched::kick(&t);
                    let sep = if found.is_empty() { "" } else { "; " };
                    found.push_str(&format!("{sep}{kicked}"));
                    // Its last reference may be this one (reaped meanwhile):
                    // not torn down inside this drain.
                    crate::sched::release_thread(t);
                }
                crate::info!(
                    "proc: pid {} ({}) killed by pid {} (its thread: {found})",
                    process.pid,
                    process.name,
                    cx.caller().pid
                );
            }
            crate::sched::release_thread(thread);
        }
        cx.reply_empty()
    }
}

/// Starts boot binaries as processes. Held only by init.
pub struct ProcessSpawner {
    /// Where binaries come from.
    pub boot: Arc<BootPackage>,
}

names!(ProcessSpawner, process_spawner, "process-spawner");

impl KernelObject for ProcessSpawner {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(process_spawner, self, cx)
    }

    /// Capabilities sent with `spawn` become the child's grants.
    fn shape(&self) -> CallShape {
        CallShape {
            accepts_transfers: true,
            ..CallShape::PLAIN
        }
    }
}

impl<'a> capos_caps::api::process_spawner::Server<Call<'a>> for ProcessSpawner {
    fn spawn(&self, cx: &mut Call<'a>, p: process_spawner::spawn_params::Reader<'_>) -> Outcome {
        let sent = match transfer::resolve(cx.caller(), cx.transfers) {
            Ok(t) => t,
            Err(e) => return Outcome::Error(e),
        };
        let before = Footprint::of(cx.caller());
        let spawned = self.spawn(cx, p, &sent);
        if let Err(e) = &spawned {
            Footprint::of(cx.caller()).report_refusal(cx.caller(), &before, &e.message);
        }
        let out = tri!(spawned);
        // A moved capability leaves the sender once the child has it.
        transfer::remove_moved(cx.caller(), &sent);
        cx.reply(&out)
    }
}

/// Checks `name` is UTF-8 text.
fn text(t: capnp::Result<capnp::text::Reader<'_>>) -> Result<String, CapException> {
    Ok(param(t)?
        .to_str()
        .map_err(|_| CapException::failed("text is not UTF-8"))?
        .into())
}

impl ProcessSpawner {
    fn spawn(
        &self,
        cx: &mut Call<'_>,
        p: process_spawner::spawn_params::Reader<'_>,
        sent: &[Checked],
    ) -> Result<Builder<capnp::message::HeapAllocator>, CapException> {
        let caller = cx.caller().clone();
        let name = text(p.get_name())?;
        let binary = text(p.get_binary_name())?;
        // A pin must name a CPU that runs threads now; refused before
        // anything is created.
        let pin = match placement_from_schema(param(p.get_placement())?) {
            Placement::AnyCpu => None,
            Placement::Cpu(cpu) => {
                crate::sched::check_pin(cpu)
                    .map_err(|e| CapException::failed(format!("cannot pin \"{name}\": {e}")))?;
                Some(cpu)
            }
            Placement::Unknown(n) => {
                return Err(CapException::failed(format!(
                    "unknown placement variant {n}"
                )))
            }
        };
        let frame_limit = match u64::from(p.get_frame_limit()) {
            0 => None,
            n if n > proc::MAX_FRAME_LIMIT => {
                return Err(CapException::failed(format!(
                    "frame limit {n} is above the most a process may have ({})",
                    proc::MAX_FRAME_LIMIT
                )))
            }
            n => Some(n),
        };
        let cap_slot_limit = match u64::from(p.get_cap_slot_limit()) {
            0 => None,
            n if n > proc::MAX_CAP_SLOT_LIMIT => {
                return Err(CapException::failed(format!(
                    "cap-slot limit {n} is above the most a process may have ({})",
                    proc::MAX_CAP_SLOT_LIMIT
                )))
            }
            n => Some(n),
        };
        // The child's session: the caller's own, or a live transferred one.
        let session = match p.get_session() {
            0xffff => caller.session.clone(),
            i => {
                let s = super::session::session_of(sent, usize::from(i))
                    .map_err(|e| CapException::failed(format!("session: {}", e.message)))?;
                if !s.is_live() {
                    return Err(super::session::ended());
                }
                s
            }
        };
        let bytes = self
            .boot
            .binary(&binary)
            .ok_or_else(|| CapException::failed(format!("no boot binary named \"{binary}\"")))?;

        let mut grants = Vec::new();
        let mut endpoints = Vec::new();
        for g in param(p.get_grants())? {
            let gname = text(g.get_name())?;
            let expected = g.get_expected_interface_id();
            match g
                .get_source()
                .which()
                .map_err(|_| CapException::failed("unknown grant source"))?
            {
                cap_grant::source::Which::Transferred(i) => {
                    let t = sent.get(usize::from(i)).ok_or_else(|| {
                        CapException::failed(format!(
                            "grant \"{gname}\": no transfer descriptor {i} was sent"
                        ))
                    })?;
                    if expected != t.interface_id {
                        return Err(CapException::failed(format!(
                            "grant \"{gname}\": expects interface {expected:#x} but the transferred cap is {:#x}",
                            t.interface_id
                        )));
                    }
                    grants.push(Grant {
                        name: gname,
                        object: t.object.clone(),
                        interface_id: t.interface_id,
                    });
                }
                cap_grant::source::Which::Kernel(k) => {
                    let kind = kind_from_schema(
                        k.map_err(|_| CapException::failed("unknown kernel kind"))?,
                    );
                    if expected != kind.interface_id() {
                        return Err(CapException::failed(format!(
                            "grant \"{gname}\": expects interface {expected:#x} but kind {kind:?} provides {:#x}",
                            kind.interface_id()
                        )));
                    }
                    let minted = kinds::mint_for_child(kind)
                        .map_err(|e| CapException::failed(format!("grant \"{gname}\": {e}")))?;
                    if let Some(ep) = minted.endpoint {
                        endpoints.push((gname.clone(), ep));
                    }
                    grants.push(Grant {
                        name: gname,
                        object: minted.object,
                        interface_id: kind.interface_id(),
                    });
                }
            }
        }

        // The result message depends only on the grants: build it and check
        // it (plus one record per result cap) fits before creating anything.
        let mut out = Builder::new_default();
        {
            let mut r = out.init_root::<process_spawner::spawn_results::Builder>();
            r.set_handle(0);
            let mut facets = r.init_facets(endpoints.len() as u32);
            for (i, (gname, _)) in endpoints.iter().enumerate() {
                let mut f = facets.reborrow().get(i as u32);
                f.set_grant(gname.as_str());
                f.set_client(i as u16 + 1);
            }
        }
        let records = 1 + endpoints.len();
        let need = capnp::serialize::compute_serialized_size_in_words(&out) * 8
            + records * transfer::RECORD;
        if need > cx.result_buf.len() as usize {
            return Err(CapException::failed(format!(
                "result buffer too small: {need} bytes needed"
            )));
        }
        if caller.caps.lock().available() < records {
            return Err(CapException::overloaded(
                "no free slots for the result capabilities",
            ));
        }
        let thread = proc::spawn(&name, bytes, grants, frame_limit, cap_slot_limit, session)
            .map_err(|e| CapException::failed(format!("cannot start \"{binary}\": {e}")))?;
        let handle = Arc::new(ProcessHandle {
            pid: thread.process.pid,
            exit: thread.process.exit.clone(),
            thread: Arc::downgrade(&thread),
        });
        let pid = thread.process.pid;
        crate::sched::start_pinned(thread, pin)
            .map_err(|e| CapException::failed(format!("cannot pin \"{name}\": {e}")))?;
        match pin {
            Some(cpu) => crate::info!(
                "proc: pid {pid} ({name}) spawned by pid {}, pinned to CPU {cpu}",
                caller.pid
            ),
            None => crate::info!("proc: pid {pid} ({name}) spawned by pid {}", caller.pid),
        }
        cx.push_result_cap(ResultCap::new(handle));
        for (_, ep) in endpoints {
            cx.push_result_cap(ResultCap::new(Arc::new(ClientEndpoint::new(ep))));
        }
        Ok(out)
    }
}

/// What a process (and all processes together) hold, compared around a
/// refused spawn to show it left nothing behind.
struct Footprint {
    frames_held: u64,
    ledger: [u64; Resource::COUNT],
}

impl Footprint {
    fn of(process: &Process) -> Self {
        Footprint {
            frames_held: crate::proc::aspace::frames_held(),
            ledger: process.ledger.snapshot(),
        }
    }

    /// Logs a refused spawn with the counts before and after it: the frames
    /// all processes hold, and every counter of the caller's ledger (cap
    /// slots, queued and in-flight calls, scratch bytes, frames, threads,
    /// timer waiters, in `Resource` order). The caller's ledger must come
    /// back exactly: only the caller acts on it while its spawn runs. The
    /// system-wide frame count may fall meanwhile (an exited child being
    /// torn down), so there only a rise counts as a leak.
    fn report_refusal(&self, process: &Process, before: &Footprint, why: &str) {
        crate::info!(
            "spawner: refused a spawn by pid {}: {why}; frames held {} -> {}, caller ledger {:?} -> {:?}: {}",
            process.pid,
            before.frames_held,
            self.frames_held,
            before.ledger,
            self.ledger,
            if self.frames_held <= before.frames_held && self.ledger == before.ledger {
                "nothing leaked"
            } else {
                "LEAKED"
            }
        );
    }
}
