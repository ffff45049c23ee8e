//! Per-process capability table: generation-tagged ids, one interface per entry.
//!
//! A [`CapId`] is the ring's 64-bit cap field, `[generation:48 | index:16]`: the low 16
//! bits pick a slot, the high 48 bits must equal that slot's current generation. Every
//! raw value is well formed; a table decides whether it names a live entry.
//! Generations run from 1 to [`CapId::LAST_GENERATION`] (2^48 - 1); generation 0 never
//! names a live capability, so [`CapId::NULL`] (raw 0) and any other generation-0 value
//! are always rejected. Removing an entry bumps the slot's generation, so ids of earlier
//! occupants are rejected as stale. A slot whose generation is already the last one is
//! *retired* when freed: it is never handed out again, so a generation can never wrap
//! and revive an old id.
//!
//! How long that takes: one slot retires after 2^48 - 1 ≈ 2.8 × 10^14 occupants. Even
//! at 10^9 insert/remove cycles per second on that one slot (a cycle takes at least two
//! ring operations, so real rates are far lower) that is 2.8 × 10^5 s, about 3.3 days;
//! and a retired slot costs the process nothing but its index, because the table grows
//! a fresh slot in its place. The table runs out only when every one of the 2^16
//! indices has retired: 2^64 cycles, about 585 years at 10^9 per second.
//!
//! The table grows on demand: a slot is appended only when no freed slot is waiting
//! (freed slots are reused oldest first), and the number of live entries is bounded by
//! the ledger's [`Resource::CapSlots`] limit (the process's cap-slot quota), so the
//! table never holds more than the quota plus its retired slots. Storage grows by
//! doubling, so inserts and removals allocate nothing in steady state.
//!
//! Every live entry holds one [`CapObject`], the interface id recorded when the entry
//! was made, and [`Hold`] metadata (transfer mode and origin). A caller invokes an entry
//! with a cap id and a method id only; the table supplies the interface id, so a caller
//! can never ask an object to act as an interface other than the one it was granted as.
//!
//! Each live entry also owns one [`Resource::CapSlots`] reservation on the table's
//! [`Ledger`]; removing the entry (or dropping the table) gives it back.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::ledger::{Ledger, QuotaError, Reservation, Resource};

/// A process-local capability handle: `[generation:48 | index:16]`.
///
/// `repr(transparent)` over `u64`, the width of the cap field in ring SQEs, transfer
/// descriptors and transfer results; convert with [`CapId::from_raw`] and
/// [`CapId::to_raw`]. A raw value read from user memory is only an allegation until a
/// table accepts it.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CapId(u64);

impl CapId {
    /// Bits of the slot index (the low bits).
    pub const INDEX_BITS: u32 = 16;
    /// Bits of the generation (the high bits).
    pub const GENERATION_BITS: u32 = 64 - Self::INDEX_BITS;
    /// Largest slot index.
    pub const MAX_INDEX: u32 = (1 << Self::INDEX_BITS) - 1;
    /// First generation a slot hands out.
    pub const FIRST_GENERATION: u64 = 1;
    /// Last generation a slot hands out before it is retired.
    pub const LAST_GENERATION: u64 = (1 << Self::GENERATION_BITS) - 1;
    /// Raw 0: never a valid id.
    pub const NULL: CapId = CapId(0);

    /// The id of slot `index` at `generation`, or `None` if either does not fit.
    pub const fn new(index: u32, generation: u64) -> Option<CapId> {
        if index > Self::MAX_INDEX || generation > Self::LAST_GENERATION {
            return None;
        }
        Some(CapId((generation << Self::INDEX_BITS) | index as u64))
    }

    /// Reinterprets a raw ABI value (any `u64` is accepted; tables validate it).
    pub const fn from_raw(raw: u64) -> CapId {
        CapId(raw)
    }

    /// The raw ABI value.
    pub const fn to_raw(self) -> u64 {
        self.0
    }

    /// The slot index.
    pub const fn index(self) -> u32 {
        (self.0 & Self::MAX_INDEX as u64) as u32
    }

    /// The generation.
    pub const fn generation(self) -> u64 {
        self.0 >> Self::INDEX_BITS
    }
}

