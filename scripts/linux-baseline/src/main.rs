//! Linux baseline for `make bench`, measured the way the capOS benchmark
//! measures itself (timed loops, many runs, TSC ticks per operation):
//!
//! * `linux-getppid`: one `getppid()` system call;
//! * `linux-pipe-{same,cross}-cpu`: a round trip between two processes over
//!   a pair of pipes, 16 bytes each way;
//! * `linux-futex-{same,cross}-cpu`: a round trip between two processes
//!   over shared memory, 16 bytes each way, each side sleeping in
//!   `FUTEX_WAIT` and waking the other with `FUTEX_WAKE`.
//!
//! `make bench` runs it as `/init` of a Linux guest (a static build in an
//! initramfs, `scripts/linux-guest.sh`) under the same QEMU flags as capOS,
//! so both are measured by the same clock: instructions under TCG with
//! `-icount shift=0`, cycles under hardware KVM. It first prints
//! `baseline: premise rdtsc D expected E`, the smallest TSC delta of a
//! loop of exactly E instructions (the same loop as capOS's bench), so the
//! caller can tell whether the TSC counts instructions.
//!
//! "same" pins both processes to CPU 0, "cross" pins the caller to CPU 0
//! and the answering process to CPU 1 (`sched_setaffinity`). Each result is
//! printed as `baseline: <name> median <ticks> min <ticks>`, or
//! `baseline: <name> unavailable (<why>)` when the machine cannot do it
//! (one CPU, affinity refused). Run as process 1 it powers the machine off
//! at the end, so the guest's run ends on its own; run as an ordinary
//! program it just exits.

use std::arch::x86_64::_rdtsc;
use std::hint::black_box;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

/// Iterations per timed run of a system call.
const ITERS: u64 = 1_000;
/// Round trips per timed run of an IPC benchmark.
const IPC_ITERS: u64 = 100;
/// Timed runs; the median and the minimum are reported. Runs are short
/// beside the guest's timer tick (4 ms, 4 million instructions under
/// `-icount shift=0`), so most of them see no tick and the minimum is a run
/// without one.
const RUNS: usize = 101;
/// Iterations of the premise loop, and tries of it.
const PREMISE_ITERATIONS: u32 = 1000;
const PREMISE_TRIES: usize = 5;
/// Bytes each way per round trip (the capOS IPC benchmark's size).
const PAYLOAD: usize = 16;

fn tsc() -> u64 {
    // SAFETY: RDTSC has no memory effects and is allowed in user mode on Linux.
    unsafe { _rdtsc() }
}

/// Instructions [`counted_loop`]`(n)` executes from its first RDTSC
/// (exclusive) to its second (inclusive): three moves, `n` times `dec` and
/// `jnz`, and the second RDTSC (capOS's `capos_rt::time` has the same
/// loop).
fn counted_loop_instructions(n: u32) -> u64 {
    2 * u64::from(n.max(1)) + 4
}

/// The TSC delta around a loop of exactly `counted_loop_instructions(n)`
/// instructions.
#[inline(never)]
fn counted_loop(n: u32) -> u64 {
    let n = n.max(1);
    let (lo, hi, lo2, hi2): (u32, u32, u32, u32);
    // SAFETY: reads the TSC twice around a register-only loop; touches no
    // memory and no stack. `lo`/`hi` are `out` registers, so they never
    // share a register with the input `n`.
    unsafe {
        std::arch::asm!(
            "rdtsc",
            "mov {lo:e}, eax",
            "mov {hi:e}, edx",
            "mov ecx, {n:e}",
            "2:",
            "dec ecx",
            "jnz 2b",
            "rdtsc",
            lo = out(reg) lo,
            hi = out(reg) hi,
            n = in(reg) n,
            out("eax") lo2,
            out("edx") hi2,
            out("ecx") _,
            options(nomem, nostack),
        );
    }
    let start = u64::from(hi) << 32 | u64::from(lo);
    let end = u64::from(hi2) << 32 | u64::from(lo2);
    end.wrapping_sub(start)
}

/// Median and minimum TSC ticks per call of `op` over `RUNS` runs of
/// `iters` calls (after one warm-up run).
fn measure(iters: u64, mut op: impl FnMut() -> io::Result<()>) -> io::Result<(u64, u64)> {
    for _ in 0..iters {
        op()?;
    }
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = tsc();
        for _ in 0..iters {
            op()?;
        }
        samples.push((tsc() - start) / iters);
    }
    samples.sort_unstable();
    Ok((samples[RUNS / 2], samples[0]))
}

