//! Echo server: receives calls on its endpoint. Method 0 echoes the
//! parameters back, method 1 answers with an application exception, method
//! 2 answers and then exits (so clients see what a dead server looks like),
//! method 3 reports the capabilities sent with the call and releases them,
//! method 4 uses a Timer sent with the call.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use capos_rt::caps::exception::CapException;
use capos_rt::{CapHandle, Console, Endpoint, Interface, Runtime, Timer};

capos_rt::entry!(main);

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    let Ok(ep) = rt.cap::<Endpoint>("endpoint") else {
        say("echo-server: FAIL no endpoint");
        return 2;
    };
    say("echo-server: ready");
    loop {
        let call = match ep.recv(4096) {
            Ok(c) => c,
            Err(e) => {
                say(&format!("echo-server: FAIL recv: {e}"));
                return 3;
            }
        };
        let answered = match call.method_id {
            0 => {
                say(&format!(
                    "echo-server: echoing {} bytes for pid {}",
                    call.params.len(),
                    call.caller_pid
                ));
                ep.reply(call.call_id, call.params)
            }
            1 => ep.reply_exception(
                call.call_id,
                &CapException::failed("echo method 1 always fails"),
            ),
            2 => {
                let r = ep.reply(call.call_id, alloc::vec::Vec::new());
                say("echo-server: asked to quit");
                return if r.is_ok() { 0 } else { 4 };
            }
            3 => {
                let ids: alloc::vec::Vec<alloc::string::String> = call
                    .caps
                    .iter()
                    .map(|c| format!("{:#x}", c.interface_id()))
                    .collect();
                say(&format!(
                    "echo-server: received {} cap(s) with interfaces [{}]",
                    call.caps.len(),
                    ids.join(", ")
                ));
                for c in call.caps {
                    drop(CapHandle::adopt(c));
                }
                ep.reply(call.call_id, alloc::vec::Vec::new())
            }
            4 => {
                let now = call
                    .caps
                    .first()
                    .filter(|c| c.interface_id() == Timer::INTERFACE_ID)
                    .map(|c| Timer::from_cap(c.clone()).now());
                match now {
                    Some(Ok(n)) => say(&format!(
                        "echo-server: the moved timer works here (now {} ms)",
                        n / 1_000_000
                    )),
                    other => say(&format!("echo-server: FAIL moved timer: {other:?}")),
                }
                ep.reply(call.call_id, alloc::vec::Vec::new())
            }
            m => ep.reply_exception(
                call.call_id,
                &CapException::failed(format!("no method {m}")),
            ),
        };
        if let Err(e) = answered {
            say(&format!("echo-server: FAIL reply: {e}"));
        }
    }
}
