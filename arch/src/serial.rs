//! A 16550 UART driver: polled output, and input either polled or raised
//! as an interrupt (the terminal's line).
//!
//! The boot assembly already programs COM1 at 115200 8N1; `Uart::init` does
//! the same again so the driver does not depend on who ran before it.

use x86_64::instructions::port::Port;

/// I/O base of COM1.
pub const COM1: u16 = 0x3f8;
/// I/O base of COM2.
pub const COM2: u16 = 0x2f8;
/// ISA interrupt line of COM1.
pub const COM1_IRQ: u8 = 4;
/// ISA interrupt line of COM2.
pub const COM2_IRQ: u8 = 3;

/// Transmit-holding-register-empty bit of the line status register.
const LSR_THR_EMPTY: u8 = 1 << 5;
/// Data-ready bit of the line status register.
const LSR_DATA_READY: u8 = 1 << 0;
/// How many status polls a byte may wait for before it is dropped: a dead or
/// absent UART must not hang the kernel.
const MAX_POLLS: u32 = 100_000;

/// A 16550-compatible UART at an I/O base.
pub struct Uart {
    base: u16,
}

impl Uart {
    /// A driver for the UART at `base`; call [`Uart::init`] before use.
    pub const fn new(base: u16) -> Self {
        Self { base }
    }

    fn port(&self, offset: u16) -> Port<u8> {
        Port::new(self.base + offset)
    }

    /// Programs 115200 baud, 8N1, FIFOs on, UART interrupts off.
    pub fn init(&mut self) {
        // SAFETY: these are the 16550 register offsets at a UART base the
        // caller chose; programming them only affects the serial line.
        unsafe {
            self.port(1).write(0x00); // IER: no interrupts
            self.port(3).write(0x80); // LCR: DLAB
            self.port(0).write(0x01); // divisor low: 115200
            self.port(1).write(0x00); // divisor high
            self.port(3).write(0x03); // LCR: 8N1
            self.port(2).write(0xc7); // FCR: FIFO on, cleared
            self.port(4).write(0x03); // MCR: DTR, RTS
        }
    }

    /// Whether a UART answers at this base: its scratch register keeps
    /// what is written to it (an absent port reads as all ones).
    pub fn present(&mut self) -> bool {
        // SAFETY: the scratch register (offset 7) has no function; writing
        // and reading it only tests that the UART is there.
        unsafe {
            let mut scratch = self.port(7);
            scratch.write(0x5a);
            let first = scratch.read();
            scratch.write(0xa5);
            first == 0x5a && scratch.read() == 0xa5
        }
    }

    /// Raises the UART's interrupt line whenever received data is waiting
    /// (IER bit 0; MCR OUT2, which gates the line on PC hardware).
    pub fn enable_receive_interrupt(&mut self) {
        // SAFETY: IER and MCR of the caller's UART; this only changes when
        // the UART signals its interrupt line.
        unsafe {
            self.port(4).write(0x0b); // MCR: DTR, RTS, OUT2
            self.port(1).write(0x01); // IER: received data available
        }
    }

    /// Sends one byte, waiting a bounded time for room in the transmitter.
    pub fn write_byte(&mut self, byte: u8) {
        let mut lsr = self.port(5);
        for _ in 0..MAX_POLLS {
            // SAFETY: reading the line status register has no side effects.
            if unsafe { lsr.read() } & LSR_THR_EMPTY != 0 {
                break;
            }
            core::hint::spin_loop();
        }
        // SAFETY: writing the transmit register sends one byte.
        unsafe { self.port(0).write(byte) };
    }

    /// Returns a received byte if one is waiting.
    pub fn try_read_byte(&mut self) -> Option<u8> {
        // SAFETY: reading LSR has no side effects; reading RBR consumes the
        // byte that LSR says is there.
        unsafe {
            if self.port(5).read() & LSR_DATA_READY != 0 {
                Some(self.port(0).read())
            } else {
                None
            }
        }
    }

    /// Sends a string, turning `\n` into `\r\n`.
    pub fn write_str(&mut self, s: &str) {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
    }
}

impl core::fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        Uart::write_str(self, s);
        Ok(())
    }
}
