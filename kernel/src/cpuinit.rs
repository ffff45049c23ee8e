//! Bringing one CPU into the kernel: descriptor tables, trap stacks, the
//! shared IDT, the per-CPU block, CR4 protections and the local APIC timer.
//!
//! The BSP runs [`bsp_early`] before memory is set up (static tables and
//! stacks) and [`start_local_timer`] later; every AP runs [`ap_init`] with
//! stacks from the guarded stack window.

use crate::mem::{phys_to_virt, stack};
use crate::percpu::{self, Cpu};
use alloc::boxed::Box;
use capos_arch::apic::{self, Lapic};
use capos_arch::cpu;
use capos_arch::gdt::{CpuTables, IST_COUNT};
use capos_arch::trap::fill_idt;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Once;
use x86_64::structures::idt::InterruptDescriptorTable;

static IDT: Once<InterruptDescriptorTable> = Once::new();

/// Pages per trap (IST) stack.
const IST_PAGES: u64 = 4;
/// Pages per AP kernel stack.
const AP_STACK_PAGES: u64 = 16;
/// APIC timer interrupts per second on every CPU.
pub const TICK_HZ: u64 = 100;

/// The periodic-timer initial count every CPU uses (set by the BSP).
static TIMER_INITIAL: AtomicU32 = AtomicU32::new(0);

#[repr(C, align(16))]
struct BootStack([u8; 16 * 1024]);
static mut BSP_IST: [BootStack; IST_COUNT] = [const { BootStack([0; 16 * 1024]) }; IST_COUNT];

fn load_idt() {
    IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        fill_idt(&mut idt);
        idt
    })
    .load();
}

/// BSP set-up that needs no allocator beyond the static arena: GDT and TSS
/// with static IST stacks, the IDT, and the per-CPU block. After this every
/// exception prints a report instead of triple-faulting.
pub fn bsp_early() -> &'static Cpu {
    // Only the addresses of the static IST stacks are taken; the CPU is the
    // only writer, through the TSS. The heap already runs on its static arena.
    let ist = &raw mut BSP_IST;
    let top = |i: usize| ist as u64 + (i as u64 + 1) * core::mem::size_of::<BootStack>() as u64;
    let tables: &'static mut CpuTables = Box::leak(Box::new(CpuTables::new()));
    // RSP0 only matters for ring-3 entries; the BSP gets a proper kernel
    // stack for that when processes exist.
    tables.set_stacks(top(0), [top(0), top(1), top(2)]);
    let (sel, tss) = tables.load();
    capos_arch::syscall::init(&sel);
    load_idt();
    capos_arch::pic::remap_and_mask();
    let apic_id = raw_cpuid::CpuId::new()
        .get_feature_info()
        .map_or(0, |f| u32::from(f.initial_local_apic_id()));
    let cpu = percpu::register(0, apic_id);
    // SAFETY: on the BSP, once, after its GDT is loaded.
    unsafe { percpu::install(cpu) };
    crate::sched::register_cpu_tss(tss);
    cpu
}

/// Enables this CPU's local APIC and stores the driver in its block.
pub fn enable_lapic(cpu: &'static Cpu) -> Result<apic::ApicMode, &'static str> {
    let base = phys_to_virt(apic::xapic_phys_base());
    // SAFETY: the direct map covers the APIC page uncached (paging.rs maps
    // non-RAM in the 3-4 GiB window with PCD|PWT), and the IDT has entries
    // for the timer, error and spurious vectors.
    let lapic = unsafe { Lapic::enable(base)? };
    let mode = lapic.mode();
    cpu.arch.apic_id.store(lapic.id(), Ordering::Relaxed);
    percpu::set_lapic(lapic);
    Ok(mode)
}

/// Records the periodic count for [`TICK_HZ`] from the calibrated APIC
/// timer rate.
pub fn set_tick_rate(apic_timer_hz: u64) {
    let count = (apic_timer_hz / TICK_HZ).clamp(1, u64::from(u32::MAX));
    TIMER_INITIAL.store(count as u32, Ordering::Relaxed);
}

/// Starts this CPU's periodic APIC timer.
pub fn start_local_timer() {
    let initial = TIMER_INITIAL.load(Ordering::Relaxed);
    percpu::with_lapic(|l| l.start_periodic(initial));
}

/// Allocates an AP's kernel stack (the one the trampoline switches to).
pub fn alloc_ap_stack() -> Result<stack::KernelStack, stack::StackError> {
    stack::alloc(AP_STACK_PAGES)
}

/// Everything an AP does between the trampoline and its idle loop.
pub fn ap_init(cpu: &'static Cpu, boot_stack_top: u64) -> Result<(), &'static str> {
    let mut ist = [0u64; IST_COUNT];
    for slot in ist.iter_mut() {
        *slot = stack::alloc(IST_PAGES)
            .map_err(|_| "no memory for trap stacks")?
            .top;
    }
    let tables: &'static mut CpuTables = Box::leak(Box::new(CpuTables::new()));
    tables.set_stacks(boot_stack_top, ist);
    let (sel, tss) = tables.load();
    capos_arch::syscall::init(&sel);
    load_idt();
    // SAFETY: on this AP, once, after its GDT is loaded.
    unsafe { percpu::install(cpu) };
    crate::sched::register_cpu_tss(tss);
    // SAFETY: the kernel reaches user memory only through the direct map
    // (never through user addresses, so SMAP/SMEP hold) and marks none of
    // its own mappings user; every bit was advertised by this CPU's CPUID.
    unsafe { cpu::enable_protections(&cpu::features()) };
    enable_lapic(cpu)?;
    start_local_timer();
    Ok(())
}
