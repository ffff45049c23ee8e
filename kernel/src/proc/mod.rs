//! Processes: an address space loaded from a static ELF, a ring page, a
//! read-only CapSet page, a user stack under an unmapped guard page, a
//! capability table and a resource ledger; each runs one thread.

pub mod aspace;
pub mod registry;

use crate::mem::{phys_to_virt, stack, PAGE_SIZE};
use crate::objects::{KernelObject, Object};
use crate::sched::Thread;
use alloc::string::String;
use alloc::sync::Arc;
use aspace::{AddressSpace, UserPerm, VmError};
use capos_caps::cap_table::CapTable;
use capos_caps::ledger::{Ledger, Limits};
use capos_kcore::elf::{self, ElfImage};
use capos_ring::process::{
    encode_capset, CapSetEntry, CAPSET_ADDR, RING_ADDR, STACK_PAGES, STACK_TOP,
};
use capos_ring::{RawRing, DEFAULT_LAYOUT};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI64, AtomicU32, AtomicU8, Ordering};

/// Kernel stack pages per thread.
pub const KERNEL_STACK_PAGES: u64 = 8;

/// The exit code of a process ended by `ProcessHandle.kill`: 2^32, outside
/// the `i32` a service's `main` returns (so no runtime exit gives it) and
/// far from a fault's 128 + vector.
pub const KILLED_EXIT_CODE: i64 = 1 << 32;

/// A process.
pub struct Process {
    /// Process id (1 is the first process).
    pub pid: u32,
    /// Binary name, for reports.
    pub name: String,
    /// The ring; declared before `aspace` so it drops before the ring
    /// frame is freed.
    pub ring: crate::ring::Ring,
    /// Capability table (a lock that answers TLB shoot-downs while it spins:
    /// it may be taken with interrupts masked).
    pub caps: crate::sync::SpinLock<CapTable<dyn KernelObject>>,
    /// Resource ledger.
    pub ledger: Arc<Ledger>,
    /// Page tables and user memory.
    pub aspace: AddressSpace,
    /// Exit code once exited.
    pub exit_code: AtomicI64,
    /// How it ends ([`capos_kcore::fate`]): live, killed, or exiting on
    /// its own. Looked at on every return to user mode.
    fate: AtomicU8,
    /// Exit code for `ProcessHandle.wait`, and its waiters.
    pub exit: Arc<crate::objects::process::ExitStatus>,
    /// The session it runs in, fixed at creation (docs/sessions.md).
    pub session: Arc<crate::objects::session::SessionCore>,
    /// Its threads: what keeps a blocked thread alive (the scheduler holds
    /// only running and queued ones). A thread leaves when it is reaped.
    threads: crate::sync::SpinLock<alloc::vec::Vec<Arc<Thread>>>,
    /// The charge for the frames the process started with.
    _bootstrap: capos_caps::ledger::Reservation,
    /// Counts the process among the living; declared last, so it is
    /// dropped after everything above (its address space freed).
    _alive: Alive,
}

/// Processes not yet freed. Once none is left, the kernel reports that
/// every process has exited, with the frame accounting that proves nothing
/// leaked ([`report_if_all_exited`], called by whoever dropped a process:
/// the reaper after its exit line, or a deferred drop).
static ALIVE: AtomicU32 = AtomicU32::new(0);
/// Whether the all-exited report was made.
static REPORTED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Reports that every process has exited, once, if none is left.
pub fn report_if_all_exited() {
    if ALIVE.load(Ordering::Acquire) == 0 && !REPORTED.swap(true, Ordering::AcqRel) {
        report_all_exited();
    }
}

/// One living process (see [`ALIVE`]).
struct Alive;

