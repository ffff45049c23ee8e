//! init, the first process: reports what it was given (its CapSet) and what
//! the boot package holds (the manifest's service graph and the binaries),
//! validates the graph, and, when it holds a `ProcessSpawner`, starts each
//! service in declaration order with exactly the kernel-minted caps it
//! declares (on the CPU it is pinned to, if it names one, with the cap-slot
//! quota it asks for), then supervises
//! them (reports each exit with its code).
//! An imported endpoint reaches its importer as a copy of the client facet
//! the spawner returned for the exporting service's endpoint grant.
//!
//! A service may also get a copy of init's ProcessSpawner (`source =
//! (spawner = void)`), a frame quota (`frameLimit`), the manifest's
//! `sessions` section as a MemoryObject named `config` (`sessionsConfig`:
//! init allocates it from its own `frameAllocator` cap, writes a u64 LE
//! byte count and the single-segment message, and moves it to the service,
//! which is meant only to read it), and a session to run in (`session`:
//! init asks the named SessionManager export, a client facet of an earlier
//! service, for an anonymous session and spawns the service in it).
//!
//! A service marked `endsSystem` (the shell of `make run`) ends the system
//! when it exits: init kills the services still running and, once they are
//! gone, is done.
//!
//! Init serves the `Launcher` on its own `launcher` endpoint: a service
//! whose manifest entry has a launcher cap gets a copy of that endpoint's
//! client facet and may start the binaries its `launchable` allowlist
//! names, with exactly the capabilities it sends (moved on to the child)
//! and fresh child-local kernel caps. Callers are known by pid: only the
//! services init started with a launcher are served. After starting the
//! services, init waits in one loop for launcher calls and service exits,
//! and is done when every service it started has exited.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capos_rt::api::{MemoryObject, SessionManager};
use capos_rt::caps::api::{launcher, process_handle};
use capos_rt::caps::exception::CapException;
use capos_rt::caps::manifest;
use capos_rt::caps::schema::services_capnp::launcher as proto;
use capos_rt::{
    capnp, Answer, BootPackage, Console, Endpoint, FrameAllocator, GrantSpec, Interface, Owned,
    ProcessHandle, ProcessSpawner, Runtime, ServerCall, SpawnOptions, Ticket,
};

use capos_rt::serve::PARAMS_CAPACITY;

capos_rt::entry!(main);

