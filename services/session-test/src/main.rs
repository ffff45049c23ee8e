//! session-test: EntropySource, SystemInfo and sessions, run as init by
//! `manifests/sessions-kernel.capnp`. One binary in two roles, chosen by
//! its CapSet:
//!
//! * **parent** (holds `sessions`): reads entropy and the system summary,
//!   creates session S, learns the references S has at its two endpoints,
//!   starts a child in S, checks the references the child's calls carry,
//!   scopes a Timer and a client facet to S, gives the child the Timer, ends
//!   S and checks that both sides' scoped caps then fail with
//!   `disconnected`, that S can take no more children, and that malformed
//!   requests are refused with an exception;
//! * **child** (holds `parent`): calls the parent's endpoints in the order
//!   the parent expects (method 1 on each, 2 for the Timer, 3 once it used
//!   it, 4 and 5 after S ended), and uses the scoped Timer before and after.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capos_rt::caps::manifest::KernelKind;
use capos_rt::caps::schema::capos_capnp::entropy_source::Source;
use capos_rt::ring::TRANSFER_COPY;
use capos_rt::{
    CallError, Cap, ClientEndpoint, Console, Endpoint, EntropySource, GrantSpec, IncomingCall,
    Interface, Owned, ProcessSpawner, Runtime, SessionAuthority, SpawnOptions, SystemInfo, Timer,
    UserSession,
};

