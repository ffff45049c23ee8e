#![no_std]
#![no_main]
capos_rt::entry!(main);
fn main(_rt: &mut capos_rt::Runtime) -> i32 { 0 }
