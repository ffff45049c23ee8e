//! TLB shoot-downs for user address spaces (protocol and proofs in
//! `capos_kcore::shootdown`; the rules in docs/processes.md).
//!
//! Every CPU remembers which user root its CR3 holds (the idle loop keeps
//! the last one loaded: lazy switching). Each address space keeps the set
//! of CPUs that may hold its entries; a CPU enters that set before it loads
//! the root and leaves it after it has loaded another one. After changing a
//! space's page tables, [`shoot`] flushes this CPU and sends the
//! `IPI_TLB` vector to every other CPU in the set, then waits for each to
//! acknowledge. [`release`] does the same with a "switch to the kernel
//! root" request before a space's tables are freed.
//!
//! The kernel half is shared by every root and mapped global, so a CPU keeps
//! its entries across CR3 loads. Every CPU [`join_kernel`]s a set of its own
//! when it comes up; [`flush_kernel_everywhere`] makes each of them drop
//! every TLB entry (global ones included) and every cached page-table link.
//! The kernel-stack allocator does this before it reuses a freed range or
//! frees a page table of the stack window.
//!
//! No deadlock: a CPU never busy-waits with interrupts masked without
//! servicing its own requests ([`poll`] is called from every spin loop in
//! `sync.rs`, and [`shoot`] services while it waits), so a target answers
//! whatever it is doing, and the requester may hold any locks.

use crate::percpu::MAX_CPUS;
use capos_arch::trap::vector;
use capos_kcore::shootdown::{self as sd, Flush, Request, Station};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use x86_64::instructions::{interrupts, tlb};
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::PhysFrame;
use x86_64::{PhysAddr, VirtAddr};

const _: () = assert!(MAX_CPUS <= sd::MAX_CPUS);

static STATIONS: [Station<AtomicU64>; MAX_CPUS] = [Station::EMPTY; MAX_CPUS];

/// What one CPU has loaded. Touched only by that CPU, with interrupts off.
struct Loaded {
    /// The user root in CR3, or 0 for the kernel's own root.
    root: AtomicU64,
    /// That space's active-CPU word (null with the kernel root). Valid while
    /// this CPU is in its set: the space is not freed before every member
    /// has left (see [`release`]).
    cpus: AtomicPtr<AtomicU64>,
}

static LOADED: [Loaded; MAX_CPUS] = [const {
    Loaded {
        root: AtomicU64::new(0),
        cpus: AtomicPtr::new(core::ptr::null_mut()),
    }
}; MAX_CPUS];

/// Set once any CPU has loaded a user root; until then nobody can have a
/// request, and [`poll`] (called from early-boot spin loops, before the
/// per-CPU block exists) returns at once.
static STARTED: AtomicBool = AtomicBool::new(false);

/// The root value of requests about the kernel half. Real roots are page
/// aligned, so no user space ever has this one.
const KERNEL_HALF: u64 = u64::MAX;

/// CPUs that answer kernel-half flushes: each from start-up until it halts
/// for good.
static KERNEL_CPUS: AtomicU64 = AtomicU64::new(0);

static SHOOTDOWNS: AtomicU64 = AtomicU64::new(0);
static KERNEL_FLUSHES: AtomicU64 = AtomicU64::new(0);
static RELEASES: AtomicU64 = AtomicU64::new(0);
static PAGE_FLUSHES: AtomicU64 = AtomicU64::new(0);
static FULL_FLUSHES: AtomicU64 = AtomicU64::new(0);
static IPIS_SENT: AtomicU64 = AtomicU64::new(0);
static ACKED_IN_HANDLER: AtomicU64 = AtomicU64::new(0);
static ACKED_POLLING: AtomicU64 = AtomicU64::new(0);

fn this_cpu() -> usize {
    capos_arch::percpu::this_cpu_index() as usize
}

fn write_cr3(root: u64) {
    // SAFETY: every root (user or kernel) shares the kernel half, so the
    // code, stack and data in use stay mapped across the switch.
    unsafe {
        Cr3::write(
            PhysFrame::containing_address(PhysAddr::new(root)),
            Cr3Flags::empty(),
        )
    };
}

/// Loads user root `root`, whose space's active-CPU word is `cpus`, on this
/// CPU, unless it is loaded already. Interrupts must be off, and `cpus`
/// must stay valid until this CPU leaves it (true for a space that
/// [`release`]s before it is freed).
pub fn switch_to(root: u64, cpus: &AtomicU64) {
    debug_assert!(!interrupts::are_enabled());
    let me = this_cpu();
    let here = &LOADED[me];
    if here.root.load(Ordering::Relaxed) == root {
        return;
    }
    STARTED.store(true, Ordering::Relaxed);
    // Join before the CR3 write: from here on, page walks see every change
    // made before a snapshot that missed this bit (kcore::shootdown).
    sd::join(cpus, me);
    write_cr3(root);
    here.root.store(root, Ordering::Relaxed);
    let old = here.cpus.swap(
        cpus as *const AtomicU64 as *mut AtomicU64,
        Ordering::Relaxed,
    );
    leave(old, me);
}