impl fmt::Debug for CapId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CapId({}@{})", self.index(), self.generation())
    }
}

impl fmt::Display for CapId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cap {}@{}", self.index(), self.generation())
    }
}

/// How a hold may leave its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransferMode {
    /// May be copied (sender keeps it) or moved.
    Copy,
    /// May only be moved: one holder at a time.
    Move,
    /// Never leaves this table.
    NonTransferable,
}

/// Where a hold came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Minted by the kernel for this process at creation.
    Kernel,
    /// Granted from the boot manifest.
    Manifest,
    /// Granted by a parent at spawn.
    SpawnGrant,
    /// Received through an IPC transfer.
    Transfer,
    /// Returned as a result cap of a call.
    ResultCap,
}

/// Metadata of one hold edge (process → object).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Hold {
    /// How the hold may be transferred.
    pub mode: TransferMode,
    /// Where it came from.
    pub origin: Origin,
}

impl Hold {
    /// A hold with `mode` and `origin`.
    pub const fn new(mode: TransferMode, origin: Origin) -> Hold {
        Hold { mode, origin }
    }
}

/// An object reachable through capability entries. The table needs only
/// its interface id and a name for diagnostics; how an object is invoked
/// belongs to whoever owns the table (the kernel's object trait extends this
/// one), so the table stores any `O: ?Sized + CapObject`.
pub trait CapObject: Send + Sync {
    /// The interface this object implements.
    fn interface_id(&self) -> u64;

    /// A short name for diagnostics.
    fn label(&self) -> &str {
        "object"
    }
}

/// A live table entry.
pub struct CapEntry<O: ?Sized = dyn CapObject> {
    /// The object.
    pub object: Arc<O>,
    /// The one interface this entry exposes.
    pub interface_id: u64,
    /// Transfer mode and origin.
    pub hold: Hold,
}

impl<O: ?Sized> Clone for CapEntry<O> {
    fn clone(&self) -> Self {
        CapEntry {
            object: Arc::clone(&self.object),
            interface_id: self.interface_id,
            hold: self.hold,
        }
    }
}

impl<O: ?Sized + CapObject> fmt::Debug for CapEntry<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapEntry")
            .field("object", &self.object.label())
            .field("interface_id", &format_args!("{:#018x}", self.interface_id))
            .field("hold", &self.hold)
            .finish()
    }
}

/// Why a table refused an id or an insertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapError {
    /// Generation 0 (including [`CapId::NULL`]): never valid.
    Null(CapId),
    /// The index names no slot of this table.
    InvalidIndex(CapId),
    /// The slot is free, retired, or holds a different generation.
    Stale(CapId),
    /// No free slot is left and the table cannot grow (every index is live or retired).
    TableFull,
    /// The ledger refused another cap slot.
    Quota(QuotaError),
    /// A reservation passed to [`CapTable::insert_reserved`] is not exactly one cap
    /// slot on this table's ledger.
    BadReservation,
}

impl fmt::Display for CapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapError::Null(id) => write!(f, "{id} has generation 0 and is never valid"),
            CapError::InvalidIndex(id) => write!(f, "{id} names no slot of this table"),
            CapError::Stale(id) => write!(f, "{id} is stale"),
            CapError::TableFull => f.write_str("capability table is full"),
            CapError::Quota(q) => q.fmt(f),
            CapError::BadReservation => {
                f.write_str("reservation is not one cap slot of this table's ledger")
            }
        }
    }
}

impl From<QuotaError> for CapError {
    fn from(q: QuotaError) -> Self {
        CapError::Quota(q)
    }
}

enum Slot<O: ?Sized> {
    Free {
        next_generation: u64,
    },
    Live {
        generation: u64,
        entry: CapEntry<O>,
        _charge: Reservation,
    },
    Retired,
}

/// The observable state of one slot, for comparing whole tables in tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Free; the next occupant gets `next_generation`.
    Free {
        /// Generation of the next occupant.
        next_generation: u64,
    },
    /// Occupied.
    Live {
        /// Generation of the occupant.
        generation: u64,
        /// Interface id of the entry.
        interface_id: u64,
        /// Hold metadata.
        hold: Hold,
        /// Identity (address) of the object.
        object: usize,
    },
    /// Permanently out of use.
    Retired,
}