/// Pins the calling process to `cpu`.
fn pin(cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (checked by the callers' CPU count).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn check(r: isize, want: usize) -> io::Result<()> {
    if r == want as isize {
        Ok(())
    } else if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Err(io::Error::other(format!(
            "short transfer: {r} of {want} bytes"
        )))
    }
}

/// Runs `child` in a forked process pinned to `child_cpu` (it must return
/// when the parent's side is done) and `parent` here pinned to
/// `parent_cpu`; then waits for the child.
fn with_child(
    parent_cpu: usize,
    child_cpu: usize,
    child: impl FnOnce(),
    parent: impl FnOnce() -> io::Result<(u64, u64)>,
) -> io::Result<(u64, u64)> {
    pin(parent_cpu)?;
    // SAFETY: this program is single-threaded; the child runs only
    // `child` (system calls on memory and descriptors set up before the
    // fork, no allocation) and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        let code = if pin(child_cpu).is_ok() {
            child();
            0
        } else {
            1
        };
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let result = parent();
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let cycles = result?;
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(cycles)
    } else {
        Err(io::Error::other("the answering process failed"))
    }
}

fn pipe() -> io::Result<[libc::c_int; 2]> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } == 0 {
        Ok(fds)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads exactly `buf.len()` bytes from `fd` in one `read` (a pipe hands a
/// small write over whole).
fn read_fd(fd: libc::c_int, buf: &mut [u8]) -> io::Result<()> {
    // SAFETY: `buf` is valid for writes of its length.
    check(
        unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) },
        buf.len(),
    )
}

/// Writes `buf` to `fd` in one `write`.
fn write_fd(fd: libc::c_int, buf: &[u8]) -> io::Result<()> {
    // SAFETY: `buf` is valid for reads of its length.
    check(
        unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) },
        buf.len(),
    )
}

fn close(fd: libc::c_int) {
    // SAFETY: `fd` is a descriptor this process owns and closes once.
    unsafe { libc::close(fd) };
}

/// Round trip over two pipes: write 16 bytes, the other process reads them
/// and writes 16 back, read them.
fn pipe_round_trip(client_cpu: usize, server_cpu: usize) -> io::Result<(u64, u64)> {
    let [req_r, req_w] = pipe()?;
    let [rep_r, rep_w] = pipe()?;
    let server = || {
        // Only the client may hold the request pipe's write end, so that
        // closing it ends this loop (read returns 0).
        close(req_w);
        close(rep_r);
        let mut buf = [0u8; PAYLOAD];
        while read_fd(req_r, &mut buf).is_ok() && write_fd(rep_w, &buf).is_ok() {}
    };
    let client = || {
        close(req_r);
        close(rep_w);
        let mut buf = [0x5au8; PAYLOAD];
        let r = measure(IPC_ITERS, || {
            write_fd(req_w, &buf)?;
            read_fd(rep_r, &mut buf)
        });
        close(req_w);
        close(rep_r);
        r
    };
    with_child(client_cpu, server_cpu, server, client)
}

/// Shared memory of the futex benchmark: the turn word and the payloads.
#[repr(C)]
struct Shared {
    /// Odd: a request is waiting (2k+1); even: its answer (2k+2); `QUIT`.
    turn: AtomicU32,
    request: [u8; PAYLOAD],
    reply: [u8; PAYLOAD],
}

const QUIT: u32 = u32::MAX;

/// Sleeps while `word` still holds `seen` (a shared, not private, futex).
fn futex_wait(word: &AtomicU32, seen: u32) {
    // SAFETY: `word` is a valid, aligned u32 in memory shared with the peer.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            seen,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// Wakes one process sleeping on `word`.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: as in `futex_wait`.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1) };
}

/// Waits until `word` is `want` (or `QUIT`), sleeping in the kernel.
fn await_turn(word: &AtomicU32, want: u32) -> u32 {
    loop {
        let now = word.load(Ordering::Acquire);
        if now == want || now == QUIT {
            return now;
        }
        futex_wait(word, now);
    }
}

