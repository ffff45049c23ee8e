//! `ProcessSpawner` and `ProcessHandle`: starting a boot binary as a new
//! process with an explicit list of kernel-minted grants, and waiting for a
//! child's exit code.
//!
//! A spawn checks everything it can before it creates anything (the result
//! buffer fits, the caller's table has room for the handle, every grant is
//! allowed and has the interface it claims, the binary exists); process
//! creation itself rolls back on failure, so a refused spawn leaves no child
//! and no charge. The handle arrives as a result capability. `wait` on a
//! running child completes later, when the child's last thread is reaped.

use crate::kcaps::{BootPackage, Console, Null, Timer};
use crate::proc::{self, aspace::AddressSpace, Grant, Process};
use crate::sched::Thread;
use crate::sync::IrqLock;
use crate::vmcap::VirtualMemory;
use alloc::format;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use capnp::message::Builder;
use capnp::serialize;
use capos_caps::cap_table::{CapObject, Invocation, ResultCap};
use capos_caps::exception::CapException;
use capos_caps::interfaces;
use capos_caps::manifest::{kind_from_schema, placement_from_schema, KernelKind, Placement};
use capos_caps::schema::capos_capnp::{cap_grant, process_handle, process_spawner};
use capos_ring::{CqCredit, Cqe, TransportError};

/// One `wait` on a child that has not exited yet.
pub struct ExitWaiter {
    /// The waiting thread.
    pub thread: Weak<Thread>,
    /// The CALL's `user_data`.
    pub user_data: u64,
    /// The completion slot reserved for the CALL.
    pub credit: CqCredit,
    /// Where the result message goes in the waiter's memory.
    pub result_addr: u64,
    /// Its size.
    pub result_len: u32,
}

/// A process's exit code, once known, and who waits for it.
pub struct ExitStatus {
    state: IrqLock<(Option<i64>, Vec<ExitWaiter>)>,
}

impl ExitStatus {
    /// Not exited, no waiters.
    pub fn new() -> Self {
        Self {
            state: IrqLock::new((None, Vec::new())),
        }
    }

    /// The exit code, if the process has exited.
    pub fn code(&self) -> Option<i64> {
        self.state.lock().0
    }

    /// Queues `w`, or hands it back if the process has already exited.
    pub fn add_waiter(&self, w: ExitWaiter) -> Result<(), ExitWaiter> {
        let mut st = self.state.lock();
        if st.0.is_some() {
            return Err(w);
        }
        st.1.push(w);
        Ok(())
    }

    /// Records the exit code and completes every waiter.
    pub fn complete(&self, code: i64) {
        let waiters = {
            let mut st = self.state.lock();
            st.0 = Some(code);
            core::mem::take(&mut st.1)
        };
        for w in waiters {
            let Some(thread) = w.thread.upgrade() else {
                continue;
            };
            let cqe = write_wait_result(
                &thread.process.aspace,
                w.user_data,
                w.result_addr,
                w.result_len,
                code,
            );
            thread.process.ring.lock().poster.post(w.credit, &cqe);
            crate::sched::wake(&thread);
        }
    }
}

impl Default for ExitStatus {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes `wait`'s result (`exitCode`) into the waiter's buffer and returns
/// the completion to post.
pub fn write_wait_result(
    aspace: &AddressSpace,
    user_data: u64,
    addr: u64,
    len: u32,
    code: i64,
) -> Cqe {
    let mut out = Builder::new_default();
    out.init_root::<process_handle::wait_results::Builder>()
        .set_exit_code(code);
    let words = serialize::write_message_to_words(&out);
    if words.len() > len as usize {
        return Cqe::error(user_data, TransportError::BufferTooSmall);
    }
    match aspace.copy_to_user(addr, &words) {
        Ok(()) => Cqe::success(user_data, words.len() as u32),
        Err(_) => Cqe::error(user_data, TransportError::BadAddress),
    }
}

/// A child process: its pid and exit status.
pub struct ProcessHandle {
    /// The child's pid.
    pub pid: u32,
    /// The child's exit status.
    pub exit: Arc<ExitStatus>,
}

impl CapObject for ProcessHandle {
    fn interface_id(&self) -> u64 {
        interfaces::PROCESS_HANDLE
    }