/// Everything observable about a table: slots, free-list order and ledger counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSnapshot {
    /// Every slot in index order.
    pub slots: Vec<SlotState>,
    /// The free list, next to be reused first.
    pub free: Vec<u32>,
    /// The ledger counters, indexed by [`Resource::index`].
    pub ledger: [u64; Resource::COUNT],
}

/// The identity of an object, for comparing holds.
pub fn object_identity<O: ?Sized>(object: &Arc<O>) -> usize {
    Arc::as_ptr(object).cast::<()>() as usize
}

static NEXT_TABLE_ID: AtomicU64 = AtomicU64::new(1);

/// One process's capability table, of objects `O`.
pub struct CapTable<O: ?Sized = dyn CapObject> {
    id: u64,
    ledger: Arc<Ledger>,
    capacity: usize,
    last_generation: u64,
    slots: Vec<Slot<O>>,
    free: VecDeque<u32>,
    live: usize,
    retired: usize,
}

impl<O: ?Sized + CapObject> CapTable<O> {
    /// Most slots a table can have (every 16-bit index).
    pub const MAX_CAPACITY: usize = CapId::MAX_INDEX as usize + 1;

    /// An empty table of at most `capacity` slots, live or retired (clamped to
    /// [`Self::MAX_CAPACITY`]), charging its entries to `ledger`. Live entries are
    /// further bounded by the ledger's [`Resource::CapSlots`] limit.
    pub fn new(capacity: usize, ledger: Arc<Ledger>) -> Self {
        CapTable {
            id: NEXT_TABLE_ID.fetch_add(1, Ordering::Relaxed),
            ledger,
            capacity: capacity.min(Self::MAX_CAPACITY),
            last_generation: CapId::LAST_GENERATION,
            slots: Vec::new(),
            free: VecDeque::new(),
            live: 0,
            retired: 0,
        }
    }

    /// A process's table: every index may be used, and the ledger's cap-slot limit
    /// alone bounds the live entries (the table grows on demand up to it).
    pub fn for_ledger(ledger: Arc<Ledger>) -> Self {
        CapTable::new(Self::MAX_CAPACITY, ledger)
    }

    /// This empty table, retiring a slot after generation `last` (clamped to
    /// `1..=`[`CapId::LAST_GENERATION`]) instead of the last one an id can carry. Only
    /// for tests, which could not otherwise reach retirement in reasonable time.
    pub fn with_last_generation(mut self, last: u64) -> Self {
        debug_assert!(self.slots.is_empty(), "set before the first insertion");
        self.last_generation = last.clamp(CapId::FIRST_GENERATION, CapId::LAST_GENERATION);
        self
    }

    /// A number unique to this table for the life of the system.
    pub fn table_id(&self) -> u64 {
        self.id
    }

    /// The ledger entries are charged to.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// Most slots (live, free or retired) this table may ever have.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of slots the table has grown to (live, free and retired).
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no entry is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Number of retired slots.
    pub fn retired(&self) -> usize {
        self.retired
    }

    /// How many more entries fit, ignoring the ledger.
    pub fn room(&self) -> usize {
        self.free.len() + (self.capacity - self.slots.len())
    }

    /// How many more entries fit: the table's [`Self::room`] or what the ledger's
    /// cap-slot limit still allows, whichever is smaller.
    pub fn available(&self) -> usize {
        let quota =
            usize::try_from(self.ledger.available(Resource::CapSlots)).unwrap_or(usize::MAX);
        self.room().min(quota)
    }

    /// Inserts `object` under a new id, charging one cap slot to the ledger.
    ///
    /// The entry's interface is `object.interface_id()`. Nothing is charged on failure.
    pub fn insert(&mut self, object: Arc<O>, hold: Hold) -> Result<CapId, CapError> {
        if self.room() == 0 {
            return Err(CapError::TableFull);
        }
        let charge = self.ledger.reserve(Resource::CapSlots, 1)?;
        self.insert_reserved(charge, object, hold)
    }