/// Round trip over shared memory and a futex: write 16 bytes and pass the
/// turn (FUTEX_WAKE), the other process copies them to the reply and
/// passes it back; each side sleeps in FUTEX_WAIT until its turn.
fn futex_round_trip(client_cpu: usize, server_cpu: usize) -> io::Result<(u64, u64)> {
    let size = std::mem::size_of::<Shared>();
    // SAFETY: a fresh shared anonymous mapping, not aliased by anything.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the mapping is page-aligned, zeroed (a valid `Shared`: zero
    // atomics and bytes) and lives until the munmap below, after both
    // processes are done with it.
    let shared: &Shared = unsafe { &*(p as *const Shared) };
    let server = || {
        let mut seq = 1;
        while await_turn(&shared.turn, seq) != QUIT {
            // The payload fields are plain bytes written by one side at a
            // time, ordered by the turn word's Acquire/Release.
            let bytes = std::ptr::addr_of!(shared.request);
            let out = std::ptr::addr_of!(shared.reply) as *mut [u8; PAYLOAD];
            // SAFETY: it is this side's turn: the peer does not touch the
            // payloads until the turn word changes below.
            unsafe { out.write_volatile(bytes.read_volatile()) };
            shared.turn.store(seq + 1, Ordering::Release);
            futex_wake(&shared.turn);
            seq += 2;
        }
    };
    let client = || {
        let mut seq = 1;
        let req = std::ptr::addr_of!(shared.request) as *mut [u8; PAYLOAD];
        let rep = std::ptr::addr_of!(shared.reply);
        let r = measure(IPC_ITERS, || {
            // SAFETY: it is this side's turn (the previous answer arrived).
            unsafe { req.write_volatile([0x5a; PAYLOAD]) };
            shared.turn.store(seq, Ordering::Release);
            futex_wake(&shared.turn);
            await_turn(&shared.turn, seq + 1);
            // SAFETY: the answer arrived (Acquire above); the peer waits.
            black_box(unsafe { rep.read_volatile() });
            seq += 2;
            Ok(())
        });
        shared.turn.store(QUIT, Ordering::Release);
        futex_wake(&shared.turn);
        r
    };
    let r = with_child(client_cpu, server_cpu, server, client);
    // SAFETY: both processes are done with the mapping (the child exited).
    unsafe { libc::munmap(p, size) };
    r
}

fn report(name: &str, r: io::Result<(u64, u64)>) {
    match r {
        Ok((median, min)) => println!("baseline: {name} median {median} min {min}"),
        Err(e) => println!("baseline: {name} unavailable ({e})"),
    }
}

fn main() {
    let premise = (0..PREMISE_TRIES)
        .map(|_| counted_loop(PREMISE_ITERATIONS))
        .min()
        .unwrap_or(0);
    println!(
        "baseline: premise rdtsc {premise} expected {}",
        counted_loop_instructions(PREMISE_ITERATIONS)
    );
    // `parent_id` is a direct getppid(2) call; glibc does not cache it.
    report(
        "linux-getppid",
        measure(ITERS, || {
            black_box(std::os::unix::process::parent_id());
            Ok(())
        }),
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    type Bench = fn(usize, usize) -> io::Result<(u64, u64)>;
    let benches: [(&str, Bench); 2] = [("pipe", pipe_round_trip), ("futex", futex_round_trip)];
    for (name, bench) in benches {
        report(&format!("linux-{name}-same-cpu"), bench(0, 0));
        let cross = if cpus >= 2 {
            bench(0, 1)
        } else {
            Err(io::Error::other("one CPU"))
        };
        report(&format!("linux-{name}-cross-cpu"), cross);
    }
    println!("baseline: done");
    if std::process::id() == 1 {
        power_off();
    }
}

/// Ends the guest: as process 1 there is nothing to return to (the kernel
/// would panic when init exits).
fn power_off() -> ! {
    use std::io::Write;
    let _ = io::stdout().flush();
    // SAFETY: flushes file systems; no memory is passed.
    unsafe { libc::sync() };
    // SAFETY: powers the machine off; this process is init and holds
    // CAP_SYS_BOOT. On success it does not return.
    unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_POWER_OFF) };
    // Power-off refused: exiting makes the kernel panic, and the guest's
    // `panic=-1` with QEMU's `-no-reboot` still ends the run.
    std::process::exit(1)
}
