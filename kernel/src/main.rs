//! The capOS kernel: boot from multiboot2 to every CPU running with memory,
//! interrupts and timers (see `docs/boot.md` for the sequence).
#![no_std]
#![no_main]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;

mod acpi;
mod boot_procs;
mod bootinfo;
pub mod console;
mod cpuinit;
mod dispatch;
mod dump;
mod entropy;
mod irq;
mod irqoff;
mod mem;
mod objects;
mod percpu;
mod proc;
mod ring;
mod sched;
mod smp;
mod sync;
mod syscall;
mod terminal;
mod testmode;
mod time;
mod timers;
mod tlb;
mod trap;
mod usermem;

use alloc::vec::Vec;
use capos_arch::boot::{kernel_layout, MULTIBOOT2_BOOT_MAGIC};
use capos_arch::qemu::{self, ExitCode};
use capos_arch::{apic, cpu};
use capos_kcore::bootcheck::{self, ModuleInfo};
use capos_kcore::cmdline::{self, TestMode};
use capos_kcore::memmap;
use capos_kcore::range::PhysRange;
use core::sync::atomic::Ordering;

/// Kernel version, printed in the banner.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Timer ticks every online CPU must show before the kernel calls itself ready.
const TICKS_REQUIRED: u64 = 3;

/// Stops boot with a reason (and, in a test boot, fails the QEMU run).
fn halt_with(reason: core::fmt::Arguments<'_>) -> ! {
    console::emergency_write(format_args!("capOS: boot halted: {reason}\n"));
    if testmode::active() {
        qemu::exit(ExitCode::Failure);
    }
    cpu::halt_forever()
}

/// Entered from `higher_half_entry` in `arch/src/asm/boot.S` on the boot
/// stack, interrupts off, on the early page tables.
#[unsafe(no_mangle)]
extern "C" fn kernel_entry(magic: u32, info_phys: u32) -> ! {
    time::mark_kernel_entry();
    console::init();
    kprint!("\ncapOS {VERSION} booting\n");
    mem::heap::init_early();
    let bsp = cpuinit::bsp_early();

    if magic != MULTIBOOT2_BOOT_MAGIC {
        halt_with(format_args!("bad multiboot2 magic {magic:#x}"));
    }
    let early_cmdline = bootinfo::cmdline(info_phys);
    let (opts, warnings) = cmdline::parse(&early_cmdline);
    console::set_level(opts.log);
    testmode::set(opts.test);
    sync::lockdep::announce();
    let inject = opts.inject;
    let mut boot = match bootinfo::parse(info_phys, inject.no_memory_map) {
        Ok(b) => b,
        Err(e) => halt_with(format_args!("{e}")),
    };
    // Modules the loader itself passed (injected ones below are not counted):
    // a test boot that got any was meant to run processes.
    let loader_modules = boot.modules.len();
    if inject.module_overlap {
        let layout = kernel_layout();
        boot.modules.push(bootinfo::Module {
            name: "injected-overlap".into(),
            range: PhysRange::new(layout.phys_start, layout.phys_start + 0x1000),
        });
    }
    if inject.module_on_trampoline {
        let page = memmap::PREFERRED_TRAMPOLINE;
        boot.modules.push(bootinfo::Module {
            name: "injected-low".into(),
            range: PhysRange::new(page, page + 0x1000),
        });
    }
    if inject.bad_acpi_checksum {
        // Byte 8 is the RSDP's v1 checksum.
        if let Some(b) = boot.rsdp.as_mut().and_then(|r| r.get_mut(8)) {
            *b = b.wrapping_add(1);
        }
    }
    info!(
        "boot: {} passed command line \"{}\"",
        boot.loader, boot.cmdline
    );
    for w in &warnings {
        warn!("boot: command line: {w}");
    }

    let (direct_map_end, trampoline) = setup_memory(&mut boot);
    // SAFETY: the kernel reaches user memory only through the direct map
    // (never through user addresses) and marks none of its mappings user.
    let prot = unsafe { cpu::enable_protections(&cpu::features()) };
    info!(
        "cpu: smep={} smap={} umip={} global-pages={}",
        prot.smep, prot.smap, prot.umip, prot.pge
    );

    let mode = match cpuinit::enable_lapic(bsp) {
        Ok(m) => m,
        Err(e) => halt_with(format_args!("local APIC: {e}")),
    };
    let bsp_apic = bsp.arch.apic_id.load(Ordering::Relaxed);
    info!("apic: {} mode, BSP APIC id {bsp_apic}", mode.name());
    calibrate_timers(inject.calibration_stall);
    cpuinit::start_local_timer();
    x86_64::instructions::interrupts::enable();
    tlb::join_kernel();

    let report = match boot
        .rsdp
        .as_deref()
        .map(|r| acpi::read_madt(r, direct_map_end))
    {
        Some(Ok(madt)) => {
            info!(
                "acpi: MADT lists {} CPUs ({} usable)",
                madt.cpus.len(),
                madt.cpus.iter().filter(|c| c.is_usable()).count()
            );
            irq::init(&madt, bsp_apic);
            let plan = smp::Plan {
                max_cpus: opts.max_cpus.unwrap_or(u32::MAX),
                timeout_ms: opts.ap_timeout_ms,
                withhold_first_sipi: inject.ap_no_start,
                trampoline,
            };
            smp::start_aps(&madt, bsp_apic, plan)
        }
        Some(Err(e)) => {
            warn!("acpi: {e}; continuing on the boot CPU only");
            smp::SmpReport {
                online: 1,
                present: 1,
            }
        }
        None => {
            warn!("acpi: the loader passed no RSDP; continuing on the boot CPU only");
            smp::SmpReport {
                online: 1,
                present: 1,
            }
        }
    };
    info!("smp: {} of {} CPUs online", report.online, report.present);

    wait_for_ticks();
    let frames = mem::frame::stats();
    info!(
        "memory: {} frames free of {} after boot, heap grown by {} KiB",
        frames.free,
        frames.usable,
        mem::heap::grown_bytes() / 1024
    );
    let ready_ns = time::now_ns().unwrap_or(0);
    let entry_ns = time::kernel_entry_ns().unwrap_or(0);
    info!(
        "kernel ready: {}.{:03} ms since reset ({}.{:03} ms in the kernel)",
        ready_ns / 1_000_000,
        (ready_ns / 1_000) % 1_000,
        (ready_ns - entry_ns) / 1_000_000,
        ((ready_ns - entry_ns) / 1_000) % 1_000
    );

    sync::lockdep::inject(
        inject.lock_reentry,
        inject.lock_inversion,
        inject.lock_irq_unsafe,
    );
    match testmode::mode() {
        Some(TestMode::Boot) => info!("test: boot checks passed"),
        Some(TestMode::Fault(kind)) => {
            info!("test: raising {} on purpose", kind.name());
            testmode::raise(kind);
            halt_with(format_args!(
                "test fault {} returned instead of trapping",
                kind.name()
            ));
        }
        None => {}
    }
    entropy::init();
    match boot_procs::start(&boot.modules) {
        Ok(true) => {}
        Ok(false) => {
            info!(
                "boot: no \"{}\" module; no processes to run",
                boot_procs::MANIFEST_MODULE
            );
            testmode::nothing_to_run(loader_modules);
        }
        Err(e) => halt_with(format_args!("{e}")),
    }
    sched::enable();
    sched::idle_loop()
}

