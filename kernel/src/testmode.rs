//! Test boots (`test=` on the kernel command line): the kernel checks its own
//! boot, optionally raises a chosen exception, and leaves QEMU through
//! `isa-debug-exit` with a status the smoke script asserts.

use capos_arch::fault;
use capos_kcore::cmdline::{FaultKind, TestMode};
use spin::Once;

static MODE: Once<Option<TestMode>> = Once::new();

/// Records the test mode from the command line (once).
pub fn set(mode: Option<TestMode>) {
    MODE.call_once(|| mode);
}

/// True in any test boot.
pub fn active() -> bool {
    matches!(MODE.get(), Some(Some(_)))
}

/// The current test mode.
pub fn mode() -> Option<TestMode> {
    MODE.get().copied().flatten()
}

/// Called when the last process has exited: a `test=boot` run ends here
/// with success.
pub fn all_processes_exited() {
    if mode() == Some(TestMode::Boot) {
        crate::sync::lockdep::summary();
        crate::info!("test: all processes exited");
        capos_arch::qemu::exit(capos_arch::qemu::ExitCode::Success);
    }
}

/// Called when boot found no usable manifest, so no process will run. A
/// `test=boot` run whose loader passed boot modules was asked to run
/// processes: running none fails it, with the reason. Without any module it
/// is the kernel-only self-test, which ends here with success.
pub fn nothing_to_run(loader_modules: usize) {
    if mode() != Some(TestMode::Boot) {
        return;
    }
    if loader_modules == 0 {
        all_processes_exited();
        return;
    }
    crate::error!(
        "test: the loader passed {loader_modules} boot modules, so processes were expected, but no usable \"{}\" module was among them (see the module lines above); no process ran",
        crate::boot_procs::MANIFEST_MODULE
    );
    capos_arch::qemu::exit(capos_arch::qemu::ExitCode::Failure);
}

/// The exception vector a fault test expects, if this is one.
pub fn expected_fault() -> Option<u64> {
    match mode()? {
        TestMode::Fault(kind) => Some(vector_of(kind)),
        TestMode::Boot => None,
    }
}

fn vector_of(kind: FaultKind) -> u64 {
    match kind {
        FaultKind::DivideError => 0,
        FaultKind::Breakpoint => 3,
        FaultKind::InvalidOpcode => 6,
        FaultKind::DoubleFault => 8,
        FaultKind::GeneralProtection => 13,
        FaultKind::PageFault => 14,
    }
}

/// Raises the exception `kind` on purpose.
pub fn raise(kind: FaultKind) {
    match kind {
        FaultKind::PageFault => fault::page_fault(),
        FaultKind::GeneralProtection => fault::general_protection(),
        FaultKind::InvalidOpcode => fault::invalid_opcode(),
        FaultKind::DivideError => fault::divide_error(),
        FaultKind::Breakpoint => fault::breakpoint(),
        FaultKind::DoubleFault => overflow_stack(0),
    }
}

/// Recurses until the stack runs into its unmapped guard page. The page
/// fault cannot push its frame on the dead stack, so the CPU raises a double
/// fault, which runs on its own IST stack and reports.
#[inline(never)]
#[allow(unconditional_recursion, reason = "the point is to overflow the stack")]
fn overflow_stack(depth: u64) {
    let pad = core::hint::black_box([depth; 64]);
    overflow_stack(core::hint::black_box(pad[3] + 1));
    core::hint::black_box(&pad);
}
