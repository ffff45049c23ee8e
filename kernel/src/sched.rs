//! Threads and the scheduler: per-CPU run queues with work stealing,
//! preemption by the APIC timer (from ring 3 only), blocking with deadlines,
//! cross-CPU wake-ups by IPI, and a kernel-mode idle loop per CPU.
//!
//! A blocked thread is kept alive by its process (`Process::threads`), not
//! by a global list: blocking and waking are O(1) in the number of blocked
//! threads, and only a deadline puts a thread in the timer heap
//! (`crate::timers`), from which a wake-up removes it again. IPC hands the
//! woken peer this CPU directly: it goes into the CPU's hand-off slot and
//! runs at the next switch, ahead of the run queue and without touching it.
//!
//! A thread may be pinned to one CPU when it is started ([`start_pinned`]):
//! it is queued only on that CPU (at start, on every wake-up, including the
//! IPC direct hand-off from another CPU) and is never stolen.
//!
//! Switch protocol: a CPU picks the next thread, loads its CR3, RSP0 and
//! SYSCALL stack, and `context_switch`es. The thread it left is handled by
//! `sched_finish_switch` *on the new stack*, after its registers are saved:
//! only then can it be queued again or reaped, so no other CPU can resume a
//! thread whose context is still being saved.

use crate::mem::stack::{self, KernelStack};
use crate::percpu::{self, MAX_CPUS};
use crate::proc::Process;
use crate::sync::IrqLock;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use capos_arch::gdt::TssHandle;
use capos_arch::syscall::{context_switch, thread_first_entry};
use capos_arch::trap::vector;
use capos_kcore::runstate::{self, Run, ON_CPU};
use capos_kcore::timerheap::TimerKey;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use x86_64::instructions::interrupts;

/// A thread's scheduling state in one atomic byte
/// ([`capos_kcore::runstate`]: its transitions, and the loom models that
/// check them).
struct State(core::sync::atomic::AtomicU8);

impl State {
    const fn new() -> Self {
        State(core::sync::atomic::AtomicU8::new(runstate::NEW))
    }

    fn load(&self) -> u8 {
        self.0.load(Ordering::SeqCst)
    }

    fn run(word: u8) -> Run {
        runstate::run(word)
    }
}

/// A thread of a process, with its kernel stack.
pub struct Thread {
    /// The process it belongs to.
    pub process: Arc<Process>,
    kstack: KernelStack,
    saved_rsp: UnsafeCell<u64>,
    state: State,
    /// The timer-heap entry that wakes it at its deadline while it blocks
    /// (`TimerKey::to_raw`; 0: none).
    timer: AtomicU64,
    last_cpu: AtomicU32,
    /// The CPU this thread is pinned to, or [`NOT_PINNED`]. Set once, by
    /// [`start_pinned`], before the thread is first queued.
    pin: AtomicU32,
}

/// `Thread::pin` of a thread the scheduler may place anywhere.
const NOT_PINNED: u32 = u32::MAX;

// SAFETY: `saved_rsp` is written only by `context_switch` on the CPU that is
// switching the thread out, and read only by the CPU switching it in, which
// the switch protocol orders after the save (`ON_CPU` is cleared from the
// state word, by a compare-exchange, only once the save is done).
unsafe impl Sync for Thread {}
// SAFETY: as above; everything else is Send.
unsafe impl Send for Thread {}

const USER_CS: u64 = 0x23;
const USER_SS: u64 = 0x1b;
const USER_RFLAGS: u64 = 0x202;

impl Thread {
    /// A thread that enters ring 3 at `entry` with `args` in RDI, RSI, RDX
    /// and RSP = `user_rsp` the first time it is scheduled.
    pub fn new_user(
        process: Arc<Process>,
        kstack: KernelStack,
        entry: u64,
        args: [u64; 3],
        user_rsp: u64,
    ) -> Arc<Self> {
        let words = [
            0,
            0,
            0,
            0,
            0,
            0, // r15, r14, r13, r12, rbx, rbp
            thread_first_entry as *const () as u64,
            args[0],
            args[1],
            args[2], // rdi, rsi, rdx
            entry,
            USER_CS,
            USER_RFLAGS,
            user_rsp,
            USER_SS,
        ];
        let sp = kstack.top - (words.len() as u64) * 8;
        // SAFETY: the stack is freshly mapped, owned by this thread and at
        // least one page long; the words fit below its top.
        unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), sp as *mut u64, words.len()) };
        Arc::new(Thread {
            process,
            kstack,
            saved_rsp: UnsafeCell::new(sp),
            state: State::new(),
            timer: AtomicU64::new(0),
            last_cpu: AtomicU32::new(0),
            pin: AtomicU32::new(NOT_PINNED),
        })
    }

    /// The CPU this thread is pinned to, if any.
    pub fn pinned_cpu(&self) -> Option<u32> {
        match self.pin.load(Ordering::Relaxed) {
            NOT_PINNED => None,
            cpu => Some(cpu),
        }
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        stack::free(self.kstack, crate::proc::KERNEL_STACK_PAGES);
    }
}

