//! quickcheck properties for capos-caps: capability table, resource ledger, transfer transactions and manifest validation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use capos_caps::cap_table::{object_identity, CapError, CapObject, CapTable};
use capos_caps::interfaces;
use capos_caps::ledger::{Ledger, Limits, Reservation, Resource};
use capos_caps::manifest::{
    self, Binary, CapRef, CapSource, Export, Facet, InitProcess, KernelKind, KernelParams,
    Manifest, Placement, Service,
};
use capos_caps::transfer::{
    transfer, TransferDescriptor, TransferError, TransferKind, TransferTxn,
};
use capos_caps::{CapId, Hold, Origin, TransferMode};
use quickcheck::{Arbitrary, Gen, QuickCheck};

fn below(g: &mut Gen, n: u64) -> u64 {
    u64::arbitrary(g) % n
}

fn pick<T: Clone>(g: &mut Gen, items: &[T]) -> T {
    g.choose(items).expect("non-empty choice").clone()
}

/// A capability object that only reports its interface.
struct Obj(u64);

impl CapObject for Obj {
    fn interface_id(&self) -> u64 {
        self.0
    }
}

fn obj(iface: u64) -> Arc<dyn CapObject> {
    Arc::new(Obj(iface))
}

fn kernel_hold(mode: TransferMode) -> Hold {
    Hold::new(mode, Origin::Kernel)
}

// ---------------------------------------------------------------------------
// Capability table
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum TableOp {
    Insert(u8),
    /// Remove the n-th issued id (live or not).
    Remove(u16),
    /// Look up an arbitrary raw id.
    Probe(u64),
    /// Insert and immediately remove, this many times.
    Churn(u16),
}

impl Arbitrary for TableOp {
    fn arbitrary(g: &mut Gen) -> Self {
        match below(g, 10) {
            0..=3 => TableOp::Insert(u8::arbitrary(g)),
            4..=6 => TableOp::Remove(u16::arbitrary(g)),
            7 => TableOp::Probe(u64::arbitrary(g)),
            _ => TableOp::Churn(below(g, 300) as u16),
        }
    }
}

#[derive(Clone, Debug)]
struct TableScene {
    capacity: usize,
    quota: u64,
    /// The generation after which a slot retires (small, so retirement is reached).
    last_generation: u64,
    ops: Vec<TableOp>,
}

impl Arbitrary for TableScene {
    fn arbitrary(g: &mut Gen) -> Self {
        TableScene {
            capacity: 1 + below(g, 4) as usize,
            quota: below(g, 6),
            last_generation: 1 + below(g, 300),
            ops: Vec::arbitrary(g),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let me = self.clone();
        Box::new(
            self.ops
                .shrink()
                .map(move |ops| TableScene { ops, ..me.clone() }),
        )
    }
}

/// What the test remembers about every id the table ever issued.
struct Issued {
    ids: Vec<(CapId, u64, bool)>,
    last_generation: BTreeMap<u32, u64>,
    /// The generation after which a slot retires.
    retire_after: u64,
}

impl Issued {
    fn live(&self) -> usize {
        self.ids.iter().filter(|(_, _, live)| *live).count()
    }

    fn retired(&self) -> usize {
        self.last_generation
            .iter()
            .filter(|(index, generation)| {
                **generation == self.retire_after
                    && !self
                        .ids
                        .iter()
                        .any(|(id, _, live)| *live && id.index() == **index)
            })
            .count()
    }
}

fn table_insert(t: &mut CapTable, s: &TableScene, seen: &mut Issued, iface: u64) -> Option<CapId> {
    let occupied = seen.live() + seen.retired();
    let result = t.insert(obj(iface), kernel_hold(TransferMode::Copy));
    match result {
        Ok(id) => {
            assert!(occupied < s.capacity && (seen.live() as u64) < s.quota);
            assert_ne!(id.generation(), 0);
            assert!(
                seen.ids.iter().all(|(old, _, _)| *old != id),
                "{id:?} issued twice"
            );
            let expected = seen.last_generation.get(&id.index()).map_or(1, |g| g + 1);
            assert_eq!(
                id.generation(),
                expected,
                "generations of a slot run 1, 2, 3, ..."
            );
            seen.last_generation.insert(id.index(), id.generation());
            seen.ids.push((id, iface, true));
            Some(id)
        }
        Err(CapError::TableFull) => {
            assert_eq!(occupied, s.capacity);
            None
        }
        Err(CapError::Quota(_)) => {
            assert!(occupied < s.capacity && seen.live() as u64 == s.quota);
            None
        }
        Err(other) => panic!("unexpected insert error {other:?}"),
    }
}

fn table_remove(t: &mut CapTable, seen: &mut Issued, n: usize) {
    let Some(entry) = seen.ids.get_mut(n) else {
        return;
    };
    let (id, _, live) = *entry;
    match t.remove(id) {
        Ok(_) => {
            assert!(live);
            entry.2 = false;
        }
        Err(e) => {
            assert!(!live);
            assert_eq!(e, CapError::Stale(id));
        }
    }
}

fn table_invariants(t: &CapTable, seen: &Issued) {
    for (id, iface, live) in &seen.ids {
        match t.get(*id) {
            Ok(entry) => {
                assert!(*live, "{id:?} was removed but resolves again");
                assert_eq!(entry.interface_id, *iface);
            }
            Err(e) => {
                assert!(!*live, "{id:?} is live but rejected: {e:?}");
                assert_eq!(e, CapError::Stale(*id));
            }
        }
    }
    assert_eq!(t.len(), seen.live());
    assert_eq!(t.retired(), seen.retired());
    assert_eq!(t.ledger().used(Resource::CapSlots), seen.live() as u64);
    assert_eq!(t.iter().count(), seen.live());
}

fn prop_table_generations(s: TableScene) -> bool {
    let ledger = Ledger::new(Limits::DEFAULT.with(Resource::CapSlots, s.quota));
    let mut t: CapTable =
        CapTable::new(s.capacity, Arc::clone(&ledger)).with_last_generation(s.last_generation);
    let mut seen = Issued {
        ids: Vec::new(),
        last_generation: BTreeMap::new(),
        retire_after: s.last_generation,
    };
    for op in &s.ops {
        match *op {
            TableOp::Insert(iface) => {
                table_insert(&mut t, &s, &mut seen, u64::from(iface));
            }
            TableOp::Remove(n) => {
                if !seen.ids.is_empty() {
                    let i = n as usize % seen.ids.len();
                    table_remove(&mut t, &mut seen, i);
                }
            }
            TableOp::Probe(raw) => {
                let id = CapId::from_raw(raw);
                let known_live = seen.ids.iter().any(|(i, _, live)| *i == id && *live);
                assert_eq!(t.get(id).is_ok(), known_live, "{id:?}");
            }
            TableOp::Churn(n) => {
                for _ in 0..n {
                    match table_insert(&mut t, &s, &mut seen, 7) {
                        Some(_) => {
                            let last = seen.ids.len() - 1;
                            table_remove(&mut t, &mut seen, last);
                        }
                        None => break,
                    }
                }
            }
        }
        table_invariants(&t, &seen);
    }
    drop(t);
    ledger.used(Resource::CapSlots) == 0
}

#[test]
fn table_generations_retire_and_never_resurrect() {
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop_table_generations as fn(TableScene) -> bool);
}

