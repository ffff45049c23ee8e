//! Capabilities moving between processes: checking the descriptors a CALL
//! or RETURN sends, committing them into the receiver's table through the
//! caps transaction, and installing a method's result capabilities.

use super::{Object, ResultCap};
use crate::proc::Process;
use alloc::vec::Vec;
use capos_caps::cap_table::{CapId, Hold, Origin, TransferMode};
use capos_caps::transfer::TransferredCap;
use capos_ring::{TransferList, TransferResult, TransportError, TRANSFER_RESULT_SIZE};

/// A transfer descriptor checked against the sender's table: the cap, its
/// object and interface, and the mode asked for.
pub struct Checked {
    /// The sender's id.
    pub id: CapId,
    /// The object.
    pub object: Object,
    /// The interface it is held as.
    pub interface_id: u64,
    /// Copy or move.
    pub mode: capos_ring::TransferMode,
}

impl Checked {
    /// `(cap id, ABI mode)`, the form an endpoint carries it in until it
    /// commits it.
    pub fn abi(&self) -> (u64, u32) {
        let mode = match self.mode {
            capos_ring::TransferMode::Copy => capos_ring::TRANSFER_COPY,
            capos_ring::TransferMode::Move => capos_ring::TRANSFER_MOVE,
        };
        (self.id.to_raw(), mode)
    }
}

/// Reads and checks the descriptors `list` names in `process`'s memory:
/// each must name a live capability of its table that may leave it in the
/// mode asked for.
pub fn resolve(process: &Process, list: TransferList) -> Result<Vec<Checked>, TransportError> {
    if list.count() == 0 {
        return Ok(Vec::new());
    }
    let size = capos_ring::TRANSFER_DESCRIPTOR_SIZE as usize;
    let mut raw = alloc::vec![0u8; usize::from(list.count()) * size];
    let src = crate::usermem::UserRead::trusted(list.addr(), raw.len() as u32);
    process
        .aspace
        .read(src, &mut raw)
        .map_err(|_| TransportError::BadAddress)?;
    let table = process.caps.lock();
    let mut out = Vec::with_capacity(usize::from(list.count()));
    for chunk in raw.chunks_exact(size) {
        let bytes: &[u8; 16] = chunk
            .try_into()
            .map_err(|_| TransportError::InvalidTransfer)?;
        let (cap, mode) = capos_ring::TransferDescriptor::from_bytes(bytes).validate()?;
        let id = CapId::from_raw(cap);
        let entry = table.get(id).map_err(|_| TransportError::BadCap)?;
        let allowed = match entry.hold.mode {
            TransferMode::Copy => true,
            TransferMode::Move => mode == capos_ring::TransferMode::Move,
            TransferMode::NonTransferable => false,
        };
        if !allowed {
            return Err(TransportError::TransferDenied);
        }
        out.push(Checked {
            id,
            object: entry.object.clone(),
            interface_id: entry.interface_id,
            mode,
        });
    }
    Ok(out)
}

/// Moves or copies the capabilities `transfers` names (`(cap id, ABI
/// mode)`) from `sender`'s table into `receiver`'s, all or nothing. The
/// tables are locked in pid order, so two transfers in opposite directions
/// cannot deadlock. Moved entries are dropped after the tables are
/// unlocked.
pub fn commit(
    sender: &Process,
    receiver: &Process,
    transfers: &[(u64, u32)],
) -> Result<Vec<TransferredCap>, TransportError> {
    let mut moved = Vec::new();
    let done = commit_noting_moves(sender, receiver, transfers, &mut moved)?;
    for object in moved {
        object.moved_from(sender);
    }
    Ok(done)
}

/// [`commit`], except that the objects moved out of `sender`'s table are
/// added to `moved` instead of being told at once: a caller holding a lock
/// an object's `moved_from` may take (an endpoint's, for instance) tells
/// them once it has released it.
pub fn commit_noting_moves(
    sender: &Process,
    receiver: &Process,
    transfers: &[(u64, u32)],
    moved: &mut Vec<Object>,
) -> Result<Vec<TransferredCap>, TransportError> {
    if transfers.is_empty() {
        return Ok(Vec::new());
    }
    // A move within one table (a process sending to itself) leaves the
    // holder as it was.
    let objects = if sender.pid == receiver.pid {
        Vec::new()
    } else {
        moved_objects(sender, transfers)
    };
    let done = commit_locked(sender, receiver, transfers)?;
    for object in &objects {
        object.moved_to(receiver.pid);
    }
    moved.extend(objects);
    Ok(done)
}

