//! A program to run from the shell that shows a session from the inside.
//!
//! With StdIO (`run "session-probe" with { stdio: @stdio, sessions: @sessionManager,
//! info: @systemInfo }`) it reports every capability it holds (its whole
//! CapSet, by name), the session it runs in as the session manager sees
//! its calls (through `sessions`, a facet that is not scoped to any
//! session: the caller is the probe's own process session), and, with
//! `info`, one SystemInfo summary; then it exits with code 0.
//!
//! Without StdIO (`spawn "session-probe" with { info: @systemInfo, timer:
//! @timer, console: @console } -> $p`) it calls `info` every tenth of a
//! second until a call fails, and writes on the console when it first
//! works and when it stops working. It exits 0 when the failure is the
//! typed one of an ended session (a `disconnected` exception), 3 on any
//! other failure, 4 if nothing failed within two minutes, 1 without the
//! capabilities it needs.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capos_rt::api::{SessionManager, StdIO, SystemInfo};
use capos_rt::caps::exception::ExceptionKind;
use capos_rt::{CallError, ClientEndpoint, Console, Runtime, Timer};

capos_rt::entry!(main);

/// Calls between two looks at `info`.
const PERIOD_NANOS: u64 = 100_000_000;
/// How long the watch lasts at most (in periods).
const WATCH_PERIODS: u32 = 1200;

fn main(rt: &mut Runtime) -> i32 {
    let info = rt.cap::<SystemInfo>("info").ok();
    match rt.cap::<ClientEndpoint>("stdio") {
        Ok(io) => report(rt, &io.protocol::<StdIO>(), info.as_ref()).unwrap_or(2),
        Err(_) => match (info, rt.cap::<Timer>("timer")) {
            (Some(info), Ok(timer)) => watch(&info, &timer, rt.cap::<Console>("console").ok()),
            _ => 1,
        },
    }
}

fn report(rt: &Runtime, io: &StdIO, info: Option<&SystemInfo>) -> Result<i32, CallError> {
    let names: Vec<&str> = rt
        .capset()
        .iter()
        .map(|e| e.name().unwrap_or("?"))
        .collect();
    io.write_line(&format!(
        "probe: pid {} holds {}: {}",
        rt.pid(),
        names.len(),
        names.join(", ")
    ))?;
    if let Ok(sessions) = rt.cap::<ClientEndpoint>("sessions") {
        let manager: SessionManager = sessions.protocol();
        match manager.current() {
            Ok(reply) => {
                let r = reply.get()?;
                io.write_line(&format!(
                    "probe: runs in session principal={} profile={} live={}",
                    r.get_principal()?.to_str().unwrap_or("?"),
                    r.get_profile()?.to_str().unwrap_or("?"),
                    r.get_live()
                ))?;
            }
            Err(e) => io.write_line(&format!("probe: the session manager refused: {e}"))?,
        }
    }
    if let Some(info) = info {
        match info.summary() {
            Ok(reply) => {
                let r = reply.get()?;
                io.write_line(&format!(
                    "probe: systemInfo: {} processes on {} CPUs",
                    r.get_processes()?.len(),
                    r.get_cpus()
                ))?;
            }
            Err(e) => io.write_line(&format!("probe: systemInfo refused: {e}"))?,
        }
    }
    Ok(0)
}

fn watch(info: &SystemInfo, timer: &Timer, console: Option<Console>) -> i32 {
    let say = |s: &str| {
        if let Some(c) = &console {
            let _ = c.write_line(s);
        }
    };
    let mut worked = false;
    for _ in 0..WATCH_PERIODS {
        match info.summary() {
            Ok(_) => {
                if !worked {
                    say("probe: systemInfo works");
                    worked = true;
                }
            }
            Err(e) => {
                let why: String = format!("{e}");
                say(&format!("probe: systemInfo stopped working: {why}"));
                return match e {
                    CallError::Exception(x) if x.kind == ExceptionKind::Disconnected => 0,
                    _ => 3,
                };
            }
        }
        if timer.sleep(PERIOD_NANOS).is_err() {
            return 3;
        }
    }
    4
}
