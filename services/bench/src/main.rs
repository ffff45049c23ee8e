//! The capOS micro-benchmarks behind `make bench`: the cost, in TSC cycles
//! per operation, of a NOP submitted one per `cap_enter`, NOPs batched to a
//! full submission queue per `cap_enter`, an empty `cap_enter`, and a CALL on
//! the measurement-only null capability. Each figure is the median of many
//! timed runs; one line per benchmark:
//! `bench: NAME median CYCLES cycles/op (min M, R runs of I ops)`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use capos_rt::ring::{Call, Op, TransferList, UserBuf, SQ_ENTRIES};
use capos_rt::syscall::cap_enter;
use capos_rt::time::rdtsc;
use capos_rt::{CallError, Console, Interface, NullCap, RingClient, Runtime};

capos_rt::entry!(main);

/// One benchmark body: runs its operations and returns how many it ran.
type Body<'a> = &'a dyn Fn(&mut RingClient) -> Result<u32, CallError>;

/// Timed runs per benchmark (odd, for a true median).
const RUNS: usize = 101;
/// Operations per timed run.
const OPS: u32 = 1024;

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let Ok(null) = rt.cap::<NullCap>("null") else {
        let _ = console.write_line("bench: no null cap");
        return 2;
    };
    let null_call = Op::Call(Call {
        cap_id: null.cap().id(),
        method_id: 0,
        params: UserBuf::EMPTY,
        result: UserBuf::EMPTY,
        transfers: TransferList::NONE,
    });
    let benches: [(&str, Body<'_>); 4] = [
        ("nop-single", &|c| one_per_enter(c, Op::Nop)),
        ("nop-batched", &|c| batched(c, Op::Nop)),
        ("cap-enter-empty", &|_| empty_enters()),
        ("null-call", &|c| one_per_enter(c, null_call)),
    ];
    for (name, body) in benches {
        let result = rt.ring().with_bench(|c| {
            body(c)?; // warm up caches and the TLB
            let mut samples = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                let start = rdtsc();
                let ops = body(c)?;
                samples.push((rdtsc() - start) / u64::from(ops));
            }
            Ok(samples)
        });
        match result {
            Ok(mut s) => {
                s.sort_unstable();
                let line = alloc::format!(
                    "bench: {name} median {} cycles/op (min {}, {RUNS} runs of {OPS} ops)",
                    s[RUNS / 2],
                    s[0]
                );
                let _ = console.write_line(&line);
            }
            Err(e) => {
                let _ = console.write_line(&alloc::format!("bench: {name} failed: {e}"));
                return 3;
            }
        }
    }
    0
}

/// `OPS` times: push one `op`, enter the kernel, reap its completion.
fn one_per_enter(c: &mut RingClient, op: Op) -> Result<u32, CallError> {
    for _ in 0..OPS {
        c.bench_push(op, 1)?;
        let n = cap_enter(1, 0);
        if n < 1 || c.bench_reap(1)? != 1 {
            return Err(CallError::Syscall(n));
        }
    }
    Ok(OPS)
}

/// `OPS` operations, a full submission queue per kernel entry.
fn batched(c: &mut RingClient, op: Op) -> Result<u32, CallError> {
    let batch = SQ_ENTRIES;
    for _ in 0..OPS / batch {
        c.bench_push(op, batch)?;
        let n = cap_enter(u64::from(batch), 0);
        if n < i64::from(batch) || c.bench_reap(batch)? != batch {
            return Err(CallError::Syscall(n));
        }
    }
    Ok(OPS / batch * batch)
}

/// `OPS` kernel entries with nothing submitted.
fn empty_enters() -> Result<u32, CallError> {
    for _ in 0..OPS {
        let n = cap_enter(0, 0);
        if n < 0 {
            return Err(CallError::Syscall(n));
        }
    }
    Ok(OPS)
}
