//! The legacy 8254 PIT, used only as a known clock to calibrate the TSC and
//! the local APIC timer.
//!
//! Channel 2 is used because its gate is software-controlled (port 0x61 bit
//! 0) and its output can be read back (port 0x61 bit 5) without interrupts.

use x86_64::instructions::port::Port;

/// Input clock of the PIT in Hz.
pub const PIT_HZ: u64 = 1_193_182;

const PORT_CH2_DATA: u16 = 0x42;
const PORT_COMMAND: u16 = 0x43;
const PORT_CONTROL_B: u16 = 0x61;
/// Channel 2, low byte then high byte, mode 0 (interrupt on terminal count), binary.
const CMD_CH2_MODE0: u8 = 0b1011_0000;

/// Why a PIT wait gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PitError {
    /// The output never rose: no PIT, or a broken one.
    Timeout,
}

/// Busy-waits until `count` PIT input clocks have elapsed, calling `sample`
/// right after the count starts and right after it ends so the caller can
/// read other counters at both edges. Gives up after `max_polls` reads.
pub fn wait_clocks(count: u16, max_polls: u64, mut sample: impl FnMut()) -> Result<(), PitError> {
    let mut control = Port::<u8>::new(PORT_CONTROL_B);
    let mut command = Port::<u8>::new(PORT_COMMAND);
    let mut data = Port::<u8>::new(PORT_CH2_DATA);
    // SAFETY: ports 0x42/0x43/0x61 belong to the PIT and the system control
    // port; the kernel uses channel 2 only here, with interrupts off.
    unsafe {
        let b = control.read();
        // Gate low, speaker off, while programming.
        control.write(b & !0x03);
        command.write(CMD_CH2_MODE0);
        data.write((count & 0xff) as u8);
        data.write((count >> 8) as u8);
        // Raising the gate starts the count; OUT2 is low until it expires.
        control.write((b & !0x02) | 0x01);
    }
    sample();
    for _ in 0..max_polls {
        // SAFETY: reading port 0x61 has no side effects.
        if unsafe { control.read() } & 0x20 != 0 {
            sample();
            return Ok(());
        }
        core::hint::spin_loop();
    }
    Err(PitError::Timeout)
}