/// Frame allocator, kernel page tables and heap growth. Returns the end of
/// the direct map and the low page chosen for the AP trampoline.
fn setup_memory(boot: &mut bootinfo::BootInfo) -> (u64, Option<u64>) {
    let entries: Vec<(PhysRange, bool)> = boot.memory.iter().map(|r| (r.range, r.usable)).collect();
    let mut usable = Vec::new();
    memmap::usable_ranges(&entries, &mut usable);
    if usable.is_empty() {
        halt_with(format_args!("the memory map lists no usable RAM"));
    }

    let layout = kernel_layout();
    let kernel = PhysRange::new(layout.phys_start, layout.phys_end);
    let infos: Vec<ModuleInfo<'_>> = boot
        .modules
        .iter()
        .map(|m| ModuleInfo {
            name: &m.name,
            range: m.range,
        })
        .collect();
    let verdicts = bootcheck::check_modules(kernel, boot.info_range, &usable, &infos);
    for (m, v) in boot.modules.iter().zip(&verdicts) {
        if v.is_ok() {
            info!(
                "boot: module \"{}\" at {:#x}..{:#x} ({} KiB)",
                m.name,
                m.range.start,
                m.range.end,
                m.range.len() / 1024
            );
        } else {
            error!(
                "boot: module \"{}\" at {:#x}..{:#x} rejected: {v}; ignoring it",
                m.name, m.range.start, m.range.end
            );
        }
    }
    let mut keep = verdicts.iter().map(|v| v.is_ok());
    boot.modules.retain(|_| keep.next().unwrap_or(false));
    let mut reserved = alloc::vec![kernel, boot.info_range];
    reserved.extend(boot.modules.iter().map(|m| m.range));
    // Modules may lie below 1 MiB (GRUB's EFI loader puts them there): the
    // trampoline goes on a low page none of them uses.
    let trampoline = memmap::trampoline_page(&usable, &reserved);

    let usable_bytes: u64 = usable.iter().map(|r| r.len()).sum();
    let ram_end = usable.iter().map(|r| r.end).max().unwrap_or(0);
    let firmware_bytes: u64 = boot
        .memory
        .iter()
        .filter(|r| !r.usable && r.range.start < ram_end)
        .map(|r| r.range.end.min(ram_end) - r.range.start)
        .sum();
    let stats = match mem::frame::init(&usable, &reserved) {
        Ok(s) => s,
        Err(e) => halt_with(format_args!("frame allocator: {e}")),
    };
    info!(
        "memory: {} MiB usable RAM in {} regions, {} KiB reserved by firmware below the end of RAM, {} frames free",
        usable_bytes >> 20,
        usable.len(),
        firmware_bytes >> 10,
        stats.free
    );

    let features = cpu::features();
    let direct_map_end = ram_end.max(4 << 30).next_multiple_of(1 << 30);
    if let Err(e) = mem::paging::build_kernel_tables(&layout, direct_map_end, &usable, &features) {
        halt_with(format_args!("kernel page tables: {e}"));
    }
    // SAFETY: the new tables map the kernel image, the boot stack we are on
    // and the direct map (which holds every table and the frame bitmap).
    unsafe { mem::paging::activate() };
    mem::heap::enable_growth();
    info!(
        "paging: kernel tables active, direct map of {} GiB with {} pages, text RX / rodata R / data RW+NX, boot stack guard page unmapped",
        direct_map_end >> 30,
        if features.page1g { "1 GiB" } else { "2 MiB" }
    );
    (direct_map_end, trampoline)
}

