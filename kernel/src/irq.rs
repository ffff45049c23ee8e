//! Device interrupts: an ISA line routed through the I/O APIC to a vector of
//! its own on the boot CPU, and the handler that vector calls.
//!
//! [`init`] takes the I/O APICs and the interrupt source overrides from the
//! MADT and masks every line. [`route_isa`] gives a line the next free
//! vector of [`DEVICE_VECTORS`], records its handler and unmasks it; from
//! then on `trap_dispatch` calls [`dispatch`] for that vector, with
//! interrupts off, before the local APIC's EOI. Handlers run in interrupt
//! context: they take only interrupt-safe locks and never block.
//!
//! Without an MADT (no ACPI tables) there is no I/O APIC to route through:
//! [`route_isa`] says so and the device falls back to polling.

use crate::mem::phys_to_virt;
use crate::sync::IrqLock;
use alloc::vec::Vec;
use capos_arch::ioapic::{IoApic, Signal};
use capos_kcore::acpi::Madt;

/// Vectors handed to device lines, in order (free between the local APIC's
/// vectors and the remapped legacy PIC's; every one has an entry stub).
pub const DEVICE_VECTORS: core::ops::RangeInclusive<u8> = 40..=47;

/// A device interrupt handler.
pub type Handler = fn();

/// The routing state: every I/O APIC and the ISA overrides.
struct Routing {
    ioapics: Vec<IoApic>,
    /// (ISA line, GSI, MPS flags) of each interrupt source override.
    overrides: Vec<(u8, u32, u16)>,
    /// Vectors handed out so far.
    used: u8,
    /// The local APIC id device interrupts go to (the boot CPU's).
    target: u8,
}

static ROUTING: IrqLock<Option<Routing>> = IrqLock::new(None);

/// The handler of each device vector, set once when the line is routed.
static HANDLERS: [spin::Once<Handler>; 8] = [const { spin::Once::new() }; 8];

/// Why a line could not be routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// No MADT was read, so there is no I/O APIC to program.
    IoApicMissing,
    /// No I/O APIC handles the line's GSI.
    LineUnhandled(u32),
    /// Every device vector is taken.
    VectorsExhausted,
}

impl core::fmt::Display for RouteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RouteError::IoApicMissing => f.write_str("no I/O APIC (no MADT)"),
            RouteError::LineUnhandled(gsi) => write!(f, "no I/O APIC handles GSI {gsi}"),
            RouteError::VectorsExhausted => f.write_str("every device vector is taken"),
        }
    }
}

/// Takes the I/O APICs and overrides of `madt`, masking every line;
/// device interrupts go to local APIC `target` (the boot CPU).
pub fn init(madt: &Madt, target: u32) {
    let ioapics = madt
        .io_apics
        .iter()
        // SAFETY: the MADT names this I/O APIC's register page, which the
        // kernel's direct map covers uncached (the 3-4 GiB MMIO window); the
        // kernel programs it only through `ROUTING`.
        .map(|a| unsafe { IoApic::new(phys_to_virt(u64::from(a.address)), a.gsi_base) })
        .collect();
    let overrides = madt
        .irq_overrides
        .iter()
        .filter(|o| o.bus == 0)
        .map(|o| (o.source, o.gsi, o.flags))
        .collect();
    *ROUTING.lock() = Some(Routing {
        ioapics,
        overrides,
        used: 0,
        target: target.min(255) as u8,
    });
}

/// Routes ISA line `irq` to a device vector whose interrupts call
/// `handler`; returns the vector.
pub fn route_isa(irq: u8, handler: Handler) -> Result<u8, RouteError> {
    let mut guard = ROUTING.lock();
    let routing = guard.as_mut().ok_or(RouteError::IoApicMissing)?;
    let (gsi, signal) = match routing.overrides.iter().find(|o| o.0 == irq) {
        Some(&(_, gsi, flags)) => (gsi, Signal::from_mps_flags(flags)),
        None => (u32::from(irq), Signal::ISA),
    };
    let vectors = DEVICE_VECTORS.end() - DEVICE_VECTORS.start() + 1;
    if routing.used >= vectors {
        return Err(RouteError::VectorsExhausted);
    }
    let target = routing.target;
    let ioapic = routing
        .ioapics
        .iter_mut()
        .find(|a| a.handles(gsi))
        .ok_or(RouteError::LineUnhandled(gsi))?;
    let slot = routing.used;
    let vector = DEVICE_VECTORS.start() + slot;
    // The handler first: the line may fire as soon as it is unmasked.
    HANDLERS[usize::from(slot)].call_once(|| handler);
    ioapic.route(gsi, vector, target, signal);
    routing.used += 1;
    Ok(vector)
}

/// Calls the handler of device vector `vector`; false if it has none (a
/// spurious or stray interrupt).
pub fn dispatch(vector: u8) -> bool {
    if !DEVICE_VECTORS.contains(&vector) {
        return false;
    }
    match HANDLERS[usize::from(vector - DEVICE_VECTORS.start())].get() {
        Some(handler) => {
            handler();
            true
        }
        None => false,
    }
}
