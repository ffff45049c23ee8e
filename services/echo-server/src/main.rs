//! Echo server: serves the `Echo` protocol (`caps/schema/services.capnp`)
//! on its endpoint through the dispatch generated from the schema. `echo`
//! answers with the data it was sent, `fail` with an application
//! exception, `quit` answers and then the server exits (so clients see what
//! a dead server looks like), `inspectCaps` reports the capabilities sent
//! with the call and releases them, `useTimer` uses a Timer sent with the
//! call.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capos_rt::capnp;
use capos_rt::capnp::message::Builder;
use capos_rt::caps::api::echo::{dispatch, Server};
use capos_rt::caps::exception::CapException;
use capos_rt::caps::schema::services_capnp::echo as schema;
use capos_rt::{Answer, CapHandle, Console, Endpoint, Interface, Runtime, ServerCall, Timer};
use core::cell::Cell;

capos_rt::entry!(main);

/// The server's state: its console, and whether a client asked it to quit.
struct EchoServer {
    console: Console,
    quit: Cell<bool>,
}

impl EchoServer {
    fn say(&self, s: &str) {
        let _ = self.console.write_line(s);
    }
}

impl Server<ServerCall> for EchoServer {
    fn echo(&self, cx: &mut ServerCall, p: schema::echo_params::Reader<'_>) -> Answer {
        let data = match p.get_data() {
            Ok(d) => d,
            Err(e) => return Answer::Exception(CapException::failed(format!("{e}"))),
        };
        self.say(&format!(
            "echo-server: echoing {} bytes for pid {}",
            data.len(),
            cx.caller_pid
        ));
        let mut out = Builder::new_default();
        out.init_root::<schema::echo_results::Builder>()
            .set_data(data);
        cx.result(&out)
    }

    fn fail(&self, _cx: &mut ServerCall) -> Answer {
        Answer::Exception(CapException::failed("echo method 1 always fails"))
    }

    fn quit(&self, cx: &mut ServerCall) -> Answer {
        self.quit.set(true);
        cx.empty()
    }

    fn inspect_caps(&self, cx: &mut ServerCall) -> Answer {
        let ids: Vec<String> = cx
            .caps
            .iter()
            .map(|c| format!("{:#x}", c.interface_id()))
            .collect();
        self.say(&format!(
            "echo-server: received {} cap(s) with interfaces [{}]",
            cx.caps.len(),
            ids.join(", ")
        ));
        let count = cx.caps.len() as u32;
        for c in core::mem::take(&mut cx.caps) {
            drop(CapHandle::adopt(c));
        }
        let mut out = Builder::new_default();
        out.init_root::<schema::inspect_caps_results::Builder>()
            .set_count(count);
        cx.result(&out)
    }

    fn use_timer(&self, cx: &mut ServerCall) -> Answer {
        let now = cx
            .caps
            .first()
            .filter(|c| c.interface_id() == Timer::INTERFACE_ID)
            .map(|c| Timer::from_cap(c.clone()).now());
        match now {
            Some(Ok(n)) => {
                self.say(&format!(
                    "echo-server: the moved timer works here (now {} ms)",
                    n / 1_000_000
                ));
                let mut out = Builder::new_default();
                out.init_root::<schema::use_timer_results::Builder>()
                    .set_nanos(n);
                cx.result(&out)
            }
            other => {
                self.say(&format!("echo-server: FAIL moved timer: {other:?}"));
                Answer::Exception(CapException::failed("no usable timer was sent"))
            }
        }
    }
}

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let server = EchoServer {
        console,
        quit: Cell::new(false),
    };
    let Ok(ep) = rt.cap::<Endpoint>("endpoint") else {
        server.say("echo-server: FAIL no endpoint");
        return 2;
    };
    server.say("echo-server: ready");
    loop {
        let mut call = match ep.recv(4096) {
            Ok(c) => c,
            Err(e) => {
                server.say(&format!("echo-server: FAIL recv: {e}"));
                return 3;
            }
        };
        let params = call.aligned_params();
        let mut cx = call.context();
        let answer = dispatch(
            &server,
            &mut cx,
            call.method_id,
            &capnp::Word::words_to_bytes(&params)[..call.params.len()],
        );
        if let Err(e) = ep.answer(call.call_id, answer) {
            server.say(&format!("echo-server: FAIL reply: {e}"));
        }
        if server.quit.get() {
            server.say("echo-server: asked to quit");
            return 0;
        }
    }
}