/// Calibrates the TSC and APIC timer against the PIT and sets the tick rate;
/// `stall` holds the CPU up in one window (`inject=calibration-stall`).
fn calibrate_timers(stall: bool) {
    let cal = time::calibrate(
        || {
            percpu::with_lapic(|l| l.start_calibration_count());
        },
        || percpu::with_lapic(|l| l.timer_current()).unwrap_or(0),
        stall.then_some(1),
    );
    let cal = match cal {
        Ok(c) => c,
        Err(e) => halt_with(format_args!(
            "cannot calibrate timers against the PIT: {e:?}"
        )),
    };
    let median = cal.windows[cal.used];
    for (i, &ticks) in cal.windows.iter().enumerate() {
        if !capos_kcore::clock::window_agrees(ticks, median) {
            warn!(
                "timer: calibration window {i} of {} counted {ticks} TSC ticks against the median's {median} ({}.{:02}x): the CPU was held up; window ignored",
                cal.windows.len(),
                ticks / median.max(1),
                (ticks % median.max(1)) * 100 / median.max(1)
            );
        }
    }
    time::set_calibration(cal);
    cpuinit::set_tick_rate(cal.apic_timer_hz);
    let inv = if cpu::features().invariant_tsc {
        "invariant"
    } else {
        "not invariant"
    };
    info!(
        "timer: TSC {}.{:03} MHz ({inv}), APIC timer {} kHz (divide {:?}), calibrated against {}; {} Hz tick",
        cal.tsc_hz / 1_000_000,
        (cal.tsc_hz / 1_000) % 1_000,
        cal.apic_timer_hz / 1_000,
        apic::TIMER_DIVIDE,
        cal.source,
        cpuinit::TICK_HZ
    );
}

/// Waits (halting between interrupts) until every online CPU has taken
/// `TICKS_REQUIRED` timer interrupts, then reports the counts.
fn wait_for_ticks() {
    let deadline = time::now_ns().unwrap_or(0) + 2_000_000_000;
    let cpus: Vec<&percpu::Cpu> = (0..percpu::registered())
        .filter_map(percpu::get)
        .filter(|c| c.arch.cpu_index == 0 || c.online.load(Ordering::Acquire))
        .collect();
    let ticks = |c: &percpu::Cpu| c.arch.timer_ticks.load(Ordering::Relaxed);
    while cpus.iter().any(|c| ticks(c) < TICKS_REQUIRED)
        && time::now_ns().is_some_and(|t| t < deadline)
    {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
    let mut all = true;
    for c in &cpus {
        let n = ticks(c);
        all &= n >= TICKS_REQUIRED;
        info!(
            "timer: cpu{} APIC id {} ticks={n}",
            c.arch.cpu_index,
            c.arch.apic_id.load(Ordering::Relaxed)
        );
    }
    if all {
        info!("timer: periodic ticks on all {} online CPUs", cpus.len());
    } else {
        error!("timer: some CPUs did not tick within 2 s");
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let cpu = capos_arch::percpu::cpu_index().map_or(-1, i64::from);
    console::emergency_write(format_args!("\n!!! KERNEL PANIC on cpu {cpu}: {info}\n"));
    if testmode::active() {
        qemu::exit(ExitCode::Failure);
    }
    cpu::halt_forever()
}