/// The objects `transfers` moves out of `sender`'s table.
fn moved_objects(sender: &Process, transfers: &[(u64, u32)]) -> Vec<Object> {
    let table = sender.caps.lock();
    transfers
        .iter()
        .filter(|(_, mode)| *mode == capos_ring::TRANSFER_MOVE)
        .filter_map(|(id, _)| table.get(CapId::from_raw(*id)).ok())
        .map(|e| e.object.clone())
        .collect()
}

fn commit_locked(
    sender: &Process,
    receiver: &Process,
    transfers: &[(u64, u32)],
) -> Result<Vec<TransferredCap>, TransportError> {
    use capos_caps::transfer::{self, TransferError};
    let descs =
        transfer::decode_descriptors(transfers).map_err(|_| TransportError::InvalidTransfer)?;
    let map = |e: TransferError| match e {
        TransferError::Quota(_) | TransferError::ReceiverFull { .. } => TransportError::Quota,
        TransferError::Cap { .. } => TransportError::BadCap,
        TransferError::NotTransferable { .. } | TransferError::MoveOnly { .. } => {
            TransportError::TransferDenied
        }
        _ => TransportError::InvalidTransfer,
    };
    if sender.pid == receiver.pid {
        let mut t = sender.caps.lock();
        let txn = transfer::TransferTxn::prepare(&t, &t, &descs).map_err(map)?;
        return txn.commit_local(&mut t).map_err(map);
    }
    let (mut first, mut second) = if sender.pid < receiver.pid {
        (
            sender.caps.lock_ordered(sender.pid.into()),
            receiver.caps.lock_ordered(receiver.pid.into()),
        )
    } else {
        (
            receiver.caps.lock_ordered(receiver.pid.into()),
            sender.caps.lock_ordered(sender.pid.into()),
        )
    };
    let (from, to) = if sender.pid < receiver.pid {
        (&mut *first, &mut *second)
    } else {
        (&mut *second, &mut *first)
    };
    transfer::transfer(from, to, &descs).map_err(map)
}

/// One transfer-result record per received capability.
pub fn records(caps: &[TransferredCap], out: &mut Vec<u8>) {
    for m in caps {
        out.extend_from_slice(
            &TransferResult {
                cap_id: m.cap.to_raw(),
                interface_id: m.interface_id,
            }
            .to_bytes(),
        );
    }
}

/// Bytes of one transfer-result record.
pub const RECORD: usize = TRANSFER_RESULT_SIZE as usize;

/// Puts result capabilities into `process`'s table, all or none, and
/// appends one transfer-result record each to `out`. Nothing is inserted
/// if the table is short of room or quota.
pub fn install(
    process: &Process,
    caps: &[ResultCap],
    out: &mut Vec<u8>,
) -> Result<Vec<CapId>, TransportError> {
    let mut table = process.caps.lock();
    let mut ids = Vec::with_capacity(caps.len());
    for cap in caps {
        match table.insert(
            cap.object.clone(),
            Hold::new(
                crate::proc::transfer_mode_for(cap.interface_id),
                Origin::ResultCap,
            ),
        ) {
            Ok(id) => ids.push(id),
            Err(_) => {
                let removed: Vec<_> = ids.iter().map(|id| table.remove(*id)).collect();
                drop(table);
                drop(removed);
                return Err(TransportError::Quota);
            }
        }
    }
    for (cap, id) in caps.iter().zip(&ids) {
        out.extend_from_slice(
            &TransferResult {
                cap_id: id.to_raw(),
                interface_id: cap.interface_id,
            }
            .to_bytes(),
        );
    }
    Ok(ids)
}

/// Removes the capabilities a spawn moved to the child from the sender's
/// table, telling each object it moved.
pub fn remove_moved(sender: &Process, sent: &[Checked]) {
    let moved: Vec<&Checked> = sent
        .iter()
        .filter(|t| t.mode == capos_ring::TransferMode::Move)
        .collect();
    let ids: Vec<CapId> = moved.iter().map(|t| t.id).collect();
    uninstall(sender, &ids);
    for t in moved {
        t.object.moved_from(sender);
    }
}

/// Takes capabilities back out of `process`'s table (their ids never
/// reached it), dropping them with the table unlocked.
pub fn uninstall(process: &Process, ids: &[CapId]) {
    let removed: Vec<_> = {
        let mut table = process.caps.lock();
        ids.iter().map(|id| table.remove(*id)).collect()
    };
    drop(removed);
}
