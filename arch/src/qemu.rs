//! Leaving QEMU from a test boot through the `isa-debug-exit` device
//! (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`). QEMU exits with
//! status `(value << 1) | 1`, so no value can be mistaken for a clean
//! QEMU shutdown (status 0).

use x86_64::instructions::port::Port;

/// I/O port of the debug-exit device.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Exit values the kernel writes; QEMU's status is `2 * value + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// The test boot reached its end state (QEMU status 33).
    Success = 0x10,
    /// A test fault was caught and reported as intended (QEMU status 35).
    FaultReported = 0x11,
    /// The kernel panicked or hit an unexpected trap (QEMU status 37).
    Failure = 0x12,
}

/// Asks QEMU to exit with `code`. On hardware without the device the write
/// goes nowhere, so the caller must still halt afterwards.
pub fn exit(code: ExitCode) {
    let mut port = Port::<u32>::new(DEBUG_EXIT_PORT);
    // SAFETY: port 0xf4 is only claimed by the debug-exit device under QEMU;
    // on other machines nothing decodes it. Writing has no memory effects.
    unsafe { port.write(code as u32) };
}
