//! The global order graph: registered classes, recorded orders with the
//! sites that first showed them, and how each class was used with respect
//! to interrupts.

use super::{
    Capacity, ClassId, Edge, HeldLock, Path, Site, Stop, Violation, MAX_CLASSES, MAX_EDGES,
};
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

const WORDS: usize = MAX_CLASSES / 64;
const _: () = assert!(MAX_CLASSES.is_multiple_of(64) && MAX_CLASSES < u16::MAX as usize);

/// How a class was taken, with respect to interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// Taken by an interrupt handler.
    InIrq,
    /// Taken, by a lock that does not mask interrupts, while they were
    /// enabled.
    IrqsOn,
}

impl Usage {
    fn bit(self) -> u8 {
        match self {
            Usage::InIrq => 1,
            Usage::IrqsOn => 2,
        }
    }

    fn index(self) -> usize {
        match self {
            Usage::InIrq => 0,
            Usage::IrqsOn => 1,
        }
    }
}

/// What is already known, readable without the graph's lock: the orders
/// recorded so far (a bit matrix over classes) and each class's usages.
/// Only [`Graph`] sets bits, after recording what a report needs; a set bit
/// never clears, so a reader that sees one may skip the graph.
pub struct Seen {
    orders: [AtomicU64; MAX_CLASSES * WORDS],
    uses: [AtomicU8; MAX_CLASSES],
}

impl Default for Seen {
    fn default() -> Self {
        Self::new()
    }
}

impl Seen {
    /// Nothing seen.
    pub const fn new() -> Self {
        Self {
            orders: [const { AtomicU64::new(0) }; MAX_CLASSES * WORDS],
            uses: [const { AtomicU8::new(0) }; MAX_CLASSES],
        }
    }

    fn word(from: ClassId, to: ClassId) -> (usize, u64) {
        (
            from.index() * WORDS + to.index() / 64,
            1 << (to.index() % 64),
        )
    }

    /// True once the order `from -> to` has been recorded.
    pub fn contains(&self, from: ClassId, to: ClassId) -> bool {
        let (w, bit) = Self::word(from, to);
        self.orders[w].load(Ordering::Acquire) & bit != 0
    }

    fn insert(&self, from: ClassId, to: ClassId) {
        let (w, bit) = Self::word(from, to);
        self.orders[w].fetch_or(bit, Ordering::Release);
    }

    /// Classes `from` was seen to be held while taking, in index order.
    fn successors(&self, from: ClassId) -> impl Iterator<Item = ClassId> + '_ {
        (0..WORDS).flat_map(move |w| {
            let mut bits = self.orders[from.index() * WORDS + w].load(Ordering::Acquire);
            core::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                ClassId::from_index(w * 64 + b)
            })
        })
    }

    /// True once `class` has been recorded with `usage`.
    pub fn has_use(&self, class: ClassId, usage: Usage) -> bool {
        self.uses[class.index()].load(Ordering::Acquire) & usage.bit() != 0
    }
}

/// Classes, orders and usages, with the sites that first showed each.
/// Every method takes `&mut self`: the kernel keeps the graph behind one
/// raw spin lock (taken only when [`Seen`] does not already answer). One
/// graph works with one [`Seen`].
#[derive(Clone, Debug)]
pub struct Graph {
    classes: [Option<Site>; MAX_CLASSES],
    n_classes: usize,
    class_limit: usize,
    edges: [Option<Edge>; MAX_EDGES],
    n_edges: usize,
    edge_limit: usize,
    uses: [[Option<(Site, u32)>; 2]; MAX_CLASSES],
}

impl Default for Graph {
    fn default() -> Self {
        Self::new()
    }
}

impl Graph {
    /// An empty graph with room for [`MAX_CLASSES`] classes and
    /// [`MAX_EDGES`] orders.
    pub const fn new() -> Self {
        Self::with_limits(MAX_CLASSES, MAX_EDGES)
    }

    /// An empty graph that takes at most `classes` classes and `edges`
    /// orders (each capped at the fixed table sizes); for tests of the full
    /// behaviour.
    pub const fn with_limits(classes: usize, edges: usize) -> Self {
        Self {
            classes: [None; MAX_CLASSES],
            n_classes: 0,
            class_limit: if classes < MAX_CLASSES {
                classes
            } else {
                MAX_CLASSES
            },
            edges: [None; MAX_EDGES],
            n_edges: 0,
            edge_limit: if edges < MAX_EDGES { edges } else { MAX_EDGES },
            uses: [[None; 2]; MAX_CLASSES],
        }
    }

    /// Number of registered classes.
    pub fn classes(&self) -> usize {
        self.n_classes
    }

    /// Number of recorded orders.
    pub fn edges(&self) -> usize {
        self.n_edges
    }