/// Takes this CPU out of every shoot-down before it halts for good (after a
/// fault or a stop request): it answers what is pending, then loads the
/// kernel's root, leaving the set of the space it had loaded, so no later
/// shoot-down waits for a CPU that will never answer. Interrupts off.
pub fn go_offline() {
    if !STARTED.load(Ordering::Relaxed) {
        return;
    }
    poll();
    let me = this_cpu();
    switch_to_kernel_root(me);
    sd::leave(&KERNEL_CPUS, me);
}

/// Enters this CPU in the set that kernel-half flushes reach. Each CPU
/// calls it once at start-up, before any kernel stack of a process exists
/// (the boot CPU once its interrupts are on, each AP before it reports
/// itself online).
pub fn join_kernel() {
    sd::join(&KERNEL_CPUS, this_cpu());
}

/// Loads the kernel's own root on this CPU (interrupts off).
fn switch_to_kernel_root(me: usize) {
    let here = &LOADED[me];
    if here.root.load(Ordering::Relaxed) == 0 {
        return;
    }
    write_cr3(crate::mem::paging::kernel_pml4());
    here.root.store(0, Ordering::Relaxed);
    let old = here.cpus.swap(core::ptr::null_mut(), Ordering::Relaxed);
    leave(old, me);
}

/// Leaves the active set at `cpus` (after the CR3 write that flushed it).
fn leave(cpus: *mut AtomicU64, me: usize) {
    if !cpus.is_null() {
        // SAFETY: this CPU was in the set until this very write, so the
        // space has not been freed (its release waits for every member).
        sd::leave(unsafe { &*cpus }, me);
    }
}

/// Carries out `req` on this CPU if it concerns the root loaded here; a CPU
/// that has loaded another root since has nothing to flush.
fn apply(me: usize, req: Request) {
    if req.root == KERNEL_HALF {
        flush_everything();
        return;
    }
    if LOADED[me].root.load(Ordering::Relaxed) != req.root {
        return;
    }
    match req.flush {
        Flush::Pages { start, count } => {
            for i in 0..count {
                tlb::flush(VirtAddr::new(start + i * sd::PAGE_SIZE));
            }
        }
        Flush::All => tlb::flush_all(),
        Flush::Release => switch_to_kernel_root(me),
    }
}

/// Drops every TLB entry of this CPU, global ones included, and every
/// paging-structure cache entry: toggling CR4.PGE does all of that; without
/// global pages a CR3 reload does.
fn flush_everything() {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    let cr4 = Cr4::read();
    if cr4.contains(Cr4Flags::PAGE_GLOBAL) {
        // SAFETY: only the global-page bit changes, and it is restored at
        // once; the tables in use stay the same.
        unsafe {
            Cr4::write(cr4 - Cr4Flags::PAGE_GLOBAL);
            Cr4::write(cr4);
        }
    } else {
        tlb::flush_all();
    }
}

/// Handles this CPU's pending requests; `in_handler` says where from (for
/// the counters). Interrupts must be off.
fn service(me: usize, in_handler: bool) {
    let n = sd::service(&STATIONS, me, |r| apply(me, r));
    let counter = if in_handler {
        &ACKED_IN_HANDLER
    } else {
        &ACKED_POLLING
    };
    counter.fetch_add(u64::from(n), Ordering::Relaxed);
}

/// The `IPI_TLB` handler.
pub fn on_ipi() {
    if STARTED.load(Ordering::Relaxed) {
        service(this_cpu(), true);
    }
}

/// Services this CPU's pending requests, if any. Every busy-wait in the
/// kernel calls this (the lock spin loops in `sync.rs`), so a CPU spinning
/// with interrupts off still answers shoot-downs.
pub fn poll() {
    if !STARTED.load(Ordering::Relaxed) {
        return;
    }
    // The MSR-based lookup is safe even before a CPU's block is installed.
    let Some(me) = capos_arch::percpu::cpu_index() else {
        return;
    };
    let me = me as usize;
    if me < MAX_CPUS && STATIONS[me].has_pending() {
        interrupts::without_interrupts(|| service(me, false));
    }
}