/// A slot holding at most one thread reference, filled and emptied with
/// atomic swaps (so an interrupt's switch on the same CPU may take it while
/// thread context looks at it, without masking interrupts).
struct HandoffSlot(AtomicPtr<Thread>);

impl HandoffSlot {
    const fn new() -> Self {
        HandoffSlot(AtomicPtr::new(core::ptr::null_mut()))
    }

    /// Puts `t` in the slot; returns the thread it displaced.
    fn put(&self, t: Arc<Thread>) -> Option<Arc<Thread>> {
        let old = self.0.swap(Arc::into_raw(t).cast_mut(), Ordering::AcqRel);
        // SAFETY: a non-null pointer in the slot came from `Arc::into_raw`
        // and the swap that took it out is the only one that sees it.
        (!old.is_null()).then(|| unsafe { Arc::from_raw(old) })
    }

    /// Takes the thread in the slot, if any.
    #[inline]
    fn take(&self) -> Option<Arc<Thread>> {
        if self.0.load(Ordering::Relaxed).is_null() {
            return None;
        }
        let old = self.0.swap(core::ptr::null_mut(), Ordering::Acquire);
        // SAFETY: as in `put`.
        (!old.is_null()).then(|| unsafe { Arc::from_raw(old) })
    }

    fn is_empty(&self) -> bool {
        self.0.load(Ordering::Relaxed).is_null()
    }
}

/// One CPU's scheduler state.
struct CpuSched {
    current: UnsafeCell<Option<Arc<Thread>>>,
    prev: UnsafeCell<Option<Arc<Thread>>>,
    /// The thread IPC handed this CPU: it runs at the next switch here,
    /// ahead of the run queue. Only its own CPU touches it.
    handoff: HandoffSlot,
    idle_rsp: UnsafeCell<u64>,
    runq: IrqLock<VecDeque<Arc<Thread>>>,
    tss: UnsafeCell<Option<TssHandle>>,
    idle: AtomicBool,
    user_ticks: AtomicU64,
    /// TSC when another CPU last sent this CPU a wake-up IPI (0: none
    /// outstanding), and when this CPU took it (0: no switch measured yet).
    wake_sent_tsc: AtomicU64,
    wake_taken_tsc: AtomicU64,
    /// TSC when this CPU switched to a thread because of a timed wake-up
    /// IPI (0: none), until that thread's `cap_enter` returns.
    wake_switch_tsc: AtomicU64,
    /// Timed wake-ups of this CPU: IPI send to handler, handler to switch,
    /// switch to the woken thread's `cap_enter` returning.
    wake_delivery: LatencySum,
    wake_to_switch: LatencySum,
    switch_to_user: LatencySum,
    /// Wake-up IPIs this CPU sent: the cost of the `send_ipi` itself.
    ipi_send: LatencySum,
}

// SAFETY: `current`, `prev`, `idle_rsp` and `tss` are touched
// only by their own CPU with interrupts off; `runq` is locked; the rest is
// atomic.
unsafe impl Sync for CpuSched {}

static CPUS: [CpuSched; MAX_CPUS] = [const {
    CpuSched {
        current: UnsafeCell::new(None),
        prev: UnsafeCell::new(None),
        handoff: HandoffSlot::new(),
        idle_rsp: UnsafeCell::new(0),
        runq: IrqLock::new(VecDeque::new()),
        tss: UnsafeCell::new(None),
        idle: AtomicBool::new(false),
        user_ticks: AtomicU64::new(0),
        wake_sent_tsc: AtomicU64::new(0),
        wake_taken_tsc: AtomicU64::new(0),
        wake_switch_tsc: AtomicU64::new(0),
        wake_delivery: LatencySum::new(),
        wake_to_switch: LatencySum::new(),
        switch_to_user: LatencySum::new(),
        ipi_send: LatencySum::new(),
    }
}; MAX_CPUS];

/// Threads whose last reference was let go where a process must not be
/// torn down (an interrupt handler: a timer firing for a thread reaped
/// meanwhile); dropped later from [`drop_deferred`], in thread context with
/// interrupts on. Its capacity (one per live thread: a thread's last
/// reference goes once) is reserved when a thread starts.
static DEFERRED_DROPS: IrqLock<Vec<Thread>> = IrqLock::new(Vec::new());

/// Lets go of `t`: if this is its last reference, the drop (which may free
/// a whole process) waits for [`drop_deferred`]. For references taken in an
/// interrupt handler (a completion or deadline firing for a thread that may
/// have been reaped since). The count drops atomically: a reference let go
/// on another CPU at the same moment cannot leave the last drop here.
pub fn release_thread(t: Arc<Thread>) {
    if let Some(last) = Arc::into_inner(t) {
        DEFERRED_DROPS.lock().push(last);
    }
}

