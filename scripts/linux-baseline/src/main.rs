//! Linux baseline for `make bench`: the cost of `getppid()` in TSC cycles on
//! this machine, measured the way the capOS benchmark measures itself (median
//! over many runs of a timed loop), printed as `baseline: <name> <cycles>`.

use std::arch::x86_64::_rdtsc;
use std::hint::black_box;

/// Iterations per timed run.
const ITERS: u64 = 10_000;
/// Timed runs; the median is reported.
const RUNS: usize = 101;

fn tsc() -> u64 {
    // SAFETY: RDTSC has no memory effects and is allowed in user mode on Linux.
    unsafe { _rdtsc() }
}

/// Median cycles per call of `op` over `RUNS` runs of `ITERS` calls.
fn median_cycles(mut op: impl FnMut()) -> u64 {
    for _ in 0..ITERS {
        op();
    }
    let mut samples: Vec<u64> = (0..RUNS)
        .map(|_| {
            let start = tsc();
            for _ in 0..ITERS {
                op();
            }
            (tsc() - start) / ITERS
        })
        .collect();
    samples.sort_unstable();
    samples[RUNS / 2]
}

fn main() {
    // `parent_id` is a direct getppid(2) call; glibc does not cache it.
    let getppid = median_cycles(|| {
        black_box(std::os::unix::process::parent_id());
    });
    println!("baseline: linux-getppid {getppid}");
}