    fn label(&self) -> &str {
        "process-handle"
    }

    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }

    fn call(&self, inv: Invocation<'_>) -> Result<usize, CapException> {
        let mut out = Builder::new_default();
        match inv.method_id {
            // wait on an exited child answers at once (dispatch defers it
            // otherwise).
            0 => match self.exit.code() {
                Some(code) => out
                    .init_root::<process_handle::wait_results::Builder>()
                    .set_exit_code(code),
                None => {
                    return Err(CapException::failed(
                        "wait must be deferred by the dispatcher",
                    ))
                }
            },
            1 => out
                .init_root::<process_handle::pid_results::Builder>()
                .set_pid(u64::from(self.pid)),
            m => return Err(CapException::unimplemented(interfaces::PROCESS_HANDLE, m)),
        }
        crate::kcaps::write_results(&out, inv.results)
    }
}

/// Starts boot binaries as processes. Held only by init.
pub struct ProcessSpawner {
    /// Where binaries come from.
    pub boot: Arc<BootPackage>,
}

impl CapObject for ProcessSpawner {
    fn interface_id(&self) -> u64 {
        interfaces::PROCESS_SPAWNER
    }

    fn label(&self) -> &str {
        "process-spawner"
    }

    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }

    fn call(&self, inv: Invocation<'_>) -> Result<usize, CapException> {
        // Every method needs the caller; dispatch routes them to `spawn`.
        Err(CapException::unimplemented(
            interfaces::PROCESS_SPAWNER,
            inv.method_id,
        ))
    }
}

/// What a successful spawn returns to dispatch: the result message and the
/// capabilities to insert into the caller's table as result caps, in order
/// (0: the handle; then one client facet per endpoint grant).
pub struct Spawned {
    /// Serialized `spawn` results.
    pub results: Vec<u8>,
    /// Result capabilities with their interface ids.
    pub caps: Vec<ResultCap>,
}

/// A capability the caller sent with the spawn (a transfer descriptor), as
/// dispatch resolved it from the caller's table.
pub struct Transferred {
    /// The object.
    pub object: Arc<dyn CapObject>,
    /// The interface it is held as.
    pub interface_id: u64,
}

/// Bytes a transfer-result record takes after the result message.
const RECORD: usize = capos_ring::TRANSFER_RESULT_SIZE as usize;

impl ProcessSpawner {
    /// Runs `spawn` for `caller` with serialized `params`; `result_room` is
    /// the caller's result buffer size.
    pub fn spawn(
        &self,
        caller: &Process,
        params: &[u8],
        result_room: usize,
        transferred: &[Transferred],
    ) -> Result<Spawned, CapException> {
        let bad = crate::kcaps::bad_params;
        let msg = crate::kcaps::read_params(params)?;
        let p = msg
            .get_root::<process_spawner::spawn_params::Reader>()
            .map_err(bad)?;
        let text = |t: capnp::Result<capnp::text::Reader<'_>>| -> Result<String, CapException> {
            Ok(t.map_err(bad)?
                .to_str()
                .map_err(|_| CapException::failed("text is not UTF-8"))?
                .into())
        };
        let name = text(p.get_name())?;
        let binary = text(p.get_binary_name())?;
        // A pin must name a CPU that runs threads now; refused before
        // anything is created.
        let pin = match placement_from_schema(p.get_placement().map_err(bad)?) {
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
            n if n > crate::proc::MAX_FRAME_LIMIT => {
                return Err(CapException::failed(format!(
                    "frame limit {n} is above the most a process may have ({})",
                    crate::proc::MAX_FRAME_LIMIT
                )))
            }
            n => Some(n),
        };
        let cap_slot_limit = match u64::from(p.get_cap_slot_limit()) {
            0 => None,
            n if n > crate::proc::MAX_CAP_SLOT_LIMIT => {
                return Err(CapException::failed(format!(
                    "cap-slot limit {n} is above the most a process may have ({})",
                    crate::proc::MAX_CAP_SLOT_LIMIT
                )))
            }
            n => Some(n),
        };