    /// Inserts `object` using a cap-slot reservation made earlier (e.g. while
    /// preflighting a spawn). The reservation must be exactly one cap slot on this
    /// table's ledger; on any failure it is dropped, which releases it.
    pub fn insert_reserved(
        &mut self,
        charge: Reservation,
        object: Arc<O>,
        hold: Hold,
    ) -> Result<CapId, CapError> {
        self.insert_undoable(charge, object, hold).map(|(id, _)| id)
    }

    /// [`Self::insert_reserved`], also reporting whether the slot came off the free list
    /// (as opposed to being appended), which [`Self::undo_insert`] needs.
    pub(crate) fn insert_undoable(
        &mut self,
        charge: Reservation,
        object: Arc<O>,
        hold: Hold,
    ) -> Result<(CapId, bool), CapError> {
        if !charge.is_from(&self.ledger)
            || charge.resource() != Resource::CapSlots
            || charge.amount() != 1
        {
            return Err(CapError::BadReservation);
        }
        let interface_id = object.interface_id();
        let entry = CapEntry {
            object,
            interface_id,
            hold,
        };
        let (index, generation, from_free) = match self.free.pop_front() {
            Some(index) => match self.slots[index as usize] {
                Slot::Free { next_generation } => (index, next_generation, true),
                // The free list only ever holds free slots.
                _ => unreachable!("free list names an occupied slot"),
            },
            None if self.slots.len() < self.capacity => {
                self.slots.push(Slot::Free {
                    next_generation: CapId::FIRST_GENERATION,
                });
                (self.slots.len() as u32 - 1, CapId::FIRST_GENERATION, false)
            }
            None => return Err(CapError::TableFull),
        };
        self.slots[index as usize] = Slot::Live {
            generation,
            entry,
            _charge: charge,
        };
        self.live += 1;
        let id = CapId::new(index, generation)
            .expect("capacity keeps indices within 16 bits, retirement generations within 48");
        Ok((id, from_free))
    }

    /// Takes back the most recent insertion as if it never happened: the slot returns
    /// to the front of the free list (or is popped, if it was appended) with its
    /// generation unchanged, and its charge is released. Only for ids that were never
    /// published to anyone, undone in reverse insertion order.
    pub(crate) fn undo_insert(&mut self, id: CapId, from_free: bool) {
        let index = id.index() as usize;
        if !matches!(self.slots.get(index), Some(Slot::Live { generation, .. }) if *generation == id.generation())
        {
            debug_assert!(false, "undo_insert of {id:?}, which is not live");
            return;
        }
        if !from_free && index + 1 == self.slots.len() {
            self.slots.truncate(index);
        } else {
            debug_assert!(from_free, "appended slots are undone last-first");
            self.slots[index] = Slot::Free {
                next_generation: id.generation(),
            };
            self.free.push_front(id.index());
        }
        self.live -= 1;
    }

    /// The live entry `id` names, or why it names none.
    pub fn get(&self, id: CapId) -> Result<&CapEntry<O>, CapError> {
        if id.generation() == 0 {
            return Err(CapError::Null(id));
        }
        match self.slots.get(id.index() as usize) {
            None => Err(CapError::InvalidIndex(id)),
            Some(Slot::Live {
                generation, entry, ..
            }) if *generation == id.generation() => Ok(entry),
            Some(_) => Err(CapError::Stale(id)),
        }
    }

    /// Whether `id` names a live entry.
    pub fn contains(&self, id: CapId) -> bool {
        self.get(id).is_ok()
    }

    /// The object and interface id behind `id`, cloned so the caller can drop any lock
    /// on the table before running the call.
    pub fn lookup(&self, id: CapId) -> Result<(Arc<O>, u64), CapError> {
        self.get(id)
            .map(|e| (Arc::clone(&e.object), e.interface_id))
    }