/// A small xorshift generator for the long single-slot run (no quickcheck there:
/// one fixed run of a million cycles).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One slot reused a million times (a quota of one cap): every fresh id resolves, the
/// one before it and a random sample of earlier ones are rejected at every step, and
/// at the end every id ever issued is still rejected. The slot never retires and the
/// table never grows past one slot.
#[test]
fn a_million_reuses_of_one_slot_never_revive_an_id() {
    const CYCLES: u64 = 1_000_000;
    let ledger = Ledger::new(Limits::DEFAULT.with(Resource::CapSlots, 1));
    let mut t = CapTable::for_ledger(Arc::clone(&ledger));
    let object = obj(7);
    let hold = kernel_hold(TransferMode::Copy);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut previous: Option<CapId> = None;
    for n in 1..=CYCLES {
        let id = t
            .insert(Arc::clone(&object), hold)
            .expect("the one slot is free");
        assert_eq!((id.index(), id.generation()), (0, n));
        assert_ne!(id.to_raw(), 0);
        assert_eq!(t.get(id).map(|e| e.interface_id), Ok(7));
        if let Some(p) = previous {
            assert_eq!(t.get(p).unwrap_err(), CapError::Stale(p));
        }
        if n > 1 {
            for _ in 0..2 {
                let old = CapId::new(0, 1 + rng.next() % (n - 1)).unwrap();
                assert_eq!(t.get(old).unwrap_err(), CapError::Stale(old));
            }
        }
        // A second insert is over the quota, and the refusal charges nothing.
        if n % 100_000 == 0 {
            assert!(matches!(
                t.insert(Arc::clone(&object), hold),
                Err(CapError::Quota(_))
            ));
        }
        t.remove(id).unwrap();
        assert!(!t.contains(id));
        previous = Some(id);
    }
    for generation in 1..=CYCLES {
        let old = CapId::new(0, generation).unwrap();
        assert_eq!(t.get(old).unwrap_err(), CapError::Stale(old));
    }
    assert_eq!((t.retired(), t.slot_count(), t.len()), (0, 1, 0));
    assert_eq!(ledger.used(Resource::CapSlots), 0);
    let next = t.insert(object, hold).unwrap();
    assert_eq!(next.generation(), CYCLES + 1);
}

/// What the growth model tracks per slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ModelSlot {
    Free(u64),
    Live(u64),
    Retired,
}

#[derive(Clone, Debug)]
enum GrowOp {
    Insert,
    /// Remove the n-th live id (in issue order).
    Remove(u16),
    /// Insert and remove at once, this many times.
    Churn(u8),
}

impl Arbitrary for GrowOp {
    fn arbitrary(g: &mut Gen) -> Self {
        match below(g, 8) {
            0..=3 => GrowOp::Insert,
            4..=6 => GrowOp::Remove(u16::arbitrary(g)),
            _ => GrowOp::Churn(u8::arbitrary(g)),
        }
    }
}

#[derive(Clone, Debug)]
struct GrowScene {
    quota: u64,
    last_generation: u64,
    ops: Vec<GrowOp>,
}

