//! Every live process, by pid, for `SystemInfo`. Entries are weak: the
//! registry keeps no process alive. A process joins once it has a thread
//! and leaves when it is reported exited; entries whose process is gone
//! some other way (a spawn refused after creation) are pruned as they are
//! found.

use super::Process;
use crate::sync::SpinLock;
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

static PROCESSES: SpinLock<BTreeMap<u32, Weak<Process>>> = SpinLock::new(BTreeMap::new());

/// Adds `process`.
pub fn add(process: &Arc<Process>) {
    let weak = Arc::downgrade(process);
    PROCESSES.lock().insert(process.pid, weak);
}

/// Removes process `pid`.
pub fn remove(pid: u32) {
    let gone = PROCESSES.lock().remove(&pid);
    drop(gone);
}

/// Up to `max` live processes in pid order. The registry's lock is held
/// only to copy the weak references (into room allocated before it is
/// taken); the processes are reached after.
pub fn live(max: usize) -> Vec<Arc<Process>> {
    let mut weak: Vec<Weak<Process>> = Vec::with_capacity(max);
    {
        let map = PROCESSES.lock();
        weak.extend(map.values().take(max).cloned());
    }
    weak.iter().filter_map(Weak::upgrade).collect()
}
