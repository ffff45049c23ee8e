//! Echo server: receives calls on its endpoint. Method 0 echoes the
//! parameters back, method 1 answers with an application exception, method
//! 2 answers and then exits (so clients see what a dead server looks like).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use capos_rt::caps::exception::CapException;
use capos_rt::{Console, Endpoint, Runtime};

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