impl Alive {
    fn new() -> Self {
        ALIVE.fetch_add(1, Ordering::AcqRel);
        Alive
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        ALIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

static NEXT_PID: AtomicU32 = AtomicU32::new(1);

/// Why a process could not be created.
#[derive(Debug)]
pub enum SpawnError {
    /// The binary is not a valid service ELF.
    Elf(elf::ElfError),
    /// Memory ran out.
    Vm(VmError),
    /// A capability could not be installed.
    Cap(capos_caps::cap_table::CapError),
    /// The CapSet does not fit.
    CapSet,
    /// No kernel stack.
    Stack,
    /// The process's own quota cannot hold what it needs to start.
    Quota(capos_caps::ledger::QuotaError),
}

impl core::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SpawnError::Elf(e) => write!(f, "invalid ELF: {e}"),
            SpawnError::Vm(e) => write!(f, "address space: {e:?}"),
            SpawnError::Quota(e) => write!(f, "its own quota: {e}"),
            SpawnError::Cap(e) => write!(f, "capability table: {e}"),
            SpawnError::CapSet => f.write_str("the CapSet does not fit in one page"),
            SpawnError::Stack => f.write_str("no kernel stack"),
        }
    }
}

impl From<VmError> for SpawnError {
    fn from(e: VmError) -> Self {
        SpawnError::Vm(e)
    }
}

/// Pending `Timer.sleep` calls one process may have at once.
pub const MAX_PENDING_SLEEPS: u64 = 16;

/// The largest frame quota a process may be given (64 MiB); the default is
/// [`Limits::DEFAULT`]'s (4096 frames, 16 MiB).
pub const MAX_FRAME_LIMIT: u64 = 16384;

/// The largest cap-slot quota a process may be given (manifest or spawn).
pub const MAX_CAP_SLOT_LIMIT: u64 = capos_caps::manifest::MAX_CAP_SLOTS as u64;

/// Calls a process's endpoints may hold queued for it at once.
pub const MAX_QUEUED_CALLS: u64 = 16;
/// Calls delivered to a process's endpoints and not yet answered.
pub const MAX_IN_FLIGHT_CALLS: u64 = 16;

fn process_limits() -> Limits {
    use capos_caps::ledger::Resource;
    Limits::DEFAULT
        .with(Resource::TimerWaiters, MAX_PENDING_SLEEPS)
        .with(Resource::QueuedCalls, MAX_QUEUED_CALLS)
        .with(Resource::InFlightCalls, MAX_IN_FLIGHT_CALLS)
}

/// How a granted capability may leave its holder: the boot package (init's
/// alone) and caps bound to the holder's own address space never leave; an
/// endpoint's owner side and the terminal session may only move (one
/// server, one holder); everything else may be copied, the ProcessSpawner
/// included (init gives a copy to a session manager the manifest names
/// with `source = (spawner = void)`; it starts only boot binaries, with
/// what its holder sends).
pub fn transfer_mode_for(interface_id: u64) -> capos_caps::cap_table::TransferMode {
    use capos_caps::cap_table::TransferMode;
    use capos_caps::interfaces as i;
    match interface_id {
        i::BOOT_PACKAGE | i::VIRTUAL_MEMORY => TransferMode::NonTransferable,
        i::ENDPOINT | i::TERMINAL_SESSION => TransferMode::Move,
        _ => TransferMode::Copy,
    }
}

/// A capability to install: name, object, interface id.
pub struct Grant {
    /// CapSet name.
    pub name: String,
    /// The object.
    pub object: Object,
    /// Interface it is granted as.
    pub interface_id: u64,
}

