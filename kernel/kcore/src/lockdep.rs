//! Lock-order validation: lock classes, the locks each CPU holds, and the
//! global graph of observed "A held while taking B" orders.
//!
//! A lock's **class** is the source location where it was constructed (like
//! Linux lockdep's keys by init site): every process's capability table is
//! one class, the frame allocator's lock another. Each CPU keeps a
//! [`HeldStack`] of the locks it holds (class, instance, acquisition site);
//! before a CPU spins for a lock, the kernel asks ([`check`]):
//!
//! 1. [`HeldStack::check`]: is this very lock already held by this CPU
//!    (re-entry: the CPU would spin for ever), or another lock of the same
//!    class, not nested by increasing keys ([`Violation::SameClass`])?
//! 2. [`Graph::add_edge`] for every held lock `A` whose order `A -> B` to
//!    the new lock `B` is not yet in [`Seen`]: does the graph already reach
//!    `A` from `B` (some CPU took `B`, maybe through other locks, before
//!    `A`)? Then two CPUs can each hold one and wait for the other: an
//!    inversion, reported with every edge's acquisition sites.
//! 3. [`Graph::note_use`]: a class taken in interrupt context and also,
//!    elsewhere, taken with interrupts enabled can deadlock against its own
//!    CPU.
//!
//! Nothing here allocates (the kernel heap's lock is itself validated, and
//! interrupt handlers take locks): every table has a fixed size, and a full
//! table stops validation with a [`Capacity`] rather than failing silently.
//! [`Seen`] is lock-free, so the common case (every order already known)
//! needs no shared lock; [`Graph`] is meant to sit behind one raw spin lock
//! that is not itself validated.

// A report carries every site it names (up to `MAX_PATH` edges), by value:
// nothing here may allocate, and reports are rare, so the large error
// variant is the price of a self-contained report.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

mod graph;
mod held;

pub use graph::{Graph, Seen, Usage};
pub use held::HeldStack;

use core::fmt;
use core::panic::Location;

/// A source location: where a lock was constructed (its class) or taken.
pub type Site = &'static Location<'static>;

/// Most lock classes the graph records.
pub const MAX_CLASSES: usize = 128;
/// Most distinct orders (edges between classes) the graph records.
pub const MAX_EDGES: usize = 1024;
/// Most locks one CPU may hold at once.
pub const MAX_HELD: usize = 24;
/// Most edges an inversion report lists.
pub const MAX_PATH: usize = 8;

/// A registered lock class (an index into the graph's class table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClassId(u16);

impl ClassId {
    /// The class's index in the table (below [`MAX_CLASSES`]).
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The class with index `index`, if it is in range.
    pub fn from_index(index: usize) -> Option<Self> {
        (index < MAX_CLASSES).then_some(Self(index as u16))
    }
}

/// One lock a CPU holds, or is about to spin for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldLock {
    /// Its class.
    pub class: ClassId,
    /// Where its class was constructed (for reports).
    pub class_site: Site,
    /// Identity of the lock itself (its address in the kernel).
    pub instance: usize,
    /// Where it was taken.
    pub site: Site,
    /// Ordering key for nesting several locks of one class (see
    /// [`HeldStack::check`]); `None` for a plain acquisition.
    pub key: Option<u64>,
}

/// One recorded order: a lock of class `from` was held (taken at
/// `from_site`) while a lock of class `to` was taken at `to_site`, first
/// seen on CPU `cpu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Class held.
    pub from: ClassId,
    /// Construction site of the held class.
    pub from_class: Site,
    /// Where the held lock was taken.
    pub from_site: Site,
    /// Class taken.
    pub to: ClassId,
    /// Construction site of the taken class.
    pub to_class: Site,
    /// Where it was taken.
    pub to_site: Site,
    /// CPU that first showed this order.
    pub cpu: u32,
}

/// The recorded chain of orders that closes a cycle with a new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Path {
    edges: [Option<Edge>; MAX_PATH],
    /// Length of the whole chain (it may be longer than what is kept).
    len: usize,
}

impl Path {
    const EMPTY: Self = Self {
        edges: [None; MAX_PATH],
        len: 0,
    };

    fn push(&mut self, e: Edge) {
        if let Some(slot) = self.edges.get_mut(self.len) {
            *slot = Some(e);
        }
        self.len += 1;
    }

