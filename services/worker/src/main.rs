//! worker: a CPU-bound process for scheduler tests. It computes a checksum
//! over a fixed number of xorshift steps seeded by its pid, never entering
//! the kernel meanwhile, so only timer preemption lets other processes run;
//! then it prints `worker <pid>: done checksum=<x>` and exits 0.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use capos_rt::{Console, Runtime};

capos_rt::entry!(main);

/// Steps of the loop: about a second of CPU under QEMU's TCG, well under
/// that with KVM.
const ITERATIONS: u64 = 64 << 20;

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 2;
    };
    let pid = rt.pid();
    let _ = console.write_line(&format!("worker {pid}: started"));
    let sum = checksum(core::hint::black_box(pid), ITERATIONS);
    match console.write_line(&format!("worker {pid}: done checksum={sum:#018x}")) {
        Ok(()) => 0,
        Err(_) => 3,
    }
}

/// xorshift64 from a seed derived from `pid`, folded into a running sum.
fn checksum(pid: u64, iterations: u64) -> u64 {
    let mut x = pid.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut sum = 0u64;
    for i in 0..iterations {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum = sum.rotate_left(1) ^ x.wrapping_add(i);
    }
    sum
}