    /// Removes the entry `id` names and gives its cap slot back to the ledger.
    ///
    /// The slot's generation is bumped, or the slot is retired if its generation is the
    /// last one ([`CapId::LAST_GENERATION`], or the test limit of
    /// [`Self::with_last_generation`]).
    pub fn remove(&mut self, id: CapId) -> Result<CapEntry<O>, CapError> {
        self.get(id)?;
        let index = id.index();
        let slot = &mut self.slots[index as usize];
        let generation = id.generation();
        let next = if generation >= self.last_generation {
            self.retired += 1;
            Slot::Retired
        } else {
            self.free.push_back(index);
            Slot::Free {
                next_generation: generation + 1,
            }
        };
        match core::mem::replace(slot, next) {
            Slot::Live { entry, .. } => {
                self.live -= 1;
                Ok(entry)
            }
            _ => unreachable!("get() accepted a slot that is not live"),
        }
    }

    /// Removes every live entry (process exit); returns how many there were.
    pub fn clear(&mut self) -> usize {
        let ids: Vec<CapId> = self.iter().map(|(id, _)| id).collect();
        for id in &ids {
            let _ = self.remove(*id);
        }
        ids.len()
    }

    /// Live entries in index order.
    pub fn iter(&self) -> impl Iterator<Item = (CapId, &CapEntry<O>)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| match slot {
                Slot::Live {
                    generation, entry, ..
                } => Some((CapId::new(index as u32, *generation)?, entry)),
                _ => None,
            })
    }

    /// Everything observable about this table and its ledger.
    pub fn snapshot(&self) -> TableSnapshot {
        let slots = self
            .slots
            .iter()
            .map(|slot| match slot {
                Slot::Free { next_generation } => SlotState::Free {
                    next_generation: *next_generation,
                },
                Slot::Live {
                    generation, entry, ..
                } => SlotState::Live {
                    generation: *generation,
                    interface_id: entry.interface_id,
                    hold: entry.hold,
                    object: object_identity(&entry.object),
                },
                Slot::Retired => SlotState::Retired,
            })
            .collect();
        TableSnapshot {
            slots,
            free: self.free.iter().copied().collect(),
            ledger: self.ledger.snapshot(),
        }
    }
}

