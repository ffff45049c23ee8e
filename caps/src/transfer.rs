//! Capability transfer between two tables: prepare, then commit or roll back.
//!
//! A transfer carries a list of descriptors, each naming a cap in the sender's table
//! and asking for a *copy* (sender keeps its hold) or a *move* (sender loses it).
//!
//! * [`TransferTxn::prepare`] validates every descriptor against the sender's table
//!   and reserves the receiver's cap slots on the receiver's ledger. It changes no
//!   table; on failure nothing at all has changed.
//! * [`TransferTxn::commit`] re-validates (the tables may have changed since prepare),
//!   inserts every destination entry, then removes moved sources. Either every
//!   descriptor takes effect or, on any failure, both tables and both ledgers are
//!   exactly as they were before prepare, down to free-list order and generations.
//! * [`TransferTxn::rollback`] (or dropping the transaction) releases the reservation.
//!
//! A move never leaves both holders live (the source is removed in the same commit
//! that publishes the destination) nor neither (the source is removed only after the
//! destination insertion succeeded).
//!
//! Hold rules: a `NonTransferable` hold never leaves its table; a `Move` hold may be
//! moved but not copied; a `Copy` hold may be either. The receiver's hold keeps the
//! sender's transfer mode and records [`Origin::Transfer`].

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::cap_table::{CapError, CapId, CapObject, CapTable, Hold, Origin, TransferMode};
use crate::ledger::{QuotaError, Reservation, Resource};

/// The kind of transfer a descriptor asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransferKind {
    /// The receiver gets a new hold; the sender keeps its own.
    Copy,
    /// The receiver gets the hold; the sender loses it.
    Move,
}

impl TransferKind {
    /// Raw value of [`TransferKind::Copy`] in ring transfer descriptors
    /// (`capos_ring::entry::TRANSFER_COPY`).
    pub const RAW_COPY: u32 = 1;
    /// Raw value of [`TransferKind::Move`] in ring transfer descriptors
    /// (`capos_ring::entry::TRANSFER_MOVE`). Zero is never a valid mode.
    pub const RAW_MOVE: u32 = 2;

    /// Decodes a raw mode value.
    pub const fn from_raw(raw: u32) -> Option<TransferKind> {
        match raw {
            Self::RAW_COPY => Some(TransferKind::Copy),
            Self::RAW_MOVE => Some(TransferKind::Move),
            _ => None,
        }
    }
}

/// One cap to transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransferDescriptor {
    /// The cap in the sender's table.
    pub cap: CapId,
    /// Copy or move.
    pub kind: TransferKind,
}

impl TransferDescriptor {
    /// A copy of `cap`.
    pub const fn copy(cap: CapId) -> Self {
        Self {
            cap,
            kind: TransferKind::Copy,
        }
    }

    /// A move of `cap`.
    pub const fn moving(cap: CapId) -> Self {
        Self {
            cap,
            kind: TransferKind::Move,
        }
    }
}

/// A cap a committed transfer put into the receiver's table (the data of a ring
/// transfer-result record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferredCap {
    /// The receiver-side id.
    pub cap: CapId,
    /// Its interface id.
    pub interface_id: u64,
}