    /// The class of locks constructed at `site`, registering it on first
    /// use.
    pub fn class(&mut self, site: Site) -> Result<ClassId, Capacity> {
        let known = self.classes[..self.n_classes]
            .iter()
            .position(|s| s.is_some_and(|s| s == site));
        if let Some(i) = known {
            return Ok(ClassId(i as u16));
        }
        if self.n_classes >= self.class_limit {
            return Err(Capacity::Classes(self.class_limit));
        }
        let id = ClassId(self.n_classes as u16);
        self.classes[self.n_classes] = Some(site);
        self.n_classes += 1;
        Ok(id)
    }

    /// The construction site of `class`, if registered.
    pub fn class_site(&self, class: ClassId) -> Option<Site> {
        self.classes.get(class.index()).copied().flatten()
    }

    /// Records the order "`held` held while taking `new`" seen on CPU
    /// `cpu`, unless the graph already leads from `new`'s class back to
    /// `held`'s: then the two orders can deadlock, and the error names the
    /// recorded chain ([`Violation::Inversion`]).
    pub fn add_edge(
        &mut self,
        seen: &Seen,
        held: &HeldLock,
        new: &HeldLock,
        cpu: u32,
    ) -> Result<(), Stop> {
        let (a, b) = (held.class, new.class);
        if a == b || seen.contains(a, b) {
            return Ok(());
        }
        if let Some(path) = self.path(seen, b, a) {
            return Err(Violation::Inversion {
                cpu,
                new: *new,
                held: *held,
                path,
            }
            .into());
        }
        if self.n_edges >= self.edge_limit {
            return Err(Capacity::Edges(self.edge_limit).into());
        }
        self.edges[self.n_edges] = Some(Edge {
            from: a,
            from_class: held.class_site,
            from_site: held.site,
            to: b,
            to_class: new.class_site,
            to_site: new.site,
            cpu,
        });
        self.n_edges += 1;
        seen.insert(a, b);
        Ok(())
    }

    /// The shortest recorded chain of orders from `from` to `to`, if any
    /// (breadth-first over the order matrix, no allocation).
    fn path(&self, seen: &Seen, from: ClassId, to: ClassId) -> Option<Path> {
        const NONE: u16 = u16::MAX;
        let mut parent = [NONE; MAX_CLASSES];
        let mut queue = [0u16; MAX_CLASSES];
        let (mut head, mut tail) = (0, 0);
        parent[from.index()] = from.0;
        queue[tail] = from.0;
        tail += 1;
        while head < tail {
            let x = ClassId(queue[head]);
            head += 1;
            if x == to {
                break;
            }
            for y in seen.successors(x) {
                if parent[y.index()] == NONE {
                    parent[y.index()] = x.0;
                    queue[tail] = y.0;
                    tail += 1;
                }
            }
        }
        if parent[to.index()] == NONE {
            return None;
        }
        // Walk back from `to`, then emit the chain front to back.
        let mut chain = [0u16; MAX_CLASSES];
        let mut n = 0;
        let mut x = to.0;
        while x != from.0 {
            chain[n] = x;
            n += 1;
            x = parent[usize::from(x)];
        }
        chain[n] = from.0;
        n += 1;
        let mut path = Path::EMPTY;
        for i in (1..n).rev() {
            let (f, t) = (ClassId(chain[i]), ClassId(chain[i - 1]));
            if let Some(e) = self.edge(f, t) {
                path.push(*e);
            }
        }
        Some(path)
    }

    /// The `i`th recorded order, oldest first.
    pub fn edge_at(&self, i: usize) -> Option<&Edge> {
        self.edges[..self.n_edges].get(i)?.as_ref()
    }

    /// The recorded order `from -> to`, if any.
    pub fn edge(&self, from: ClassId, to: ClassId) -> Option<&Edge> {
        self.edges[..self.n_edges]
            .iter()
            .flatten()
            .find(|e| e.from == from && e.to == to)
    }

    /// Records that `class` (constructed at `class_site`) was taken at
    /// `site` on CPU `cpu` with `usage`. A class taken both in interrupt
    /// context and with interrupts enabled is [`Violation::IrqUnsafe`].
    pub fn note_use(
        &mut self,
        seen: &Seen,
        class: ClassId,
        class_site: Site,
        usage: Usage,
        site: Site,
        cpu: u32,
    ) -> Result<(), Violation> {
        if seen.has_use(class, usage) {
            return Ok(());
        }
        let uses = &mut self.uses[class.index()];
        uses[usage.index()].get_or_insert((site, cpu));
        seen.uses[class.index()].fetch_or(usage.bit(), Ordering::Release);
        match (uses[0], uses[1]) {
            (Some((in_irq, irq_cpu)), Some((irqs_on, on_cpu))) => Err(Violation::IrqUnsafe {
                class_site,
                in_irq,
                irq_cpu,
                irqs_on,
                on_cpu,
            }),
            _ => Ok(()),
        }
    }
}