/// Drops the threads [`release_thread`] kept (thread context, interrupts
/// on: from the idle loop and after a switch).
pub fn drop_deferred() {
    loop {
        let t = DEFERRED_DROPS.lock().pop();
        match t {
            Some(t) => {
                drop(t);
                crate::proc::report_if_all_exited();
            }
            None => return,
        }
    }
}

/// Live threads (for the "all exited" report, and the run queues'
/// reserved capacity).
static LIVE: AtomicU64 = AtomicU64::new(0);
/// Wake-up IPIs sent and received, and threads taken from another CPU's
/// queue (balancing), for the end-of-run report.
static WAKE_IPIS_SENT: AtomicU64 = AtomicU64::new(0);
static WAKE_IPIS_TAKEN: AtomicU64 = AtomicU64::new(0);
static STOLEN: AtomicU64 = AtomicU64::new(0);

/// `(wake IPIs sent, wake IPIs received, threads stolen)`.
pub fn balance_counters() -> (u64, u64, u64) {
    (
        WAKE_IPIS_SENT.load(Ordering::Relaxed),
        WAKE_IPIS_TAKEN.load(Ordering::Relaxed),
        STOLEN.load(Ordering::Relaxed),
    )
}

/// Latency samples in TSC cycles, summed (cheap enough to keep on).
struct LatencySum {
    count: AtomicU64,
    total: AtomicU64,
    min: AtomicU64,
}

impl LatencySum {
    const fn new() -> Self {
        Self {
            count: AtomicU64::new(0),
            total: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
        }
    }

    fn add(&self, cycles: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(cycles, Ordering::Relaxed);
        self.min.fetch_min(cycles, Ordering::Relaxed);
    }

    /// `(samples, mean, min)`.
    fn get(&self) -> (u64, u64, u64) {
        let n = self.count.load(Ordering::Relaxed);
        let mean = self
            .total
            .load(Ordering::Relaxed)
            .checked_div(n)
            .unwrap_or(0);
        let min = if n == 0 {
            0
        } else {
            self.min.load(Ordering::Relaxed)
        };
        (n, mean, min)
    }
}

/// `(samples, mean, min)` of a latency, in TSC cycles.
pub type Latency = (u64, u64, u64);

/// Timed wake-ups of CPU `cpu`: from sending the IPI to its handler, from
/// the handler to switching to a thread, and from that switch to the
/// thread's `cap_enter` returning. A wake-up that led to no switch before
/// the CPU halted again counts only in the first.
pub fn wake_latency(cpu: usize) -> [Latency; 3] {
    CPUS.get(cpu).map_or([(0, 0, 0); 3], |c| {
        [
            c.wake_delivery.get(),
            c.wake_to_switch.get(),
            c.switch_to_user.get(),
        ]
    })
}

/// The wake-up IPIs CPU `cpu` sent: how long its `send_ipi` took.
pub fn ipi_send_cost(cpu: usize) -> Latency {
    CPUS.get(cpu).map_or((0, 0, 0), |c| c.ipi_send.get())
}

/// Called when `cap_enter` returns to user mode: closes a timed wake-up
/// (one relaxed load when there is none), and passes on a direct hand-off
/// the caller did not follow by blocking.
pub fn note_return_to_user() {
    let cpu = me();
    release_handoff(cpu);
    if cpu.wake_switch_tsc.load(Ordering::Relaxed) != 0 {
        let switched = cpu.wake_switch_tsc.swap(0, Ordering::Relaxed);
        cpu.switch_to_user
            .add(capos_arch::cpu::rdtsc().saturating_sub(switched));
    }
}

/// Counts a wake-up IPI arriving on this CPU (and how long it took).
pub fn on_wake_ipi() {
    WAKE_IPIS_TAKEN.fetch_add(1, Ordering::Relaxed);
    let now = capos_arch::cpu::rdtsc();
    let sent = me().wake_sent_tsc.swap(0, Ordering::Relaxed);
    if sent != 0 && now >= sent {
        me().wake_delivery.add(now - sent);
        me().wake_taken_tsc.store(now, Ordering::Relaxed);
    }
}

/// CPUs running a user thread right now, and the most seen at once.
static RUNNING_USER: AtomicU64 = AtomicU64::new(0);
static RUNNING_USER_MAX: AtomicU64 = AtomicU64::new(0);

/// The most CPUs that were running user threads at the same moment.
pub fn peak_parallel_cpus() -> u64 {
    RUNNING_USER_MAX.load(Ordering::Relaxed)
}

/// Set when the scheduler may run threads.
static STARTED: AtomicBool = AtomicBool::new(false);

fn this_cpu() -> usize {
    capos_arch::percpu::this_cpu_index() as usize
}

#[inline]
fn me() -> &'static CpuSched {
    let i = this_cpu();
    debug_assert!(i < MAX_CPUS);
    // SAFETY: a CPU's index comes from its per-CPU block, registered only
    // at an index of the kernel's CPU table (`percpu::register` indexes
    // that table of MAX_CPUS entries, so a larger index never gets a
    // block), and this table has as many entries.
    unsafe { CPUS.get_unchecked(i) }
}

