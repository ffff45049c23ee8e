//! The lock-order validator in the kernel (the `lockdep` feature; logic in
//! `capos_kcore::lockdep`, rules in docs/locking.md).
//!
//! Every CPU has a stack of the locks it holds, indexed by its CPU number
//! (one more slot serves a CPU whose per-CPU block is not installed yet:
//! the boot CPU's first steps and each AP's bring-up, one AP at a time).
//! Interrupt handlers push onto the stack of the CPU they interrupt, so the
//! locks of the interrupted code count as held. The order graph is shared,
//! behind a raw `spin::Mutex` that is not validated and that is taken only
//! for orders not seen before; nothing here allocates or takes a validated
//! lock. Every entry point runs with interrupts masked.
//!
//! On a violation the first CPU to see one prints the report on the serial
//! console, stops validating (so printing takes no checked lock) and halts;
//! a test boot exits QEMU with the failure status.

// Reports are returned by value (nothing here may allocate); see
// capos_kcore::lockdep.
#![allow(clippy::result_large_err)]

use crate::percpu::MAX_CPUS;
use crate::sync::{IrqLock, SpinLock};
use capos_arch::qemu::{self, ExitCode};
use capos_kcore::lockdep::{
    self as core_ld, Capacity, ClassId, Cpu, Graph, HeldLock, HeldStack, Seen, Site, Stop, Usage,
    Violation, MAX_CLASSES, UNKNOWN_CPU,
};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering::*};
use x86_64::instructions::interrupts;

/// Held-lock stacks: one per CPU, and one for a CPU not yet identified.
const SLOTS: usize = MAX_CPUS + 1;

static GRAPH: spin::Mutex<Graph> = spin::Mutex::new(Graph::new());
static SEEN: Seen = Seen::new();
static HELD: [spin::Mutex<HeldStack>; SLOTS] =
    [const { spin::Mutex::new(HeldStack::new()) }; SLOTS];
/// Interrupt handlers running on each CPU (nested).
static IRQ_DEPTH: [AtomicU32; SLOTS] = [const { AtomicU32::new(0) }; SLOTS];

/// Validating.
const ON: u8 = 0;
/// A table filled up; validation stopped (said once on the console).
const FULL: u8 = 1;
/// A violation was found; its report is being printed.
const REPORTED: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(ON);

/// Acquisitions checked, and how many of them in interrupt handlers (for
/// the summary).
static CHECKED: AtomicU64 = AtomicU64::new(0);
static CHECKED_IN_IRQ: AtomicU64 = AtomicU64::new(0);

/// A lock's class: where it was constructed, and its id once registered.
pub struct LockClass {
    site: Site,
    /// Class index + 1, or 0 before the first acquisition.
    id: AtomicU16,
}

impl LockClass {
    /// The class of locks constructed at `site`.
    pub const fn new(site: Site) -> Self {
        Self {
            site,
            id: AtomicU16::new(0),
        }
    }

    /// Where locks of this class are constructed.
    pub fn site(&self) -> Site {
        self.site
    }

    fn id(&self) -> Result<ClassId, Capacity> {
        let cached = self.id.load(Relaxed);
        if let Some(id) = cached
            .checked_sub(1)
            .and_then(|i| ClassId::from_index(i.into()))
        {
            return Ok(id);
        }
        let id = GRAPH.lock().class(self.site)?;
        const _: () = assert!(MAX_CLASSES < u16::MAX as usize);
        self.id.store(id.index() as u16 + 1, Relaxed);
        Ok(id)
    }
}

/// A lock's entry as its guard keeps it, to be released with the guard.
pub struct Held<'a> {
    class: &'a LockClass,
    instance: usize,
    tracked: bool,
}

impl<'a> Held<'a> {
    /// Records `pending` (from [`check`]) as held, now that the lock is
    /// taken.
    pub fn push(class: &'a LockClass, instance: usize, pending: Option<HeldLock>) -> Self {
        Self {
            class,
            instance,
            tracked: push(pending),
        }
    }

