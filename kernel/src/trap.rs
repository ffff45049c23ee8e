//! What the kernel does on each trap vector: count timer ticks, acknowledge
//! IPIs, and turn every CPU exception into a readable report that halts the
//! faulting CPU (in a test boot, QEMU exits with a status saying whether the
//! fault was the one the test asked for).

use crate::{percpu, testmode};
use capos_arch::qemu::{self, ExitCode};
use capos_arch::trap::{exception_name, vector, TrapFrame};
use capos_arch::{cpu, percpu as arch_percpu};
use x86_64::registers::control::{Cr2, Cr3};

/// Called by `trap_common` in `arch/src/asm/trap.S` for every stubbed vector.
#[unsafe(no_mangle)]
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    // Interrupt context for the lock validator: an interrupt of kernel code
    // (one of user code interrupts no lock holder; exceptions either halt
    // or kill the thread, and never return through here).
    let _irq = (frame.vector >= 32 && !frame.from_user()).then(crate::sync::lockdep::irq_enter);
    // An interrupt arrives only with interrupts on: from here to its return
    // they are off (measured unless it halts or kills a thread).
    let _off = (frame.vector >= 32).then(IrqOff::begin);
    match frame.vector {
        // NMI and machine check are machine events, not the process's doing.
        0..=31 if frame.from_user() && !matches!(frame.vector, 2 | 18) => user_fault(frame),
        0..=31 => exception(frame),
        v if v == u64::from(vector::TIMER) => {
            arch_percpu::count_timer_tick();
            eoi();
            crate::dump::on_tick(frame);
            crate::sched::on_timer_tick(frame.from_user());
        }
        v if v == u64::from(vector::IPI_WAKE) => {
            crate::sched::on_wake_ipi();
            eoi();
        }
        v if v == u64::from(vector::IPI_TLB) => {
            crate::tlb::on_ipi();
            eoi();
        }
        v if v == u64::from(vector::IPI_STOP) => {
            crate::tlb::go_offline();
            cpu::halt_forever()
        }
        // Spurious interrupts are not in service: no EOI.
        v if v == u64::from(vector::SPURIOUS) => {}
        // The 8259s are masked; only their spurious IRQ 7/15 lands here, and
        // those must not be acknowledged at the local APIC.
        v if vector::LEGACY_PIC.contains(&(v as u8)) => {}
        v if crate::irq::DEVICE_VECTORS.contains(&(v as u8)) => {
            if !crate::irq::dispatch(v as u8) {
                crate::warn!("trap: device vector {v} has no handler");
            }
            eoi();
        }
        v => {
            crate::warn!("trap: unexpected interrupt vector {v}");
            eoi();
        }
    }
    // Back to ring 3 (an exception from ring 3 never gets here): a thread
    // of a killed process ends instead. A kill's IPI to a CPU running it in
    // user mode lands here; so does a tick that preempted it and resumes
    // it later. The interrupts-off stretch goes on into the switch.
    if frame.from_user() {
        crate::proc::exit_if_killed();
    }
}

/// The interrupts-off stretch of one interrupt handler.
struct IrqOff;

impl IrqOff {
    fn begin() -> Self {
        crate::irqoff::begin();
        IrqOff
    }
}

impl Drop for IrqOff {
    fn drop(&mut self) {
        crate::irqoff::end();
    }
}

fn eoi() {
    percpu::with_lapic(|l| l.eoi());
}

/// A CPU exception in ring 3 kills only that process, with a one-line report.
fn user_fault(f: &TrapFrame) -> ! {
    let cr2 = Cr2::read_raw();
    match crate::sched::current() {
        Some(t) => {
            let p = &t.process;
            let addr = if f.vector == 14 {
                alloc::format!(", address {cr2:#x}")
            } else {
                alloc::string::String::new()
            };
            crate::warn!(
                "proc: pid {} ({}) killed: {} (vector {}) at rip {:#x}{addr}, error code {:#x}",
                p.pid,
                p.name,
                exception_name(f.vector),
                f.vector,
                f.rip,
                f.error_code
            );
            crate::debug!(
                "proc: killed at cs {:#x} ss {:#x} rsp {:#x} rflags {:#x}",
                f.cs,
                f.ss,
                f.rsp,
                f.rflags
            );
            if f.vector == 14 && f.rip == capos_arch::syscall::entry_address() {
                crate::error!(
                    "proc: SYSCALL did not enter ring 0 (still CS {:#x} at the kernel entry point): this virtual CPU does not implement SYSCALL faithfully (seen under PVM-based KVM); run under TCG or hardware KVM",
                    f.cs
                );
            }
            // exit_current never returns: drop what this frame owns first,
            // or it leaks with the dead thread's stack.
            drop(addr);
            drop(t);
            crate::proc::exit_current(128 + f.vector as i64)
        }
        None => exception(f),
    }
}