impl Arbitrary for GrowScene {
    fn arbitrary(g: &mut Gen) -> Self {
        GrowScene {
            quota: below(g, 40),
            last_generation: 1 + below(g, 8),
            ops: (0..below(g, 200)).map(|_| GrowOp::arbitrary(g)).collect(),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let me = self.clone();
        Box::new(
            self.ops
                .shrink()
                .map(move |ops| GrowScene { ops, ..me.clone() }),
        )
    }
}

/// A process table (every index usable, the ledger's quota the only bound) against a
/// model: slots are appended only when no freed slot waits, freed slots come back
/// oldest first with the next generation, a slot past the last generation retires
/// and a fresh one takes its place, so the table never holds more slots than its
/// peak of live entries plus its retired ones; `available` is always the quota left.
fn prop_table_grows_like_its_model(s: GrowScene) -> bool {
    let ledger = Ledger::new(Limits::DEFAULT.with(Resource::CapSlots, s.quota));
    let mut t = CapTable::for_ledger(Arc::clone(&ledger)).with_last_generation(s.last_generation);
    let mut slots: Vec<ModelSlot> = Vec::new();
    let mut free: std::collections::VecDeque<u32> = std::collections::VecDeque::new();
    let mut live: Vec<CapId> = Vec::new();
    let mut dead: Vec<CapId> = Vec::new();
    let mut peak = 0usize;
    let insert = |t: &mut CapTable,
                  slots: &mut Vec<ModelSlot>,
                  free: &mut std::collections::VecDeque<u32>,
                  live: &mut Vec<CapId>,
                  peak: &mut usize|
     -> Option<CapId> {
        let got = t.insert(obj(1), kernel_hold(TransferMode::Copy));
        if live.len() as u64 == s.quota {
            assert!(matches!(got, Err(CapError::Quota(_))), "{got:?}");
            return None;
        }
        let id = got.expect("under the quota an insert succeeds");
        let expected = match free.pop_front() {
            Some(index) => match slots[index as usize] {
                ModelSlot::Free(g) => (index, g),
                other => panic!("model free list holds {other:?}"),
            },
            None => {
                slots.push(ModelSlot::Free(1));
                (slots.len() as u32 - 1, 1)
            }
        };
        assert_eq!((id.index(), id.generation()), expected);
        slots[id.index() as usize] = ModelSlot::Live(id.generation());
        live.push(id);
        *peak = (*peak).max(live.len());
        Some(id)
    };
    let remove = |t: &mut CapTable,
                  slots: &mut Vec<ModelSlot>,
                  free: &mut std::collections::VecDeque<u32>,
                  id: CapId| {
        t.remove(id).expect("live ids remove");
        let index = id.index();
        slots[index as usize] = if id.generation() >= s.last_generation {
            ModelSlot::Retired
        } else {
            free.push_back(index);
            ModelSlot::Free(id.generation() + 1)
        };
    };
    for op in &s.ops {
        match *op {
            GrowOp::Insert => {
                insert(&mut t, &mut slots, &mut free, &mut live, &mut peak);
            }
            GrowOp::Remove(n) if !live.is_empty() => {
                let id = live.remove(n as usize % live.len());
                remove(&mut t, &mut slots, &mut free, id);
                dead.push(id);
            }
            GrowOp::Remove(_) => {}
            GrowOp::Churn(n) => {
                for _ in 0..n {
                    let Some(id) = insert(&mut t, &mut slots, &mut free, &mut live, &mut peak)
                    else {
                        break;
                    };
                    live.pop();
                    remove(&mut t, &mut slots, &mut free, id);
                    dead.push(id);
                }
            }
        }
        let retired = slots.iter().filter(|s| **s == ModelSlot::Retired).count();
        assert_eq!(t.slot_count(), slots.len());
        assert_eq!(t.retired(), retired);
        assert!(t.slot_count() <= peak + retired, "grew without need");
        assert_eq!(t.len(), live.len());
        assert_eq!(t.available() as u64, s.quota - live.len() as u64);
        assert_eq!(ledger.used(Resource::CapSlots), live.len() as u64);
        assert!(live.iter().all(|id| t.contains(*id)));
        assert!(dead
            .iter()
            .all(|id| t.get(*id).err() == Some(CapError::Stale(*id))));
        let states: Vec<ModelSlot> = t
            .snapshot()
            .slots
            .iter()
            .map(|st| match st {
                capos_caps::cap_table::SlotState::Free { next_generation } => {
                    ModelSlot::Free(*next_generation)
                }
                capos_caps::cap_table::SlotState::Live { generation, .. } => {
                    ModelSlot::Live(*generation)
                }
                capos_caps::cap_table::SlotState::Retired => ModelSlot::Retired,
            })
            .collect();
        assert_eq!(states, slots);
        assert_eq!(t.snapshot().free, free.iter().copied().collect::<Vec<_>>());
    }
    drop(t);
    ledger.used(Resource::CapSlots) == 0
}

#[test]
fn process_tables_grow_on_demand_like_the_model() {
    QuickCheck::new()
        .tests(500)
        .quickcheck(prop_table_grows_like_its_model as fn(GrowScene) -> bool);
}

// ---------------------------------------------------------------------------
// Resource ledger
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum LedgerOp {
    Reserve {
        ledger: bool,
        kind: usize,
        amount: u64,
    },
    Drop(u16),
    Split(u16, u64),
    Merge(u16, u16),
}

impl Arbitrary for LedgerOp {
    fn arbitrary(g: &mut Gen) -> Self {
        match below(g, 8) {
            0..=3 => LedgerOp::Reserve {
                ledger: below(g, 4) == 0,
                kind: below(g, Resource::COUNT as u64) as usize,
                amount: below(g, 9),
            },
            4..=5 => LedgerOp::Drop(u16::arbitrary(g)),
            6 => LedgerOp::Split(u16::arbitrary(g), below(g, 9)),
            _ => LedgerOp::Merge(u16::arbitrary(g), u16::arbitrary(g)),
        }
    }
}

#[derive(Clone, Debug)]
struct LedgerScene {
    limits: [u64; Resource::COUNT],
    ops: Vec<LedgerOp>,
}

impl Arbitrary for LedgerScene {
    fn arbitrary(g: &mut Gen) -> Self {
        LedgerScene {
            limits: std::array::from_fn(|_| below(g, 21)),
            ops: Vec::arbitrary(g),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let me = self.clone();
        Box::new(
            self.ops
                .shrink()
                .map(move |ops| LedgerScene { ops, ..me.clone() }),
        )
    }
}

/// Sum of the live tokens' amounts per ledger and resource.
fn held(tokens: &[(bool, Reservation)]) -> [[u64; Resource::COUNT]; 2] {
    let mut sums = [[0; Resource::COUNT]; 2];
    for (second, r) in tokens {
        sums[usize::from(*second)][r.resource().index()] += r.amount();
    }
    sums
}

fn prop_ledger_balances(s: LedgerScene) -> bool {
    let ledgers = [Ledger::new(Limits(s.limits)), Ledger::new(Limits(s.limits))];
    let mut tokens: Vec<(bool, Reservation)> = Vec::new();
    for op in &s.ops {
        match *op {
            LedgerOp::Reserve {
                ledger,
                kind,
                amount,
            } => {
                let resource = Resource::ALL[kind];
                let before = held(&tokens)[usize::from(ledger)][kind];
                let fits = before + amount <= s.limits[kind];
                match ledgers[usize::from(ledger)].reserve(resource, amount) {
                    Ok(r) => {
                        assert!(fits);
                        tokens.push((ledger, r));
                    }
                    Err(e) => {
                        assert!(!fits);
                        assert_eq!(
                            (e.used, e.limit, e.requested),
                            (before, s.limits[kind], amount)
                        );
                    }
                }
            }
            LedgerOp::Drop(n) if !tokens.is_empty() => {
                drop(tokens.remove(n as usize % tokens.len()));
            }
            LedgerOp::Split(n, amount) if !tokens.is_empty() => {
                let i = n as usize % tokens.len();
                let had = tokens[i].1.amount();
                match tokens[i].1.split_off(amount) {
                    Some(part) => {
                        assert!(amount <= had);
                        let second = tokens[i].0;
                        tokens.push((second, part));
                    }
                    None => assert!(amount > had),
                }
            }
            LedgerOp::Merge(a, b) if tokens.len() >= 2 => {
                let a = a as usize % tokens.len();
                let (second, other) = tokens.remove(b as usize % tokens.len());
                let a = a.min(tokens.len() - 1);
                let compatible =
                    tokens[a].0 == second && tokens[a].1.resource() == other.resource();
                match tokens[a].1.merge(other) {
                    Ok(()) => assert!(compatible),
                    Err(back) => {
                        assert!(!compatible);
                        tokens.push((second, back));
                    }
                }
            }
            _ => {}
        }
        let sums = held(&tokens);
        for (i, ledger) in ledgers.iter().enumerate() {
            assert_eq!(
                ledger.snapshot(),
                sums[i],
                "ledger counts equal the live tokens"
            );
            for r in Resource::ALL {
                assert!(ledger.used(r) <= s.limits[r.index()], "never above a limit");
            }
        }
    }
    tokens.clear();
    ledgers.iter().all(|l| l.snapshot() == [0; Resource::COUNT])
}

#[test]
fn ledger_never_exceeds_limits_and_releases_everything() {
    QuickCheck::new()
        .tests(500)
        .quickcheck(prop_ledger_balances as fn(LedgerScene) -> bool);
}

// ---------------------------------------------------------------------------
// Transfer transactions
// ---------------------------------------------------------------------------

/// Which id a descriptor names.
#[derive(Clone, Debug)]
enum Target {
    /// The n-th live sender cap.
    Live(u16),
    /// The n-th removed sender cap.
    Stale(u16),
    Null,
    /// A raw id with reserved bits set.
    Wide,
    Raw(u32),
}

#[derive(Clone, Debug)]
struct TransferScene {
    /// Sender caps: transfer mode per cap (0 copy, 1 move, 2 none) and whether it is removed again.
    sender: Vec<(u8, bool)>,
    receiver_capacity: usize,
    /// Receiver pre-fill: whether each inserted cap is removed again.
    receiver: Vec<bool>,
    receiver_quota: u64,
    descriptors: Vec<(Target, bool)>,
    /// What happens between prepare and commit in the two-phase property.
    disturbance: u8,
}

impl Arbitrary for TransferScene {
    fn arbitrary(g: &mut Gen) -> Self {
        let sender = (0..below(g, 7))
            .map(|_| ([0, 0, 0, 1, 1, 2][below(g, 6) as usize], below(g, 4) == 0))
            .collect();
        let receiver_capacity = below(g, 10) as usize;
        let receiver = (0..below(g, receiver_capacity as u64 + 1))
            .map(|_| bool::arbitrary(g))
            .collect();
        let descriptors = (0..below(g, 4))
            .map(|_| {
                let target = match below(g, 16) {
                    0..=11 => Target::Live(u16::arbitrary(g)),
                    12 => Target::Stale(u16::arbitrary(g)),
                    13 => Target::Null,
                    14 => Target::Wide,
                    _ => Target::Raw(u32::arbitrary(g) & 0x0003_0007),
                };
                (target, bool::arbitrary(g))
            })
            .collect();
        TransferScene {
            sender,
            receiver_capacity,
            receiver,
            receiver_quota: below(g, 12),
            descriptors,
            disturbance: below(g, 3) as u8,
        }
    }
}

struct Built {
    sender: CapTable,
    receiver: CapTable,
    /// Live sender ids and their modes.
    live: BTreeMap<CapId, TransferMode>,
    descriptors: Vec<TransferDescriptor>,
}

fn mode_of(m: u8) -> TransferMode {
    [
        TransferMode::Copy,
        TransferMode::Move,
        TransferMode::NonTransferable,
    ][m as usize % 3]
}

fn build(s: &TransferScene) -> Built {
    let mut sender: CapTable = CapTable::new(16, Ledger::new(Limits::DEFAULT));
    let mut live = BTreeMap::new();
    let mut stale = Vec::new();
    for (i, (mode, removed)) in s.sender.iter().enumerate() {
        let id = sender
            .insert(obj(100 + i as u64), kernel_hold(mode_of(*mode)))
            .unwrap();
        if *removed {
            sender.remove(id).unwrap();
            stale.push(id);
        } else {
            live.insert(id, mode_of(*mode));
        }
    }
    let quota = s.receiver_quota.max(s.receiver.len() as u64);
    let mut receiver: CapTable = CapTable::new(
        s.receiver_capacity,
        Ledger::new(Limits::DEFAULT.with(Resource::CapSlots, quota)),
    );
    for removed in &s.receiver {
        let id = receiver
            .insert(obj(1), kernel_hold(TransferMode::Copy))
            .unwrap();
        if *removed {
            receiver.remove(id).unwrap();
        }
    }
    let live_ids: Vec<CapId> = live.keys().copied().collect();
    let descriptors = s
        .descriptors
        .iter()
        .map(|(target, moving)| {
            let cap = match target {
                Target::Live(n) if !live_ids.is_empty() => live_ids[*n as usize % live_ids.len()],
                Target::Stale(n) if !stale.is_empty() => stale[*n as usize % stale.len()],
                Target::Live(_) | Target::Stale(_) | Target::Null => CapId::NULL,
                Target::Wide => CapId::from_raw(1 << 33 | 0x0100_0000),
                Target::Raw(raw) => CapId::from_raw(u64::from(*raw)),
            };
            let kind = if *moving {
                TransferKind::Move
            } else {
                TransferKind::Copy
            };
            TransferDescriptor { cap, kind }
        })
        .collect();
    Built {
        sender,
        receiver,
        live,
        descriptors,
    }
}

/// Whether the transfer should succeed, judged from the scene alone.
fn transfer_allowed(b: &Built, receiver_live: usize, receiver_quota: u64, capacity: usize) -> bool {
    let mut uses: BTreeMap<CapId, usize> = BTreeMap::new();
    for d in &b.descriptors {
        *uses.entry(d.cap).or_default() += 1;
    }
    let each_ok = b.descriptors.iter().all(|d| match b.live.get(&d.cap) {
        None => false,
        Some(TransferMode::NonTransferable) => false,
        Some(TransferMode::Move) if d.kind == TransferKind::Copy => false,
        Some(_) => d.kind == TransferKind::Copy || uses[&d.cap] == 1,
    });
    let n = b.descriptors.len();
    each_ok && receiver_live + n <= capacity && (receiver_live + n) as u64 <= receiver_quota
}

/// How many holds of each object the two tables have.
fn hold_counts(tables: [&CapTable; 2]) -> BTreeMap<usize, usize> {
    let mut counts = BTreeMap::new();
    for t in tables {
        for (_, e) in t.iter() {
            *counts.entry(object_identity(&e.object)).or_default() += 1;
        }
    }
    counts
}

fn check_success(
    b: &Built,
    before: &BTreeMap<usize, usize>,
    out: &[capos_caps::transfer::TransferredCap],
) {
    assert_eq!(out.len(), b.descriptors.len());
    let mut expected = before.clone();
    for (d, got) in b.descriptors.iter().zip(out) {
        let entry = b
            .receiver
            .get(got.cap)
            .expect("transferred cap is live in the receiver");
        assert_eq!(entry.hold.origin, Origin::Transfer);
        assert_eq!(entry.hold.mode, b.live[&d.cap]);
        assert_eq!(entry.interface_id, got.interface_id);
        match d.kind {
            TransferKind::Copy => {
                assert!(b.sender.contains(d.cap));
                *expected.get_mut(&object_identity(&entry.object)).unwrap() += 1;
            }
            // A move leaves exactly one holder: the receiver.
            TransferKind::Move => {
                assert_eq!(b.sender.get(d.cap).unwrap_err(), CapError::Stale(d.cap))
            }
        }
    }
    assert_eq!(hold_counts([&b.sender, &b.receiver]), expected);
    assert_eq!(
        b.sender.ledger().used(Resource::CapSlots),
        b.sender.len() as u64
    );
    assert_eq!(
        b.receiver.ledger().used(Resource::CapSlots),
        b.receiver.len() as u64
    );
}

fn prop_transfer_all_or_nothing(s: TransferScene) -> bool {
    let mut b = build(&s);
    let quota = b.receiver.ledger().limits().get(Resource::CapSlots);
    let allowed = transfer_allowed(&b, b.receiver.len(), quota, s.receiver_capacity);
    let before = (b.sender.snapshot(), b.receiver.snapshot());
    let holds = hold_counts([&b.sender, &b.receiver]);
    let descriptors = b.descriptors.clone();
    match transfer(&mut b.sender, &mut b.receiver, &descriptors) {
        Ok(out) => {
            assert!(allowed, "accepted a transfer the rules forbid");
            check_success(&b, &holds, &out);
        }
        Err(e) => {
            assert!(!allowed, "refused an allowed transfer: {e:?}");
            assert_eq!(
                (b.sender.snapshot(), b.receiver.snapshot()),
                before,
                "{e:?}"
            );
        }
    }
    true
}

#[test]
fn transfer_is_all_or_nothing() {
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop_transfer_all_or_nothing as fn(TransferScene) -> bool);
}

/// A transfer scene that mostly prepares: copyable sender caps (one in ten removed
/// again), one to three descriptors that mostly copy live caps (one in eight moves,
/// one in twenty names a stale cap), and a receiver with room to spare. What happens
/// between prepare and commit ([`TransferScene::disturbance`]) is nothing in half the
/// cases, the sender releasing a sent cap or the receiver filling up in a quarter each.
/// (`below(g, n) == k` uses a `k` other than 0: quickcheck favours 0 among integers.)
#[derive(Clone, Debug)]
struct CommitScene(TransferScene);

impl Arbitrary for CommitScene {
    fn arbitrary(g: &mut Gen) -> Self {
        let sender = (0..1 + below(g, 6))
            .map(|_| (0, below(g, 10) == 3))
            .collect();
        let receiver_capacity = 4 + below(g, 9) as usize;
        let receiver: Vec<bool> = (0..below(g, receiver_capacity as u64 / 2 + 1))
            .map(|_| bool::arbitrary(g))
            .collect();
        let descriptors = (0..1 + below(g, 3))
            .map(|_| {
                let n = below(g, 6) as u16;
                let target = if below(g, 20) == 3 {
                    Target::Stale(n)
                } else {
                    Target::Live(n)
                };
                (target, below(g, 8) == 3)
            })
            .collect();
        CommitScene(TransferScene {
            sender,
            receiver_capacity,
            receiver_quota: receiver_capacity as u64 + below(g, 3),
            receiver,
            descriptors,
            disturbance: [0, 1, 2, 2][below(g, 4) as usize],
        })
    }
}

/// How a two-phase case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TwoPhase {
    NotPrepared,
    Committed,
    RefusedAtCommit,
}