/// Records this CPU's TSS handle (called once per CPU during bring-up).
pub fn register_cpu_tss(tss: TssHandle) {
    crate::irqoff::without_interrupts(|| {
        // SAFETY: own CPU, interrupts off.
        unsafe { *me().tss.get() = Some(tss) };
    });
}

/// Timer ticks that interrupted ring 3 on CPU `cpu`.
pub fn user_ticks(cpu: usize) -> u64 {
    CPUS.get(cpu)
        .map_or(0, |c| c.user_ticks.load(Ordering::Relaxed))
}

/// The thread running on this CPU, borrowed (no reference count change).
///
/// Only for code running on behalf of that thread (its system call or its
/// own trap): a running thread is not freed (reaping happens only after it
/// has been switched out), and kernel code is never preempted, so the
/// borrow stays valid until that code calls into the scheduler.
pub fn current_arc<'a>() -> Option<&'a Arc<Thread>> {
    // SAFETY: own CPU's slot; see the contract above for the lifetime.
    unsafe { (*me().current.get()).as_ref() }
}

/// The thread running on this CPU, if any.
pub fn current() -> Option<Arc<Thread>> {
    crate::irqoff::without_interrupts(|| {
        // SAFETY: own CPU, interrupts off.
        unsafe { (*me().current.get()).clone() }
    })
}

fn online_cpus() -> u32 {
    percpu::registered()
}

/// Whether CPU `cpu` is up and running threads (a CPU a thread may be
/// pinned to).
pub fn cpu_usable(cpu: u32) -> bool {
    cpu < online_cpus()
        && percpu::get(cpu).is_some_and(|c| cpu == 0 || c.online.load(Ordering::Acquire))
}

/// Counts a new thread and makes sure no run queue has to grow to take it
/// (so a wake-up from an interrupt never allocates).
fn admit(thread: &Arc<Thread>) {
    let live = LIVE.fetch_add(1, Ordering::AcqRel) as usize + 1;
    for cpu in CPUS.iter().take(online_cpus() as usize) {
        let mut q = cpu.runq.lock();
        let len = q.len();
        q.reserve(live.saturating_sub(len));
    }
    {
        let mut d = DEFERRED_DROPS.lock();
        let len = d.len();
        d.reserve(live.saturating_sub(len));
    }
    list_thread(thread);
    thread.process.add_thread(thread.clone());
}

/// Makes a new thread runnable, placing it on the least-loaded online CPU.
pub fn start(thread: Arc<Thread>) {
    admit(&thread);
    let target = (0..online_cpus())
        .filter(|&i| cpu_usable(i))
        .min_by_key(|&i| {
            CPUS[i as usize].runq.lock().len()
                + usize::from(!CPUS[i as usize].idle.load(Ordering::Relaxed))
        })
        .unwrap_or(0);
    enqueue(target as usize, thread);
}

/// Why a thread cannot be pinned.
#[derive(Debug)]
pub struct NoSuchCpu {
    /// The CPU asked for.
    pub cpu: u32,
    /// CPUs running threads.
    pub usable: u32,
}

impl core::fmt::Display for NoSuchCpu {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "CPU {} is not online ({} CPUs run threads, numbered from 0)",
            self.cpu, self.usable
        )
    }
}

/// CPUs that are up and running threads.
pub fn usable_cpus() -> u32 {
    (0..online_cpus()).filter(|&i| cpu_usable(i)).count() as u32
}

/// Checks that a thread could be pinned to `cpu` (for callers that must
/// refuse before creating anything).
pub fn check_pin(cpu: u32) -> Result<(), NoSuchCpu> {
    if cpu_usable(cpu) {
        Ok(())
    } else {
        Err(NoSuchCpu {
            cpu,
            usable: usable_cpus(),
        })
    }
}

/// Makes a new thread runnable pinned to CPU `cpu` (see the module
/// comment), or, with `None`, like [`start`]. A CPU that is not online is
/// refused and the thread is not started.
pub fn start_pinned(thread: Arc<Thread>, cpu: Option<u32>) -> Result<(), NoSuchCpu> {
    let Some(cpu) = cpu else {
        start(thread);
        return Ok(());
    };
    check_pin(cpu)?;
    thread.pin.store(cpu, Ordering::Relaxed);
    admit(&thread);
    enqueue(cpu as usize, thread);
    Ok(())
}

/// Queues `thread` on `cpu` (or on the CPU it is pinned to), at the back or,
/// for a direct hand-off, at the front; wakes that CPU by IPI if it idles.
fn enqueue_at(cpu: usize, thread: Arc<Thread>, front: bool) {
    let cpu = thread.pinned_cpu().map_or(cpu, |p| p as usize);
    thread.last_cpu.store(cpu as u32, Ordering::Relaxed);
    {
        let mut q = CPUS[cpu].runq.lock();
        if front {
            q.push_front(thread);
        } else {
            q.push_back(thread);
        }
    }
    if cpu != this_cpu() && CPUS[cpu].idle.load(Ordering::Acquire) {
        send_wake_ipi(cpu, true);
    }
}

