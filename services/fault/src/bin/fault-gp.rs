//! fault-gp: takes a general-protection fault (#GP): reads a non-canonical address.
//! The kernel must end this process and carry on.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

capos_rt::entry!(main);

fn main(rt: &mut capos_rt::Runtime) -> i32 {
    fault::run(rt, "fault-gp", capos_rt::fault::general_protection)
}
