//! [`Runtime`]: what a service's `main` receives — its pid, its CapSet, and
//! the ring to call capabilities through.

use alloc::vec::Vec;
use capos_ring::process::CapSetEntry;

use crate::capset::{self, CapLookupError, Interface};
use crate::error::CallError;
use crate::handle::{Cap, Owned, Ring};

/// The process's view of itself, built by `_start` before `main` runs.
pub struct Runtime {
    pid: u64,
    caps: Vec<CapSetEntry>,
    ring: Ring,
}

impl Runtime {
    /// A runtime for process `pid` with CapSet `caps` on `ring`. `_start`
    /// calls this; host tests build their own.
    pub fn new(pid: u64, caps: Vec<CapSetEntry>, ring: Ring) -> Self {
        Runtime { pid, caps, ring }
    }

    /// The process id the kernel passed in `RSI`.
    pub fn pid(&self) -> u64 {
        self.pid
    }

    /// Every CapSet entry, in CapSet (manifest) order.
    pub fn capset(&self) -> &[CapSetEntry] {
        &self.caps
    }

    /// The ring.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The capability named `name` as a typed client, if it exposes `T`'s
    /// interface. The client does not own the capability: dropping it
    /// releases nothing, and the same name can be looked up again.
    pub fn cap<T: Interface>(&self, name: &str) -> Result<T, CapLookupError> {
        Ok(T::from_cap(self.cap_checked(name, T::INTERFACE_ID)?))
    }

    /// Like [`Runtime::cap`], but the client owns the capability and
    /// releases it when dropped. Look each name up this way at most once.
    pub fn cap_owned<T: Interface>(&self, name: &str) -> Result<Owned<T>, CapLookupError> {
        Ok(Owned::adopt(self.cap_checked(name, T::INTERFACE_ID)?))
    }

    /// The capability named `name`, whatever its interface.
    pub fn cap_any(&self, name: &str) -> Result<Cap, CapLookupError> {
        let e = capset::find(&self.caps, name, None)?;
        Ok(Cap::new(e.cap_id, e.interface_id, self.ring.clone()))
    }

    /// The capability named `name`, if it exposes `interface_id`. For
    /// interfaces without a typed client.
    pub fn cap_checked(&self, name: &str, interface_id: u64) -> Result<Cap, CapLookupError> {
        let e = capset::find(&self.caps, name, Some(interface_id))?;
        Ok(Cap::new(e.cap_id, e.interface_id, self.ring.clone()))
    }

    /// Submits the releases of dropped owned handles and waits for them;
    /// returns how many releases the kernel has refused so far.
    pub fn flush_releases(&self) -> Result<u64, CallError> {
        self.ring.flush_releases()
    }
}