/// Sends CPU `cpu` (not this one) a wake-up IPI; `timed`: a wake-up of an
/// idle CPU, whose delivery and switch are measured (only the first
/// outstanding send is).
fn send_wake_ipi(cpu: usize, timed: bool) {
    let Some(apic) = percpu::get(cpu as u32).map(|c| c.arch.apic_id.load(Ordering::Relaxed)) else {
        return;
    };
    let sent = capos_arch::cpu::rdtsc();
    if timed {
        let _ =
            CPUS[cpu]
                .wake_sent_tsc
                .compare_exchange(0, sent, Ordering::Relaxed, Ordering::Relaxed);
    }
    percpu::with_lapic(|l| l.send_ipi(vector::IPI_WAKE, apic));
    me().ipi_send
        .add(capos_arch::cpu::rdtsc().saturating_sub(sent));
    WAKE_IPIS_SENT.fetch_add(1, Ordering::Relaxed);
}

/// Stops a thread of a killed process (its process is marked killed
/// first, [`Process::kill`]) wherever it is: a blocked thread is woken (it
/// leaves `cap_enter` instead of blocking again), and a thread running on
/// another CPU has that CPU interrupted (a wake-up IPI), so it sees the
/// mark on its way back to user mode even if it makes no system call. A
/// queued thread, or one in the kernel, sees it at its next return to
/// user mode ([`crate::proc::exit_if_killed`]). Returns where it found
/// the thread, for the kill's log line.
///
/// Why a running thread cannot miss both the mark and the IPI: the
/// killer's mark (a compare-exchange, sequentially consistent) comes
/// before its reads of the thread's state and `last_cpu`; [`prepare`]
/// stores `last_cpu` before the state exchange that makes the thread
/// running, and the thread reads the mark (sequentially consistent) only
/// after that. So either the thread's read sees the mark, or the killer
/// sees it running on the CPU it runs on.
pub fn kick(t: &Arc<Thread>) -> Kicked {
    match ready(t) {
        Some(true) => {
            enqueue(t.last_cpu.load(Ordering::Relaxed) as usize, t.clone());
            return Kicked::Woken;
        }
        Some(false) => return Kicked::Woken,
        None => {}
    }
    match State::run(t.state.load()) {
        Run::Running => {
            let cpu = t.last_cpu.load(Ordering::SeqCst);
            if cpu as usize == this_cpu() {
                Kicked::Here
            } else {
                if cpu < online_cpus() {
                    send_wake_ipi(cpu as usize, false);
                }
                Kicked::Interrupted(cpu)
            }
        }
        Run::Ready | Run::Blocked => Kicked::Queued,
        Run::Exited => Kicked::Exiting,
    }
}

/// Where [`kick`] found a thread (for the kill's log line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kicked {
    /// Blocked: woken, it leaves `cap_enter` and ends.
    Woken,
    /// Running on this CPU: the killer itself, which ends on its way out.
    Here,
    /// Running on that CPU, which was sent an IPI.
    Interrupted(u32),
    /// Ready (queued, or just woken by someone else): ends when it next
    /// runs, before user mode.
    Queued,
    /// Exiting already.
    Exiting,
}

impl core::fmt::Display for Kicked {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Kicked::Woken => f.write_str("blocked, woken"),
            Kicked::Here => f.write_str("running here, the killer itself"),
            Kicked::Interrupted(cpu) => write!(f, "running on cpu {cpu}, interrupted"),
            Kicked::Queued => f.write_str("ready, stopped before it runs"),
            Kicked::Exiting => f.write_str("exiting"),
        }
    }
}

fn enqueue(cpu: usize, thread: Arc<Thread>) {
    enqueue_at(cpu, thread, false);
}

/// Takes the next thread: this CPU's queue first, then an unpinned thread
/// from the other queue with the most of them (work stealing; pinned
/// threads stay where they are).
fn pick_next() -> Option<Arc<Thread>> {
    let mine = this_cpu();
    if let Some(t) = me().handoff.take() {
        return Some(t);
    }
    if let Some(t) = me().runq.lock().pop_front() {
        return Some(t);
    }
    let movable = |i: usize| {
        CPUS[i]
            .runq
            .lock()
            .iter()
            .filter(|t| t.pinned_cpu().is_none())
            .count()
    };
    let victim = (0..online_cpus() as usize)
        .filter(|&i| i != mine)
        .map(|i| (i, movable(i)))
        .filter(|&(_, n)| n > 0)
        .max_by_key(|&(_, n)| n)?
        .0;
    let stolen = {
        let mut q = CPUS[victim].runq.lock();
        let at = q.iter().rposition(|t| t.pinned_cpu().is_none());
        at.and_then(|i| q.remove(i))
    };
    if stolen.is_some() {
        STOLEN.fetch_add(1, Ordering::Relaxed);
    }
    stolen
}

/// Lets CPUs run threads (before this, the idle loops only halt).
pub fn enable() {
    STARTED.store(true, Ordering::Release);
}

