//! The capOS micro-benchmarks behind `make bench`, in TSC ticks (cycles on
//! hardware, instructions under QEMU's `-icount shift=0`): the cost
//! per operation of a NOP submitted one per `cap_enter`, NOPs batched to a
//! full submission queue per `cap_enter`, an empty `cap_enter` and a CALL on
//! the measurement-only null capability; then the round trip of a CALL
//! through a kernel endpoint to a server process and its RETURN, with the
//! two processes pinned to one CPU and to two. Each figure is the median
//! (and the minimum) of many timed runs; one line per benchmark:
//! `bench: NAME median CYCLES cycles/UNIT (min M, R runs of I UNITs)`.
//!
//! Before any of them the driver checks whether the TSC counts instructions
//! (QEMU TCG with `-icount shift=0`): `bench: premise rdtsc D expected E`,
//! the smallest TSC delta of a few runs of a loop of exactly E instructions
//! (`capos_rt::time::counted_loop`). `make bench` reports path lengths only
//! when D equals E, and reads every figure as instructions then.
//!
//! Each benchmark's operation is one `#[inline(never)]` function (`op_*`),
//! called once per operation by the timed loop, so that `make pathprof` can
//! single-step exactly one of them (docs/bench.md).
//!
//! One binary plays three roles, chosen by what its CapSet holds:
//!
//! * the driver (init, holding `spawner`): runs the single-process
//!   benchmarks, then for each IPC placement spawns a server and a client
//!   (this same binary) pinned to their CPUs and waits for both;
//! * the server (holding `endpoint`): RECV, then RETURN and the next RECV
//!   in one `cap_enter`, until told to quit;
//! * the client (holding a `ClientEndpoint`, whose CapSet name is the
//!   benchmark's name): times the round trips and prints the results.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use capos_rt::caps::interfaces;
use capos_rt::caps::manifest::KernelKind;
use capos_rt::ring::process::{CallHeader, TIMEOUT_FOREVER};
use capos_rt::ring::{Call, Op, TransferList, UserBuf, SQ_ENTRIES};
use capos_rt::syscall::cap_enter;
use capos_rt::time::{counted_loop, counted_loop_instructions, rdtsc};
use capos_rt::{
    BenchBuf, BenchSqe, CallError, Console, Endpoint, GrantSpec, Interface, NullCap, Placement,
    ProcessSpawner, RingClient, Runtime,
};
use core::num::NonZeroU64;

capos_rt::entry!(main);

/// One benchmark body: runs its operations and returns how many it ran.
type Body<'a> = &'a dyn Fn(&mut RingClient) -> Result<u32, CallError>;

/// Timed runs per benchmark (odd, for a true median).
const RUNS: usize = 101;
/// Operations per timed run.
const OPS: u32 = 1024;
/// Round trips per timed IPC run.
const IPC_OPS: u32 = 256;
/// Bytes of parameters each IPC call sends and of result it gets back.
const IPC_BYTES: u32 = 16;

/// The IPC benchmark protocol (method ids of the server).
mod method {
    /// Answer with `IPC_BYTES` bytes.
    pub const ECHO: u16 = 0;
    /// Answer with two TSC stamps: when the call arrived in the server and
    /// when the server answered.
    pub const STAMP: u16 = 1;
    /// Answer, then exit.
    pub const QUIT: u16 = 2;
}

