//! fault-nm: executes an x87 instruction, which the kernel keeps disabled (#NM).
//! The kernel must end this process and carry on.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

capos_rt::entry!(main);

fn main(rt: &mut capos_rt::Runtime) -> i32 {
    fault::run(rt, "fault-nm", capos_rt::fault::x87)
}