/// Creates a process from ELF `bytes` with `grants`, and its thread (not
/// yet runnable). The new process's ledger allows `frame_limit` frames and
/// `cap_slot_limit` capability-table entries (defaults [`Limits::DEFAULT`]'s;
/// its table grows on demand up to that quota); its bootstrap frames (image, stack,
/// ring, CapSet) are charged before any is allocated and the page tables
/// once built, so a child that cannot fit its own quota is refused before
/// it exists. Objects tied to their holder are bound to the new process.
pub fn spawn(
    name: &str,
    bytes: &[u8],
    grants: alloc::vec::Vec<Grant>,
    frame_limit: Option<u64>,
    cap_slot_limit: Option<u64>,
    session: Arc<crate::objects::session::SessionCore>,
) -> Result<Arc<Thread>, SpawnError> {
    let image = elf::parse(bytes, &elf::Limits::default()).map_err(SpawnError::Elf)?;
    let mut limits = process_limits();
    if let Some(frames) = frame_limit {
        limits = limits.with(capos_caps::ledger::Resource::Frames, frames);
    }
    if let Some(slots) = cap_slot_limit {
        limits = limits.with(capos_caps::ledger::Resource::CapSlots, slots);
    }
    let ledger = Ledger::new(limits);
    let bootstrap = image.total_pages() + STACK_PAGES + 2;
    let mut charge = ledger
        .reserve(capos_caps::ledger::Resource::Frames, bootstrap)
        .map_err(SpawnError::Quota)?;
    let aspace = AddressSpace::new()?;
    load_image(&aspace, bytes, &image)?;
    for i in 0..STACK_PAGES {
        aspace.map_new(STACK_TOP - (i + 1) * PAGE_SIZE, UserPerm::ReadWrite)?;
    }
    let ring_phys = aspace.map_new(RING_ADDR, UserPerm::ReadWrite)?;
    let capset_phys = aspace.map_new(CAPSET_ADDR, UserPerm::Read)?;

    // SAFETY: the ring frame was just allocated, zeroed and mapped for this
    // process; the kernel reaches it through the direct map for as long as
    // the address space lives, and the `Ring` is dropped before it.
    let raw = unsafe {
        RawRing::init(
            NonNull::new_unchecked(phys_to_virt(ring_phys) as *mut u8),
            DEFAULT_LAYOUT,
        )
    }
    .map_err(|_| SpawnError::CapSet)?;

    // The page tables the image needed, on top of the pages charged above.
    let tables = aspace.frames().saturating_sub(bootstrap);
    let more = ledger
        .reserve(capos_caps::ledger::Resource::Frames, tables)
        .map_err(SpawnError::Quota)?;
    let _ = charge.merge(more);
    let mut table: CapTable<dyn KernelObject> = CapTable::for_ledger(ledger.clone());
    let mut entries = alloc::vec::Vec::new();
    for g in grants {
        let hold = capos_caps::cap_table::Hold::new(
            transfer_mode_for(g.interface_id),
            capos_caps::cap_table::Origin::Manifest,
        );
        let id = table.insert(g.object, hold).map_err(SpawnError::Cap)?;
        entries.push(
            CapSetEntry::new(&g.name, id.to_raw(), g.interface_id).ok_or(SpawnError::CapSet)?,
        );
    }
    // SAFETY: the CapSet frame is ours, zeroed, and 4096 bytes long.
    let page =
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(capset_phys) as *mut u8, 4096) };
    encode_capset(&entries, page).map_err(|_| SpawnError::CapSet)?;

    let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
    let ring = crate::ring::Ring::new(pid, raw).ok_or(SpawnError::CapSet)?;
    let process = Arc::new(Process {
        pid,
        name: name.into(),
        ring,
        caps: crate::sync::SpinLock::new(table),
        ledger,
        aspace,
        exit_code: AtomicI64::new(0),
        fate: AtomicU8::new(capos_kcore::fate::LIVE),
        exit: crate::objects::process::ExitStatus::new(),
        session,
        threads: crate::sync::SpinLock::new(alloc::vec::Vec::new()),
        _bootstrap: charge,
        _alive: Alive::new(),
    });
    // Objects tied to their holder learn who it is before it can run.
    let objects: alloc::vec::Vec<Object> = process
        .caps
        .lock()
        .iter()
        .map(|(_, e)| e.object.clone())
        .collect();
    for object in objects {
        object.bind_holder(&process);
    }
    let kstack = stack::alloc(KERNEL_STACK_PAGES).map_err(|_| SpawnError::Stack)?;
    let thread = Thread::new_user(
        process,
        kstack,
        image.entry,
        [RING_ADDR, u64::from(pid), CAPSET_ADDR],
        STACK_TOP,
    );
    registry::add(&thread.process);
    Ok(thread)
}

