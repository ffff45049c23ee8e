//! Shared body of the fault binaries: announce the fault, take it, and
//! report failure if the process is still running afterwards.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use capos_rt::{Console, Runtime};

/// Prints `<name>: about to fault`, runs `fault`, and if that returns
/// prints that the fault did not end the process and returns exit code 1.
pub fn run(rt: &mut Runtime, name: &str, fault: fn()) -> i32 {
    let console = rt.cap::<Console>("console").ok();
    let say = |line: &str| {
        if let Some(c) = &console {
            let _ = c.write_line(line);
        }
    };
    say(&format!("{name}: about to fault"));
    fault();
    say(&format!("{name}: FAIL still running after the fault"));
    1
}
