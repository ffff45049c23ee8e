//! A program to run from the shell (`run "hello" with { stdio: @stdio, echo:
//! @echo }`): it greets through the StdIO it is given (with a timer, it
//! first counts three ticks a tenth of a second apart), asks for a name,
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
    let timer = rt.cap::<Timer>("timer").ok();
    match stdio {
        Some(io) => talk(rt, &io, echo.as_ref(), timer.as_ref()).unwrap_or(2),
        None => match timer {
            // Nobody to talk to: sleep until stopped.
            Some(timer) => loop {
                if timer.sleep(1_000_000_000).is_err() {
                    return 4;
                }
            },
            None => 1,
        },
    }
}

fn talk(
    rt: &Runtime,
    io: &StdIO,
    echo: Option<&Echo>,
    timer: Option<&Timer>,
) -> Result<i32, CallError> {
    io.write_line(&format!(
        "hello from pid {}, holding {} capabilities",
        rt.pid(),
        rt.capset().len()
    ))?;
    if let Some(timer) = timer {
        for tick in 1..=3 {
            timer.sleep(100_000_000)?;
            io.write_line(&format!("tick {tick}"))?;
        }
    }
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