capos_rt::entry!(main);

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    if rt.cap::<SessionAuthority>("sessions").is_ok() {
        match parent(rt, &say) {
            Ok(()) => {
                say("session-test: done");
                0
            }
            Err(e) => {
                say(&format!("session-test: FAIL {e}"));
                3
            }
        }
    } else {
        match child(rt, &say) {
            Ok(()) => 0,
            Err(e) => {
                say(&format!("session-test child: FAIL {e}"));
                4
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An error's short form: `kind: message` for an exception.
fn why(e: &CallError) -> String {
    match e {
        CallError::Exception(x) => format!("{}: {}", x.kind, x.message),
        other => format!("{other}"),
    }
}

/// Checks `r` failed with an exception whose text contains `want`.
fn refused<T>(say: &dyn Fn(&str), case: &str, r: Result<T, CallError>, want: &str) {
    match r {
        Err(e @ CallError::Exception(_)) if why(&e).contains(want) => {
            say(&format!("session-test: ok {case} refused: {}", why(&e)))
        }
        Err(e) => say(&format!(
            "session-test: FAIL {case}: wrong error {}",
            why(&e)
        )),
        Ok(_) => say(&format!("session-test: FAIL {case}: it succeeded")),
    }
}

/// Calls our own endpoint `ep` through `client` (submitted without waiting,
/// then received here with the caller reference, answered and collected).
fn self_call(ep: &Endpoint, client: &Cap, with_session: bool) -> Result<IncomingCall, CallError> {
    let ring = ep.cap().ring();
    let ticket = ring.submit(client.id(), 9, Vec::new(), 64)?;
    let call = if with_session {
        ep.recv_with_session(256)?
    } else {
        ep.recv(256)?
    };
    ep.reply(call.call_id, Vec::new())?;
    ring.wait(ticket)?.into_result()?;
    Ok(call)
}

/// Receives the child's next call on `ep`, expecting method `method`.
fn next(ep: &Endpoint, method: u16, with_session: bool) -> Result<IncomingCall, CallError> {
    let call = if with_session {
        ep.recv_with_session(256)?
    } else {
        ep.recv(256)?
    };
    if call.method_id != method {
        return Err(CallError::Protocol("the child called out of order"));
    }
    Ok(call)
}

fn check(say: &dyn Fn(&str), ok: bool, what: &str) {
    if ok {
        say(&format!("session-test: ok {what}"));
    } else {
        say(&format!("session-test: FAIL {what}"));
    }
}

fn parent(rt: &Runtime, say: &dyn Fn(&str)) -> Result<(), CallError> {
    let lookup = |_| CallError::Protocol("a cap is missing from the CapSet");
    let entropy = rt.cap::<EntropySource>("entropy").map_err(lookup)?;
    let info = rt.cap::<SystemInfo>("sysinfo").map_err(lookup)?;
    let sessions = rt.cap::<SessionAuthority>("sessions").map_err(lookup)?;
    let spawner = rt.cap::<ProcessSpawner>("spawner").map_err(lookup)?;
    let timer = rt.cap::<Timer>("timer").map_err(lookup)?;
    let ep = rt.cap::<Endpoint>("ep").map_err(lookup)?;
    let ep2 = rt.cap::<Endpoint>("ep2").map_err(lookup)?;

    // Entropy.
    let source = match entropy.source()? {
        Source::Rdseed => "rdseed",
        Source::Rdrand => "rdrand",
        Source::TscJitter => "tsc-jitter",
    };
    let (a, b) = (entropy.read(32)?, entropy.read(32)?);
    check(
        say,
        a.len() == 32 && b.len() == 32 && a != b,
        &format!("entropy source {source}: two 32-byte reads differ"),
    );
    refused(say, "read(0)", entropy.read(0), "failed: read of 0 bytes");
    refused(
        say,
        "read(1000)",
        entropy.read(1000),
        "failed: read of 1000 bytes",
    );

    // System information.
    let summary = info.summary()?;
    let s = summary.get()?;
    let me = rt.pid() as u32;
    let mut listed = None;
    let mut pids = Vec::new();
    for p in s.get_processes()? {
        pids.push(p.get_pid());
        if p.get_pid() == me {
            listed = Some((
                String::from(p.get_name()?.to_str().unwrap_or("?")),
                p.get_caps(),
                p.get_frames(),
            ));
        }
    }
    match listed {
        Some((name, caps, frames)) if name == "session-test" && caps > 0 && frames > 0 => say(
            &format!(
                "session-test: ok systemInfo: {} CPUs, {} of {} frames free, uptime {} ms, processes {:?}; lists pid {me} ({name}) with {caps} caps and {frames} frames",
                s.get_cpus(),
                s.get_free_frames(),
                s.get_total_frames(),
                s.get_uptime_nanos() / 1_000_000,
                pids
            ),
        ),
        other => say(&format!("session-test: FAIL systemInfo lists {other:?}")),
    }
    say(&format!("session-test: motd \"{}\"", info.motd()?));

    // Session S and the references it has at our endpoints.
    let session: Owned<UserSession> = sessions.create("alice", "operator")?;
    {
        let i = session.info()?;
        let i = i.get()?;
        check(
            say,
            i.get_live()
                && i.get_principal()?.to_str() == Ok("alice")
                && i.get_profile()?.to_str() == Ok("operator"),
            "created session alice/operator, live",
        );
    }
    let r1 = sessions.reference_at(&session, &ep)?;
    let r2 = sessions.reference_at(&session, &ep2)?;
    check(
        say,
        r1 == sessions.reference_at(&session, &ep)? && r1 != r2,
        &format!(
            "reference of S at ep {} is stable, at ep2 {} differs",
            hex(&r1),
            hex(&r2)
        ),
    );
    let c1 = ep.client_facet()?;
    let c2 = ep2.client_facet()?;
    let own = self_call(&ep, c1.cap(), true)?;
    check(
        say,
        own.session_live && own.caller_reference.is_some_and(|r| r != r1),
        "a call from our own (system) session carries another reference",
    );
    let plain = self_call(&ep, c1.cap(), false)?;
    check(
        say,
        plain.session_live && plain.caller_reference.is_none(),
        "reference absent without RECV_FLAG_CALLER_SESSION",
    );
    let c1s: Owned<ClientEndpoint> = sessions.scope_cap(&session, c1.cap())?;
    let through = self_call(&ep, c1s.cap(), true)?;
    check(
        say,
        through.session_live && through.caller_reference == Some(r1),
        "a call through a client facet scoped to S carries S's reference",
    );

    // Hostile requests.
    refused(
        say,
        "scope-without-transfers",
        sessions.call_scope(|_| {}, &[]),
        "transfer 0: expected a UserSession",
    );
    refused(
        say,
        "scope-of-a-timer-as-session",
        sessions.call_scope(|_| {}, &[(timer.cap(), TRANSFER_COPY)]),
        "transfer 0: expected a UserSession, got interface",
    );
    refused(
        say,
        "scope-without-target",
        sessions.call_scope(|_| {}, &[(session.cap(), TRANSFER_COPY)]),
        "transfer 1: expected the capability to scope",
    );
    refused(
        say,
        "reference-of-a-timer",
        sessions.call_reference(
            |_| {},
            &[(session.cap(), TRANSFER_COPY), (timer.cap(), TRANSFER_COPY)],
        ),
        "transfer 1: expected an Endpoint",
    );
    refused(
        say,
        "end-of-a-timer",
        sessions.call_end(|_| {}, &[(timer.cap(), TRANSFER_COPY)]),
        "transfer 0: expected a UserSession",
    );
    let long = "x".repeat(1024);
    refused(
        say,
        "create-with-1KiB-labels",
        sessions.create(&long, &long),
        "principal is 1024 bytes; at most 64 allowed",
    );
    let console_grant = [GrantSpec::Kernel {
        name: "console",
        kind: KernelKind::Console,
    }];
    refused(
        say,
        "spawn-into-a-timer",
        spawner
            .spawn_in_session(
                "bad",
                "session-test",
                &console_grant,
                SpawnOptions::default(),
                Some(timer.cap()),
            )
            .map(|s| s.handle),
        "session: transfer 0: expected a UserSession",
    );

    // The child, in S.
    let grants = [
        GrantSpec::Kernel {
            name: "console",
            kind: KernelKind::Console,
        },
        GrantSpec::Copy {
            name: "parent",
            cap: c1.cap(),
        },
        GrantSpec::Copy {
            name: "parent2",
            cap: c2.cap(),
        },
    ];
    let child = spawner
        .spawn_in_session(
            "child",
            "session-test",
            &grants,
            SpawnOptions::default(),
            Some(session.cap()),
        )?
        .handle;
    let call = next(&ep, 1, true)?;
    check(
        say,
        call.session_live && call.caller_reference == Some(r1),
        &format!(
            "the child's call at ep carries S's reference {} (SessionAuthority.reference agrees), live",
            hex(&call.caller_reference.unwrap_or_default())
        ),
    );
    ep.reply(call.call_id, Vec::new())?;
    let call = next(&ep2, 1, true)?;
    check(
        say,
        call.caller_reference == Some(r2),
        "the child's call at ep2 carries S's other reference",
    );
    ep2.reply(call.call_id, Vec::new())?;

    // A Timer scoped to S, for us and for the child.
    let scoped: Owned<Timer> = sessions.scope_cap(&session, timer.cap())?;
    check(
        say,
        scoped.now().is_ok(),
        "scoped Timer works while S is live",
    );
    let call = next(&ep, 2, false)?;
    ep.reply_with_caps(call.call_id, Vec::new(), &[(scoped.cap(), TRANSFER_COPY)])?;
    let ready = next(&ep, 3, false)?;

    // End S (twice: the second changes nothing).
    sessions.end_session(&session)?;
    sessions.end_session(&session)?;
    refused(
        say,
        "scoped-timer-after-end",
        scoped.now(),
        "disconnected: session ended",
    );
    refused(
        say,
        "scoped-client-facet-after-end",
        c1s.call(1, Vec::new()),
        "disconnected: session ended",
    );
    {
        let i = session.info()?;
        check(
            say,
            !i.get()?.get_live(),
            "S reports live = false after end",
        );
    }
    refused(
        say,
        "spawn-into-ended-session",
        spawner
            .spawn_in_session(
                "late",
                "session-test",
                &console_grant,
                SpawnOptions::default(),
                Some(session.cap()),
            )
            .map(|s| s.handle),
        "disconnected: session ended",
    );
    ep.reply(ready.call_id, Vec::new())?;
    let call = next(&ep, 4, false)?;
    check(
        say,
        !call.session_live && call.caller_reference.is_none(),
        "after S ended the child's calls arrive with live = false (no reference asked)",
    );
    ep.reply(call.call_id, Vec::new())?;
    let call = next(&ep, 5, true)?;
    check(
        say,
        !call.session_live && call.caller_reference == Some(r1),
        "after S ended the child's reference is unchanged, live = false",
    );
    ep.reply(call.call_id, Vec::new())?;
    let code = child.wait()?;
    check(say, code == 0, &format!("the child exited with {code}"));
    Ok(())
}

fn child(rt: &Runtime, say: &dyn Fn(&str)) -> Result<(), CallError> {
    let lookup = |_| CallError::Protocol("a cap is missing from the CapSet");
    let parent = rt.cap::<ClientEndpoint>("parent").map_err(lookup)?;
    let parent2 = rt.cap::<ClientEndpoint>("parent2").map_err(lookup)?;
    parent.call(1, Vec::new())?;
    parent2.call(1, Vec::new())?;
    let (_, mut caps) = parent.call_with_caps(2, Vec::new(), &[])?;
    let timer = Owned::<Timer>::adopt_checked(
        caps.pop()
            .ok_or(CallError::Protocol("no Timer came back"))?
            .into_cap(),
    )?;
    match timer.now() {
        Ok(_) => say("session-test child: ok scoped Timer works while S is live"),
        Err(e) => say(&format!(
            "session-test child: FAIL scoped Timer: {}",
            why(&e)
        )),
    }
    // The parent ends S before it answers this one.
    parent.call(3, Vec::new())?;
    match timer.now() {
        Err(e @ CallError::Exception(_)) => say(&format!(
            "session-test child: ok scoped Timer after end: {}",
            why(&e)
        )),
        Err(e) => say(&format!(
            "session-test child: FAIL scoped Timer after end: {}",
            why(&e)
        )),
        Ok(_) => say("session-test child: FAIL scoped Timer still works after end"),
    }
    parent.call(4, Vec::new())?;
    parent.call(5, Vec::new())?;
    Ok(())
}