        let bytes = self
            .boot
            .binaries
            .iter()
            .find(|b| b.name == binary)
            .map(|b| b.bytes)
            .ok_or_else(|| CapException::failed(format!("no boot binary named \"{binary}\"")))?;

        let mut grants = Vec::new();
        let mut endpoints: Vec<(String, Arc<crate::endpoint::Endpoint>)> = Vec::new();
        for g in p.get_grants().map_err(bad)? {
            let gname = text(g.get_name())?;
            let kind = match g
                .get_source()
                .which()
                .map_err(|_| CapException::failed("unknown grant source"))?
            {
                cap_grant::source::Which::Kernel(k) => {
                    kind_from_schema(k.map_err(|_| CapException::failed("unknown kernel kind"))?)
                }
                cap_grant::source::Which::Transferred(i) => {
                    let t = transferred.get(usize::from(i)).ok_or_else(|| {
                        CapException::failed(format!(
                            "grant \"{gname}\": no transfer descriptor {i} was sent"
                        ))
                    })?;
                    if g.get_expected_interface_id() != t.interface_id {
                        return Err(CapException::failed(format!(
                            "grant \"{gname}\": expects interface {:#x} but the transferred cap is {:#x}",
                            g.get_expected_interface_id(),
                            t.interface_id
                        )));
                    }
                    grants.push(Grant {
                        name: gname,
                        object: t.object.clone(),
                        interface_id: t.interface_id,
                    });
                    continue;
                }
            };
            if g.get_expected_interface_id() != kind.interface_id() {
                return Err(CapException::failed(format!(
                    "grant \"{gname}\": expects interface {:#x} but kind {kind:?} provides {:#x}",
                    g.get_expected_interface_id(),
                    kind.interface_id()
                )));
            }
            let object: Arc<dyn CapObject> = match kind {
                KernelKind::Console => Arc::new(Console),
                KernelKind::Timer => Arc::new(Timer),
                KernelKind::Null => Arc::new(Null),
                KernelKind::FrameAllocator => Arc::new(crate::memobj::FrameAllocator),
                KernelKind::VirtualMemory => Arc::new(VirtualMemory::new()),
                KernelKind::Endpoint => {
                    let ep = crate::endpoint::Endpoint::new();
                    endpoints.push((gname.clone(), ep.clone()));
                    Arc::new(crate::endpoint::EndpointOwner { ep })
                }
                KernelKind::BootPackage | KernelKind::ProcessSpawner => {
                    return Err(CapException::failed(format!(
                        "grant \"{gname}\": {kind:?} is only granted to init"
                    )))
                }
                other => {
                    return Err(CapException::failed(format!(
                    "grant \"{gname}\": kernel kind {other:?} is not available in this kernel yet"
                )))
                }
            };
            grants.push(Grant {
                name: gname,
                object,
                interface_id: kind.interface_id(),
            });
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
        let results = serialize::write_message_to_words(&out);
        let records = 1 + endpoints.len();
        if results.len() + records * RECORD > result_room {
            return Err(CapException::failed(format!(
                "result buffer too small: {} bytes needed",
                results.len() + records * RECORD
            )));
        }
        if caller.caps.lock().available() < records {
            return Err(CapException::overloaded(
                "no free slots for the result capabilities",
            ));
        }
        let thread = proc::spawn(&name, bytes, grants, frame_limit, cap_slot_limit)
            .map_err(|e| CapException::failed(format!("cannot start \"{binary}\": {e}")))?;
        let handle = Arc::new(ProcessHandle {
            pid: thread.process.pid,
            exit: thread.process.exit.clone(),
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
        let mut caps = alloc::vec![ResultCap::new(handle)];
        for (_, ep) in endpoints {
            caps.push(ResultCap::new(Arc::new(crate::endpoint::ClientEndpoint {
                ep,
            })));
        }
        Ok(Spawned { results, caps })
    }
}