/// Reports an exception and halts this CPU (or ends a test boot).
fn exception(f: &TrapFrame) -> ! {
    let cpu = arch_percpu::cpu_index().map_or(-1, i64::from);
    let mode = if f.from_user() { "user" } else { "kernel" };
    let cr2 = Cr2::read_raw();
    let cr3 = Cr3::read().0.start_address().as_u64();
    crate::console::emergency_write(format_args!(
        "\n!!! EXCEPTION: {} (vector {}) on cpu {} in {} mode\n\
         !!!   error code {:#x}{}\n\
         !!!   rip {:#018x}  cs {:#06x}  rflags {:#010x}\n\
         !!!   rsp {:#018x}  ss {:#06x}\n\
         !!!   cr2 {:#018x}  cr3 {:#018x}\n\
         !!!   rax {:#018x}  rbx {:#018x}  rcx {:#018x}  rdx {:#018x}\n\
         !!!   rsi {:#018x}  rdi {:#018x}  rbp {:#018x}  r8  {:#018x}\n\
         !!!   r9  {:#018x}  r10 {:#018x}  r11 {:#018x}  r12 {:#018x}\n\
         !!!   r13 {:#018x}  r14 {:#018x}  r15 {:#018x}\n",
        exception_name(f.vector),
        f.vector,
        cpu,
        mode,
        f.error_code,
        PageFaultCode(f.vector, f.error_code),
        f.rip,
        f.cs,
        f.rflags,
        f.rsp,
        f.ss,
        cr2,
        cr3,
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi,
        f.rbp,
        f.r8,
        f.r9,
        f.r10,
        f.r11,
        f.r12,
        f.r13,
        f.r14,
        f.r15,
    ));
    if let Some(what) = guard_page_hit(cr2) {
        crate::console::emergency_write(format_args!(
            "!!!   cr2 lies in the guard page below {what}: stack overflow\n"
        ));
    }
    if let Some(expected) = testmode::expected_fault() {
        if expected == f.vector {
            crate::console::emergency_write(format_args!(
                "!!! test: expected fault reported; cpu {cpu} halted\n"
            ));
            qemu::exit(ExitCode::FaultReported);
        } else {
            crate::console::emergency_write(format_args!(
                "!!! test: expected vector {expected}, got {}\n",
                f.vector
            ));
            qemu::exit(ExitCode::Failure);
        }
    } else if testmode::active() {
        qemu::exit(ExitCode::Failure);
    }
    crate::console::emergency_write(format_args!("!!! cpu {cpu} halted\n"));
    crate::tlb::go_offline();
    cpu::halt_forever()
}

/// Names the stack whose guard page holds `addr`, if any.
fn guard_page_hit(addr: u64) -> Option<&'static str> {
    let guard = capos_arch::boot::kernel_layout().boot_stack_guard;
    if (guard.start..guard.end).contains(&addr) {
        return Some("the boot stack");
    }
    crate::mem::stack::is_guard_page(addr).then_some("a kernel stack")
}

/// Decodes a page-fault error code for the report (empty for other vectors).
struct PageFaultCode(u64, u64);

impl core::fmt::Display for PageFaultCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0 != 14 {
            return Ok(());
        }
        let e = self.1;
        write!(
            f,
            " [{} {} {}{}{}]",
            if e & 1 != 0 {
                "protection-violation"
            } else {
                "not-present"
            },
            if e & 2 != 0 { "write" } else { "read" },
            if e & 4 != 0 { "user" } else { "kernel" },
            if e & 8 != 0 { " reserved-bit" } else { "" },
            if e & 16 != 0 {
                " instruction-fetch"
            } else {
                ""
            },
        )
    }
}