/// The IPC placements measured: (benchmark name, client CPU, server CPU).
/// IPC runs: name, client CPU, server CPU, whether the server's RECV asks
/// for the caller's session reference (`RECV_FLAG_CALLER_SESSION`).
const PLACEMENTS: [(&str, u32, u32, bool); 3] = [
    ("ipc-same-cpu", 0, 0, false),
    ("ipc-cross-cpu", 0, 1, false),
    ("ipc-session-same-cpu", 0, 0, true),
];
/// The grant that tells an IPC server to ask for the caller reference.
const SESSION_MARK: &str = "caller-session";

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 1;
    };
    let say = |line: &str| {
        let _ = console.write_line(line);
    };
    if let Ok(ep) = rt.cap::<Endpoint>("endpoint") {
        let with_session = rt.cap_any(SESSION_MARK).is_ok();
        return match serve(rt, ep.cap().id(), with_session) {
            Ok(()) => 0,
            Err(e) => {
                say(&format!("bench: ipc server failed: {e}"));
                4
            }
        };
    }
    let client = rt
        .capset()
        .iter()
        .find(|e| e.interface_id == interfaces::CLIENT_ENDPOINT)
        .map(|e| {
            (
                alloc::string::String::from(e.name().unwrap_or("ipc")),
                e.cap_id,
            )
        });
    if let Some((name, cap_id)) = client {
        return match call_loop(rt, &name, cap_id) {
            Ok(lines) => {
                for l in lines {
                    say(&l);
                }
                0
            }
            Err(e) => {
                say(&format!("bench: {name} failed: {e}"));
                5
            }
        };
    }
    premise(&say);
    if let Err(code) = single_process(rt, &say) {
        return code;
    }
    match rt.cap::<ProcessSpawner>("spawner") {
        Ok(spawner) => {
            for (name, client_cpu, server_cpu, with_session) in PLACEMENTS {
                ipc(&spawner, name, (client_cpu, server_cpu), with_session, &say);
            }
        }
        Err(_) => say("bench: no spawner cap; IPC benchmarks skipped"),
    }
    if let Some(r) = rt
        .cap::<NullCap>("null")
        .ok()
        .and_then(|n| n.counters().ok())
    {
        if let Ok(r) = r.get() {
            match r.get_longest_interrupts_off() {
                0 => say("bench: longest interrupts-off stretch: not measured by this kernel"),
                n => say(&format!(
                    "bench: longest interrupts-off stretch since boot: {n} cycles"
                )),
            }
        }
    }
    0
}

/// Iterations of the premise loop.
const PREMISE_ITERATIONS: u32 = 1000;
/// Tries of the premise loop; the smallest delta counts (a timer interrupt
/// landing inside one try only makes that try longer).
const PREMISE_TRIES: usize = 5;

/// Prints the smallest TSC delta of `PREMISE_TRIES` runs of the counted
/// loop beside the loop's exact instruction count.
fn premise(say: &dyn Fn(&str)) {
    let delta = (0..PREMISE_TRIES)
        .map(|_| counted_loop(PREMISE_ITERATIONS))
        .min()
        .unwrap_or(0);
    say(&format!(
        "bench: premise rdtsc {delta} expected {}",
        counted_loop_instructions(PREMISE_ITERATIONS)
    ));
}

