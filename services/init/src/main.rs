//! init, the first process: reports what it was given (its CapSet) and what
//! the boot package holds (the manifest's service graph and the binaries),
//! validates the graph, and, when it holds a `ProcessSpawner`, starts each
//! service in declaration order with exactly the kernel-minted caps it
//! declares (on the CPU it is pinned to, if it names one, with the cap-slot
//! quota it asks for), then supervises
//! them (reports each exit with its code).
//! An imported endpoint reaches its importer as a copy of the client facet
//! the spawner returned for the exporting service's endpoint grant.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use capos_rt::caps::manifest;
use capos_rt::{BootPackage, Console, GrantSpec, Interface, ProcessSpawner, Runtime, SpawnOptions};

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
        start_services(&m, &spawner, terminal, &say);
    }
    say("init: done");
    0
}

/// Starts every service in declaration order with exactly the caps it
/// declares (kernel-minted ones minted for it, except the terminal, which
/// has one holder: init moves its own `terminal`; imports as copies of the
/// client facet of the exporting service's endpoint), then waits for each
/// to exit and reports its code. Init keeps only client facets, never the
/// owner side of a child's endpoint.
fn start_services(
    m: &manifest::Manifest,
    spawner: &ProcessSpawner,
    terminal: Option<capos_rt::Cap>,
    say: &dyn Fn(&str),
) {
    let mut terminal = terminal;
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
                    let cap_name = m
                        .service(service)
                        .and_then(|sv| sv.export(export))
                        .map(|e| e.cap.as_str());
                    match facets
                        .iter()
                        .find(|(sv, name, _)| sv == service && Some(name.as_str()) == cap_name)
                    {
                        Some((_, _, facet)) => grants.push(GrantSpec::Copy {
                            name: &c.name,
                            cap: facet.cap(),
                        }),
                        None => missing = Some(format!("{service}.{export}")),
                    }
                }
                _ => missing = Some(format!("cap {}", c.name)),
            }
        }
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
            ..SpawnOptions::default()
        };
        let moves_terminal = grants.iter().any(|g| matches!(g, GrantSpec::Move { .. }));
        let started = spawner.spawn_with_options(&s.name, &s.binary, &grants, options);
        drop(grants);
        if moves_terminal && started.is_ok() {
            // Moved to the child: init no longer holds it.
            terminal = None;
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
                running.push((s.name.as_str(), spawned.handle));
            }
            Err(e) => say(&format!("init: service {} could not start: {e}", s.name)),
        }
    }
    for (name, handle) in running {
        match handle.wait() {
            Ok(code) => say(&format!("init: service {name} exited with code {code}")),
            Err(e) => say(&format!("init: waiting for service {name} failed: {e}")),
        }
    }
}