/// Why a transfer failed. Whatever the reason, nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// Descriptor `index` has a mode value that is neither copy nor move.
    BadMode {
        /// Position in the descriptor list.
        index: usize,
        /// The raw mode.
        mode: u32,
    },
    /// Descriptor `index` moves a cap that another descriptor also names.
    DuplicateMove {
        /// Position in the descriptor list.
        index: usize,
        /// The cap.
        cap: CapId,
    },
    /// Descriptor `index` names no live cap of the sender.
    Cap {
        /// Position in the descriptor list.
        index: usize,
        /// Why the sender's table refused it.
        error: CapError,
    },
    /// Descriptor `index` names a non-transferable hold.
    NotTransferable {
        /// Position in the descriptor list.
        index: usize,
        /// The cap.
        cap: CapId,
    },
    /// Descriptor `index` copies a move-only hold.
    MoveOnly {
        /// Position in the descriptor list.
        index: usize,
        /// The cap.
        cap: CapId,
    },
    /// The receiver's table has too few free slots.
    ReceiverFull {
        /// Slots needed.
        needed: usize,
        /// Slots free.
        room: usize,
    },
    /// The receiver's ledger refused the cap slots.
    Quota(QuotaError),
    /// Commit was given tables other than the ones the transaction was prepared for.
    WrongTables,
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMode { index, mode } => {
                write!(f, "descriptor {index}: unknown transfer mode {mode}")
            }
            Self::DuplicateMove { index, cap } => {
                write!(
                    f,
                    "descriptor {index}: moves {cap}, which another descriptor also names"
                )
            }
            Self::Cap { index, error } => write!(f, "descriptor {index}: {error}"),
            Self::NotTransferable { index, cap } => {
                write!(f, "descriptor {index}: {cap} is not transferable")
            }
            Self::MoveOnly { index, cap } => {
                write!(f, "descriptor {index}: {cap} can be moved but not copied")
            }
            Self::ReceiverFull { needed, room } => {
                write!(f, "receiver needs {needed} free cap slots but has {room}")
            }
            Self::Quota(q) => write!(f, "receiver {q}"),
            Self::WrongTables => {
                f.write_str("transaction committed against other tables than it was prepared for")
            }
        }
    }
}

/// Decodes raw `(cap id, mode)` pairs read from a ring into descriptors.
pub fn decode_descriptors(raw: &[(u64, u32)]) -> Result<Vec<TransferDescriptor>, TransferError> {
    raw.iter()
        .enumerate()
        .map(|(index, &(cap, mode))| {
            let kind =
                TransferKind::from_raw(mode).ok_or(TransferError::BadMode { index, mode })?;
            Ok(TransferDescriptor {
                cap: CapId::from_raw(cap),
                kind,
            })
        })
        .collect()
}

/// What a receiver entry is made from: the object and the receiver's hold.
type Source<O> = (Arc<O>, Hold);

/// Checks every descriptor against the sender's table; returns the receiver slots needed.
fn check<O: ?Sized + CapObject>(
    sender: &CapTable<O>,
    descriptors: &[TransferDescriptor],
) -> Result<usize, TransferError> {
    let mut uses: BTreeMap<CapId, usize> = BTreeMap::new();
    for d in descriptors {
        *uses.entry(d.cap).or_default() += 1;
    }
    for (index, d) in descriptors.iter().enumerate() {
        let entry = sender
            .get(d.cap)
            .map_err(|error| TransferError::Cap { index, error })?;
        match (entry.hold.mode, d.kind) {
            (TransferMode::NonTransferable, _) => {
                return Err(TransferError::NotTransferable { index, cap: d.cap })
            }
            (TransferMode::Move, TransferKind::Copy) => {
                return Err(TransferError::MoveOnly { index, cap: d.cap })
            }
            _ => {}
        }
        if d.kind == TransferKind::Move && uses[&d.cap] > 1 {
            return Err(TransferError::DuplicateMove { index, cap: d.cap });
        }
    }
    Ok(descriptors.len())
}

/// A prepared transfer: validated descriptors plus the receiver's cap-slot reservation.
///
/// Dropping it without committing is a rollback.
#[must_use = "a prepared transfer does nothing until committed"]
#[derive(Debug)]
pub struct TransferTxn {
    sender: u64,
    receiver: u64,
    descriptors: Vec<TransferDescriptor>,
    charge: Reservation,
}