/// Switches to the next runnable thread, or to the idle context, or keeps
/// running the current thread if it is still runnable and nothing else is.
/// Must be called with interrupts off.
fn schedule() {
    debug_assert!(!interrupts::are_enabled());
    let cpu = me();
    // SAFETY: own CPU, interrupts off (for every UnsafeCell below).
    let prev = unsafe { (*cpu.current.get()).take() };
    let prev_runnable = prev
        .as_ref()
        .is_some_and(|p| State::run(p.state.load()) == Run::Running);
    let next = pick_next();
    match (prev, next) {
        (Some(p), None) if prev_runnable => {
            // SAFETY: as above.
            unsafe { *cpu.current.get() = Some(p) };
        }
        (None, None) => {}
        (prev, next) => {
            let save: *mut u64 = match &prev {
                Some(p) => p.saved_rsp.get(),
                None => cpu.idle_rsp.get(),
            };
            let load = match &next {
                Some(n) => {
                    prepare(n);
                    // SAFETY: `n` is not running anywhere (it came off a run
                    // queue, and threads are queued only after their save).
                    unsafe { *n.saved_rsp.get() }
                }
                None => {
                    // The idle loop keeps the last user root loaded (lazy
                    // switch; the space's CPU set keeps this CPU, so
                    // shoot-downs still reach it).
                    // SAFETY: own CPU.
                    unsafe { *cpu.idle_rsp.get() }
                }
            };
            match (prev.is_some(), next.is_some()) {
                (false, true) => {
                    let now = RUNNING_USER.fetch_add(1, Ordering::AcqRel) + 1;
                    RUNNING_USER_MAX.fetch_max(now, Ordering::AcqRel);
                }
                (true, false) => {
                    RUNNING_USER.fetch_sub(1, Ordering::AcqRel);
                }
                _ => {}
            }
            // No lock may be held across the switch (checked by the lock
            // validator, which also keeps each thread's interrupt nesting).
            let irq_depth = crate::sync::lockdep::switch_out();
            // SAFETY: own CPU, interrupts off.
            unsafe {
                *cpu.current.get() = next;
                *cpu.prev.get() = prev;
                context_switch(save, load);
            }
            crate::sync::lockdep::switch_in(irq_depth);
            sched_finish_switch();
        }
    }
}

/// Prepares this CPU to run `next`: its page tables and kernel stacks.
fn prepare(next: &Arc<Thread>) {
    // Where it runs, before it is marked running: a killer that sees it
    // running interrupts this CPU (see `kick`).
    next.last_cpu.store(this_cpu() as u32, Ordering::Relaxed);
    // A queued thread is Ready and off every CPU, and nothing else changes
    // a Ready thread.
    runstate::start_running(&next.state.0);
    // Time a switch that a wake-up IPI caused; any other switch ends the
    // previous sample unfinished.
    let woken = me().wake_taken_tsc.swap(0, Ordering::Relaxed);
    let mut switched = 0;
    if woken != 0 {
        switched = capos_arch::cpu::rdtsc();
        me().wake_to_switch.add(switched.saturating_sub(woken));
    }
    me().wake_switch_tsc.store(switched, Ordering::Relaxed);
    next.process.aspace.activate();
    // SAFETY: own CPU, interrupts off.
    if let Some(tss) = unsafe { *me().tss.get() } {
        tss.set_rsp0(next.kstack.top);
    }
    capos_arch::percpu::set_kernel_rsp(next.kstack.top);
}

/// A new thread's first run (from `thread_first_entry`, just before its
/// first entry to ring 3): the second half of the switch, then the kill
/// check every way back to user mode makes.
#[unsafe(no_mangle)]
extern "C" fn sched_first_entry() {
    sched_finish_switch();
    crate::proc::exit_if_killed();
}

/// Second half of a switch, on the new stack: requeue or reap the thread
/// this CPU just left. Also the first thing a new thread runs.
#[unsafe(no_mangle)]
extern "C" fn sched_finish_switch() {
    // SAFETY: own CPU, interrupts off (switches happen only with them off).
    let prev = unsafe { (*me().prev.get()).take() };
    let Some(p) = prev else { return };
    // Its context is saved: off the CPU now. A Running or Ready thread goes
    // back on a queue; a Blocked one waits (its waker queues it, seeing
    // ON_CPU clear); an Exited one is reaped.
    let was = runstate::switched_out(&p.state.0);
    match was {
        Run::Running | Run::Ready => enqueue(this_cpu(), p),
        Run::Blocked => {}
        Run::Exited => {
            // Tearing a process down takes long (its whole address space,
            // TLB shoot-downs that wait for other CPUs): do it with
            // interrupts on. Nothing here can switch threads (kernel code
            // is never preempted), and this CPU's scheduler state is
            // already the new thread's.
            crate::irqoff::end();
            interrupts::enable();
            reap(p);
            drop_deferred();
            interrupts::disable();
            crate::irqoff::begin();
        }
    }
}