    /// Records a lock taken by a successful try-lock (which cannot wait,
    /// so it is not checked) as held.
    pub fn taken(class: &'a LockClass, instance: usize, site: Site) -> Self {
        Self {
            class,
            instance,
            tracked: taken(class, instance, site),
        }
    }

    /// Forgets the entry (call just before the lock is unlocked).
    pub fn release(&self) {
        release(self.class, self.instance, self.tracked);
    }
}

/// This CPU's held-stack slot and its number ([`UNKNOWN_CPU`] before its
/// per-CPU block is installed).
fn slot() -> (usize, u32) {
    match capos_arch::percpu::cpu_index() {
        Some(i) if (i as usize) < MAX_CPUS => (i as usize, i),
        _ => (MAX_CPUS, UNKNOWN_CPU),
    }
}

fn on() -> bool {
    STATE.load(Relaxed) == ON
}

/// Checks taking lock `instance` of `class` at `site` before the CPU spins
/// for it: re-entry, same-class nesting without increasing `key`, order
/// inversions, and interrupt safety (`irqs_on`: interrupts were enabled
/// when the caller asked; `masks`: the lock masks them while held). Returns
/// the entry for [`push`], or `None` if validation is off. Halts with a
/// report on a violation.
pub fn check(
    class: &LockClass,
    instance: usize,
    site: Site,
    key: Option<u64>,
    irqs_on: bool,
    masks: bool,
) -> Option<HeldLock> {
    if !on() {
        return None;
    }
    interrupts::without_interrupts(|| {
        let (slot, cpu) = slot();
        // Busy only if this CPU faulted inside the validator: skip.
        let held = HELD[slot].try_lock()?;
        let id = match class.id() {
            Ok(id) => id,
            Err(c) => {
                drop(held);
                full(c);
                return None;
            }
        };
        let new = HeldLock {
            class: id,
            class_site: class.site,
            instance,
            site,
            key,
        };
        let result = core_ld::check(
            &held,
            &SEEN,
            |h, n| GRAPH.lock().add_edge(&SEEN, h, n, cpu),
            &new,
            cpu,
        )
        .and_then(|()| note_uses(&new, slot, cpu, irqs_on && !masks).map_err(Stop::from));
        match result {
            Ok(()) => {
                CHECKED.fetch_add(1, Relaxed);
                Some(new)
            }
            Err(Stop::Full(c)) => {
                drop(held);
                full(c);
                None
            }
            Err(Stop::Violation(v)) => report(&v, Some(&held), cpu),
        }
    })
}

/// Records how `new`'s class is used with respect to interrupts.
fn note_uses(new: &HeldLock, slot: usize, cpu: u32, irqs_on: bool) -> Result<(), Violation> {
    let mut uses = [None, None];
    if IRQ_DEPTH[slot].load(Relaxed) > 0 {
        CHECKED_IN_IRQ.fetch_add(1, Relaxed);
        uses[0] = Some(Usage::InIrq);
    }
    if irqs_on {
        uses[1] = Some(Usage::IrqsOn);
    }
    for usage in uses.into_iter().flatten() {
        if !SEEN.has_use(new.class, usage) {
            GRAPH
                .lock()
                .note_use(&SEEN, new.class, new.class_site, usage, new.site, cpu)?;
        }
    }
    Ok(())
}

/// Pushes a checked entry now that its lock is held; false if untracked.
pub fn push(pending: Option<HeldLock>) -> bool {
    let Some(new) = pending else { return false };
    interrupts::without_interrupts(|| {
        if !on() {
            return false;
        }
        let Some(mut held) = HELD[slot().0].try_lock() else {
            return false;
        };
        match held.push(new) {
            Ok(()) => true,
            Err(c) => {
                drop(held);
                full(c);
                false
            }
        }
    })
}