fn load_image(aspace: &AddressSpace, bytes: &[u8], image: &ElfImage) -> Result<(), SpawnError> {
    for seg in &image.segments {
        let perm = if seg.perms.execute {
            UserPerm::ReadExec
        } else if seg.perms.write {
            UserPerm::ReadWrite
        } else {
            UserPerm::Read
        };
        let data = elf::segment_bytes(bytes, seg);
        let (start, end) = seg.page_range();
        let mut va = start;
        while va < end {
            let phys = aspace.map_new(va, perm)?;
            // Copy the part of the segment's file bytes that lands in this page.
            let page_end = va + PAGE_SIZE;
            let from = seg.vaddr.max(va);
            let to = (seg.vaddr + data.len() as u64).min(page_end);
            if from < to {
                let src = &data[(from - seg.vaddr) as usize..(to - seg.vaddr) as usize];
                // SAFETY: `phys` is a fresh frame of this space; the copy stays
                // inside the page (from..to lies within [va, va + 4096)).
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        src.as_ptr(),
                        (phys_to_virt(phys) + (from - va)) as *mut u8,
                        src.len(),
                    );
                }
            }
            va = page_end;
        }
    }
    Ok(())
}

/// Reports a process whose last thread was reaped, then drops it (freeing
/// its address space, capability table and ledger).
pub fn report_exit(process: Arc<Process>) {
    // Whatever it still waits for is cancelled on its queues: no waiter
    // and no charge outlives it.
    let cancelled = process.ring.cancel_parked();
    if cancelled > 0 {
        crate::info!(
            "proc: pid {} ({}) had {cancelled} operations waiting; cancelled",
            process.pid,
            process.name
        );
    }
    // Idle CPUs may still have its page tables loaded: switch them away
    // here, with no lock held, before the tables can be freed.
    process.aspace.release_cpus();
    let frames = process.aspace.frames();
    let code = process.exit_code.load(Ordering::Acquire);
    process.exit.complete(code);
    let (pid, name) = (process.pid, process.name.clone());
    registry::remove(pid);
    drop(process);
    crate::info!(
        "proc: pid {pid} ({name}) exited with code {code}; freed {frames} frames and {KERNEL_STACK_PAGES} kernel stack pages; frames held by processes now {}",
        aspace::frames_held()
    );
    report_if_all_exited();
}

/// Reports that no process is left, with the frame accounting that proves
/// nothing leaked.
pub fn report_all_exited() {
    // Freed kernel-stack ranges give back the page tables that map nothing.
    stack::trim();
    let stats = crate::mem::frame::stats();
    crate::info!(
        "proc: all processes exited; frames held by processes {}; free frames {} (before the first process {})",
        aspace::frames_held(),
        stats.free,
        FREE_BEFORE.load(Ordering::Relaxed)
    );
    let t = crate::timers::stats();
    crate::info!(
        "timers: {} pending; {} fired, at most {} pending at once, in deadline order: {}",
        t.pending,
        t.fired,
        t.peak,
        if t.in_order { "yes" } else { "no" }
    );
    let k = stack::stats();
    crate::info!(
        "kstack: {} kernel stacks mapped, {} of them on reused ranges; {} ranges made; {} reclaims freed {} page tables",
        k.allocated,
        k.reused,
        k.ranges,
        k.reclaims,
        k.tables_freed
    );
    let ticks: alloc::vec::Vec<alloc::string::String> = (0..crate::percpu::registered() as usize)
        .map(|c| alloc::format!("cpu{c}={}", crate::sched::user_ticks(c)))
        .collect();
    crate::info!(
        "sched: timer ticks in user mode per CPU: {}",
        ticks.join(" ")
    );
    crate::info!(
        "sched: up to {} CPUs ran user threads at the same time",
        crate::sched::peak_parallel_cpus()
    );
    let (sent, taken, stolen) = crate::sched::balance_counters();
    crate::info!(
        "sched: wake-up IPIs sent {sent}, received {taken}; threads stolen by idle CPUs {stolen}"
    );
    for cpu in 0..crate::percpu::registered() as usize {
        let [(n, deliver, deliver_min), (m, switch, switch_min), (k, back, back_min)] =
            crate::sched::wake_latency(cpu);
        if n > 0 {
            crate::info!(
                "sched: cpu{cpu} woken by IPI {n} times, TSC cycles: send to handler mean {deliver} min {deliver_min}; handler to thread switch mean {switch} min {switch_min} ({m}); switch to cap_enter return mean {back} min {back_min} ({k})"
            );
        }
        let (sent, cost, cost_min) = crate::sched::ipi_send_cost(cpu);
        if sent > 0 {
            crate::info!(
                "sched: cpu{cpu} sent {sent} wake-up IPIs, send_ipi TSC cycles: mean {cost} min {cost_min}"
            );
        }
    }
    if crate::irqoff::MEASURED {
        let offs: alloc::vec::Vec<alloc::string::String> = (0..crate::percpu::registered()
            as usize)
            .map(|c| match crate::irqoff::longest_site(c) {
                Some(at) => alloc::format!(
                    "cpu{c}={} (from {}:{})",
                    crate::irqoff::longest(c),
                    at.file(),
                    at.line()
                ),
                None => alloc::format!("cpu{c}={}", crate::irqoff::longest(c)),
            })
            .collect();
        crate::info!(
            "kernel: heap allocations since boot {}; longest interrupts-off stretch (TSC cycles): {}",
            crate::mem::heap::allocations(),
            offs.join(" ")
        );
    } else {
        crate::info!(
            "kernel: heap allocations since boot {}; interrupts-off stretches not measured (built without irqoff)",
            crate::mem::heap::allocations()
        );
    }
    let t = crate::tlb::stats();
    crate::info!(
        "tlb: shoot-downs {} ({} pages, {} full flushes), releases {}, kernel flushes {}; IPIs sent {}, acknowledged {} ({} in the handler, {} while spinning)",
        t.shootdowns,
        t.page_flushes,
        t.full_flushes,
        t.releases,
        t.kernel_flushes,
        t.ipis_sent,
        t.acked_in_handler + t.acked_polling,
        t.acked_in_handler,
        t.acked_polling
    );
    crate::testmode::all_processes_exited();
}