impl TransferTxn {
    /// Validates `descriptors` against `sender` and reserves their slots on the
    /// receiver's ledger. Changes nothing on failure (and no table on success).
    pub fn prepare<O: ?Sized + CapObject>(
        sender: &CapTable<O>,
        receiver: &CapTable<O>,
        descriptors: &[TransferDescriptor],
    ) -> Result<TransferTxn, TransferError> {
        let needed = check(sender, descriptors)?;
        let room = receiver.room();
        if room < needed {
            return Err(TransferError::ReceiverFull { needed, room });
        }
        let charge = receiver
            .ledger()
            .reserve(Resource::CapSlots, needed as u64)
            .map_err(TransferError::Quota)?;
        Ok(TransferTxn {
            sender: sender.table_id(),
            receiver: receiver.table_id(),
            descriptors: descriptors.to_vec(),
            charge,
        })
    }

    /// Number of descriptors.
    pub fn len(&self) -> usize {
        self.descriptors.len()
    }

    /// Whether there are no descriptors.
    pub fn is_empty(&self) -> bool {
        self.descriptors.is_empty()
    }

    /// Applies the transfer between two distinct tables, all or nothing.
    ///
    /// Returns the receiver-side caps in descriptor order. On failure both tables and
    /// both ledgers are as they were before [`Self::prepare`].
    pub fn commit<O: ?Sized + CapObject>(
        self,
        sender: &mut CapTable<O>,
        receiver: &mut CapTable<O>,
    ) -> Result<Vec<TransferredCap>, TransferError> {
        if sender.table_id() != self.sender
            || receiver.table_id() != self.receiver
            || self.sender == self.receiver
        {
            return Err(TransferError::WrongTables);
        }
        let sources = self.sources(sender)?;
        let out = insert_all(receiver, self.charge, sources)?;
        self.descriptors
            .iter()
            .filter(|d| d.kind == TransferKind::Move)
            .for_each(|d| {
                // sources() proved each moved cap live and named once; nothing ran since.
                let _ = sender.remove(d.cap);
            });
        Ok(out)
    }

    /// Applies the transfer when sender and receiver are the same table (a process
    /// sending caps through an endpoint it serves itself). A copy makes a second hold; a
    /// move re-homes the hold under a new id and makes the old id stale.
    pub fn commit_local<O: ?Sized + CapObject>(
        self,
        table: &mut CapTable<O>,
    ) -> Result<Vec<TransferredCap>, TransferError> {
        if table.table_id() != self.sender || self.sender != self.receiver {
            return Err(TransferError::WrongTables);
        }
        let sources = self.sources(table)?;
        let out = insert_all(table, self.charge, sources)?;
        self.descriptors
            .iter()
            .filter(|d| d.kind == TransferKind::Move)
            .for_each(|d| {
                let _ = table.remove(d.cap);
            });
        Ok(out)
    }

    /// Re-validates against the sender and clones out what each receiver entry needs.
    fn sources<O: ?Sized + CapObject>(
        &self,
        sender: &CapTable<O>,
    ) -> Result<Vec<Source<O>>, TransferError> {
        check(sender, &self.descriptors)?;
        let mut sources = Vec::with_capacity(self.descriptors.len());
        for (index, d) in self.descriptors.iter().enumerate() {
            let entry = sender
                .get(d.cap)
                .map_err(|error| TransferError::Cap { index, error })?;
            sources.push((
                Arc::clone(&entry.object),
                Hold::new(entry.hold.mode, Origin::Transfer),
            ));
        }
        Ok(sources)
    }

    /// Abandons the transfer, releasing the receiver's reservation.
    pub fn rollback(self) {}
}

/// Inserts every source into `receiver` using one slot of `charge` each; on failure
/// undoes the insertions made so far, leaving `receiver` exactly as it was.
fn insert_all<O: ?Sized + CapObject>(
    receiver: &mut CapTable<O>,
    mut charge: Reservation,
    sources: Vec<Source<O>>,
) -> Result<Vec<TransferredCap>, TransferError> {
    let needed = sources.len();
    let mut inserted: Vec<(CapId, bool)> = Vec::with_capacity(needed);
    let mut out = Vec::with_capacity(needed);
    for (object, hold) in sources {
        let interface_id = object.interface_id();
        let one = charge
            .split_off(1)
            .ok_or(TransferError::ReceiverFull { needed, room: 0 });
        match one.and_then(|one| {
            receiver
                .insert_undoable(one, object, hold)
                .map_err(|_| TransferError::ReceiverFull { needed, room: 0 })
        }) {
            Ok((cap, from_free)) => {
                inserted.push((cap, from_free));
                out.push(TransferredCap { cap, interface_id });
            }
            Err(_) => {
                // The receiver filled up between prepare and commit: put it back.
                let room = receiver.room() + inserted.len();
                for (cap, from_free) in inserted.into_iter().rev() {
                    receiver.undo_insert(cap, from_free);
                }
                return Err(TransferError::ReceiverFull { needed, room });
            }
        }
    }
    Ok(out)
}

