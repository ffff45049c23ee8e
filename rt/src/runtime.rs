//! [`Runtime`]: what a service's `main` receives — its pid, its CapSet, and
//! the ring to call capabilities through.

#[cfg(test)]
use alloc::vec;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::CapHandle;
    use crate::sim::setup;
    use crate::{CallError, Console, NullCap};
    use capos_caps::interfaces;
    use capos_ring::TransportError;

    /// A runtime whose `console` is the simulated kernel's echo cap (7) and
    /// whose `null` is its exception cap (8).
    fn runtime() -> (Runtime, alloc::rc::Rc<core::cell::RefCell<crate::sim::Log>>) {
        let (client, log, _) = setup();
        let caps = vec![
            CapSetEntry::new("console", 7, interfaces::CONSOLE).unwrap(),
            CapSetEntry::new("null", 8, interfaces::NULL).unwrap(),
            CapSetEntry::new("gone", 9, interfaces::NULL).unwrap(),
        ];
        (Runtime::new(42, caps, Ring::new(client)), log)
    }

    #[test]
    fn typed_lookup_and_calls() {
        let (rt, _) = runtime();
        assert_eq!(rt.pid(), 42);
        assert_eq!(rt.capset().len(), 3);
        let console = rt.cap::<Console>("console").unwrap();
        console.write_line("hello").unwrap();
        console.write(b"raw").unwrap();
        assert!(matches!(
            rt.cap::<Console>("null"),
            Err(CapLookupError::WrongInterface { .. })
        ));
        assert!(matches!(
            rt.cap::<NullCap>("timer"),
            Err(CapLookupError::Missing { .. })
        ));
        // The simulated object behind cap 8 answers with an exception.
        let null = rt.cap::<NullCap>("null").unwrap();
        assert!(matches!(null.ping(), Err(CallError::Exception(_))));
        assert_eq!(rt.cap_any("null").unwrap().interface_id(), interfaces::NULL);
        assert!(rt.cap_checked("console", interfaces::NULL).is_err());
    }

    #[test]
    fn dropped_owners_release_once_at_the_next_operation() {
        let (rt, log) = runtime();
        let console = rt.cap_owned::<Console>("console").unwrap();
        let gone = CapHandle::adopt(rt.cap_any("gone").unwrap());
        let kept = CapHandle::adopt(rt.cap_any("null").unwrap()).into_cap();
        drop(console);
        drop(gone);
        assert!(
            log.borrow().released.is_empty(),
            "dropping never touches the ring"
        );
        rt.ring().nop().unwrap();
        assert_eq!(log.borrow().released, vec![7, 9]);
        // Cap 9 was refused (stale); that is counted, not an error.
        assert_eq!(rt.flush_releases().unwrap(), 1);
        assert_eq!(log.borrow().released, vec![7, 9]);
        assert_eq!(kept.id(), 8);
        // A non-owning reference releases nothing.
        drop(rt.cap::<Console>("console").unwrap());
        rt.flush_releases().unwrap();
        assert_eq!(log.borrow().released.len(), 2);
    }

    #[test]
    fn non_blocking_submit_poll_take() {
        let (rt, _) = runtime();
        let ring = rt.ring();
        let a = ring.submit(7, 0, b"one".to_vec(), 16).unwrap();
        let b = ring.submit(99, 0, b"two".to_vec(), 16).unwrap();
        assert!(
            ring.take(a).is_none(),
            "nothing happens before the kernel is entered"
        );
        assert_eq!(ring.poll().unwrap(), 2);
        assert_eq!(
            ring.take(b).unwrap().into_result().unwrap_err().transport(),
            Some(TransportError::BadCap)
        );
        assert_eq!(ring.take(a).unwrap().into_result().unwrap(), b"one");
        assert_eq!(ring.stats().submitted, 2);
    }
}
