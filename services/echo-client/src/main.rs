//! Echo client: calls the echo server through its client facet and checks
//! the reply, a typed application error, that its facet cannot RECV, and
//! that a call to a server that has exited completes with CANCELLED.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use capos_rt::ring::TransportError;
use capos_rt::{CallError, ClientEndpoint, Console, Interface, Runtime};

capos_rt::entry!(main);

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    let Ok(echo) = rt.cap::<ClientEndpoint>("echo") else {
        say("echo-client: FAIL no echo cap");
        return 2;
    };
    match echo.call(0, b"hello capOS".to_vec()) {
        Ok(r) if r == b"hello capOS" => say(&format!(
            "echo-client: reply \"{}\"",
            core::str::from_utf8(&r).unwrap_or("?")
        )),
        other => say(&format!("echo-client: FAIL echo: {other:?}")),
    }
    match echo.call(1, Vec::new()) {
        Err(CallError::Exception(e)) => say(&format!("echo-client: typed error: {}", e.message)),
        other => say(&format!("echo-client: FAIL exception: {other:?}")),
    }
    let recv = rt
        .ring()
        .submit_recv(echo.cap().id(), 64)
        .and_then(|t| rt.ring().wait(t))
        .and_then(|c| c.into_result());
    match recv {
        Err(CallError::Transport(TransportError::InterfaceMismatch)) => {
            say("echo-client: RECV on the client facet refused: INTERFACE_MISMATCH")
        }
        other => say(&format!("echo-client: FAIL recv on facet: {other:?}")),
    }
    if let Err(e) = echo.call(2, Vec::new()) {
        say(&format!("echo-client: FAIL quit: {e}"));
    }
    match echo.call(0, b"anyone?".to_vec()) {
        Err(CallError::Transport(TransportError::Cancelled)) => {
            say("echo-client: call after the server exited: CANCELLED")
        }
        other => say(&format!(
            "echo-client: FAIL call to exited server: {other:?}"
        )),
    }
    0
}