/// Prepares and commits in one step (both tables are already locked by the caller).
pub fn transfer<O: ?Sized + CapObject>(
    sender: &mut CapTable<O>,
    receiver: &mut CapTable<O>,
    descriptors: &[TransferDescriptor],
) -> Result<Vec<TransferredCap>, TransferError> {
    TransferTxn::prepare(sender, receiver, descriptors)?.commit(sender, receiver)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap_table::tests::echo;
    use crate::cap_table::TableSnapshot;
    use crate::ledger::{Ledger, Limits};

    fn table(capacity: usize, cap_slots: u64) -> CapTable {
        CapTable::new(
            capacity,
            Ledger::new(Limits::DEFAULT.with(Resource::CapSlots, cap_slots)),
        )
    }

    fn hold(mode: TransferMode) -> Hold {
        Hold::new(mode, Origin::Kernel)
    }

    fn snap(a: &CapTable, b: &CapTable) -> (TableSnapshot, TableSnapshot) {
        (a.snapshot(), b.snapshot())
    }

    #[test]
    fn copy_keeps_the_sender_and_adds_a_receiver_hold() {
        let (mut s, mut r) = (table(8, 8), table(8, 8));
        let cap = s.insert(echo(42), hold(TransferMode::Copy)).unwrap();
        let out = transfer(&mut s, &mut r, &[TransferDescriptor::copy(cap)]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].interface_id, 42);
        assert!(s.contains(cap));
        let got = r.get(out[0].cap).unwrap();
        assert_eq!(got.hold, Hold::new(TransferMode::Copy, Origin::Transfer));
        assert!(Arc::ptr_eq(&got.object, &s.get(cap).unwrap().object));
        assert_eq!(
            (
                s.ledger().used(Resource::CapSlots),
                r.ledger().used(Resource::CapSlots)
            ),
            (1, 1)
        );
    }

    #[test]
    fn move_transfers_the_one_hold() {
        let (mut s, mut r) = (table(8, 8), table(8, 8));
        let cap = s.insert(echo(7), hold(TransferMode::Move)).unwrap();
        let out = transfer(&mut s, &mut r, &[TransferDescriptor::moving(cap)]).unwrap();
        assert_eq!(s.get(cap).unwrap_err(), CapError::Stale(cap));
        assert_eq!(r.get(out[0].cap).unwrap().hold.mode, TransferMode::Move);
        assert_eq!(
            (
                s.ledger().used(Resource::CapSlots),
                r.ledger().used(Resource::CapSlots)
            ),
            (0, 1)
        );
        // Replaying the same move fails: the source id is stale now.
        let replay = transfer(&mut s, &mut r, &[TransferDescriptor::moving(cap)]).unwrap_err();
        assert_eq!(
            replay,
            TransferError::Cap {
                index: 0,
                error: CapError::Stale(cap)
            }
        );
    }

    #[test]
    fn every_refusal_leaves_both_sides_untouched() {
        let (mut s, mut r) = (table(8, 8), table(2, 8));
        let copy = s.insert(echo(1), hold(TransferMode::Copy)).unwrap();
        let mover = s.insert(echo(2), hold(TransferMode::Move)).unwrap();
        let pinned = s
            .insert(echo(3), hold(TransferMode::NonTransferable))
            .unwrap();
        let gone = s.insert(echo(4), hold(TransferMode::Copy)).unwrap();
        s.remove(gone).unwrap();
        r.insert(echo(9), hold(TransferMode::Copy)).unwrap();
        let cases: [(&[TransferDescriptor], TransferError); 6] = [
            (
                &[
                    TransferDescriptor::copy(copy),
                    TransferDescriptor::copy(pinned),
                ],
                TransferError::NotTransferable {
                    index: 1,
                    cap: pinned,
                },
            ),
            (
                &[TransferDescriptor::moving(pinned)],
                TransferError::NotTransferable {
                    index: 0,
                    cap: pinned,
                },
            ),
            (
                &[TransferDescriptor::copy(mover)],
                TransferError::MoveOnly {
                    index: 0,
                    cap: mover,
                },
            ),
            (
                &[TransferDescriptor::copy(gone)],
                TransferError::Cap {
                    index: 0,
                    error: CapError::Stale(gone),
                },
            ),
            (
                &[
                    TransferDescriptor::copy(copy),
                    TransferDescriptor::moving(copy),
                ],
                TransferError::DuplicateMove {
                    index: 1,
                    cap: copy,
                },
            ),
            (
                &[
                    TransferDescriptor::copy(copy),
                    TransferDescriptor::copy(copy),
                ],
                TransferError::ReceiverFull { needed: 2, room: 1 },
            ),
        ];
        for (descriptors, expected) in cases {
            let before = snap(&s, &r);
            assert_eq!(transfer(&mut s, &mut r, descriptors).unwrap_err(), expected);
            assert_eq!(snap(&s, &r), before);
        }
    }

    #[test]
    fn receiver_quota_is_checked_before_anything_changes() {
        let (mut s, mut r) = (table(8, 8), table(8, 1));
        let cap = s.insert(echo(1), hold(TransferMode::Copy)).unwrap();
        let before = snap(&s, &r);
        let err = transfer(
            &mut s,
            &mut r,
            &[
                TransferDescriptor::copy(cap),
                TransferDescriptor::moving(CapId::NULL),
            ],
        );
        assert!(matches!(
            err,
            Err(TransferError::Cap {
                index: 1,
                error: CapError::Null(_)
            })
        ));
        let err = transfer(
            &mut s,
            &mut r,
            &[TransferDescriptor::copy(cap), TransferDescriptor::copy(cap)],
        );
        assert!(matches!(err, Err(TransferError::Quota(q)) if q.requested == 2 && q.limit == 1));
        assert_eq!(snap(&s, &r), before);
    }

    #[test]
    fn commit_revalidates_and_undoes_partial_insertion() {
        let (mut s, mut r) = (table(8, 8), table(3, 8));
        let a = s.insert(echo(1), hold(TransferMode::Copy)).unwrap();
        let b = s.insert(echo(2), hold(TransferMode::Move)).unwrap();
        let descriptors = [TransferDescriptor::copy(a), TransferDescriptor::moving(b)];

        // The sender drops a cap between prepare and commit.
        let txn = TransferTxn::prepare(&s, &r, &descriptors).unwrap();
        assert_eq!(r.ledger().used(Resource::CapSlots), 2);
        let mut s2 = table(8, 8);
        let b2 = s2.insert(echo(2), hold(TransferMode::Move)).unwrap();
        let removed = s.remove(b).unwrap();
        let before = snap(&s, &r);
        let mut before_ledger = before.1.ledger;
        before_ledger[Resource::CapSlots.index()] -= 2;
        assert_eq!(
            txn.commit(&mut s, &mut r).unwrap_err(),
            TransferError::Cap {
                index: 1,
                error: CapError::Stale(b)
            }
        );
        assert_eq!(r.snapshot().ledger, before_ledger);
        assert_eq!(s.snapshot(), before.0);
        drop((removed, b2, s2));

        // The receiver fills up between prepare and commit: the first insertion is undone.
        let b = s.insert(echo(2), hold(TransferMode::Move)).unwrap();
        let descriptors = [TransferDescriptor::copy(a), TransferDescriptor::moving(b)];
        let txn = TransferTxn::prepare(&s, &r, &descriptors).unwrap();
        r.insert(echo(5), hold(TransferMode::Copy)).unwrap();
        r.insert(echo(6), hold(TransferMode::Copy)).unwrap();
        let (s_before, mut r_before) = snap(&s, &r);
        r_before.ledger[Resource::CapSlots.index()] -= 2;
        assert_eq!(
            txn.commit(&mut s, &mut r).unwrap_err(),
            TransferError::ReceiverFull { needed: 2, room: 1 }
        );
        assert_eq!(snap(&s, &r), (s_before, r_before));
        assert!(s.contains(b));
    }

    #[test]
    fn rollback_and_drop_release_the_reservation() {
        let (s, r) = (table(8, 8), table(8, 8));
        let mut s = s;
        let cap = s.insert(echo(1), hold(TransferMode::Copy)).unwrap();
        let before = snap(&s, &r);
        TransferTxn::prepare(&s, &r, &[TransferDescriptor::copy(cap)])
            .unwrap()
            .rollback();
        assert_eq!(snap(&s, &r), before);
        let txn = TransferTxn::prepare(&s, &r, &[TransferDescriptor::copy(cap)]).unwrap();
        assert_eq!(txn.len(), 1);
        drop(txn);
        assert_eq!(snap(&s, &r), before);
    }

    #[test]
    fn commit_checks_the_tables() {
        let (mut s, mut r, mut other) = (table(8, 8), table(8, 8), table(8, 8));
        let cap = s.insert(echo(1), hold(TransferMode::Copy)).unwrap();
        let txn = TransferTxn::prepare(&s, &r, &[TransferDescriptor::copy(cap)]).unwrap();
        assert_eq!(
            txn.commit(&mut s, &mut other).unwrap_err(),
            TransferError::WrongTables
        );
        let txn = TransferTxn::prepare(&s, &r, &[TransferDescriptor::copy(cap)]).unwrap();
        assert_eq!(
            txn.commit_local(&mut s).unwrap_err(),
            TransferError::WrongTables
        );
        assert_eq!(r.ledger().used(Resource::CapSlots), 0);
        assert!(TransferTxn::prepare(&s, &r, &[])
            .unwrap()
            .commit(&mut s, &mut r)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn local_commit_copies_and_rehomes() {
        let mut t = table(8, 8);
        let a = t.insert(echo(1), hold(TransferMode::Copy)).unwrap();
        let b = t.insert(echo(2), hold(TransferMode::Move)).unwrap();
        let descriptors = [TransferDescriptor::copy(a), TransferDescriptor::moving(b)];
        let txn = TransferTxn::prepare(&t, &t, &descriptors).unwrap();
        let out = txn.commit_local(&mut t).unwrap();
        assert!(t.contains(a) && !t.contains(b));
        assert!(out.iter().all(|c| t.contains(c.cap)));
        assert_eq!(t.len(), 3);
        assert_eq!(t.ledger().used(Resource::CapSlots), 3);
    }

    #[test]
    fn raw_descriptors_decode_or_fail_closed() {
        let ok = decode_descriptors(&[
            (0x1_0002, TransferKind::RAW_COPY),
            (5, TransferKind::RAW_MOVE),
        ])
        .unwrap();
        assert_eq!(ok[0], TransferDescriptor::copy(CapId::new(2, 1).unwrap()));
        assert_eq!(ok[1].kind, TransferKind::Move);
        assert_eq!(
            decode_descriptors(&[(1, 0)]).unwrap_err(),
            TransferError::BadMode { index: 0, mode: 0 }
        );
        let err = decode_descriptors(&[(1, 1), (1, 7)]).unwrap_err();
        assert_eq!(err, TransferError::BadMode { index: 1, mode: 7 });
        assert_eq!(err.to_string(), "descriptor 1: unknown transfer mode 7");
    }
}