/// Exit codes for each way init can fail.
mod code {
    pub const NO_CONSOLE: i32 = 2;
    pub const NO_BOOT_PACKAGE: i32 = 3;
    pub const READ_FAILED: i32 = 4;
    pub const BAD_MANIFEST: i32 = 5;
}

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return code::NO_CONSOLE;
    };
    let say = |line: &str| {
        // Nothing better to do with a console that fails than carry on.
        let _ = console.write_line(line);
    };

    say(&format!("init: capOS init started (pid {})", rt.pid()));
    for e in rt.capset() {
        say(&format!(
            "init: cap {} id={:#x} interface={:#x}",
            e.name().unwrap_or("<invalid name>"),
            e.cap_id,
            e.interface_id
        ));
    }

    let boot = match rt.cap::<BootPackage>("boot") {
        Ok(b) => b,
        Err(e) => {
            say(&format!("init: {e}"));
            return code::NO_BOOT_PACKAGE;
        }
    };
    let bytes = match boot.read_manifest_all() {
        Ok(b) => b,
        Err(e) => {
            say(&format!("init: reading the manifest failed: {e}"));
            return code::READ_FAILED;
        }
    };
    say(&format!("init: manifest is {} bytes", bytes.len()));
    let m = match manifest::decode(&bytes) {
        Ok(m) => m,
        Err(e) => {
            say(&format!("init: the manifest does not decode: {e}"));
            return code::BAD_MANIFEST;
        }
    };
    // The kernel validated the layer it acts on; the service graph is
    // init's to check before it would start anything.
    if let Err(e) = manifest::validate_service_graph(&m) {
        say(&format!(
            "init: the manifest's service graph is invalid: {e}"
        ));
        return code::BAD_MANIFEST;
    }
    say(&format!(
        "init: manifest: {} binaries, {} services",
        m.binaries.len(),
        m.services.len()
    ));
    for s in &m.services {
        let caps: Vec<&str> = s.caps.iter().map(|c| c.name.as_str()).collect();
        say(&format!(
            "init: service {} (binary {}) caps: {}",
            s.name,
            s.binary,
            caps.join(", ")
        ));
    }

    match boot.binaries() {
        Ok(list) => {
            for b in list {
                say(&format!("init: binary {} {} bytes", b.name, b.size));
            }
        }
        Err(e) => {
            say(&format!("init: listing the boot binaries failed: {e}"));
            return code::READ_FAILED;
        }
    }
    // The terminal has one holder: init passes its own on, moved.
    let terminal = m
        .init
        .caps
        .iter()
        .find(|c| c.source == manifest::CapSource::Kernel(manifest::KernelKind::Terminal))
        .and_then(|c| rt.cap_any(&c.name).ok());
    if let Ok(spawner) = rt.cap::<ProcessSpawner>("spawner") {
        // The Launcher is served on init's own endpoint, and only when a
        // service asks for one (the manifest check makes sure it exists).
        let wanted = m.services.iter().any(|s| {
            s.caps
                .iter()
                .any(|c| c.source == manifest::CapSource::Launcher)
        });
        let endpoint = if wanted {
            rt.cap::<Endpoint>(manifest::INIT_LAUNCHER_CAP).ok()
        } else {
            None
        };
        let facet = endpoint.as_ref().and_then(|ep| match ep.client_facet() {
            Ok(facet) => Some(facet),
            Err(e) => {
                say(&format!("init: no launcher facet: {e}"));
                None
            }
        });
        // The frame allocator `config` MemoryObjects come from.
        let frames = m
            .init
            .caps
            .iter()
            .find(|c| c.source == manifest::CapSource::Kernel(manifest::KernelKind::FrameAllocator))
            .and_then(|c| rt.cap::<FrameAllocator>(&c.name).ok());
        let held = Held {
            spawner: &spawner,
            terminal,
            launcher: facet.as_ref(),
            frames: frames.as_ref(),
        };
        let started = start_services(&m, held, &say);
        // Services hold copies; init keeps none of its own.
        drop(facet);
        supervise(rt, &started, endpoint.as_ref(), &spawner, &say);
    }
    say("init: done");
    0
}

/// A service init started and has not seen exit yet.
struct Started<'m> {
    service: &'m manifest::Service,
    pid: u32,
    handle: Owned<ProcessHandle>,
}

/// Starts every service in declaration order with exactly the caps it
/// declares (kernel-minted ones minted for it, except the terminal, which
/// has one holder: init moves its own `terminal`; imports as copies of the
/// client facet of the exporting service's endpoint; a launcher as a copy
/// of `launcher`, the client facet of init's own launcher endpoint).
/// Returns what started. Init keeps only client facets, never the owner
/// side of a child's endpoint.
/// What init holds to start services with.
struct Held<'a> {
    spawner: &'a ProcessSpawner,
    /// Init's terminal, until moved to the service that asks for it.
    terminal: Option<capos_rt::Cap>,
    /// The client facet of init's launcher endpoint.
    launcher: Option<&'a Owned<capos_rt::ClientEndpoint>>,
    /// Where `config` MemoryObjects come from.
    frames: Option<&'a FrameAllocator>,
}

/// A MemoryObject holding `bytes` (then zeros to its last page), written
/// through a mapping init removes again.
fn config_object(frames: &FrameAllocator, bytes: &[u8]) -> Result<Owned<MemoryObject>, String> {
    let pages = bytes.len().div_ceil(4096).max(1);
    let object = frames
        .allocate(pages as u32, false)
        .map_err(|e| format!("allocating {pages} pages failed: {e}"))?;
    let view = object
        .map_shared()
        .map_err(|e| format!("mapping it failed: {e}"))?;
    view.write(0, bytes);
    object
        .unmap(view.addr(), view.len() as u64)
        .map_err(|e| format!("unmapping it failed: {e}"))?;
    Ok(object)
}