/// Drops the last scheduler reference of an exited thread (its kernel stack,
/// and with the last thread its process: address space, caps, ledger).
fn reap(t: Arc<Thread>) {
    let process = t.process.clone();
    unlist_thread(&t);
    process.remove_thread(&t);
    drop(t);
    crate::proc::report_exit(process);
    LIVE.fetch_sub(1, Ordering::AcqRel);
}

/// Blocks the current thread until [`wake`] or `deadline` (ns), whichever
/// first ([`runstate::block`]). The thread is marked blocked first, then
/// its deadline goes into the timer heap (a deadline that fires at once on
/// another CPU then finds it blocked), then `still_needed` is checked (a
/// full fence before it), while a waker makes its completion visible
/// before it looks at the state: one of the two always sees the other, so a
/// wake that races with blocking is never lost.
pub fn block_current(deadline: Option<u64>, still_needed: impl Fn() -> bool) {
    let Some(t) = current_arc() else { return };
    crate::irqoff::without_interrupts(|| {
        let arm = || {
            if let Some(d) = deadline {
                let key = crate::timers::add(d, crate::timers::Event::Wake(Arc::downgrade(t)));
                t.timer.store(key.to_raw(), Ordering::SeqCst);
                // A waker that came between marking the thread blocked and
                // the store above found no key to take: take it here, or it
                // would stay in the heap after the thread has moved on. (A
                // waker after the store takes it itself; the swap in
                // `take_timer` lets only one of the two remove it, and the
                // key of a deadline that already fired is refused.)
                if State::run(t.state.load()) != Run::Blocked {
                    take_timer(t);
                }
            }
        };
        // A thread of a killed process does not wait (the killer marks the
        // process before it wakes the thread, like a posted completion).
        let still_needed = || !t.process.killed() && still_needed();
        if runstate::block(&t.state.0, arm, still_needed) {
            schedule();
        } else {
            // Not needed after all: running again (a waker may have made it
            // Ready meanwhile, and then left it to this CPU, seeing ON_CPU).
            take_timer(t);
        }
    });
}

/// Removes the deadline entry of a thread that no longer blocks.
fn take_timer(t: &Thread) {
    if let Some(key) = capos_kcore::timerheap::TimerKey::from_raw(t.timer.swap(0, Ordering::SeqCst))
    {
        drop(crate::timers::remove(key));
    }
}

/// Marks a blocked thread ready; whether it must be queued (it is not still
/// on its CPU saving its context, in which case the switch queues it).
fn ready(t: &Arc<Thread>) -> Option<bool> {
    let must_queue = runstate::wake(&t.state.0)?;
    take_timer(t);
    Some(must_queue)
}

/// Makes a blocked thread runnable again.
pub fn wake(t: &Arc<Thread>) {
    if ready(t) == Some(true) {
        enqueue(t.last_cpu.load(Ordering::Relaxed) as usize, t.clone());
    }
}

/// Like [`wake`], but hands the thread *this* CPU: it runs at this CPU's
/// next switch (the IPC direct hand-off: the waker is about to block), ahead
/// of the run queue. A thread pinned elsewhere goes to the front of its own
/// CPU's queue instead.
pub fn wake_handoff(t: &Arc<Thread>) {
    if ready(t) != Some(true) {
        return;
    }
    let here = this_cpu();
    if t.pinned_cpu().is_some_and(|p| p as usize != here) {
        enqueue_at(here, t.clone(), true);
        return;
    }
    t.last_cpu.store(here as u32, Ordering::Relaxed);
    if let Some(d) = me().handoff.put(t.clone()) {
        enqueue_at(here, d, true);
    }
}

/// A thread handed this CPU by [`wake_handoff`] whose waker then went back
/// to user mode instead of blocking: it goes to an idle CPU if one is
/// online (woken by IPI), else to the front of this CPU's queue, rather
/// than waiting in the hand-off slot for this CPU's next switch.
#[inline]
fn release_handoff(cpu: &CpuSched) {
    if let Some(t) = cpu.handoff.take() {
        release_handoff_to_queue(t);
    }
}

#[cold]
fn release_handoff_to_queue(t: Arc<Thread>) {
    let here = this_cpu();
    let idle = (0..online_cpus() as usize)
        .find(|&i| i != here && cpu_usable(i as u32) && CPUS[i].idle.load(Ordering::Acquire));
    enqueue_at(idle.unwrap_or(here), t, true);
}

/// Ends the current thread; never returns.
pub fn exit_current() -> ! {
    crate::irqoff::disable();
    if let Some(t) = current() {
        runstate::mark_exited(&t.state.0);
    }
    schedule();
    unreachable!("an exited thread was scheduled again");
}