fn two_phase_case(s: &TransferScene) -> TwoPhase {
    let mut b = build(s);
    let txn = match TransferTxn::prepare(&b.sender, &b.receiver, &b.descriptors) {
        Ok(txn) => txn,
        Err(e) => {
            let quota = b.receiver.ledger().limits().get(Resource::CapSlots);
            assert!(
                !transfer_allowed(&b, b.receiver.len(), quota, s.receiver_capacity),
                "prepare refused an allowed transfer: {e:?}"
            );
            return TwoPhase::NotPrepared;
        }
    };
    let n = b.descriptors.len() as u64;
    match s.disturbance {
        // The sender releases one of the caps being sent.
        0 => {
            if let Some(d) = b.descriptors.first() {
                b.sender.remove(d.cap).unwrap();
                b.live.remove(&d.cap);
            }
        }
        // The receiver takes whatever room its ledger still allows.
        1 => {
            while b
                .receiver
                .insert(obj(2), kernel_hold(TransferMode::Copy))
                .is_ok()
            {}
        }
        _ => {}
    }
    let (sender_before, mut receiver_before) = (b.sender.snapshot(), b.receiver.snapshot());
    let holds = hold_counts([&b.sender, &b.receiver]);
    // Prepare validated against the sender; the commit must now judge the tables as they are.
    let quota = b.receiver.ledger().limits().get(Resource::CapSlots);
    let allowed = transfer_allowed(&b, b.receiver.len(), quota, s.receiver_capacity);
    match txn.commit(&mut b.sender, &mut b.receiver) {
        Ok(out) => {
            assert!(allowed);
            check_success(&b, &holds, &out);
            TwoPhase::Committed
        }
        Err(e) => {
            assert!(!allowed, "{e:?}");
            receiver_before.ledger[Resource::CapSlots.index()] -= n;
            assert_eq!(b.sender.snapshot(), sender_before, "{e:?}");
            assert_eq!(b.receiver.snapshot(), receiver_before, "{e:?}");
            assert!(matches!(
                e,
                TransferError::Cap { .. } | TransferError::ReceiverFull { .. }
            ));
            TwoPhase::RefusedAtCommit
        }
    }
}

