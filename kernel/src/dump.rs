//! The serial dump key: typing Ctrl-\ (byte 0x1c) on the COM1 console prints
//! every CPU's current thread and run queue and every blocked thread with
//! what it waits for.
//!
//! Receive side: CPU 0 polls COM1's line status register from its timer
//! tick (at the 100 Hz tick a key waits at most 10 ms, and the UART's FIFO
//! holds what arrives meanwhile), and other received bytes are dropped;
//! unless the terminal reads COM1, in which case the terminal's input path
//! sees the key first and asks for the dump ([`request`]). The key also
//! works on the terminal's line when that is COM2.
//!
//! The dump is spread over timer ticks so that no CPU ever waits for
//! another: CPU 0 opens a dump (a new generation) and prints the global part
//! (blocked threads); each CPU prints its own part at its next tick (only a
//! CPU may read its own current thread); CPU 0 closes the dump once every
//! online CPU has answered or [`ANSWER_WITHIN_NS`] has passed, naming the
//! CPUs that did not answer (a CPU spinning with interrupts masked cannot
//! take a tick: that is itself the finding). Every lock is tried with a
//! bounded spin and reported as held if it stays held, so a dump of a
//! wedged machine does not wedge the CPU printing it.

use crate::percpu::{self, MAX_CPUS};
use crate::sched::{self, Thread, ThreadView};
use capos_arch::serial::{Uart, COM1};
use capos_arch::trap::TrapFrame;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The byte that asks for a dump: Ctrl-\ (ASCII FS).
pub const DUMP_KEY: u8 = 0x1c;
/// How long CPU 0 waits for the other CPUs' parts before closing a dump.
const ANSWER_WITHIN_NS: u64 = 500_000_000;
/// Most threads listed per queue or list (the rest are counted).
const MAX_LISTED: usize = 32;
/// Spins a ring or timer lock gets before it is reported held.
const LOCK_SPINS: u32 = 100_000;

/// Current dump generation (0: none asked for yet).
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// A dump is open (CPU 0 has not printed its end line yet).
static OPEN: AtomicBool = AtomicBool::new(false);
/// When the open dump began (ns on the kernel clock).
static OPENED_AT: AtomicU64 = AtomicU64::new(0);
/// The generation each CPU last printed its part for.
static ANSWERED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// The dump key arrived on the terminal's line.
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks for a dump at the boot CPU's next tick (the terminal saw the key).
pub fn request() {
    REQUESTED.store(true, Ordering::Release);
}

/// Called from every CPU's timer interrupt, before the scheduler's tick.
pub fn on_tick(frame: &TrapFrame) {
    let cpu = capos_arch::percpu::this_cpu_index() as usize;
    if cpu == 0 {
        crate::terminal::on_tick();
        let asked = REQUESTED.swap(false, Ordering::AcqRel);
        if asked || (!crate::terminal::reads_com1() && key_pressed()) {
            open_dump();
        }
    }
    let open = OPEN.load(Ordering::Acquire);
    let generation = GENERATION.load(Ordering::Acquire);
    if open && generation != 0 && ANSWERED[cpu].load(Ordering::Relaxed) != generation {
        print_cpu(cpu, frame);
        ANSWERED[cpu].store(generation, Ordering::Release);
    }
    if cpu == 0 && open {
        close_if_done(generation);
    }
}

/// Drains the UART's receive FIFO; true if the dump key was among the bytes.
fn key_pressed() -> bool {
    let mut uart = Uart::new(COM1);
    let mut seen = false;
    // Bounded: the FIFO holds 16 bytes; a stuck data-ready bit cannot hold
    // the tick for long.
    for _ in 0..64 {
        match uart.try_read_byte() {
            Some(DUMP_KEY) => seen = true,
            Some(_) => {}
            None => break,
        }
    }
    seen
}

/// Opens a new dump (unless one is open) and prints its global part; only
/// then may the other CPUs print theirs.
fn open_dump() {
    if OPEN.load(Ordering::Acquire) {
        return;
    }
    let now = crate::time::now_ns().unwrap_or(0);
    OPENED_AT.store(now, Ordering::Relaxed);
    // Only CPU 0 opens dumps, so the generation has no other writer.
    let generation = GENERATION.load(Ordering::Relaxed) + 1;
    let up = crate::time::uptime_ns().unwrap_or(0);
    line(format_args!(
        "dump {generation}: scheduler state at {}.{:06} s (dump key Ctrl-\\); {} live threads, {} frames held by processes, {} CPUs",
        up / 1_000_000_000,
        (up / 1_000) % 1_000_000,
        sched::live_threads(),
        crate::proc::aspace::frames_held(),
        percpu::registered()
    ));
    print_blocked(generation, now);
    GENERATION.store(generation, Ordering::Release);
    OPEN.store(true, Ordering::Release);
}

