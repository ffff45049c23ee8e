//! Schema registry: serves `SchemaRegistry` (`caps/schema/services.capnp`)
//! on its endpoint from the schema compiled into it
//! (`capos_caps::SCHEMA_REQUEST`), through the generated dispatch:
//! `interfaces` lists every interface, `node` answers one schema node as a
//! message of its own. The request is indexed once at start-up
//! ([`registry::Registry`]).
//!
//! The registry runs until asked to stop through `ServiceControl.stop` on
//! its optional `control` endpoint, which only the holder of that cap can
//! call; clients of the registry cannot stop it.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use capos_rt::caps::api::{schema_registry, service_control};
use capos_rt::caps::exception::CapException;
use capos_rt::caps::schema::services_capnp::schema_registry as proto;
use capos_rt::{Answer, Console, Endpoint, Runtime, ServerCall};
use core::cell::Cell;
use registry::Registry;

capos_rt::entry!(main);

use capos_rt::serve::PARAMS_CAPACITY;

struct RegistryServer {
    registry: Registry,
}

impl schema_registry::Server<ServerCall> for RegistryServer {
    fn interfaces(&self, _cx: &mut ServerCall) -> Answer {
        Answer::Result {
            bytes: self.registry.interfaces_answer().to_vec(),
            caps: Vec::new(),
        }
    }

    fn node(&self, _cx: &mut ServerCall, p: proto::node_params::Reader<'_>) -> Answer {
        match self.registry.node_answer(p.get_id()) {
            Ok(bytes) => Answer::Result {
                bytes,
                caps: Vec::new(),
            },
            Err(refusal) => Answer::Exception(CapException::failed(format!("{refusal}"))),
        }
    }
}

/// The `control` endpoint's server: `stop` sets the flag.
struct Control {
    stop: Cell<bool>,
}

impl service_control::Server<ServerCall> for Control {
    fn stop(&self, cx: &mut ServerCall) -> Answer {
        self.stop.set(true);
        cx.empty()
    }
}

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |s: &str| {
        let _ = console.write_line(s);
    };
    let Ok(ep) = rt.cap::<Endpoint>("endpoint") else {
        say("registry: FAIL no endpoint");
        return 2;
    };
    let control = rt.cap::<Endpoint>("control").ok();
    let server = match Registry::new(capos_rt::caps::SCHEMA_REQUEST) {
        Ok(registry) => RegistryServer { registry },
        Err(e) => {
            say(&format!("registry: FAIL the compiled schema: {e}"));
            return 3;
        }
    };
    let stopper = Control {
        stop: Cell::new(false),
    };
    say(&format!(
        "registry: serving {} interfaces and {} schema nodes ({} bytes)",
        server.registry.entries().len(),
        server.registry.node_count(),
        server.registry.bytes()
    ));
    let ring = rt.ring().clone();
    let start = |ep: &Endpoint| ep.start_recv(PARAMS_CAPACITY);
    let (Ok(mut served), Ok(mut controlled)) =
        (start(&ep), control.as_ref().map(start).transpose())
    else {
        say("registry: FAIL submitting RECV");
        return 4;
    };
    loop {
        let waiting: Vec<_> = core::iter::once(served).chain(controlled).collect();
        let ready = match ring.wait_any(&waiting) {
            Ok(t) => t,
            Err(e) => {
                say(&format!("registry: FAIL wait: {e}"));
                return 5;
            }
        };
        let Some(done) = ring.take(ready) else {
            say("registry: FAIL completion missing");
            return 5;
        };
        let (endpoint, outcome) = if ready == served {
            let call = match ep.finish_recv(done) {
                Ok(call) => call,
                Err(e) => {
                    say(&format!("registry: FAIL RECV: {e}"));
                    return 6;
                }
            };
            let r = capos_rt::serve::serve(&ep, call, &server, schema_registry::dispatch);
            served = match start(&ep) {
                Ok(t) => t,
                Err(e) => {
                    say(&format!("registry: FAIL RECV: {e}"));
                    return 6;
                }
            };
            ("endpoint", r)
        } else {
            let Some(c) = control.as_ref() else {
                return 5;
            };
            let call = match c.finish_recv(done) {
                Ok(call) => call,
                Err(e) => {
                    say(&format!("registry: FAIL RECV on its control endpoint: {e}"));
                    return 6;
                }
            };
            let r = capos_rt::serve::serve(c, call, &stopper, service_control::dispatch);
            if stopper.stop.get() {
                say("registry: stopped");
                return 0;
            }
            controlled = match start(c) {
                Ok(t) => Some(t),
                Err(e) => {
                    say(&format!("registry: FAIL RECV: {e}"));
                    return 6;
                }
            };
            ("control", r)
        };
        if let Err(e) = outcome {
            // An answer the kernel refuses (e.g. the caller is gone) ends
            // nothing here.
            say(&format!(
                "registry: call on its {endpoint} not answered: {e}"
            ));
        }
    }
}
