//! fault-de: takes a divide error (#DE): divides by zero.
//! The kernel must end this process and carry on.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

capos_rt::entry!(main);

fn main(rt: &mut capos_rt::Runtime) -> i32 {
    fault::run(rt, "fault-de", capos_rt::fault::divide_error)
}
