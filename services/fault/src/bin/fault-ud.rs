//! fault-ud: takes an invalid-opcode fault (#UD): executes ud2.
//! The kernel must end this process and carry on.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

capos_rt::entry!(main);

fn main(rt: &mut capos_rt::Runtime) -> i32 {
    fault::run(rt, "fault-ud", capos_rt::fault::invalid_opcode)
}