fn prop_two_phase_commit(s: CommitScene) -> bool {
    two_phase_case(&s.0);
    true
}

#[test]
fn transfer_commit_rechecks_and_rolls_back() {
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop_two_phase_commit as fn(CommitScene) -> bool);
}

/// The two-phase property is only as good as its cases: most must get past prepare,
/// and of those a real share must commit and a real share must be refused at commit
/// (so both the success check and the roll-back check run many times).
#[test]
fn two_phase_cases_mostly_prepare_and_both_commit_outcomes_happen() {
    let mut g = Gen::new(20);
    let mut counts = BTreeMap::new();
    const CASES: usize = 3000;
    for _ in 0..CASES {
        let outcome = two_phase_case(&CommitScene::arbitrary(&mut g).0);
        *counts.entry(format!("{outcome:?}")).or_insert(0usize) += 1;
    }
    let count = |k: TwoPhase| counts.get(&format!("{k:?}")).copied().unwrap_or(0);
    let (prepared, committed, refused) = (
        CASES - count(TwoPhase::NotPrepared),
        count(TwoPhase::Committed),
        count(TwoPhase::RefusedAtCommit),
    );
    eprintln!("two-phase: of {CASES} cases {prepared} prepared, {committed} committed, {refused} refused at commit");
    assert!(
        prepared * 10 >= CASES * 7 && committed * 10 >= CASES * 4 && refused * 10 >= CASES,
        "of {CASES} cases {prepared} prepared, {committed} committed, {refused} refused at commit"
    );
}