/// The benchmarks of this process's own ring.
fn single_process(rt: &mut Runtime, say: &dyn Fn(&str)) -> Result<(), i32> {
    let Ok(null) = rt.cap::<NullCap>("null") else {
        say("bench: no null cap");
        return Err(2);
    };
    // The submissions are encoded once, outside the timed loops.
    let encoded = rt.ring().with_bench(|c| {
        let null_call = Op::Call(Call {
            cap_id: null.cap().id(),
            method_id: 0,
            params: UserBuf::EMPTY,
            result: UserBuf::EMPTY,
            transfers: TransferList::NONE,
        });
        Ok((c.bench_sqe(Op::Nop)?, c.bench_sqe(null_call)?))
    });
    let (nop, null_call) = match encoded {
        Ok(e) => e,
        Err(e) => {
            say(&format!(
                "bench: cannot encode the benchmark submissions: {e}"
            ));
            return Err(3);
        }
    };
    let benches: [(&str, Body<'_>); 4] = [
        ("nop-single", &|c| repeat(OPS, || op_nop_single(c, &nop))),
        ("nop-batched", &|c| {
            repeat(OPS / SQ_ENTRIES, || op_nop_batch(c, &nop)).map(|n| n * SQ_ENTRIES)
        }),
        ("cap-enter-empty", &|_| repeat(OPS, op_cap_enter_empty)),
        ("null-call", &|c| {
            repeat(OPS, || op_null_call(c, &null_call))
        }),
    ];
    for (name, body) in benches {
        // Warm up caches, the TLB and the kernel's per-ring buffers.
        let warm = rt.ring().with_bench(|c| body(c));
        let before = heap_allocations(Some(&null));
        let result = warm.and_then(|_| {
            rt.ring().with_bench(|c| {
                let mut samples = Vec::with_capacity(RUNS);
                for _ in 0..RUNS {
                    let start = rdtsc();
                    let ops = body(c)?;
                    samples.push((rdtsc() - start) / u64::from(ops));
                }
                Ok(samples)
            })
        });
        let after = heap_allocations(Some(&null));
        match result {
            Ok(s) => {
                say(&median_line(name, s, "op", OPS));
                say(&allocation_line(name, before, after));
            }
            Err(e) => {
                say(&format!("bench: {name} failed: {e}"));
                return Err(3);
            }
        }
    }
    Ok(())
}

/// Kernel heap allocations since boot, read through `null`'s counters
/// (`None` without the cap, or if the call fails). The call itself
/// allocates nothing in the kernel.
fn heap_allocations(null: Option<&NullCap>) -> Option<u64> {
    let reply = null?.counters().ok()?;
    reply.get().ok().map(|r| r.get_heap_allocations())
}

/// `bench: NAME kernel heap allocations in timed runs: N`.
fn allocation_line(name: &str, before: Option<u64>, after: Option<u64>) -> alloc::string::String {
    match (before, after) {
        (Some(b), Some(a)) => format!(
            "bench: {name} kernel heap allocations in timed runs: {}",
            a.saturating_sub(b)
        ),
        _ => format!("bench: {name} kernel heap allocations in timed runs: not measured"),
    }
}

/// `bench: NAME median ... (min ...)` for per-run figures `s`.
fn median_line(name: &str, mut s: Vec<u64>, unit: &str, per_run: u32) -> alloc::string::String {
    s.sort_unstable();
    format!(
        "bench: {name} median {} cycles/{unit} (min {}, {} runs of {per_run} {unit}s)",
        s[s.len() / 2],
        s[0],
        s.len()
    )
}

/// Runs `op` `n` times; returns `n`.
#[inline(always)]
fn repeat(n: u32, mut op: impl FnMut() -> Result<(), CallError>) -> Result<u32, CallError> {
    for _ in 0..n {
        op()?;
    }
    Ok(n)
}

/// Pushes `sqe`, enters the kernel, reaps its completion. `name` is the
/// benchmark's, for the error (and it keeps the `op_*` functions, whose
/// bodies are otherwise the same, from being merged into one).
#[inline(always)]
fn one_per_enter(c: &mut RingClient, sqe: &BenchSqe, name: &'static str) -> Result<(), CallError> {
    c.bench_push(sqe)?;
    let n = cap_enter(1, 0);
    if n < 1 {
        return Err(CallError::Syscall(n));
    }
    if c.bench_reap(1)? != 1 {
        return Err(CallError::Protocol(name));
    }
    Ok(())
}

/// One operation of `nop-single`: one NOP per `cap_enter`.
#[inline(never)]
fn op_nop_single(c: &mut RingClient, nop: &BenchSqe) -> Result<(), CallError> {
    one_per_enter(c, nop, "nop-single: the completion went missing")
}

/// One operation of `null-call`: one CALL on the null cap per `cap_enter`.
#[inline(never)]
fn op_null_call(c: &mut RingClient, call: &BenchSqe) -> Result<(), CallError> {
    one_per_enter(c, call, "null-call: the completion went missing")
}

/// One batch of `nop-batched`: a full submission queue of NOPs, one
/// `cap_enter`, all completions reaped (`SQ_ENTRIES` operations).
#[inline(never)]
fn op_nop_batch(c: &mut RingClient, nop: &BenchSqe) -> Result<(), CallError> {
    let batch = SQ_ENTRIES;
    c.bench_push_batch(nop, batch)?;
    let n = cap_enter(u64::from(batch), 0);
    if n < i64::from(batch) || c.bench_reap(batch)? != batch {
        return Err(CallError::Syscall(n));
    }
    Ok(())
}

/// One operation of `cap-enter-empty`: `cap_enter(0, 0)`, nothing
/// submitted.
#[inline(never)]
fn op_cap_enter_empty() -> Result<(), CallError> {
    let n = cap_enter(0, 0);
    if n < 0 {
        return Err(CallError::Syscall(n));
    }
    Ok(())
}

/// Spawns an IPC server pinned to `server_cpu` and a client pinned to
/// `client_cpu` that measures the round trip as benchmark `name`, and waits
/// for both. A placement the machine cannot give (no such CPU) is reported
/// and skipped.
fn ipc(
    spawner: &ProcessSpawner,
    name: &str,
    (client_cpu, server_cpu): (u32, u32),
    with_session: bool,
    say: &dyn Fn(&str),
) {
    let console = GrantSpec::Kernel {
        name: "console",
        kind: KernelKind::Console,
    };
    let mut server_grants = alloc::vec![
        console,
        GrantSpec::Kernel {
            name: "endpoint",
            kind: KernelKind::Endpoint,
        },
    ];
    if with_session {
        server_grants.push(GrantSpec::Kernel {
            name: SESSION_MARK,
            kind: KernelKind::Null,
        });
    }
    let server = match spawner.spawn_placed(
        "bench-ipc-server",
        "bench",
        &server_grants,
        Placement::Cpu(server_cpu),
    ) {
        Ok(s) => s,
        Err(e) => {
            say(&format!("bench: {name} skipped: {e}"));
            return;
        }
    };
    let Some((_, facet)) = server.facets.first() else {
        say(&format!(
            "bench: {name} skipped: the server has no endpoint"
        ));
        return;
    };
    let client_grants = [
        console,
        GrantSpec::Kernel {
            name: "null",
            kind: KernelKind::Null,
        },
        GrantSpec::Copy {
            name,
            cap: facet.cap(),
        },
    ];
    let client = spawner.spawn_placed(
        "bench-ipc-client",
        "bench",
        &client_grants,
        Placement::Cpu(client_cpu),
    );
    match client {
        Ok(c) => {
            if let Ok(code @ 1..) = c.handle.wait() {
                say(&format!("bench: {name} client exited with code {code}"));
            }
        }
        Err(e) => {
            say(&format!("bench: {name} skipped: {e}"));
            // The server still waits for a call: tell it to go.
            let _ = facet.call(method::QUIT, Vec::new());
        }
    }
    if let Ok(code @ 1..) = server.handle.wait() {
        say(&format!("bench: {name} server exited with code {code}"));
    }
}

/// The server: RECV (asking for the caller's session reference when
/// `with_session`); then for each call, RETURN it and RECV the next in one
/// `cap_enter` (which comes back once both have completed).
fn serve(rt: &Runtime, ep: u64, with_session: bool) -> Result<(), CallError> {
    rt.ring().with_bench(|c| {
        let recv = c.bench_recv(ep, with_session)?;
        let mut answer = c.bench_return(ep, IPC_BYTES)?;
        c.bench_push(&recv)?;
        let mut pending = 1;
        loop {
            let n = cap_enter(u64::from(pending), TIMEOUT_FOREVER);
            if n < i64::from(pending) {
                return Err(CallError::Syscall(n));
            }
            let arrived = rdtsc();
            let call_id = NonZeroU64::new(c.bench_reap_call(pending)?)
                .ok_or(CallError::Protocol("no call delivered"))?;
            let header = CallHeader::from_bytes(c.bench_buf(BenchBuf::Recv)?)
                .ok_or(CallError::Protocol("short call header"))?;
            match header.method_id {
                method::ECHO => {}
                method::STAMP => {
                    let out = c.bench_buf(BenchBuf::Out)?;
                    out[..8].copy_from_slice(&arrived.to_le_bytes());
                    out[8..16].copy_from_slice(&rdtsc().to_le_bytes());
                }
                _ => {
                    let mut last = c.bench_return(ep, 0)?;
                    last.set_call_id(call_id);
                    c.bench_push(&last)?;
                    let n = cap_enter(1, TIMEOUT_FOREVER);
                    if n < 1 || c.bench_reap(1)? != 1 {
                        return Err(CallError::Syscall(n));
                    }
                    return Ok(());
                }
            }
            answer.set_call_id(call_id);
            c.bench_push_pair(&answer, &recv)?;
            pending = 2;
        }
    })
}

/// One CALL (`call`, made by `bench_call` with `IPC_BYTES` each way),
/// waited for: one operation of the IPC benchmarks.
#[inline(never)]
fn op_ipc_round_trip(c: &mut RingClient, call: &BenchSqe) -> Result<(), CallError> {
    c.bench_push(call)?;
    let n = cap_enter(1, TIMEOUT_FOREVER);
    if n < 1 || c.bench_reap(1)? != 1 {
        return Err(CallError::Syscall(n));
    }
    Ok(())
}

/// The client: times `RUNS` runs of `IPC_OPS` round trips; then a second
/// pass in which the server stamps each call, splitting the round trip into
/// its two crossings and the server's own time. Returns the lines to print.
fn call_loop(
    rt: &Runtime,
    name: &str,
    cap_id: u64,
) -> Result<Vec<alloc::string::String>, CallError> {
    let null = rt.cap::<NullCap>("null").ok();
    let (echo, stamp, quit) = rt.ring().with_bench(|c| {
        c.bench_buf(BenchBuf::Out)?[..IPC_BYTES as usize].fill(0x5a);
        let echo = c.bench_call(cap_id, method::ECHO, IPC_BYTES, IPC_BYTES)?;
        for _ in 0..IPC_OPS {
            op_ipc_round_trip(c, &echo)?; // warm up
        }
        Ok((
            echo,
            c.bench_call(cap_id, method::STAMP, IPC_BYTES, IPC_BYTES)?,
            c.bench_call(cap_id, method::QUIT, 0, 0)?,
        ))
    })?;
    let before = heap_allocations(null.as_ref());
    let samples = rt.ring().with_bench(|c| {
        let mut samples = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let start = rdtsc();
            for _ in 0..IPC_OPS {
                op_ipc_round_trip(c, &echo)?;
            }
            samples.push((rdtsc() - start) / u64::from(IPC_OPS));
        }
        Ok(samples)
    })?;
    let after = heap_allocations(null.as_ref());
    rt.ring().with_bench(|c| {
        // Per-run means of each part, then the median run of each.
        let mut parts: [Vec<u64>; 3] = [const { Vec::new() }; 3];
        for _ in 0..RUNS {
            let mut sums = [0u64; 3];
            for _ in 0..IPC_OPS {
                let sent = rdtsc();
                op_ipc_round_trip(c, &stamp)?;
                let back = rdtsc();
                let r = c.bench_buf(BenchBuf::Result)?;
                let arrived = u64::from_le_bytes(r[..8].try_into().unwrap_or_default());
                let answered = u64::from_le_bytes(r[8..16].try_into().unwrap_or_default());
                // Both CPUs' TSCs are one clock (invariant TSC); a stamp
                // that still looks early counts as no time.
                sums[0] += arrived.saturating_sub(sent);
                sums[1] += answered.saturating_sub(arrived);
                sums[2] += back.saturating_sub(answered);
            }
            for (p, s) in parts.iter_mut().zip(sums) {
                p.push(s / u64::from(IPC_OPS));
            }
        }
        c.bench_push(&quit)?;
        let n = cap_enter(1, TIMEOUT_FOREVER);
        if n < 1 || c.bench_reap(1)? != 1 {
            return Err(CallError::Syscall(n));
        }
        let median = |v: &mut Vec<u64>| {
            v.sort_unstable();
            v[v.len() / 2]
        };
        let [mut to_server, mut in_server, mut to_client] = parts;
        Ok(alloc::vec![
            median_line(name, samples, "round trip", IPC_OPS),
            allocation_line(name, before, after),
            format!(
                "bench: {name} parts: call to server {}, in server {}, return to client {} cycles (median per-run means of a stamped pass)",
                median(&mut to_server),
                median(&mut in_server),
                median(&mut to_client)
            ),
        ])
    })
}