fn start_services<'m>(
    m: &'m manifest::Manifest,
    held: Held<'_>,
    say: &dyn Fn(&str),
) -> Vec<Started<'m>> {
    let Held {
        spawner,
        mut terminal,
        launcher,
        frames,
    } = held;
    // The `sessions` section as `config` holders receive it.
    let config_bytes = m
        .services
        .iter()
        .any(|s| s.sessions_config)
        .then(|| m.sessions.to_config_bytes());
    let mut running = Vec::new();
    // (service, cap name) -> client facet of that service's endpoint.
    let mut facets: Vec<(
        &str,
        alloc::string::String,
        capos_rt::Owned<capos_rt::ClientEndpoint>,
    )> = Vec::new();
    for s in &m.services {
        let mut grants = Vec::new();
        let mut missing = None;
        // The client facet of an earlier service's export.
        let facet_of = |service: &str, export: &str| {
            let cap_name = m
                .service(service)
                .and_then(|sv| sv.export(export))
                .map(|e| e.cap.as_str());
            facets
                .iter()
                .find(|(sv, name, _)| *sv == service && Some(name.as_str()) == cap_name)
                .map(|(_, _, facet)| facet)
        };
        for c in &s.caps {
            match &c.source {
                manifest::CapSource::Kernel(manifest::KernelKind::Terminal) => {
                    match terminal.as_ref() {
                        Some(cap) => grants.push(GrantSpec::Move { name: &c.name, cap }),
                        None => missing = Some(format!("the terminal (cap {})", c.name)),
                    }
                }
                manifest::CapSource::Kernel(kind) => grants.push(GrantSpec::Kernel {
                    name: &c.name,
                    kind: *kind,
                }),
                manifest::CapSource::Import { service, export } => {
                    match facet_of(service, export) {
                        Some(facet) => grants.push(GrantSpec::Copy {
                            name: &c.name,
                            cap: facet.cap(),
                        }),
                        None => missing = Some(format!("{service}.{export}")),
                    }
                }
                manifest::CapSource::Spawner => grants.push(GrantSpec::Copy {
                    name: &c.name,
                    cap: spawner.cap(),
                }),
                manifest::CapSource::Launcher => match launcher {
                    Some(facet) => grants.push(GrantSpec::Copy {
                        name: &c.name,
                        cap: facet.cap(),
                    }),
                    None => missing = Some(format!("the launcher (cap {})", c.name)),
                },
                _ => missing = Some(format!("cap {}", c.name)),
            }
        }
        let config = match (&config_bytes, frames) {
            (Some(bytes), Some(frames)) if s.sessions_config => {
                match config_object(frames, bytes) {
                    Ok(object) => Some(object),
                    Err(e) => {
                        missing = Some(format!("its config ({e})"));
                        None
                    }
                }
            }
            _ if s.sessions_config => {
                missing = Some("its config (init holds no frameAllocator)".into());
                None
            }
            _ => None,
        };
        if let Some(object) = &config {
            grants.push(GrantSpec::Move {
                name: manifest::SESSIONS_CONFIG_CAP,
                cap: object.cap(),
            });
        }
        // An anonymous session from the named SessionManager.
        let session = match &s.session {
            Some(r) if missing.is_none() => match facet_of(&r.service, &r.export) {
                Some(facet) => match facet.protocol::<SessionManager>().anonymous() {
                    Ok(session) => Some(session),
                    Err(e) => {
                        missing = Some(format!("a session from {}.{} ({e})", r.service, r.export));
                        None
                    }
                },
                None => {
                    missing = Some(format!("{}.{}", r.service, r.export));
                    None
                }
            },
            _ => None,
        };
        if let Some(what) = missing {
            say(&format!(
                "init: service {} not started: {what} is not available",
                s.name
            ));
            continue;
        }
        let options = SpawnOptions {
            placement: s.placement,
            cap_slot_limit: s.cap_slots,
            frame_limit: s.frame_limit,
        };
        let moves_terminal = grants.iter().any(|g| {
            matches!(g, GrantSpec::Move { cap, .. } if terminal.as_ref().is_some_and(|t| t.id() == cap.id()))
        });
        let started = match &session {
            Some(session) => {
                spawner.spawn_in_session(&s.name, &s.binary, &grants, options, Some(session.cap()))
            }
            None => spawner.spawn_with_options(&s.name, &s.binary, &grants, options),
        };
        drop(grants);
        if started.is_ok() {
            // Moved to the child: init no longer holds them.
            if moves_terminal {
                terminal = None;
            }
            if let Some(object) = config {
                let _ = object.into_cap();
            }
            if let Some(session) = session {
                let _ = session.into_cap();
            }
        }
        match started {
            Ok(spawned) => {
                let pid = spawned.handle.pid().unwrap_or(0);
                match s.placement {
                    manifest::Placement::Cpu(cpu) => say(&format!(
                        "init: started service {} (pid {pid}) pinned to CPU {cpu}",
                        s.name
                    )),
                    _ => say(&format!("init: started service {} (pid {pid})", s.name)),
                }
                for (grant, facet) in spawned.facets {
                    facets.push((s.name.as_str(), grant, facet));
                }
                running.push(Started {
                    service: s,
                    pid: u32::try_from(pid).unwrap_or(0),
                    handle: spawned.handle,
                });
            }
            Err(e) => say(&format!("init: service {} could not start: {e}", s.name)),
        }
    }
    running
}