// ---------------------------------------------------------------------------
// Manifest validation
// ---------------------------------------------------------------------------

const BINARIES: &[&str] = &["init", "a", "b", "c", ""];
const SERVICES: &[&str] = &["s1", "s2", "s3", "s4"];
const CAPS: &[&str] = &["x", "y", "z", "a-name-that-is-longer-than-32-bytes"];
const EXPORTS: &[&str] = &["e1", "e2"];

#[derive(Clone, Debug)]
struct Graph(Manifest);

fn any_kind(g: &mut Gen) -> KernelKind {
    pick(g, &KernelKind::ALL)
}

fn any_cap(g: &mut Gen, for_init: bool) -> CapRef {
    let pool = if below(g, 8) == 0 { CAPS } else { &CAPS[..3] };
    let name = pick(g, pool);
    let source = match below(g, 12) {
        0 => CapSource::Unset,
        1..=5 => CapSource::Kernel(any_kind(g)),
        6..=7 if for_init => CapSource::Kernel(any_kind(g)),
        _ => CapSource::Import {
            service: pick(g, &["s1", "s2", "s3", "nope"]).into(),
            export: pick(g, EXPORTS).into(),
        },
    };
    let right = match &source {
        CapSource::Kernel(k) => k.interface_id(),
        _ => interfaces::CLIENT_ENDPOINT,
    };
    let expected_interface_id = match below(g, 8) {
        0 => any_kind(g).interface_id(),
        1 => interfaces::ENDPOINT,
        _ => right,
    };
    CapRef {
        name: name.into(),
        expected_interface_id,
        source,
    }
}

/// A graph built to satisfy the rules, which mutations then may or may not break.
fn well_formed(g: &mut Gen) -> Manifest {
    let binaries: Vec<Binary> = ["init", "a", "b", "c"]
        .iter()
        .map(|n| Binary {
            name: (*n).into(),
            module: (*n).into(),
        })
        .collect();
    let mut init_caps = vec![
        CapRef::kernel("boot", KernelKind::BootPackage),
        CapRef::kernel("spawner", KernelKind::ProcessSpawner),
    ];
    for (name, kind) in [
        ("console", KernelKind::Console),
        ("timer", KernelKind::Timer),
    ] {
        if bool::arbitrary(g) {
            init_caps.push(CapRef::kernel(name, kind));
        }
    }
    let held: Vec<KernelKind> = init_caps
        .iter()
        .filter_map(|c| match c.source {
            CapSource::Kernel(k) => Some(k),
            _ => None,
        })
        .collect();
    let mut services: Vec<Service> = Vec::new();
    for name in &SERVICES[..below(g, 5) as usize] {
        let mut caps = Vec::new();
        let mut exports = Vec::new();
        for cap_name in &CAPS[..below(g, 4) as usize] {
            let offered: Vec<(String, String)> = services
                .iter()
                .flat_map(|s| s.exports.iter().map(|e| (s.name.clone(), e.name.clone())))
                .collect();
            let cap = if !offered.is_empty() && below(g, 3) == 0 {
                let (service, export) = pick(g, &offered);
                CapRef::import(cap_name, &service, &export)
            } else {
                let kind = pick(g, &KernelKind::ALL);
                let kind = if kind.is_child_local()
                    || (held.contains(&kind) && kind != KernelKind::BootPackage)
                {
                    kind
                } else {
                    KernelKind::Endpoint
                };
                if kind == KernelKind::Endpoint
                    && exports.len() < EXPORTS.len()
                    && bool::arbitrary(g)
                {
                    exports.push(Export::client(EXPORTS[exports.len()], cap_name));
                }
                CapRef::kernel(cap_name, kind)
            };
            caps.push(cap);
        }
        // Any CPU, or a pin below the schema limit (maxCpus is 0 here: all
        // CPUs), so the pin itself never makes the manifest invalid.
        let placement = if bool::arbitrary(g) {
            Placement::AnyCpu
        } else {
            Placement::Cpu(below(g, u64::from(manifest::MAX_CPUS)) as u32)
        };
        let cap_slots = fitting_quota(g, caps.len());
        services.push(Service {
            name: (*name).into(),
            binary: pick(g, &binaries).name,
            caps,
            exports,
            placement,
            cap_slots,
            launchable: Vec::new(),
            ..Service::default()
        });
    }
    // Kernel-started boot processes: kernel-minted caps of any kind but the two
    // init-only ones, each expecting its kind's interface.
    let mut boot_processes = Vec::new();
    for _ in 0..below(g, 4) {
        let mut caps = Vec::new();
        for cap_name in &CAPS[..below(g, 4) as usize] {
            let kind = match any_kind(g) {
                KernelKind::BootPackage | KernelKind::ProcessSpawner => KernelKind::Null,
                kind => kind,
            };
            caps.push(CapRef::kernel(cap_name, kind));
        }
        let cap_slots = fitting_quota(g, caps.len());
        boot_processes.push(InitProcess {
            binary: pick(g, &binaries).name,
            caps,
            cap_slots,
        });
    }
    let init_slots = fitting_quota(g, init_caps.len());
    Manifest {
        schema_version: 1,
        binaries,
        kernel: KernelParams {
            boot_processes,
            ..KernelParams::default()
        },
        init: InitProcess {
            binary: "init".into(),
            caps: init_caps,
            cap_slots: init_slots,
        },
        services,
        ..Manifest::default()
    }
}

