//! The I/O APIC: routes external interrupt lines (global system interrupts,
//! GSIs) to a vector on a chosen local APIC.
//!
//! Two memory-mapped registers reach everything else: IOREGSEL (offset 0)
//! selects a register, IOWIN (offset 0x10) reads or writes it. A select and
//! its access must not be interleaved with another CPU's, so the kernel keeps
//! each `IoApic` behind a lock. Register 1 (version) gives the number of
//! redirection entries; entry `n` is the register pair 0x10 + 2n (low dword:
//! vector, delivery, polarity, trigger, mask) and 0x11 + 2n (high dword:
//! destination APIC id in bits 24-31).

/// Bit of a redirection entry's low dword that masks the line.
const MASKED: u32 = 1 << 16;
/// Level-triggered (else edge).
const LEVEL: u32 = 1 << 15;
/// Active low (else active high).
const ACTIVE_LOW: u32 = 1 << 13;

/// How a line signals (from the MADT's interrupt source overrides; ISA
/// lines default to edge-triggered, active high).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal {
    /// Level-triggered (else edge-triggered).
    pub level: bool,
    /// Active low (else active high).
    pub active_low: bool,
}

impl Signal {
    /// Edge-triggered, active high: an ISA line with no override.
    pub const ISA: Signal = Signal {
        level: false,
        active_low: false,
    };

    /// The signal an MPS INTI `flags` field describes for an ISA line:
    /// polarity in bits 0-1 and trigger mode in bits 2-3, where 0 means the
    /// bus default (ISA: active high, edge), 1 high/edge, 3 low/level.
    pub fn from_mps_flags(flags: u16) -> Signal {
        Signal {
            active_low: flags & 0b11 == 0b11,
            level: (flags >> 2) & 0b11 == 0b11,
        }
    }
}

/// One I/O APIC.
pub struct IoApic {
    /// Virtual address of its register window (mapped uncached).
    base: *mut u32,
    /// First GSI it handles.
    gsi_base: u32,
    /// How many redirection entries (GSIs) it has.
    entries: u32,
}

// SAFETY: the register window is MMIO reachable from every CPU; callers
// serialise access (the kernel holds each `IoApic` behind a lock).
unsafe impl Send for IoApic {}

impl IoApic {
    /// The I/O APIC whose registers are mapped at `base` and whose first
    /// line is `gsi_base`; masks every line.
    ///
    /// # Safety
    /// `base` must map the I/O APIC's register page uncached, for as long as
    /// the value lives, and nothing else may program this I/O APIC.
    pub unsafe fn new(base: u64, gsi_base: u32) -> IoApic {
        let mut io = IoApic {
            base: base as *mut u32,
            gsi_base,
            entries: 0,
        };
        io.entries = ((io.read(1) >> 16) & 0xff) + 1;
        for i in 0..io.entries {
            io.write(0x10 + 2 * i, MASKED);
        }
        io
    }

    fn read(&self, register: u32) -> u32 {
        // SAFETY: `base` maps the register window (contract of `new`);
        // IOREGSEL at offset 0 and IOWIN at 0x10 are within it. Volatile:
        // these are device registers.
        unsafe {
            self.base.write_volatile(register);
            self.base.add(4).read_volatile()
        }
    }

    fn write(&mut self, register: u32, value: u32) {
        // SAFETY: as in `read`.
        unsafe {
            self.base.write_volatile(register);
            self.base.add(4).write_volatile(value);
        }
    }

    /// Whether `gsi` is one of this I/O APIC's lines.
    pub fn handles(&self, gsi: u32) -> bool {
        gsi >= self.gsi_base && gsi - self.gsi_base < self.entries
    }

    /// Routes `gsi` (one of [`IoApic::handles`]) to `vector` on the local
    /// APIC `apic_id`, fixed delivery, physical destination, unmasked.
    pub fn route(&mut self, gsi: u32, vector: u8, apic_id: u8, signal: Signal) {
        let entry = gsi - self.gsi_base;
        let mut low = u32::from(vector);
        if signal.level {
            low |= LEVEL;
        }
        if signal.active_low {
            low |= ACTIVE_LOW;
        }
        // Masked while the destination changes, unmasked last.
        self.write(0x10 + 2 * entry, low | MASKED);
        self.write(0x11 + 2 * entry, u32::from(apic_id) << 24);
        self.write(0x10 + 2 * entry, low);
    }

    /// Masks `gsi` (one of [`IoApic::handles`]).
    pub fn mask(&mut self, gsi: u32) {
        let entry = gsi - self.gsi_base;
        let low = self.read(0x10 + 2 * entry);
        self.write(0x10 + 2 * entry, low | MASKED);
    }
}