/// Records a lock taken by a successful try-lock as held (no check: a
/// try-lock never waits); false if untracked.
pub fn taken(class: &LockClass, instance: usize, site: Site) -> bool {
    if !on() {
        return false;
    }
    let id = interrupts::without_interrupts(|| class.id());
    match id {
        Ok(class_id) => push(Some(HeldLock {
            class: class_id,
            class_site: class.site,
            instance,
            site,
            key: None,
        })),
        Err(c) => {
            full(c);
            false
        }
    }
}

/// Forgets this CPU's entry for lock `instance`, just before it is
/// unlocked. A tracked lock this CPU does not hold was taken on another
/// CPU: a report.
pub fn release(class: &LockClass, instance: usize, tracked: bool) {
    if !tracked || !on() {
        return;
    }
    interrupts::without_interrupts(|| {
        let (slot, cpu) = slot();
        let Some(mut held) = HELD[slot].try_lock() else {
            return;
        };
        if held.release(instance).is_none() && on() {
            report(
                &Violation::NotHeld {
                    cpu,
                    class_site: class.site,
                    instance,
                },
                Some(&held),
                cpu,
            );
        }
    })
}

/// Marks this CPU as running an interrupt handler until dropped.
pub struct IrqContext(());

/// Marks the start of an interrupt handler (the mark ends when the result
/// is dropped, on whichever CPU the handler finishes).
pub fn irq_enter() -> IrqContext {
    IRQ_DEPTH[slot().0].fetch_add(1, Relaxed);
    IrqContext(())
}

impl Drop for IrqContext {
    fn drop(&mut self) {
        IRQ_DEPTH[slot().0].fetch_sub(1, Relaxed);
    }
}

/// Called (interrupts off) just before this CPU switches threads: no lock
/// may be held across the switch. Returns the interrupt nesting of the
/// thread being left, which [`switch_in`] restores when it runs again (a
/// thread may be switched out from inside a timer handler and resumed where
/// no handler runs, or the other way round).
pub fn switch_out() -> u32 {
    let (slot, cpu) = slot();
    if on() {
        if let Some(held) = HELD[slot].try_lock() {
            if let Some(h) = held.iter().next() {
                report(&Violation::HeldAtSwitch { cpu, held: *h }, Some(&held), cpu);
            }
        }
    }
    IRQ_DEPTH[slot].swap(0, Relaxed)
}

/// Called when a thread switched out by [`switch_out`] runs again (on
/// whichever CPU), with the value that returned.
pub fn switch_in(depth: u32) {
    IRQ_DEPTH[slot().0].store(depth, Relaxed);
}

/// Says once that a table filled up, and stops validating.
fn full(c: Capacity) {
    if STATE.compare_exchange(ON, FULL, AcqRel, Relaxed).is_ok() {
        crate::console::emergency_write(format_args!("lockdep: {c}, validation off\n"));
    }
}

/// Writes through to `inner`, starting every line after the first with
/// `!!! `.
struct Prefixed<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Prefixed<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (i, part) in s.split('\n').enumerate() {
            if i > 0 {
                self.0.write_str("\n!!! ")?;
            }
            self.0.write_str(part)?;
        }
        Ok(())
    }
}

/// The report body: the violation, then what the CPU holds.
struct Report<'a> {
    violation: &'a Violation,
    held: Option<&'a HeldStack>,
    cpu: u32,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Prefixed(f);
        write!(out, "!!! lockdep: {}", self.violation)?;
        if let Some(held) = self.held {
            write!(out, "\nlocks held by {}, oldest first:", Cpu(self.cpu))?;
            if held.is_empty() {
                write!(out, "\n  (none)")?;
            }
            for (i, h) in held.iter().enumerate() {
                write!(
                    out,
                    "\n  #{i} lock made at {} taken at {}",
                    h.class_site, h.site
                )?;
                if let Some(k) = h.key {
                    write!(out, " (key {k})")?;
                }
            }
        }
        write!(out, "\nlockdep: {} halted", Cpu(self.cpu))
    }
}