/// A cap-slot quota that a process starting with `caps` caps may have: mostly the
/// default (0), else anything from `caps` (at least 1) to the most allowed.
fn fitting_quota(g: &mut Gen, caps: usize) -> u32 {
    let least = caps.max(1) as u32;
    match below(g, 4) {
        0 => least,
        1 => manifest::MAX_CAP_SLOTS,
        2 => least + below(g, u64::from(manifest::MAX_CAP_SLOTS - least + 1)) as u32,
        _ => 0,
    }
}

/// A cap-slot quota of any value, legal or not.
fn any_quota(g: &mut Gen) -> u32 {
    match below(g, 5) {
        0 => manifest::MAX_CAP_SLOTS + 1,
        1 => u32::MAX,
        2 => below(g, 4) as u32,
        3 => manifest::MAX_CAP_SLOTS,
        _ => 0,
    }
}

/// One random edit of a manifest.
fn mutate(g: &mut Gen, m: &mut Manifest) {
    let n_services = m.services.len() as u64;
    let service = if n_services > 0 {
        Some(below(g, n_services) as usize)
    } else {
        None
    };
    let n_boot = m.kernel.boot_processes.len() as u64;
    let boot = if n_boot > 0 {
        Some(below(g, n_boot) as usize)
    } else {
        None
    };
    match (below(g, 20), service) {
        (0, _) => m.schema_version = 2,
        (1, _) => {
            let b = pick(g, BINARIES);
            m.binaries.push(Binary {
                name: b.into(),
                module: if below(g, 3) == 0 { "" } else { b }.into(),
            })
        }
        (2, _) => m.init.binary = pick(g, BINARIES).into(),
        (3, _) => m.init.caps.push(any_cap(g, true)),
        (4, _) if !m.init.caps.is_empty() => {
            let i = below(g, m.init.caps.len() as u64) as usize;
            m.init.caps.remove(i);
        }
        (5, Some(s)) => m.services[s].name = pick(g, SERVICES).into(),
        (6, Some(s)) => m.services[s].binary = pick(g, BINARIES).into(),
        (7 | 8, Some(s)) => {
            let cap = any_cap(g, false);
            let caps = &mut m.services[s].caps;
            if caps.is_empty() || bool::arbitrary(g) {
                caps.push(cap);
            } else {
                let i = below(g, caps.len() as u64) as usize;
                caps[i] = cap;
            }
        }
        (9, Some(s)) => m.services[s].exports.push(Export {
            name: pick(g, EXPORTS).into(),
            cap: pick(g, &CAPS[..3]).into(),
            facet: if bool::arbitrary(g) {
                Facet::Raw
            } else {
                Facet::Client
            },
        }),
        (10, Some(s)) => {
            if let Some(e) = m.services[s].exports.first_mut() {
                e.facet = Facet::Raw;
            }
        }
        (11, Some(s)) => {
            let other = below(g, n_services) as usize;
            m.services.swap(s, other);
        }
        (12, Some(s)) => {
            if let Some(c) = m.services[s].caps.first_mut() {
                c.expected_interface_id = pick(g, &interfaces::ALL).1;
            }
        }
        (13, Some(s)) => {
            let long = CAPS[3];
            if let Some(c) = m.services[s].caps.last_mut() {
                c.name = long.into();
            }
        }
        (14, _) => {
            if below(g, 4) == 0 {
                // Right at the limit of 16, or one past it.
                let target = 16 + below(g, 2) as usize;
                let filler = InitProcess {
                    binary: "a".into(),
                    caps: vec![CapRef::kernel("x", KernelKind::Console)],
                    cap_slots: 0,
                };
                m.kernel.boot_processes.resize(target, filler);
            } else {
                m.kernel.boot_processes.push(InitProcess {
                    binary: pick(g, BINARIES).into(),
                    caps: vec![any_cap(g, true)],
                    cap_slots: 0,
                });
            }
        }
        (15, _) => {
            if let Some(b) = boot {
                m.kernel.boot_processes[b].binary = pick(g, BINARIES).into();
            }
        }
        (16 | 17, _) => {
            if let Some(b) = boot {
                let cap = any_cap(g, true);
                let caps = &mut m.kernel.boot_processes[b].caps;
                if caps.is_empty() || bool::arbitrary(g) {
                    caps.push(cap);
                } else {
                    let i = below(g, caps.len() as u64) as usize;
                    caps[i] = cap;
                }
            }
        }
        (18, _) => {
            if let Some(b) = boot {
                m.kernel.boot_processes.remove(b);
            }
        }
        (19, _) => {
            let quota = any_quota(g);
            match (below(g, 3), service, boot) {
                (0, Some(s), _) => m.services[s].cap_slots = quota,
                (1, _, Some(b)) => m.kernel.boot_processes[b].cap_slots = quota,
                _ => m.init.cap_slots = quota,
            }
        }
        _ => {}
    }
}

impl Arbitrary for Graph {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut m = well_formed(g);
        for _ in 0..below(g, 3) {
            mutate(g, &mut m);
        }
        Graph(m)
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let me = self.0.clone();
        let fewer_services = (0..me.services.len()).map(move |i| {
            let mut m = me.clone();
            m.services.remove(i);
            Graph(m)
        });
        let me = self.0.clone();
        let fewer_boot = (0..me.kernel.boot_processes.len()).map(move |i| {
            let mut m = me.clone();
            m.kernel.boot_processes.remove(i);
            Graph(m)
        });
        Box::new(fewer_services.chain(fewer_boot))
    }
}

fn good_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 32
}

fn distinct<'a>(names: impl Iterator<Item = &'a str> + Clone) -> bool {
    names.clone().collect::<BTreeSet<_>>().len() == names.count()
}

/// Kinds this kernel mints (docs/manifest.md: threadSpawner is refused as
/// not available yet).
fn minted(k: KernelKind) -> bool {
    !matches!(k, KernelKind::ThreadSpawner)
}

/// How many of `caps` ask for the terminal (it has one holder).
fn terminals<'a>(caps: impl IntoIterator<Item = &'a CapRef>) -> usize {
    caps.into_iter()
        .filter(|c| c.source == CapSource::Kernel(KernelKind::Terminal))
        .count()
}

/// A cap-slot quota a process with `caps` caps may ask for (docs/manifest.md).
fn quota_ok(cap_slots: u32, caps: usize) -> bool {
    cap_slots == 0 || (cap_slots <= 4096 && cap_slots as usize >= caps)
}