    /// The kept edges, in order (the first leaves the new lock's class, the
    /// last enters the held lock's class).
    pub fn edges(&self) -> impl Iterator<Item = &Edge> {
        self.edges.iter().flatten()
    }

    /// Length of the whole chain.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty chain (never the case in a report).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A lock-usage error that can deadlock, with everything a report names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// CPU `cpu` is taking a lock it already holds: it would spin for ever.
    Reentry {
        /// The CPU.
        cpu: u32,
        /// The acquisition being attempted.
        new: HeldLock,
        /// The same lock, as held.
        held: HeldLock,
    },
    /// CPU `cpu` is taking a second lock of a class it holds, without
    /// increasing keys: two CPUs doing so in opposite order deadlock.
    SameClass {
        /// The CPU.
        cpu: u32,
        /// The acquisition being attempted.
        new: HeldLock,
        /// The lock of that class it holds.
        held: HeldLock,
    },
    /// CPU `cpu` takes `new` while holding `held`, but the opposite order
    /// (from `new`'s class to `held`'s, through `path`) was seen before.
    Inversion {
        /// The CPU.
        cpu: u32,
        /// The acquisition being attempted.
        new: HeldLock,
        /// The lock held while taking it.
        held: HeldLock,
        /// The recorded opposite order.
        path: Path,
    },
    /// A class taken in interrupt context is also taken with interrupts
    /// enabled: an interrupt on the CPU holding it would spin for ever.
    IrqUnsafe {
        /// The class.
        class_site: Site,
        /// First acquisition in interrupt context.
        in_irq: Site,
        /// CPU of that acquisition.
        irq_cpu: u32,
        /// First acquisition with interrupts enabled.
        irqs_on: Site,
        /// CPU of that acquisition.
        on_cpu: u32,
    },
    /// CPU `cpu` releases a lock it does not hold (it was taken on another
    /// CPU: a lock held across a thread switch or migration).
    NotHeld {
        /// The CPU.
        cpu: u32,
        /// The lock's class.
        class_site: Site,
        /// The lock.
        instance: usize,
    },
    /// CPU `cpu` switches threads while holding `held`: the next thread on
    /// this CPU may spin for it, and the holder may resume elsewhere.
    HeldAtSwitch {
        /// The CPU.
        cpu: u32,
        /// The lock still held.
        held: HeldLock,
    },
}

impl Violation {
    /// A short name of the kind of violation (the report's first line).
    pub fn kind(&self) -> &'static str {
        match self {
            Violation::Reentry { .. } => "re-entry of a held lock",
            Violation::SameClass { .. } => "nested locks of one class",
            Violation::Inversion { .. } => "lock-order inversion",
            Violation::IrqUnsafe { .. } => "interrupt-unsafe lock",
            Violation::NotHeld { .. } => "release of a lock this CPU does not hold",
            Violation::HeldAtSwitch { .. } => "lock held across a thread switch",
        }
    }
}

/// CPU number a caller passes when it cannot tell which CPU it runs on (a
/// CPU early in its bring-up); printed as `cpu?`.
pub const UNKNOWN_CPU: u32 = u32::MAX;

/// Formats a CPU number as `cpuN`, or `cpu?` for [`UNKNOWN_CPU`].
pub struct Cpu(pub u32);

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            UNKNOWN_CPU => f.write_str("cpu?"),
            n => write!(f, "cpu{n}"),
        }
    }
}

/// Formats a class as `lock made at FILE:LINE:COL`.
struct Class(Site);

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lock made at {}", self.0)
    }
}

