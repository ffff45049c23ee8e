//! Starting the application processors found in the MADT.
//!
//! APs are started one at a time with INIT-SIPI-SIPI. An AP that does not
//! report online within the timeout is sent INIT again (parking it in
//! wait-for-SIPI, so it cannot wake later on another AP's stack), reported,
//! and left out; boot goes on.

use crate::mem::{paging, phys_to_virt};
use crate::{cpuinit, percpu, time};
use capos_arch::cpu;
use capos_arch::smp::{self as arch_smp, sipi_vector};
use capos_kcore::acpi::Madt;
use core::sync::atomic::{AtomicU8, Ordering};

/// Start-up claim for the AP being started: the AP moves it from
/// `WAITING` to `ENTERED` when it reaches Rust; the BSP, on timeout, moves it
/// from `WAITING` to `ABANDONED` before sending INIT. Whoever wins decides:
/// an AP that entered is waited for (it may hold kernel locks, so it must not
/// be reset); an abandoned AP is reset by INIT and halts if it still arrives.
static AP_CLAIM: AtomicU8 = AtomicU8::new(WAITING);
const WAITING: u8 = 0;
const ENTERED: u8 = 1;
const ABANDONED: u8 = 2;

/// Result of bringing up the APs.
#[derive(Clone, Copy, Debug)]
pub struct SmpReport {
    /// CPUs running kernel code, the BSP included.
    pub online: u32,
    /// CPUs the MADT lists as usable.
    pub present: u32,
}

/// Busy-waits `ns` nanoseconds on the TSC.
fn spin_ns(ns: u64) {
    let Some(start) = time::now_ns() else { return };
    while time::now_ns().is_some_and(|t| t - start < ns) {
        core::hint::spin_loop();
    }
}

/// Waits up to `ns` for `cond`; true if it became true.
fn wait_for(ns: u64, cond: impl Fn() -> bool) -> bool {
    let Some(start) = time::now_ns() else {
        return cond();
    };
    loop {
        if cond() {
            return true;
        }
        if time::now_ns().is_none_or(|t| t - start >= ns) {
            return cond();
        }
        core::hint::spin_loop();
    }
}

/// How to bring up the APs.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Most CPUs to run, the BSP included.
    pub max_cpus: u32,
    /// How long each AP gets to report online.
    pub timeout_ms: u32,
    /// Send no startup IPI to the first AP (an injected fault proving the
    /// timeout path).
    pub withhold_first_sipi: bool,
    /// The free low page the trampoline is copied to (see
    /// `capos_kcore::memmap::trampoline_page`); `None` if there is none.
    pub trampoline: Option<u64>,
}