/// The kernel layer, restated directly from docs/manifest.md.
fn oracle_kernel(m: &Manifest) -> bool {
    let binary_names: BTreeSet<&str> = m.binaries.iter().map(|b| b.name.as_str()).collect();
    m.schema_version == 1
        && m.binaries
            .iter()
            .all(|b| good_name(&b.name) && !b.module.is_empty())
        && binary_names.len() == m.binaries.len()
        && binary_names.contains(m.init.binary.as_str())
        && quota_ok(m.init.cap_slots, m.init.caps.len())
        && m.init.caps.iter().all(|c| good_name(&c.name))
        && distinct(m.init.caps.iter().map(|c| c.name.as_str()))
        && m.init.caps.iter().all(|c| match c.source {
            CapSource::Kernel(k) => minted(k) && c.expected_interface_id == k.interface_id(),
            _ => false,
        })
        && terminals(
            m.init
                .caps
                .iter()
                .chain(m.kernel.boot_processes.iter().flat_map(|p| &p.caps)),
        ) <= 1
        && m.kernel.boot_processes.len() <= 16
        && m.kernel.boot_processes.iter().all(|p| {
            binary_names.contains(p.binary.as_str())
                && quota_ok(p.cap_slots, p.caps.len())
                && p.caps.iter().all(|c| good_name(&c.name))
                && distinct(p.caps.iter().map(|c| c.name.as_str()))
                && p.caps.iter().all(|c| match c.source {
                    CapSource::Kernel(KernelKind::BootPackage | KernelKind::ProcessSpawner) => {
                        false
                    }
                    CapSource::Kernel(k) => {
                        minted(k) && c.expected_interface_id == k.interface_id()
                    }
                    _ => false,
                })
        })
}

/// The service-graph layer, restated directly from docs/manifest.md.
fn oracle_graph(m: &Manifest) -> bool {
    let init_kinds: BTreeSet<KernelKind> = m
        .init
        .caps
        .iter()
        .filter_map(|c| match c.source {
            CapSource::Kernel(k) => Some(k),
            _ => None,
        })
        .collect();
    let can_start = init_kinds.contains(&KernelKind::BootPackage)
        && init_kinds.contains(&KernelKind::ProcessSpawner);
    if !m.services.is_empty() && !can_start {
        return false;
    }
    if !distinct(m.services.iter().map(|s| s.name.as_str()))
        || !m.services.iter().all(|s| good_name(&s.name))
    {
        return false;
    }
    if terminals(m.services.iter().flat_map(|s| &s.caps)) > 1 {
        return false;
    }
    // Exports each service offers, known once the service has been started.
    let mut started: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in &m.services {
        if !m.binaries.iter().any(|b| b.name == s.binary) || !quota_ok(s.cap_slots, s.caps.len()) {
            return false;
        }
        if !s.caps.iter().all(|c| good_name(&c.name))
            || !distinct(s.caps.iter().map(|c| c.name.as_str()))
        {
            return false;
        }
        for c in &s.caps {
            let ok = match &c.source {
                CapSource::Kernel(KernelKind::BootPackage) => false,
                CapSource::Kernel(k) => {
                    (k.is_child_local() || init_kinds.contains(k))
                        && minted(*k)
                        && c.expected_interface_id == k.interface_id()
                }
                CapSource::Import { service, export } => {
                    started
                        .get(service.as_str())
                        .is_some_and(|exports| exports.contains(export.as_str()))
                        && c.expected_interface_id == interfaces::CLIENT_ENDPOINT
                }
                _ => false,
            };
            if !ok {
                return false;
            }
        }
        if !s.exports.iter().all(|e| good_name(&e.name))
            || !distinct(s.exports.iter().map(|e| e.name.as_str()))
        {
            return false;
        }
        for e in &s.exports {
            let target = s.caps.iter().find(|c| c.name == e.cap);
            let endpoint =
                target.is_some_and(|c| c.source == CapSource::Kernel(KernelKind::Endpoint));
            if !endpoint || e.facet != Facet::Client {
                return false;
            }
        }
        started.insert(&s.name, s.exports.iter().map(|e| e.name.as_str()).collect());
    }
    true
}

fn prop_manifest_matches_oracle(graph: Graph) -> bool {
    let m = &graph.0;
    let kernel = manifest::validate_kernel_layer(m);
    let graph_layer = manifest::validate_service_graph(m);
    assert_eq!(kernel.is_ok(), oracle_kernel(m), "kernel layer: {kernel:?}");
    assert_eq!(
        graph_layer.is_ok(),
        oracle_graph(m),
        "service graph: {graph_layer:?}"
    );
    assert_eq!(
        manifest::check(m).is_ok(),
        kernel.is_ok() && graph_layer.is_ok()
    );
    // The wire form carries everything validation looks at.
    assert_eq!(&manifest::decode(&m.encode()).unwrap(), m);
    true
}

#[test]
fn manifest_validation_matches_oracle() {
    QuickCheck::new()
        .tests(3000)
        .quickcheck(prop_manifest_matches_oracle as fn(Graph) -> bool);
}

/// The generator reaches both sides of the rules: many accepted graphs, including ones
/// with services and imports, and many rejected ones.
#[test]
fn manifest_generator_reaches_valid_graphs() {
    let mut g = Gen::new(20);
    let graphs: Vec<Manifest> = (0..3000).map(|_| Graph::arbitrary(&mut g).0).collect();
    let valid = graphs
        .iter()
        .filter(|m| oracle_kernel(m) && oracle_graph(m))
        .count();
    let with_services = graphs
        .iter()
        .filter(|m| !m.services.is_empty() && oracle_kernel(m) && oracle_graph(m))
        .count();
    let with_imports = graphs
        .iter()
        .filter(|m| {
            let imports = m.services.iter().flat_map(|s| &s.caps);
            oracle_kernel(m)
                && oracle_graph(m)
                && imports
                    .into_iter()
                    .any(|c| matches!(c.source, CapSource::Import { .. }))
        })
        .count();
    let with_boot = graphs
        .iter()
        .filter(|m| !m.kernel.boot_processes.is_empty() && oracle_kernel(m) && oracle_graph(m))
        .count();
    let boot_rejected = graphs
        .iter()
        .filter(|m| !m.kernel.boot_processes.is_empty() && !oracle_kernel(m))
        .count();
    assert!(
        valid >= 600
            && with_services >= 300
            && with_imports >= 50
            && with_boot >= 500
            && boot_rejected >= 200
            && valid <= 2700,
        "{valid} valid, {with_services} with services, {with_imports} with imports, \
         {with_boot} with boot processes, {boot_rejected} rejected with boot processes"
    );
}