/// Prints every thread on the blocked list with what it waits for.
fn print_blocked(generation: u64, now: u64) {
    let mut rows: [Option<BlockedRow>; MAX_LISTED] = [const { None }; MAX_LISTED];
    let mut count = 0usize;
    let visited = sched::visit_blocked(|t| {
        if let Some(slot) = rows.get_mut(count) {
            *slot = Some(BlockedRow::of(t));
        }
        count += 1;
    });
    if !visited {
        line(format_args!(
            "dump {generation}: blocked threads: list locked (held elsewhere)"
        ));
        return;
    }
    line(format_args!("dump {generation}: {count} blocked threads"));
    for row in rows.iter().flatten() {
        line(format_args!("dump {generation}:   {}", row.display(now)));
    }
    if count > MAX_LISTED {
        line(format_args!(
            "dump {generation}:   ... and {} more",
            count - MAX_LISTED
        ));
    }
}

/// Prints this CPU's part: where the tick interrupted it, its current
/// thread and its run queue.
fn print_cpu(cpu: usize, frame: &TrapFrame) {
    let generation = GENERATION.load(Ordering::Relaxed);
    let now = crate::time::now_ns().unwrap_or(0);
    let mode = if frame.from_user() { "user" } else { "kernel" };
    let current = sched::current();
    let running = current.as_deref().map(ThreadName::of);
    let mut queued: [Option<ThreadName>; MAX_LISTED] = [const { None }; MAX_LISTED];
    let mut count = 0usize;
    let visited = sched::visit_run_queue(cpu, |t| {
        if let Some(slot) = queued.get_mut(count) {
            *slot = Some(ThreadName::of(t));
        }
        count += 1;
    });
    let mut w = LineBuf::new();
    let _ = write!(
        w,
        "dump {generation}: cpu{cpu} interrupted in {mode} mode at rip {:#x}, {}; running ",
        frame.rip,
        if sched::cpu_idle(cpu) {
            "idle loop"
        } else {
            "not idle"
        }
    );
    match (&running, current.as_deref().and_then(Thread::view)) {
        (Some(name), Some(view)) => {
            let _ = write!(w, "{name} ({})", ViewText(&view, now));
        }
        (Some(name), None) => {
            let _ = write!(w, "{name} (state locked)");
        }
        _ => {
            let _ = w.write_str("no thread");
        }
    }
    drop(current);
    if visited && count == 0 {
        let _ = w.write_str("; run queue empty");
    } else if visited {
        let _ = write!(w, "; run queue {count}:");
        for t in queued.iter().flatten() {
            let _ = write!(w, " {t}");
        }
        if count > MAX_LISTED {
            let _ = write!(w, " ...");
        }
    } else {
        let _ = w.write_str("; run queue locked (held elsewhere)");
    }
    line(format_args!("{}", w.as_str()));
}

/// Closes the dump once every online CPU answered or the wait ran out.
fn close_if_done(generation: u64) {
    let cpus = percpu::registered() as usize;
    let online = |i: usize| {
        i == 0 || percpu::get(i as u32).is_some_and(|c| c.online.load(Ordering::Acquire))
    };
    let answered = |i: usize| ANSWERED[i].load(Ordering::Acquire) == generation;
    let all = (0..cpus).filter(|&i| online(i)).all(answered);
    let waited = crate::time::now_ns()
        .unwrap_or(0)
        .saturating_sub(OPENED_AT.load(Ordering::Relaxed));
    if !all && waited < ANSWER_WITHIN_NS {
        return;
    }
    for i in (0..cpus).filter(|&i| !answered(i)) {
        let why = if online(i) {
            "took no timer tick (interrupts masked, or spinning in a handler)"
        } else {
            "is not online"
        };
        line(format_args!(
            "dump {generation}: cpu{i} did not answer within {} ms: it {why}",
            ANSWER_WITHIN_NS / 1_000_000
        ));
    }
    let n = (0..cpus).filter(|&i| answered(i)).count();
    line(format_args!(
        "dump {generation}: end ({n} of {cpus} CPUs answered)"
    ));
    OPEN.store(false, Ordering::Release);
}