/// Waits in one loop for the services' exits (each reported with its code,
/// as it happens) and, on `endpoint`, for Launcher calls from the services
/// that hold a launcher. Returns once every started service has exited;
/// programs they launched are theirs to wait for.
fn supervise(
    rt: &Runtime,
    started: &[Started<'_>],
    endpoint: Option<&Endpoint>,
    spawner: &ProcessSpawner,
    say: &dyn Fn(&str),
) {
    let ring = rt.ring();
    // One WAIT in flight per service: (ticket, index into `started`).
    let mut waits: Vec<(Ticket, usize)> = Vec::new();
    for (i, s) in started.iter().enumerate() {
        match start_wait(&s.handle) {
            Ok(t) => waits.push((t, i)),
            Err(e) => say(&format!(
                "init: waiting for service {} failed: {e}",
                s.service.name
            )),
        }
    }
    let server = Launcher {
        spawner,
        holders: started
            .iter()
            .filter(|s| {
                s.service
                    .caps
                    .iter()
                    .any(|c| c.source == manifest::CapSource::Launcher)
            })
            .map(|s| (s.pid, s.service))
            .collect(),
    };
    let mut recv = match endpoint {
        Some(ep) if !server.holders.is_empty() => match ep.start_recv(PARAMS_CAPACITY) {
            Ok(t) => Some((ep, t)),
            Err(e) => {
                say(&format!("init: the launcher cannot receive: {e}"));
                None
            }
        },
        _ => None,
    };
    while !waits.is_empty() {
        let tickets: Vec<Ticket> = waits
            .iter()
            .map(|(t, _)| *t)
            .chain(recv.map(|(_, t)| t))
            .collect();
        let ready = match ring.wait_any(&tickets) {
            Ok(t) => t,
            Err(e) => {
                say(&format!("init: waiting failed: {e}"));
                return;
            }
        };
        let Some(done) = ring.take(ready) else {
            say("init: a completion went missing");
            return;
        };
        if let Some(at) = waits.iter().position(|(t, _)| *t == ready) {
            let (_, i) = waits.swap_remove(at);
            let name = &started[i].service.name;
            match exit_code(done) {
                Ok(code) => say(&format!("init: service {name} exited with code {code}")),
                Err(e) => say(&format!("init: waiting for service {name} failed: {e}")),
            }
            if started[i].service.ends_system && !waits.is_empty() {
                say(&format!(
                    "init: {name} ended the system: stopping {} services",
                    waits.len()
                ));
                for (_, j) in &waits {
                    if let Err(e) = started[*j].handle.kill() {
                        say(&format!(
                            "init: stopping service {} failed: {e}",
                            started[*j].service.name
                        ));
                    }
                }
            }
            continue;
        }
        let Some((ep, _)) = recv else { continue };
        match ep.finish_recv(done) {
            Ok(call) => server.serve(ep, call, say),
            Err(e) => say(&format!("init: a launcher call could not be received: {e}")),
        }
        recv = match ep.start_recv(PARAMS_CAPACITY) {
            Ok(t) => Some((ep, t)),
            Err(e) => {
                say(&format!("init: the launcher cannot receive: {e}"));
                None
            }
        };
    }
}

/// Submits `ProcessHandle.wait` on `handle` without waiting for it.
fn start_wait(handle: &ProcessHandle) -> Result<Ticket, capos_rt::CallError> {
    let mut m = capnp::message::Builder::new_default();
    m.init_root::<capos_rt::caps::schema::capos_capnp::process_handle::wait_params::Builder<'_>>();
    handle.cap().ring().submit(
        handle.cap().id(),
        process_handle::WAIT,
        capos_rt::wire::to_bytes(&m),
        256,
    )
}

/// The exit code a completed `ProcessHandle.wait` carries.
fn exit_code(done: capos_rt::Completion) -> Result<i64, capos_rt::CallError> {
    let bytes = done.into_result()?;
    let reply = capos_rt::Reply::<
        capos_rt::caps::schema::capos_capnp::process_handle::wait_results::Owned,
    >::new(&bytes, Vec::new())?;
    Ok(reply.get()?.get_exit_code())
}

/// The Launcher init serves: who may call (the pids of the services it
/// started with a launcher) and what each may start (its `launchable`).
struct Launcher<'a, 'm> {
    spawner: &'a ProcessSpawner,
    holders: Vec<(u32, &'m manifest::Service)>,
}

impl Launcher<'_, '_> {
    /// Answers one call. Every capability sent with it that the handler
    /// did not pass on is released; a result capability that could not be
    /// returned is released too, and the caller told so.
    fn serve(&self, ep: &Endpoint, call: capos_rt::IncomingCall, say: &dyn Fn(&str)) {
        let pid = call.caller_pid;
        if let Err(e) = capos_rt::serve::serve(ep, call, self, launcher::dispatch) {
            say(&format!(
                "init: a launcher call from pid {pid} was not answered: {e}"
            ));
        }
    }

    /// The allowlist of the service with `pid`, if init started it with a
    /// launcher.
    fn holder(&self, pid: u32) -> Result<&manifest::Service, CapException> {
        self.holders
            .iter()
            .find(|(p, _)| *p == pid)
            .map(|(_, s)| *s)
            .ok_or_else(|| {
                CapException::failed(format!(
                    "pid {pid} holds no launcher of init's (only the services init starts with one are served)"
                ))
            })
    }
}

impl launcher::Server<ServerCall> for Launcher<'_, '_> {
    fn launch(&self, cx: &mut ServerCall, p: proto::launch_params::Reader<'_>) -> Answer {
        let holder = self.holder(cx.caller_pid);
        let allowed = |binary: &str| {
            let holder = holder?;
            if holder.launchable.iter().any(|b| b == binary) {
                Ok(())
            } else {
                Err(CapException::failed(format!(
                    "binary {binary:?} is not on this launcher's allowlist"
                )))
            }
        };
        match capos_rt::launch::launch(self.spawner, cx, p, SpawnOptions::default(), None, allowed)
        {
            Ok(l) => l.answer,
            Err(e) => Answer::Exception(e),
        }
    }

    fn allowed(&self, cx: &mut ServerCall) -> Answer {
        match self.holder(cx.caller_pid) {
            Ok(h) => capos_rt::launch::allowed_answer(cx, &h.launchable),
            Err(e) => Answer::Exception(e),
        }
    }
}