/// Starts every usable AP in `madt` (at most `plan.max_cpus` CPUs in total).
pub fn start_aps(madt: &Madt, bsp_apic_id: u32, plan: Plan) -> SmpReport {
    let Plan {
        max_cpus,
        timeout_ms,
        withhold_first_sipi,
        trampoline,
    } = plan;
    let usable: alloc::vec::Vec<_> = madt.cpus.iter().filter(|c| c.is_usable()).collect();
    let present = usable.len().max(1) as u32;
    let max_cpus = max_cpus.min(percpu::MAX_CPUS as u32);
    let wants_aps = max_cpus > 1 && usable.iter().any(|c| c.apic_id != bsp_apic_id);

    let code = arch_smp::trampoline_code();
    let placed = trampoline
        .and_then(|p| Some((p, sipi_vector(p)?)))
        .filter(|_| code.len() <= 4096);
    let vector = match placed {
        Some((page, vector)) if wants_aps => {
            crate::info!("smp: AP trampoline at {page:#x}");
            // SAFETY: `page` is a whole page of usable RAM below 1 MiB that
            // no boot module, the kernel image or the boot information
            // occupies (`trampoline_page`), and the frame allocator never
            // hands out memory below 1 MiB; the direct map covers it; no AP
            // runs yet.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    code.as_ptr(),
                    phys_to_virt(page) as *mut u8,
                    code.len(),
                );
            }
            vector
        }
        None if wants_aps => {
            crate::warn!(
                "smp: no free page below 1 MiB for the AP trampoline (boot modules and firmware use them all); continuing on the boot CPU only"
            );
            return SmpReport { online: 1, present };
        }
        _ => 0,
    };

    let mut online = 1;
    let mut next_index = 1;
    let mut withhold = withhold_first_sipi;
    for entry in usable {
        if entry.apic_id == bsp_apic_id {
            continue;
        }
        if next_index >= max_cpus {
            crate::info!(
                "smp: leaving APIC id {} off (maxcpus={max_cpus})",
                entry.apic_id
            );
            continue;
        }
        let index = next_index;
        let stack = match cpuinit::alloc_ap_stack() {
            Ok(s) => s,
            Err(e) => {
                crate::warn!(
                    "smp: no stack for APIC id {}: {e:?}; not starting it",
                    entry.apic_id
                );
                continue;
            }
        };
        let cpu = percpu::register(index, entry.apic_id);
        AP_CLAIM.store(WAITING, Ordering::Release);
        arch_smp::publish_ap_boot(paging::kernel_pml4(), stack.top, index);
        let started = percpu::with_lapic(|l| {
            // SAFETY: the AP is in its power-on wait state (or parked by a
            // previous INIT); the trampoline page is in place.
            unsafe { l.send_init(entry.apic_id) };
        });
        if started.is_none() {
            crate::warn!("smp: BSP has no local APIC; cannot start APs");
            break;
        }
        spin_ns(10_000_000);
        let up = || cpu.online.load(Ordering::Acquire);
        let sipis = if core::mem::take(&mut withhold) { 0 } else { 2 };
        if sipis == 0 {
            crate::warn!(
                "smp: injected fault: withholding startup IPIs from APIC id {}",
                entry.apic_id
            );
        }
        for _ in 0..sipis {
            percpu::with_lapic(|l| {
                // SAFETY: as above; a second SIPI is ignored by a started AP.
                unsafe { l.send_startup(vector, entry.apic_id) };
            });
            if wait_for(1_000_000, up) {
                break;
            }
        }
        let mut came_up = wait_for(u64::from(timeout_ms) * 1_000_000, up);
        if !came_up
            && AP_CLAIM
                .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            // It entered the kernel but is slow: it may hold locks, so wait.
            while !up() {
                core::hint::spin_loop();
            }
            came_up = true;
        }
        if came_up {
            online += 1;
            next_index += 1;
            crate::debug!("smp: cpu{index} (APIC id {}) online", entry.apic_id);
        } else {
            percpu::with_lapic(|l| {
                // SAFETY: the AP never reached the kernel (the claim was ours),
                // so resetting it cannot strand a lock; INIT parks it so it
                // cannot wake later on another AP's published stack.
                unsafe { l.send_init(entry.apic_id) };
            });
            crate::warn!(
                "smp: cpu{index} (APIC id {}) did not come online within {timeout_ms} ms; continuing without it",
                entry.apic_id
            );
        }
    }
    SmpReport { online, present }
}

/// Where every AP lands from `ap_entry64` (arch/src/asm/ap_trampoline.S),
/// on its own stack with the kernel page tables loaded.
#[unsafe(no_mangle)]
extern "C" fn ap_rust_entry(index: u64) -> ! {
    if AP_CLAIM
        .compare_exchange(WAITING, ENTERED, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // The BSP gave up on this AP; stay out of the kernel.
        cpu::halt_forever();
    }
    let Some(cpu) = percpu::get(index as u32) else {
        cpu::halt_forever()
    };
    let stack_top = arch_smp::AP_BOOT_STACK_TOP.load(Ordering::Acquire);
    if let Err(e) = cpuinit::ap_init(cpu, stack_top) {
        crate::console::emergency_write(format_args!(
            "smp: cpu{index} failed to initialise: {e}\n"
        ));
        cpu::halt_forever();
    }
    crate::tlb::join_kernel();
    cpu.online.store(true, Ordering::Release);
    crate::sched::idle_loop()
}