/// Writes one line, even if the console lock is held elsewhere.
fn line(args: fmt::Arguments<'_>) {
    crate::console::emergency_write(format_args!("{args}\n"));
}

/// A thread's pid and name, copied out (no reference kept).
#[derive(Clone, Copy)]
struct ThreadName {
    pid: u32,
    name: [u8; 24],
    len: usize,
}

impl ThreadName {
    fn of(t: &Thread) -> Self {
        let bytes = t.process.name.as_bytes();
        let len = bytes.len().min(24);
        let mut name = [0; 24];
        name[..len].copy_from_slice(&bytes[..len]);
        Self {
            pid: t.process.pid,
            name,
            len,
        }
    }
}

impl fmt::Display for ThreadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = core::str::from_utf8(&self.name[..self.len]).unwrap_or("?");
        write!(f, "pid {} ({name})", self.pid)
    }
}

/// One blocked thread and what it waits for, copied out under the locks.
struct BlockedRow {
    who: ThreadName,
    view: Option<ThreadView>,
    /// Calls completing at a deadline (`Timer.sleep`, `echoLater`): count and earliest deadline.
    sleeps: Option<(usize, Option<u64>)>,
    /// Completions posted and not yet reaped, and submissions not yet
    /// consumed by the kernel.
    ring: (u32, u32),
}

impl BlockedRow {
    fn of(t: &Thread) -> Self {
        Self {
            who: ThreadName::of(t),
            view: t.view(),
            sleeps: crate::timers::pending_for(t, LOCK_SPINS),
            ring: t.process.ring.backlog(),
        }
    }

    fn display(&self, now: u64) -> impl fmt::Display + '_ {
        struct D<'a>(&'a BlockedRow, u64);
        impl fmt::Display for D<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let (row, now) = (self.0, self.1);
                write!(f, "{}: ", row.who)?;
                match &row.view {
                    Some(v) => write!(f, "{}", ViewText(v, now))?,
                    None => f.write_str("state locked")?,
                }
                f.write_str("; waits in cap_enter for completions")?;
                let (cq, sq) = row.ring;
                write!(f, ", {cq} posted and not reaped, {sq} SQEs not consumed")?;
                match row.sleeps {
                    Some((0, _)) => f.write_str("; no timer sleep pending"),
                    Some((n, Some(d))) => {
                        write!(f, "; {n} timer sleep(s) pending, first {}", Due(d, now))
                    }
                    Some((n, None)) => write!(f, "; {n} timer sleep(s) pending"),
                    None => f.write_str("; timer list locked"),
                }
            }
        }
        D(self, now)
    }
}

/// A thread view as words.
struct ViewText<'a>(&'a ThreadView, u64);

impl fmt::Display for ViewText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (v, now) = (self.0, self.1);
        f.write_str(v.state)?;
        if v.on_cpu {
            f.write_str(", on a CPU")?;
        }
        write!(f, ", last cpu{}", v.last_cpu)?;
        if let Some(p) = v.pinned {
            write!(f, ", pinned to cpu{p}")?;
        }
        match v.deadline {
            Some(d) => write!(f, ", wake-up deadline {}", Due(d, now)),
            None => f.write_str(", no wake-up deadline"),
        }
    }
}

/// A deadline relative to now: "due in 3.250 ms" or "overdue by 1.000 ms".
struct Due(u64, u64);

impl fmt::Display for Due {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, now) = (self.0, self.1);
        let (word, ns) = if d >= now {
            ("due in", d - now)
        } else {
            ("overdue by", now - d)
        };
        write!(
            f,
            "{word} {}.{:03} ms",
            ns / 1_000_000,
            (ns / 1_000) % 1_000
        )
    }
}

/// A fixed line buffer (the dump allocates nothing: the heap lock may be
/// the very thing a wedged CPU holds).
struct LineBuf {
    buf: [u8; 1024],
    len: usize,
}

impl LineBuf {
    fn new() -> Self {
        Self {
            buf: [0; 1024],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("(line not UTF-8)")
    }
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Truncates at a character boundary when full.
        let room = self.buf.len() - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}
