//! launcher-test: proves init's Launcher (`manifests/launcher.capnp`). As a
//! service holding a launcher it lists its allowlist, launches `template`
//! with a copy of its console and waits for it, and has every kind of bad
//! request refused (a binary not on the allowlist, a transfer index it did
//! not send, an index named twice, a wrong interface, a shared kernel kind);
//! it repeats refused and good launches more often than init has cap slots,
//! so a capability init kept would show. Last, it launches a copy of itself
//! (the child role: a CapSet with a `child` cap, a fresh `null`) with its
//! console and a copy of its launcher: the child is refused, since init
//! knows holders by pid and did not start it with a launcher.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capos_rt::api::Launcher;
use capos_rt::caps::manifest::{kind_to_schema, KernelKind};
use capos_rt::ring::TRANSFER_COPY;
use capos_rt::{CallError, Cap, ClientEndpoint, Console, Interface, Owned, ProcessHandle, Runtime};

capos_rt::entry!(main);

/// Refused launches in the leak check, each sending two capabilities.
const REFUSALS: usize = 40;
/// Good launches in the leak check.
const LAUNCHES: usize = 12;

/// One grant of a launch: a capability sent with the call (its transfer
/// index and the interface the grant expects) or a child-local kind.
enum Grant<'a> {
    Sent(&'a str, u16, u64),
    Kind(&'a str, KernelKind),
}

fn launch(
    launcher: &Launcher,
    binary: &str,
    name: &str,
    grants: &[Grant<'_>],
    caps: &[&Cap],
) -> Result<Owned<ProcessHandle>, CallError> {
    let sent: Vec<(&Cap, u32)> = caps.iter().map(|c| (*c, TRANSFER_COPY)).collect();
    let mut reply = launcher.call_launch(
        |mut p| {
            p.set_binary(binary);
            p.set_name(name);
            let mut list = p.init_grants(grants.len() as u32);
            for (i, g) in grants.iter().enumerate() {
                let mut e = list.reborrow().get(i as u32);
                match g {
                    Grant::Sent(n, index, expected) => {
                        e.set_name(n);
                        e.set_expected_interface_id(*expected);
                        e.init_source().set_transferred(*index);
                    }
                    Grant::Kind(n, kind) => {
                        e.set_name(n);
                        e.set_expected_interface_id(kind.interface_id());
                        e.init_source().set_kernel(kind_to_schema(*kind));
                    }
                }
            }
        },
        &sent,
    )?;
    let handle = reply.get()?.get_handle();
    reply.take_cap::<ProcessHandle>(handle)
}

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |line: &str| {
        let _ = console.write_line(line);
    };
    let launcher = match rt.cap::<ClientEndpoint>("launcher") {
        Ok(facet) => facet.protocol::<Launcher>(),
        Err(e) => {
            say(&format!("launcher-test: FAIL {e}"));
            return 1;
        }
    };
    if rt.cap_any("child").is_ok() {
        return child(rt, &launcher, &say);
    }
    let console_cap = console.cap().clone();
    let launcher_cap = launcher.cap().clone();
    let console_id = console_cap.interface_id();
    let mut failures = 0;
    let mut fail = |what: String| {
        say(&format!("launcher-test: FAIL {what}"));
        failures += 1;
    };

    // (a) The allowlist.
    match launcher.allowed().and_then(|r| {
        let names: Result<Vec<String>, CallError> = r
            .get()?
            .get_binaries()?
            .iter()
            .map(|t| Ok(String::from(t?.to_str().map_err(capnp_error)?)))
            .collect();
        names
    }) {
        Ok(names) => say(&format!("launcher-test: allowed: {}", names.join(" "))),
        Err(e) => fail(format!("allowed: {e}")),
    }

    // (b) An allowed binary, with a copy of this console as its console.
    let console_grant = [Grant::Sent("console", 0, console_id)];
    match launch(
        &launcher,
        "template",
        "hello",
        &console_grant,
        &[&console_cap],
    ) {
        Ok(child) => {
            let pid = child.pid().unwrap_or(0);
            match child.wait() {
                Ok(code) => say(&format!(
                    "launcher-test: ok launched template as pid {pid} with its console; it exited with code {code}"
                )),
                Err(e) => fail(format!("waiting for template: {e}")),
            }
        }
        Err(e) => fail(format!("launching template: {e}")),
    }

    // (c), (d) Refusals, each named by what init answers.
    let refusals: [(&str, &str, &[Grant<'_>]); 5] = [
        ("not-allowlisted", "hostile", &console_grant),
        (
            "unsent-index",
            "template",
            &[Grant::Sent("console", 1, console_id)],
        ),
        (
            "index-named-twice",
            "template",
            &[
                Grant::Sent("console", 0, console_id),
                Grant::Sent("log", 0, console_id),
            ],
        ),
        (
            "wrong-interface",
            "template",
            &[Grant::Sent("console", 0, capos_rt::caps::interfaces::TIMER)],
        ),
        (
            "shared-kind",
            "template",
            &[Grant::Kind("console", KernelKind::Console)],
        ),
    ];
    for (label, binary, grants) in refusals {
        match launch(&launcher, binary, "refused", grants, &[&console_cap]) {
            Ok(child) => {
                let _ = child.wait();
                fail(format!("{label}: launched"));
            }
            Err(e) => say(&format!("launcher-test: ok {label} refused: {e}")),
        }
    }

    // (f) More refusals and launches than init has cap slots: a cap init
    // kept from any of them would fill its table and fail the rest.
    let mut refused = 0;
    for _ in 0..REFUSALS {
        let grants = [Grant::Sent("console", 2, console_id)];
        match launch(&launcher, "template", "refused", &grants, &[&console_cap, &launcher_cap]) {
            Err(CallError::Exception(e))
                if e.message == "grant \"console\": names transfer index 2, but 2 capabilities were sent" =>
            {
                refused += 1
            }
            Err(e) => fail(format!("refusal {refused}: {e}")),
            Ok(_) => fail(format!("refusal {refused}: launched")),
        }
    }
    let mut clean = 0;
    for i in 0..LAUNCHES {
        match launch(
            &launcher,
            "template",
            "again",
            &console_grant,
            &[&console_cap],
        )
        .and_then(|child| child.wait())
        {
            Ok(0) => clean += 1,
            Ok(code) => fail(format!("launch {i} exited with code {code}")),
            Err(e) => fail(format!("launch {i}: {e}")),
        }
    }
    say(&format!(
        "launcher-test: ok {refused} of {REFUSALS} launches sending 2 caps refused as expected; {clean} of {LAUNCHES} launches exited with code 0"
    ));

    // (e) A child given a copy of this launcher is not a holder.
    let grants = [
        Grant::Sent("console", 0, console_id),
        Grant::Sent("launcher", 1, launcher_cap.interface_id()),
        Grant::Kind("child", KernelKind::Null),
    ];
    match launch(
        &launcher,
        "launcher-test",
        "launcher-child",
        &grants,
        &[&console_cap, &launcher_cap],
    )
    .and_then(|child| child.wait())
    {
        Ok(code) => say(&format!(
            "launcher-test: the child it gave its launcher to exited with code {code}"
        )),
        Err(e) => fail(format!("launching the child: {e}")),
    }

    if failures == 0 {
        say("launcher-test: done");
        0
    } else {
        say(&format!("launcher-test: FAIL {failures} check(s) failed"));
        1
    }
}

fn capnp_error(_: core::str::Utf8Error) -> CallError {
    CallError::Protocol("allowlist entry is not UTF-8")
}

/// The child role: holds a copy of its parent's launcher, which init does
/// not serve to it. Exits 0 when both methods are refused.
fn child(rt: &Runtime, launcher: &Launcher, say: &dyn Fn(&str)) -> i32 {
    let names: Vec<&str> = rt
        .capset()
        .iter()
        .map(|e| e.name().unwrap_or("?"))
        .collect();
    say(&format!(
        "launcher-test child: pid {} holds {}",
        rt.pid(),
        names.join(" ")
    ));
    let mut refused = 0;
    match launcher.allowed() {
        Err(e) => {
            say(&format!("launcher-test child: ok allowed refused: {e}"));
            refused += 1;
        }
        Ok(_) => say("launcher-test child: FAIL allowed answered"),
    }
    match launch(launcher, "template", "grandchild", &[], &[]) {
        Err(e) => {
            say(&format!("launcher-test child: ok launch refused: {e}"));
            refused += 1;
        }
        Ok(_) => say("launcher-test child: FAIL launched"),
    }
    if refused == 2 {
        0
    } else {
        1
    }
}
