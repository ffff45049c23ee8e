//! ProcessSpawner test, run as init by `manifests/spawn-test.capnp`: starts a
//! child with exactly one kernel-minted cap and waits for its exit code,
//! waits again (an exited child answers at once), starts one pinned to CPU
//! 1, and checks that spawns with forbidden grants, an unknown binary or a
//! pin to a CPU that is not online are refused. The kernel's
//! frame accounting at the end shows that refused spawns leaked nothing.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use capos_rt::caps::manifest::KernelKind;
use capos_rt::{
    CallError, Console, GrantSpec, KernelGrant, Placement, ProcessSpawner, Runtime, SpawnOptions,
};

capos_rt::entry!(main);

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    let Ok(spawner) = rt.cap::<ProcessSpawner>("spawner") else {
        say("spawn-test: FAIL no spawner");
        return 2;
    };
    let console_only = [KernelGrant {
        name: "console",
        kind: KernelKind::Console,
    }];
    match spawner.spawn("child", "template", &console_only) {
        Ok(child) => {
            let first = child.wait();
            let again = child.wait();
            say(&format!(
                "spawn-test: ok child pid {} exited with {first:?}, waited again: {again:?}",
                child.pid().unwrap_or(0)
            ));
        }
        Err(e) => say(&format!("spawn-test: FAIL spawning a valid child: {e}")),
    }
    let refused = |case: &str,
                   r: Result<capos_rt::Owned<capos_rt::ProcessHandle>, CallError>,
                   want: &str| match r {
        Err(CallError::Exception(e)) if e.message.contains(want) => {
            say(&format!("spawn-test: ok {case} refused: {}", e.message))
        }
        Err(e) => say(&format!("spawn-test: FAIL {case}: wrong error {e}")),
        Ok(_) => say(&format!("spawn-test: FAIL {case}: the spawn succeeded")),
    };
    let boot = [KernelGrant {
        name: "boot",
        kind: KernelKind::BootPackage,
    }];
    refused(
        "boot-package-grant",
        spawner.spawn("bad", "template", &boot),
        "only granted to init",
    );
    let spawn = [KernelGrant {
        name: "spawner",
        kind: KernelKind::ProcessSpawner,
    }];
    refused(
        "spawner-grant",
        spawner.spawn("bad", "template", &spawn),
        "only granted to init",
    );
    let terminal = [KernelGrant {
        name: "term",
        kind: KernelKind::Terminal,
    }];
    refused(
        "terminal-grant",
        spawner.spawn("bad", "template", &terminal),
        // This boot has no UART on the terminal's line (COM2).
        "no terminal is configured",
    );
    refused(
        "unknown-binary",
        spawner.spawn("bad", "no-such-binary", &console_only),
        "no boot binary named",
    );
    refused(
        "not-an-elf",
        spawner.spawn("bad", "not-elf", &console_only),
        "invalid ELF",
    );
    // More grants than the child's cap-slot quota (64) allows: refused only
    // after the child's address space and image exist, so this one proves
    // the rollback.
    let names: Vec<alloc::string::String> = (0..80).map(|i| format!("c{i}")).collect();
    let many: Vec<GrantSpec<'_>> = names
        .iter()
        .map(|n| GrantSpec::Kernel {
            name: n,
            kind: KernelKind::Console,
        })
        .collect();
    let quota_64 = SpawnOptions {
        cap_slot_limit: 64,
        ..SpawnOptions::default()
    };
    refused(
        "too-many-grants",
        spawner
            .spawn_with_options("bad", "template", &many, quota_64)
            .map(|s| s.handle),
        "cannot start \"template\": capability table: cap slots quota exceeded: 1 requested, 64 of 64 in use",
    );
    // Pins: CPU 1 exists in the smoke's two-CPU machine; CPU 2 does not.
    let console_spec = [GrantSpec::Kernel {
        name: "console",
        kind: KernelKind::Console,
    }];
    match spawner.spawn_placed("pinned", "template", &console_spec, Placement::Cpu(1)) {
        Ok(child) => say(&format!(
            "spawn-test: ok child pinned to CPU 1 exited with {:?}",
            child.handle.wait()
        )),
        Err(e) => say(&format!("spawn-test: FAIL pinning a child to CPU 1: {e}")),
    }
    refused(
        "pin-to-missing-cpu",
        spawner
            .spawn_placed("bad", "template", &console_spec, Placement::Cpu(2))
            .map(|s| s.handle),
        "CPU 2 is not online",
    );
    // Frame quotas: a child fits in 512 frames; in 8 it cannot even start,
    // and it is refused before it runs, leaving nothing behind; a limit
    // above the most a process may have is refused outright.
    let limited = |frames| SpawnOptions {
        placement: Placement::AnyCpu,
        frame_limit: frames,
        ..SpawnOptions::default()
    };
    // The largest quota, above the default of 4096, is taken.
    match spawner.spawn_with_options("large", "template", &console_spec, limited(16384)) {
        Ok(child) => say(&format!(
            "spawn-test: ok child with a 16384-frame quota exited with {:?}",
            child.handle.wait()
        )),
        Err(e) => say(&format!(
            "spawn-test: FAIL child with a 16384-frame quota: {e}"
        )),
    }
    match spawner.spawn_with_options("small", "template", &console_spec, limited(512)) {
        Ok(child) => say(&format!(
            "spawn-test: ok child with a 512-frame quota exited with {:?}",
            child.handle.wait()
        )),
        Err(e) => say(&format!(
            "spawn-test: FAIL child with a 512-frame quota: {e}"
        )),
    }
    let tiny = spawner.spawn_with_options("bad", "template", &console_spec, limited(8));
    // The refusal names the pages the child starts with; a quota of exactly
    // that many passes the check made before anything exists, and fails
    // only once the page tables are built, which must all be undone.
    let needed = match &tiny {
        Err(CallError::Exception(e)) => e
            .message
            .split("exceeded: ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u32>().ok()),
        _ => None,
    };
    refused(
        "tiny-frame-quota",
        tiny.map(|s| s.handle),
        "its own quota: frames quota exceeded",
    );
    match needed {
        Some(pages) => refused(
            "quota-without-room-for-page-tables",
            spawner
                .spawn_with_options("bad", "template", &console_spec, limited(pages))
                .map(|s| s.handle),
            "its own quota: frames quota exceeded",
        ),
        None => say("spawn-test: FAIL the quota refusal did not say what the child needs"),
    }
    refused(
        "frame-limit-too-high",
        spawner
            .spawn_with_options("bad", "template", &console_spec, limited(1 << 20))
            .map(|s| s.handle),
        "frame limit 1048576 is above the most a process may have (16384)",
    );
    let huge_table = SpawnOptions {
        cap_slot_limit: 4097,
        ..SpawnOptions::default()
    };
    refused(
        "cap-slot-limit-too-high",
        spawner
            .spawn_with_options("bad", "template", &console_spec, huge_table)
            .map(|s| s.handle),
        "cap-slot limit 4097 is above the most a process may have (4096)",
    );
    say("spawn-test: done");
    0
}