/// Prints the report for `v` and halts (a test boot fails QEMU). Only the
/// first CPU to find a violation reports; any other halts quietly.
fn report(v: &Violation, held: Option<&HeldStack>, cpu: u32) -> ! {
    if STATE.swap(REPORTED, AcqRel) == REPORTED {
        capos_arch::cpu::halt_forever();
    }
    crate::console::emergency_write(format_args!(
        "\n{}\n",
        Report {
            violation: v,
            held,
            cpu
        }
    ));
    if crate::testmode::active() {
        qemu::exit(ExitCode::Failure);
    }
    capos_arch::cpu::halt_forever()
}

/// Prints the boot line saying the validator is on.
pub fn announce() {
    crate::info!(
        "lockdep: on: every IrqLock, SpinLock and the heap lock is checked for re-entry, order inversions and interrupt safety"
    );
}

/// Prints the end-of-test summary the smoke asserts: what was checked, or
/// why validation stopped.
pub fn summary() {
    let (classes, edges) = interrupts::without_interrupts(|| {
        let g = GRAPH.lock();
        (g.classes(), g.edges())
    });
    let checked = CHECKED.load(Relaxed);
    let in_irq = CHECKED_IN_IRQ.load(Relaxed);
    if crate::console::enabled(capos_kcore::cmdline::LogLevel::Debug) {
        // One at a time: printing takes checked locks, which may need the
        // graph.
        for i in 0..edges {
            let Some(e) = interrupts::without_interrupts(|| GRAPH.lock().edge_at(i).copied())
            else {
                break;
            };
            crate::debug!(
                "lockdep: order {i}: lock made at {} (taken at {}) held while taking lock made at {} (at {}), first on {}",
                e.from_class,
                e.from_site,
                e.to_class,
                e.to_site,
                Cpu(e.cpu)
            );
        }
    }
    match STATE.load(Relaxed) {
        ON => crate::info!(
            "lockdep: {checked} acquisitions checked ({in_irq} in interrupt handlers), {classes} lock classes, {edges} lock orders, no violations"
        ),
        _ => crate::info!(
            "lockdep: validation stopped after {checked} acquisitions ({classes} lock classes, {edges} lock orders)"
        ),
    }
}

/// `inject=lock-reentry`, `inject=lock-inversion` and
/// `inject=lock-irq-unsafe`: take a lock twice on this CPU; or two locks in
/// one order and then the other; or a non-masking lock with interrupts
/// enabled and then as an interrupt handler would. The report and the
/// failed test boot are checked by the smoke, which finds the expected
/// sites by the `inject:` markers on these lines.
pub fn inject(reentry: bool, inversion: bool, irq_unsafe: bool) {
    if reentry {
        crate::warn!("inject: taking a lock this CPU already holds");
        static LOCK: IrqLock<()> = IrqLock::new(()); // inject: reentry class
        let _first = LOCK.lock(); // inject: reentry first
        let _again = LOCK.lock(); // inject: reentry again
    }
    if inversion {
        crate::warn!("inject: taking two locks in one order, then in the other");
        static A: SpinLock<()> = SpinLock::new(()); // inject: inversion class A
        static B: SpinLock<()> = SpinLock::new(()); // inject: inversion class B
        {
            let _a = A.lock(); // inject: inversion A first
            let _b = B.lock(); // inject: inversion B second
        }
        let _b = B.lock(); // inject: inversion B first
        let _a = A.lock(); // inject: inversion A second
    }
    if irq_unsafe {
        crate::warn!("inject: taking a lock with interrupts enabled, then in interrupt context");
        static S: SpinLock<()> = SpinLock::new(()); // inject: irq class
        interrupts::enable();
        drop(S.lock()); // inject: irq enabled
                        // Stands in for an interrupt handler on this CPU.
        let _irq = irq_enter();
        let _s = S.lock(); // inject: irq handler
    }
}