impl Process {
    /// Adds a thread (it is kept alive here while blocked).
    pub fn add_thread(&self, thread: Arc<Thread>) {
        self.threads.lock().push(thread);
    }

    /// Marks the process killed: `true` for the first kill of a live
    /// process (the caller then stops its threads, [`crate::sched::kick`]);
    /// `false` if it was killed already or is exiting on its own.
    pub fn kill(&self) -> bool {
        capos_kcore::fate::kill(&self.fate)
    }

    /// Whether a kill was asked: its threads must not return to user mode.
    #[inline]
    pub fn killed(&self) -> bool {
        capos_kcore::fate::killed(&self.fate)
    }

    /// Its threads, for a kill to stop (thread context: this allocates).
    pub fn threads(&self) -> alloc::vec::Vec<Arc<Thread>> {
        self.threads.lock().clone()
    }

    /// Removes a thread that is being reaped.
    pub fn remove_thread(&self, thread: &Arc<Thread>) {
        let gone = {
            let mut threads = self.threads.lock();
            threads
                .iter()
                .position(|t| Arc::ptr_eq(t, thread))
                .map(|i| threads.swap_remove(i))
        };
        drop(gone);
    }
}

/// Free frames just before the first process was created.
pub static FREE_BEFORE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Ends the current process with `code` (from `exit`, a fault or a
/// kill). A process killed before it started exiting on its own exits with
/// [`KILLED_EXIT_CODE`] whatever `code` says.
pub fn exit_current(code: i64) -> ! {
    if let Some(t) = crate::sched::current() {
        let code = if capos_kcore::fate::exit(&t.process.fate) {
            code
        } else {
            KILLED_EXIT_CODE
        };
        t.process.exit_code.store(code, Ordering::Release);
    }
    crate::sched::exit_current()
}

/// On every way back to user mode (a system call's return, an interrupt
/// or exception return to ring 3, a thread's first entry): a thread of a
/// killed process does not go back, it ends the process here. One load
/// when there is no kill.
#[inline]
pub fn exit_if_killed() {
    if let Some(t) = crate::sched::current_arc() {
        if t.process.killed() {
            exit_current(KILLED_EXIT_CODE)
        }
    }
}
