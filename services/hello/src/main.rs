//! A program to run from the shell (`run "hello" with { stdio: @stdio, echo:
//! @echo }`): it greets through the StdIO it is given, asks for a name,
//! answers, has the echo service (if granted one) repeat the name, and exits
//! with code 0, or 3 if the name was `fail`. Without StdIO (`spawn "hello"
//! with { timer: @timer } -> $h`) it sleeps, a second at a time, until it
//! is killed. It holds nothing but what it was granted.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use capos_rt::api::{Echo, StdIO};
use capos_rt::caps::schema::capos_capnp::terminal_session::LineStatus;
use capos_rt::{CallError, ClientEndpoint, Runtime, Timer};

capos_rt::entry!(main);

fn main(rt: &mut Runtime) -> i32 {
    let stdio = rt
        .cap::<ClientEndpoint>("stdio")
        .ok()
        .map(|c| c.protocol::<StdIO>());
    let echo = rt
        .cap::<ClientEndpoint>("echo")
        .ok()
        .map(|c| c.protocol::<Echo>());
    match stdio {
        Some(io) => match talk(rt, &io, echo.as_ref()) {
            Ok(code) => code,
            Err(_) => 2,
        },
        None => match rt.cap::<Timer>("timer") {
            // Nobody to talk to: sleep until stopped.
            Ok(timer) => loop {
                if timer.sleep(1_000_000_000).is_err() {
                    return 4;
                }
            },
            Err(_) => 1,
        },
    }
}

fn talk(rt: &Runtime, io: &StdIO, echo: Option<&Echo>) -> Result<i32, CallError> {
    io.write_line(&format!(
        "hello from pid {}, holding {} capabilities",
        rt.pid(),
        rt.capset().len()
    ))?;
    io.write(b"what is your name? ")?;
    let reply = io.read_line(64)?;
    let r = reply.get()?;
    let name = String::from_utf8_lossy(r.get_line()?).into_owned();
    match r.get_status() {
        Ok(LineStatus::Complete) => {}
        _ => {
            io.write_line("no name, then")?;
            return Ok(1);
        }
    }
    io.write_line(&format!("hello, {name}!"))?;
    if let Some(echo) = echo {
        let back = echo.echo(name.as_bytes())?;
        io.write_line(&format!(
            "the echo service says {:?}",
            String::from_utf8_lossy(&back)
        ))?;
    }
    Ok(if name == "fail" { 3 } else { 0 })
}
