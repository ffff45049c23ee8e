//! The minimal capOS service: prints one line on the console and exits 0.
//! Copy this crate to start a new service (see docs/adding-a-service.md).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use capos_rt::{Console, Runtime};

capos_rt::entry!(main);

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    match console.write_line("template: hello from a capOS service") {
        Ok(()) => 0,
        Err(_) => 2,
    }
}