/// Formats a key as ` (key N)` or nothing.
struct Key(Option<u64>);

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(k) => write!(f, " (key {k})"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Violation {
    /// A multi-line report; every line after the first starts with two
    /// spaces, and no line ends with a newline (the caller adds prefixes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind())?;
        match self {
            Violation::Reentry { cpu, new, held } => write!(
                f,
                " on {}\n  taking   {} at {}\n  already held since {} (same lock {:#x}): the CPU would spin for ever",
                Cpu(*cpu),
                Class(new.class_site),
                new.site,
                held.site,
                new.instance
            ),
            Violation::SameClass { cpu, new, held } => write!(
                f,
                " on {}\n  taking   {} at {}{}\n  while holding another lock of that class, taken at {}{}\n  nest locks of one class only in increasing key order (lock_ordered)",
                Cpu(*cpu),
                Class(new.class_site),
                new.site,
                Key(new.key),
                held.site,
                Key(held.key)
            ),
            Violation::Inversion {
                cpu,
                new,
                held,
                path,
            } => {
                write!(
                    f,
                    " on {}\n  taking   {} at {}\n  while holding {} taken at {}\n  but the opposite order was seen before:",
                    Cpu(*cpu),
                    Class(new.class_site),
                    new.site,
                    Class(held.class_site),
                    held.site
                )?;
                for e in path.edges() {
                    write!(
                        f,
                        "\n    {}: held {} taken at {}\n          then took {} at {}",
                        Cpu(e.cpu),
                        Class(e.from_class),
                        e.from_site,
                        Class(e.to_class),
                        e.to_site
                    )?;
                }
                if path.len() > MAX_PATH {
                    write!(f, "\n    ({} more orders)", path.len() - MAX_PATH)?;
                }
                Ok(())
            }
            Violation::IrqUnsafe {
                class_site,
                in_irq,
                irq_cpu,
                irqs_on,
                on_cpu,
            } => write!(
                f,
                "\n  {} is taken in interrupt context at {in_irq} ({})\n  and with interrupts enabled at {irqs_on} ({})",
                Class(class_site),
                Cpu(*irq_cpu),
                Cpu(*on_cpu)
            ),
            Violation::NotHeld {
                cpu,
                class_site,
                instance,
            } => write!(
                f,
                " on {}\n  releasing {} ({instance:#x}), which was taken on another CPU",
                Cpu(*cpu),
                Class(class_site)
            ),
            Violation::HeldAtSwitch { cpu, held } => write!(
                f,
                " on {}\n  still holding {} taken at {}",
                Cpu(*cpu),
                Class(held.class_site),
                held.site
            ),
        }
    }
}

/// A fixed-size table that filled up; validation cannot go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capacity {
    /// Every class slot is taken.
    Classes(usize),
    /// Every edge slot is taken.
    Edges(usize),
    /// A CPU holds as many locks as its stack has room for.
    Held(usize),
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capacity::Classes(n) => write!(f, "graph full ({n} lock classes)"),
            Capacity::Edges(n) => write!(f, "graph full ({n} lock orders)"),
            Capacity::Held(n) => write!(f, "a CPU holds {n} locks at once"),
        }
    }
}

/// Why an acquisition could not be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A real error: report and halt.
    Violation(Violation),
    /// A table is full: say so once and stop validating.
    Full(Capacity),
}

impl From<Violation> for Stop {
    fn from(v: Violation) -> Self {
        Stop::Violation(v)
    }
}

impl From<Capacity> for Stop {
    fn from(c: Capacity) -> Self {
        Stop::Full(c)
    }
}

/// The whole check of one acquisition on CPU `cpu`, in the order the
/// kernel runs it: `new` against `held` (re-entry, same class), then every
/// new order against the graph. Nothing is pushed: the kernel checks before
/// it spins and pushes once it holds the lock ([`HeldStack::push`]).
///
/// `graph(held, new)` (normally [`Graph::add_edge`]) is called only for
/// orders `seen` does not know yet, so a caller that keeps the graph behind
/// a lock takes that lock only then.
pub fn check(
    held: &HeldStack,
    seen: &Seen,
    mut graph: impl FnMut(&HeldLock, &HeldLock) -> Result<(), Stop>,
    new: &HeldLock,
    cpu: u32,
) -> Result<(), Stop> {
    held.check(new, cpu)?;
    for h in held.iter() {
        if h.class != new.class && !seen.contains(h.class, new.class) {
            graph(h, new)?;
        }
    }
    Ok(())
}

/// [`check`], then [`HeldStack::push`].
pub fn acquire(
    held: &mut HeldStack,
    seen: &Seen,
    graph: impl FnMut(&HeldLock, &HeldLock) -> Result<(), Stop>,
    new: HeldLock,
    cpu: u32,
) -> Result<(), Stop> {
    check(held, seen, graph, &new, cpu)?;
    held.push(new)?;
    Ok(())
}

#[cfg(test)]
mod tests;