impl<O: ?Sized> fmt::Debug for CapTable<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapTable")
            .field("id", &self.id)
            .field("capacity", &self.capacity)
            .field("live", &self.live)
            .field("retired", &self.retired)
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ledger::Limits;

    /// A test object with an interface id and nothing else.
    pub(crate) struct Echo(pub u64);

    impl CapObject for Echo {
        fn interface_id(&self) -> u64 {
            self.0
        }
    }

    pub(crate) fn echo(iface: u64) -> Arc<dyn CapObject> {
        Arc::new(Echo(iface))
    }

    const COPY: Hold = Hold::new(TransferMode::Copy, Origin::Kernel);

    #[test]
    fn cap_id_layout() {
        let id = CapId::new(0x3456, 0x9a_bcde_f012).unwrap();
        assert_eq!(id.to_raw(), 0x9a_bcde_f012_3456);
        assert_eq!((id.index(), id.generation()), (0x3456, 0x9a_bcde_f012));
        assert_eq!(CapId::from_raw(0x9a_bcde_f012_3456), id);
        assert_eq!(CapId::new(1 << 16, 1), None);
        assert_eq!(CapId::new(0, 1 << 48), None);
        let top = CapId::new(CapId::MAX_INDEX, CapId::LAST_GENERATION).unwrap();
        assert_eq!(top.to_raw(), u64::MAX);
        assert_eq!(core::mem::size_of::<CapId>(), 8);
        assert_eq!(format!("{id:?}"), "CapId(13398@664593690642)");
        assert_eq!(format!("{}", CapId::NULL), "cap 0@0");
    }

    #[test]
    fn insert_get_call_remove() {
        let mut t: CapTable = CapTable::new(4, Ledger::new(Limits::DEFAULT));
        let id = t.insert(echo(7), COPY).unwrap();
        assert_eq!((id.index(), id.generation()), (0, 1));
        assert_eq!(t.get(id).unwrap().interface_id, 7);
        assert_eq!(t.lookup(id).unwrap().1, 7);
        assert_eq!(t.ledger().used(Resource::CapSlots), 1);
        t.remove(id).unwrap();
        assert_eq!(t.ledger().used(Resource::CapSlots), 0);
        assert_eq!(t.get(id).unwrap_err(), CapError::Stale(id));
        assert_eq!(t.lookup(id).err(), Some(CapError::Stale(id)));
        assert_eq!(t.remove(id).unwrap_err(), CapError::Stale(id));
        let again = t.insert(echo(8), COPY).unwrap();
        assert_eq!((again.index(), again.generation()), (0, 2));
        assert_eq!(t.get(id).unwrap_err(), CapError::Stale(id));
    }

    #[test]
    fn null_and_out_of_range_ids_are_rejected() {
        let mut t: CapTable = CapTable::new(4, Ledger::new(Limits::DEFAULT));
        let live = t.insert(echo(1), COPY).unwrap();
        assert_eq!(t.get(CapId::NULL).unwrap_err(), CapError::Null(CapId::NULL));
        let gen0 = CapId::new(0, 0).unwrap();
        assert_eq!(t.get(gen0).unwrap_err(), CapError::Null(gen0));
        let far = CapId::new(3, 1).unwrap();
        assert_eq!(t.get(far).unwrap_err(), CapError::InvalidIndex(far));
        // High generation bits on a live slot's index: a different generation.
        let wide = CapId::from_raw(live.to_raw() | 1 << 40);
        assert_eq!(t.get(wide).unwrap_err(), CapError::Stale(wide));
        assert_eq!(format!("{wide}"), "cap 0@16777217");
        let wrong_gen = CapId::new(0, 9).unwrap();
        assert_eq!(t.get(wrong_gen).unwrap_err(), CapError::Stale(wrong_gen));
    }

    #[test]
    fn a_slot_retires_instead_of_wrapping() {
        let mut t: CapTable =
            CapTable::new(1, Ledger::new(Limits::DEFAULT)).with_last_generation(255);
        let mut seen = Vec::new();
        for expected_gen in 1..=255u64 {
            let id = t.insert(echo(1), COPY).unwrap();
            assert_eq!((id.index(), id.generation()), (0, expected_gen));
            seen.push(id);
            t.remove(id).unwrap();
        }
        assert_eq!(t.retired(), 1);
        assert_eq!(t.room(), 0);
        assert_eq!(t.insert(echo(1), COPY).unwrap_err(), CapError::TableFull);
        assert!(seen.iter().all(|id| t.get(*id).is_err()));
        assert_eq!(t.ledger().used(Resource::CapSlots), 0);
    }

    #[test]
    fn a_retired_slot_is_replaced_by_a_fresh_one() {
        let ledger = Ledger::new(Limits::NONE.with(Resource::CapSlots, 1));
        let mut t: CapTable = CapTable::for_ledger(ledger).with_last_generation(3);
        let mut ids = Vec::new();
        for _ in 0..7 {
            let id = t.insert(echo(1), COPY).unwrap();
            ids.push(id);
            t.remove(id).unwrap();
        }
        let got: Vec<_> = ids.iter().map(|i| (i.index(), i.generation())).collect();
        assert_eq!(
            got,
            [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 1)]
        );
        assert_eq!((t.retired(), t.slot_count(), t.len()), (2, 3, 0));
        assert!(ids.iter().all(|id| !t.contains(*id)));
    }

    #[test]
    fn the_last_generation_an_id_can_carry_is_the_retirement_point() {
        let mut t: CapTable =
            CapTable::new(1, Ledger::new(Limits::DEFAULT)).with_last_generation(u64::MAX);
        assert_eq!(t.last_generation, CapId::LAST_GENERATION);
        t.slots.push(Slot::Free {
            next_generation: CapId::LAST_GENERATION,
        });
        t.free.push_back(0);
        let id = t.insert(echo(1), COPY).unwrap();
        assert_eq!(id.to_raw(), CapId::LAST_GENERATION << CapId::INDEX_BITS);
        t.remove(id).unwrap();
        assert_eq!(t.retired(), 1);
        assert_eq!(t.insert(echo(1), COPY).unwrap_err(), CapError::TableFull);
    }

    #[test]
    fn a_process_table_grows_on_demand_up_to_the_quota() {
        let ledger = Ledger::new(Limits::DEFAULT.with(Resource::CapSlots, 300));
        let mut t: CapTable = CapTable::for_ledger(Arc::clone(&ledger));
        assert_eq!((t.slot_count(), t.available()), (0, 300));
        let ids: Vec<_> = (0..300).map(|_| t.insert(echo(1), COPY).unwrap()).collect();
        assert_eq!((t.slot_count(), t.available()), (300, 0));
        assert!(matches!(t.insert(echo(1), COPY), Err(CapError::Quota(_))));
        for id in &ids[..10] {
            t.remove(*id).unwrap();
        }
        assert_eq!(t.available(), 10);
        for _ in 0..10 {
            t.insert(echo(1), COPY).unwrap();
        }
        assert_eq!(t.slot_count(), 300, "freed slots are reused before growing");
    }

    #[test]
    fn capacity_and_quota_limit_insertion_without_charging() {
        let ledger = Ledger::new(Limits::NONE.with(Resource::CapSlots, 2));
        let mut t: CapTable = CapTable::new(3, Arc::clone(&ledger));
        t.insert(echo(1), COPY).unwrap();
        t.insert(echo(1), COPY).unwrap();
        assert!(matches!(t.insert(echo(1), COPY), Err(CapError::Quota(_))));
        assert_eq!(ledger.used(Resource::CapSlots), 2);
        let mut small: CapTable = CapTable::new(1, Ledger::new(Limits::DEFAULT));
        small.insert(echo(1), COPY).unwrap();
        assert_eq!(
            small.insert(echo(1), COPY).unwrap_err(),
            CapError::TableFull
        );
        assert_eq!(small.ledger().used(Resource::CapSlots), 1);
    }

    #[test]
    fn insert_reserved_checks_the_token() {
        let ledger = Ledger::new(Limits::DEFAULT);
        let other = Ledger::new(Limits::DEFAULT);
        let mut t: CapTable = CapTable::new(4, Arc::clone(&ledger));
        let foreign = other.reserve(Resource::CapSlots, 1).unwrap();
        assert_eq!(
            t.insert_reserved(foreign, echo(1), COPY).unwrap_err(),
            CapError::BadReservation
        );
        let two = ledger.reserve(Resource::CapSlots, 2).unwrap();
        assert_eq!(
            t.insert_reserved(two, echo(1), COPY).unwrap_err(),
            CapError::BadReservation
        );
        let frame = ledger.reserve(Resource::Frames, 1).unwrap();
        assert_eq!(
            t.insert_reserved(frame, echo(1), COPY).unwrap_err(),
            CapError::BadReservation
        );
        assert_eq!((ledger.snapshot(), other.snapshot()), ([0; 7], [0; 7]));
        let one = ledger.reserve(Resource::CapSlots, 1).unwrap();
        let id = t.insert_reserved(one, echo(1), COPY).unwrap();
        assert!(t.contains(id));
        assert_eq!(ledger.used(Resource::CapSlots), 1);
    }

    #[test]
    fn free_slots_are_reused_oldest_first_and_clear_releases_everything() {
        let mut t: CapTable = CapTable::new(8, Ledger::new(Limits::DEFAULT));
        let ids: Vec<_> = (0..4).map(|i| t.insert(echo(i), COPY).unwrap()).collect();
        t.remove(ids[2]).unwrap();
        t.remove(ids[0]).unwrap();
        assert_eq!(t.snapshot().free, vec![2, 0]);
        assert_eq!(t.insert(echo(9), COPY).unwrap().index(), 2);
        assert_eq!(
            t.iter().map(|(id, _)| id.index()).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(t.clear(), 3);
        assert!(t.is_empty());
        assert_eq!(t.ledger().used(Resource::CapSlots), 0);
    }

    #[test]
    fn dropping_a_table_releases_its_slots() {
        let ledger = Ledger::new(Limits::DEFAULT);
        let mut t: CapTable = CapTable::new(8, Arc::clone(&ledger));
        t.insert(echo(1), COPY).unwrap();
        t.insert(echo(1), COPY).unwrap();
        drop(t);
        assert_eq!(ledger.used(Resource::CapSlots), 0);
    }
}
