//! fault-pf: takes a page fault (#PF): reads an unmapped address.
//! The kernel must end this process and carry on.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

capos_rt::entry!(main);

fn main(rt: &mut capos_rt::Runtime) -> i32 {
    fault::run(rt, "fault-pf", capos_rt::fault::page_fault)
}