/// Flushes `flush` for the space with root `root` and active-CPU word
/// `cpus` everywhere: here, and on every other CPU in the set by IPI.
/// Returns once all of them have acknowledged. Call after the page-table
/// change and before freeing any frame it unmapped. May be called with
/// interrupts on or off and with locks held.
pub fn shoot(root: u64, cpus: &AtomicU64, flush: Flush) {
    interrupts::without_interrupts(|| {
        let me = this_cpu();
        let targets = sd::snapshot(cpus);
        if targets.contains(me) {
            apply(me, Request { root, flush });
        }
        let others = targets.without(me);
        if others.is_empty() {
            return;
        }
        match flush {
            Flush::Pages { count, .. } => PAGE_FLUSHES.fetch_add(count, Ordering::Relaxed),
            Flush::All => FULL_FLUSHES.fetch_add(1, Ordering::Relaxed),
            Flush::Release => RELEASES.fetch_add(1, Ordering::Relaxed),
        };
        if flush != Flush::Release {
            SHOOTDOWNS.fetch_add(1, Ordering::Relaxed);
        }
        interrupt_and_wait(me, Request { root, flush }, others);
    });
}

/// Posts `req` to `others`, sends each the `IPI_TLB` vector and waits for
/// every acknowledgement (servicing this CPU's own requests meanwhile).
/// Interrupts off.
fn interrupt_and_wait(me: usize, req: Request, others: sd::CpuSet) {
    sd::post(&STATIONS, me, req, others);
    for cpu in others.iter() {
        if let Some(c) = crate::percpu::get(cpu as u32) {
            let apic = c.arch.apic_id.load(Ordering::Relaxed);
            crate::percpu::with_lapic(|l| l.send_ipi(vector::IPI_TLB, apic));
            IPIS_SENT.fetch_add(1, Ordering::Relaxed);
        }
    }
    let served = sd::wait(&STATIONS, me, |r| apply(me, r), core::hint::spin_loop);
    ACKED_POLLING.fetch_add(u64::from(served), Ordering::Relaxed);
}

/// Makes every CPU, this one included, drop all its TLB entries (global
/// ones too) and every cached page-table link, and returns once each has.
/// After it no CPU can still translate through a kernel-half entry or table
/// that was unlinked before the call. May be called with interrupts on or
/// off and with locks held.
pub fn flush_kernel_everywhere() {
    interrupts::without_interrupts(|| {
        STARTED.store(true, Ordering::Relaxed);
        let me = this_cpu();
        flush_everything();
        KERNEL_FLUSHES.fetch_add(1, Ordering::Relaxed);
        let others = sd::snapshot(&KERNEL_CPUS).without(me);
        if !others.is_empty() {
            interrupt_and_wait(
                me,
                Request {
                    root: KERNEL_HALF,
                    flush: Flush::All,
                },
                others,
            );
        }
    });
}

/// Makes every CPU that still has root `root` loaded (the idle loop keeps
/// it) switch to the kernel root, this one included, and waits until they
/// have. After it, no CPU is in `cpus`, so the space's tables can be freed.
/// Its threads must all be gone (nothing loads the root again).
pub fn release(root: u64, cpus: &AtomicU64) {
    shoot(root, cpus, Flush::Release);
    debug_assert!(sd::snapshot(cpus).is_empty());
}

/// Counters for the end-of-run report.
pub struct Stats {
    /// User page-table changes that interrupted at least one other CPU.
    pub shootdowns: u64,
    /// Spaces freed while another CPU still had them loaded.
    pub releases: u64,
    /// Pages invalidated one by one on other CPUs' behalf (per request).
    pub page_flushes: u64,
    /// Requests that flushed everything.
    pub full_flushes: u64,
    /// Kernel-half flushes on every CPU ([`flush_kernel_everywhere`]).
    pub kernel_flushes: u64,
    /// `IPI_TLB` interrupts sent (for user spaces and the kernel half).
    pub ipis_sent: u64,
    /// Requests acknowledged by their targets: in the interrupt handler,
    /// and while spinning (on a lock or for their own shoot-down).
    pub acked_in_handler: u64,
    /// See `acked_in_handler`.
    pub acked_polling: u64,
}

/// The counters so far.
pub fn stats() -> Stats {
    let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
    Stats {
        shootdowns: l(&SHOOTDOWNS),
        releases: l(&RELEASES),
        page_flushes: l(&PAGE_FLUSHES),
        full_flushes: l(&FULL_FLUSHES),
        kernel_flushes: l(&KERNEL_FLUSHES),
        ipis_sent: l(&IPIS_SENT),
        acked_in_handler: l(&ACKED_IN_HANDLER),
        acked_polling: l(&ACKED_POLLING),
    }
}