/// Timer tick on this CPU: wake threads whose deadline passed and, if the
/// tick interrupted ring 3, preempt the current thread.
pub fn on_timer_tick(from_user: bool) {
    if from_user {
        me().user_ticks.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(now) = crate::time::now_ns() {
        crate::timers::expire(now);
    }
    if from_user && STARTED.load(Ordering::Acquire) {
        schedule();
    }
}

/// This CPU's idle loop: run threads when there are any, halt otherwise.
pub fn idle_loop() -> ! {
    loop {
        drop_deferred();
        crate::irqoff::disable();
        if STARTED.load(Ordering::Acquire) {
            me().idle.store(false, Ordering::Release);
            schedule();
        }
        me().idle.store(true, Ordering::Release);
        if !STARTED.load(Ordering::Acquire)
            || (me().runq.lock().is_empty() && me().handoff.is_empty())
        {
            // A wake-up that led to no switch is not a sample.
            me().wake_taken_tsc.store(0, Ordering::Relaxed);
            crate::irqoff::enable_and_hlt();
        }
    }
}

// ---- Read-only views for the serial dump key (kernel/src/dump.rs) ----
//
// Every view takes its locks with a bounded spin and reports `None` when a
// lock stays held, so a dump taken while the machine is wedged cannot wedge
// the CPU taking it.

/// Spins a dump view gives a lock before reporting it held.
const VIEW_SPINS: u32 = 100_000;

/// A thread on [`THREADS`].
struct Listed(*const Thread);

// SAFETY: only a pointer; it is dereferenced under the `THREADS` lock,
// while the thread it names is guaranteed alive (see `THREADS`).
unsafe impl Send for Listed {}

/// Every thread admitted and not yet reaped, for the dump key. A listed
/// pointer is valid while the list is locked: a thread leaves in [`reap`]
/// (under this lock) before its process lets go of it, and until then the
/// process's thread list holds it.
static THREADS: IrqLock<Vec<Listed>> = IrqLock::new(Vec::new());

/// Adds `thread` to [`THREADS`] (thread context, at admission).
fn list_thread(thread: &Arc<Thread>) {
    THREADS.lock().push(Listed(Arc::as_ptr(thread)));
}

/// Takes `thread` off [`THREADS`] (at reap, before it can be freed).
fn unlist_thread(thread: &Arc<Thread>) {
    let mut list = THREADS.lock();
    if let Some(i) = list.iter().position(|l| l.0 == Arc::as_ptr(thread)) {
        list.swap_remove(i);
    }
}

/// One thread as the dump key shows it.
#[derive(Clone, Copy, Debug)]
pub struct ThreadView {
    /// `ready`, `running`, `blocked` or `exited`.
    pub state: &'static str,
    /// Still executing on a CPU (context not saved yet).
    pub on_cpu: bool,
    /// Wake-up deadline while blocked (ns on the TSC clock); `None` also
    /// when the timer heap stayed locked.
    pub deadline: Option<u64>,
    /// The CPU it last ran or was queued on.
    pub last_cpu: u32,
    /// The CPU it is pinned to, if any.
    pub pinned: Option<u32>,
}

impl Thread {
    /// This thread's scheduling state (one atomic read; the deadline from
    /// the timer heap, tried with a bounded spin).
    pub fn view(&self) -> Option<ThreadView> {
        let word = self.state.load();
        let deadline = TimerKey::from_raw(self.timer.load(Ordering::Acquire))
            .and_then(|k| crate::timers::deadline_of(k, VIEW_SPINS));
        Some(ThreadView {
            state: match State::run(word) {
                Run::Ready => "ready",
                Run::Running => "running",
                Run::Blocked => "blocked",
                Run::Exited => "exited",
            },
            on_cpu: word & ON_CPU != 0,
            deadline,
            last_cpu: self.last_cpu.load(Ordering::Relaxed),
            pinned: self.pinned_cpu(),
        })
    }
}

/// Calls `f` on each thread queued on CPU `cpu`, in queue order, with the
/// queue locked; false if the lock stayed held or there is no such CPU.
pub fn visit_run_queue(cpu: usize, mut f: impl FnMut(&Thread)) -> bool {
    let Some(c) = CPUS.get(cpu) else { return false };
    let Some(q) = c.runq.try_lock_for(VIEW_SPINS) else {
        return false;
    };
    q.iter().for_each(|t| f(t));
    true
}

/// Calls `f` on each blocked thread, with the thread list locked; false if
/// the lock stayed held.
pub fn visit_blocked(mut f: impl FnMut(&Thread)) -> bool {
    let Some(list) = THREADS.try_lock_for(VIEW_SPINS) else {
        return false;
    };
    for listed in list.iter() {
        // SAFETY: listed and the list is locked: alive (see `THREADS`).
        let t = unsafe { &*listed.0 };
        if State::run(t.state.load()) == Run::Blocked {
            f(t);
        }
    }
    true
}

/// Whether CPU `cpu` is in its idle loop.
pub fn cpu_idle(cpu: usize) -> bool {
    CPUS.get(cpu)
        .is_some_and(|c| c.idle.load(Ordering::Relaxed))
}

/// Threads started and not yet reaped.
pub fn live_threads() -> u64 {
    LIVE.load(Ordering::Relaxed)
}
