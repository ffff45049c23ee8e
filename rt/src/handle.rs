//! The shared ring ([`Ring`]), capability references ([`Cap`]) and owned
//! handles that release their capability when dropped ([`CapHandle`],
//! [`Owned`]).
//!
//! A process has one ring and runs on one thread, so the ring client is
//! shared through an `Rc<RefCell<..>>`: every typed client holds a clone and
//! borrows the ring only for the duration of one operation. Dropping an owned
//! handle must not need the ring (it may happen while the ring is borrowed,
//! or while unwinding out of an operation), so it only records the cap id in
//! a release queue; the queue is turned into RELEASE SQEs at the start of the
//! next ring operation, by [`Ring::flush_releases`], and at process exit.

use alloc::rc::Rc;
use alloc::vec::Vec;
use capos_ring::Sqe;
use core::cell::RefCell;
use core::ops::Deref;

use crate::capset::Interface;
use crate::error::CallError;
use crate::ring_client::{Completion, RingClient, RingStats, Ticket, DEFAULT_RESULT_CAPACITY};

struct Shared {
    client: RefCell<RingClient>,
    /// Cap ids of dropped owned handles, not yet submitted as RELEASEs.
    releases: RefCell<Vec<u64>>,
    /// Ranges of buffers moved into a [`RawTicket`] and not given back yet
    /// (`start..end`): the kernel may still write them, so they may not be
    /// unmapped (another mapping, the heap's, could take their place).
    lent: RefCell<Vec<(u64, u64)>>,
}

/// The process's ring, shared by every capability client. Cloning is cheap.
#[derive(Clone)]
pub struct Ring(Rc<Shared>);

/// A raw submission whose result buffer the runtime holds
/// ([`Ring::submit_raw_into`]); [`Ring::wait_raw`] gives the buffer back.
/// Dropping it drops the buffer unseen (its memory stays mapped).
#[cfg(target_os = "none")]
#[must_use = "dropping the ticket keeps its buffer lent for good; wait_raw gives it back"]
pub struct RawTicket {
    ticket: Ticket,
    buf: crate::AnonBuffer,
}

impl Ring {
    /// Shares `client`.
    pub fn new(client: RingClient) -> Self {
        Ring(Rc::new(Shared {
            client: RefCell::new(client),
            releases: RefCell::new(Vec::new()),
            lent: RefCell::new(Vec::new()),
        }))
    }

    /// Runs `f` on the client after turning queued releases into SQEs.
    ///
    /// Panics if called from inside another ring operation (the runtime
    /// never nests them; a typed client that did would be a bug).
    fn with<R>(
        &self,
        f: impl FnOnce(&mut RingClient) -> Result<R, CallError>,
    ) -> Result<R, CallError> {
        let mut client = self.0.client.borrow_mut();
        let queued = core::mem::take(&mut *self.0.releases.borrow_mut());
        for cap_id in queued {
            client.submit_release(cap_id)?;
        }
        f(&mut client)
    }

    /// Records that `cap_id` is to be released. Never touches the ring.
    pub(crate) fn queue_release(&self, cap_id: u64) {
        self.0.releases.borrow_mut().push(cap_id);
    }

    /// A blocking CALL of `method` on `cap_id` with serialized `params` and a
    /// result buffer of `result_capacity` bytes; returns the result bytes.
    pub fn call(
        &self,
        cap_id: u64,
        method: u16,
        params: Vec<u8>,
        result_capacity: usize,
    ) -> Result<Vec<u8>, CallError> {
        self.with(|c| c.call(cap_id, method, params, result_capacity))
    }

    /// Submits a CALL without waiting; collect it with [`Ring::wait`] or
    /// [`Ring::poll`] + [`Ring::take`]. The kernel sees it at the next entry.
    pub fn submit(
        &self,
        cap_id: u64,
        method: u16,
        params: Vec<u8>,
        result_capacity: usize,
    ) -> Result<Ticket, CallError> {
        self.with(|c| c.submit_call(cap_id, method, params, result_capacity))
    }

    /// Submits a CALL sending `transfers` with it.
    pub fn submit_with_transfers(
        &self,
        cap_id: u64,
        method: u16,
        params: Vec<u8>,
        result_capacity: usize,
        transfers: &[capos_ring::TransferDescriptor],
    ) -> Result<Ticket, CallError> {
        self.with(|c| {
            c.submit_call_with_transfers(cap_id, method, params, result_capacity, transfers)
        })
    }

    /// Submits a RECV on endpoint `cap_id`.
    pub fn submit_recv(&self, cap_id: u64, capacity: usize) -> Result<Ticket, CallError> {
        self.with(|c| c.submit_recv(cap_id, capacity))
    }

    /// Submits a RECV on endpoint `cap_id`, asking for the caller's session
    /// reference when `caller_session` is set.
    pub fn submit_recv_flagged(
        &self,
        cap_id: u64,
        capacity: usize,
        caller_session: bool,
    ) -> Result<Ticket, CallError> {
        self.with(|c| c.submit_recv_flagged(cap_id, capacity, caller_session))
    }

    /// Submits a RETURN of `call_id` on endpoint `cap_id`, sending
    /// `transfers` to the caller with it.
    pub fn submit_return(
        &self,
        cap_id: u64,
        call_id: u64,
        payload: Vec<u8>,
        exception: bool,
        transfers: &[capos_ring::TransferDescriptor],
    ) -> Result<Ticket, CallError> {
        self.with(|c| c.submit_return(cap_id, call_id, payload, exception, transfers))
    }

    /// Enters the kernel without waiting (it drains the SQ) and reaps;
    /// returns how many completions were reaped.
    pub fn poll(&self) -> Result<u32, CallError> {
        self.with(|c| c.poll())
    }

    /// The completion of `ticket` if it has been reaped.
    pub fn take(&self, ticket: Ticket) -> Option<Completion> {
        self.0.client.borrow_mut().take(ticket)
    }

    /// Blocks until `ticket` completes.
    pub fn wait(&self, ticket: Ticket) -> Result<Completion, CallError> {
        self.with(|c| c.wait(ticket))
    }

    /// Blocks until one of `tickets` completes; returns which (collect it
    /// with [`Self::take`]).
    pub fn wait_any(&self, tickets: &[Ticket]) -> Result<Ticket, CallError> {
        self.with(|c| c.wait_any(tickets))
    }

    /// A blocking NOP round trip.
    pub fn nop(&self) -> Result<(), CallError> {
        self.with(|c| c.nop())
    }

    /// Submits `sqe` unchanged except for `user_data`; see
    /// [`RingClient::submit_raw`].
    pub fn submit_raw(&self, sqe: Sqe) -> Result<Ticket, CallError> {
        self.with(|c| c.submit_raw(sqe))
    }

    /// Submits `sqe` like [`Self::submit_raw`], with its result buffer
    /// inside `buf`, which the runtime holds until the operation completes
    /// (no reference to that memory exists while the kernel may write it).
    /// A result buffer not wholly inside `buf` is refused with
    /// [`CallError::UnsafeBuffer`]. The parameters may point anywhere, `buf`
    /// included.
    #[cfg(target_os = "none")]
    pub fn submit_raw_into(
        &self,
        sqe: Sqe,
        buf: crate::AnonBuffer,
    ) -> Result<RawTicket, CallError> {
        let lo = buf.addr();
        let hi = lo + buf.len() as u64;
        let ticket = self.with(|c| c.submit_raw_within(sqe, lo, hi))?;
        self.0.lent.borrow_mut().push((lo, hi));
        Ok(RawTicket { ticket, buf })
    }

    /// Blocks until the submission of `raw` completes and gives its buffer
    /// back with the completion. (A ticket dropped unwaited keeps its
    /// buffer's range lent, unmappable, for the life of the process.)
    #[cfg(target_os = "none")]
    pub fn wait_raw(&self, raw: RawTicket) -> Result<(Completion, crate::AnonBuffer), CallError> {
        let done = self.wait(raw.ticket)?;
        let range = (raw.buf.addr(), raw.buf.addr() + raw.buf.len() as u64);
        let mut lent = self.0.lent.borrow_mut();
        if let Some(i) = lent.iter().position(|&r| r == range) {
            lent.swap_remove(i);
        }
        Ok((done, raw.buf))
    }

    /// Refuses to unmap `[addr, addr + size)` while part of it is lent to a
    /// raw submission the kernel may still write.
    pub(crate) fn refuse_lent(&self, addr: u64, size: u64) -> Result<(), CallError> {
        let end = addr.saturating_add(size);
        if self
            .0
            .lent
            .borrow()
            .iter()
            .any(|&(lo, hi)| addr < hi && lo < end)
        {
            return Err(CallError::InvalidArgument(
                "the range holds a buffer a raw submission may still write",
            ));
        }
        Ok(())
    }

    /// Submits every queued release and waits for their completions.
    /// Returns the total number of releases the kernel has refused so far
    /// (refusals are not errors: the cap was stale or already gone).
    pub fn flush_releases(&self) -> Result<u64, CallError> {
        self.with(|c| {
            c.wait_releases()?;
            Ok(c.stats().releases_rejected)
        })
    }

    /// The client's counters.
    pub fn stats(&self) -> RingStats {
        self.0.client.borrow().stats()
    }

    /// Runs a benchmark body with exclusive use of the ring client (see
    /// [`RingClient::bench_push`] and [`RingClient::bench_reap`]).
    pub fn with_bench<R>(
        &self,
        f: impl FnOnce(&mut RingClient) -> Result<R, CallError>,
    ) -> Result<R, CallError> {
        self.with(f)
    }

    /// See [`RingClient::enter_with_bogus_sq_tail`].
    pub fn enter_with_bogus_sq_tail(&self, distance: u32) -> Result<i64, CallError> {
        self.with(|c| c.enter_with_bogus_sq_tail(distance))
    }
}

/// A reference to one capability: its id and interface, and the ring to
/// call it through. Does not own the capability (dropping it releases
/// nothing); see [`CapHandle`] for that.
#[derive(Clone)]
pub struct Cap {
    id: u64,
    interface_id: u64,
    ring: Ring,
}

impl Cap {
    /// A reference to `id`, which exposes `interface_id`, on `ring`.
    pub fn new(id: u64, interface_id: u64, ring: Ring) -> Self {
        Cap {
            id,
            interface_id,
            ring,
        }
    }

    /// The capability id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The interface id.
    pub fn interface_id(&self) -> u64 {
        self.interface_id
    }

    /// The ring.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// A blocking CALL of `method` with serialized `params` and the default
    /// result buffer size.
    pub fn call(&self, method: u16, params: Vec<u8>) -> Result<Vec<u8>, CallError> {
        self.ring
            .call(self.id, method, params, DEFAULT_RESULT_CAPACITY)
    }

    /// A blocking CALL with a result buffer of `result_capacity` bytes.
    pub fn call_with_capacity(
        &self,
        method: u16,
        params: Vec<u8>,
        result_capacity: usize,
    ) -> Result<Vec<u8>, CallError> {
        self.ring.call(self.id, method, params, result_capacity)
    }
}

/// An owned capability: dropping it queues exactly one RELEASE of its id.
pub struct CapHandle {
    cap: Cap,
    /// False once ownership was given up with [`CapHandle::into_cap`].
    owned: bool,
}

impl CapHandle {
    /// Takes ownership of `cap`. Only one owner per cap id should exist: a
    /// second owner's release would find the id already gone (harmless, but
    /// counted as refused).
    pub fn adopt(cap: Cap) -> Self {
        CapHandle { cap, owned: true }
    }

    /// Gives up ownership without releasing.
    pub fn into_cap(mut self) -> Cap {
        self.owned = false;
        self.cap.clone()
    }
}

impl core::fmt::Debug for CapHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "CapHandle({:#x}, interface {:#x})",
            self.cap.id, self.cap.interface_id
        )
    }
}

impl Deref for CapHandle {
    type Target = Cap;
    fn deref(&self) -> &Cap {
        &self.cap
    }
}

impl Drop for CapHandle {
    fn drop(&mut self) {
        if self.owned {
            self.cap.ring.queue_release(self.cap.id);
        }
    }
}

/// An owned typed client: usable as `T`, releases the capability on drop.
pub struct Owned<T: Interface> {
    client: T,
    _handle: CapHandle,
}

impl<T: Interface> Owned<T> {
    /// Takes ownership of `cap`, which must expose `T`'s interface.
    pub fn adopt(cap: Cap) -> Self {
        Owned {
            client: T::from_cap(cap.clone()),
            _handle: CapHandle::adopt(cap),
        }
    }

    /// Takes ownership of a result capability, only if it exposes `T`'s
    /// interface; otherwise it is released and the call is a protocol error.
    pub fn adopt_checked(cap: Cap) -> Result<Self, CallError> {
        if cap.interface_id() == T::INTERFACE_ID {
            Ok(Self::adopt(cap))
        } else {
            drop(CapHandle::adopt(cap));
            Err(CallError::Protocol(
                "result capability has an unexpected interface",
            ))
        }
    }
}

impl<T: Interface> Owned<T> {
    /// Gives up ownership without releasing: for a capability about to
    /// leave this process (moved in a RETURN or a spawn), whose id the
    /// kernel retires. Whoever takes the [`Cap`] must release it, or see
    /// it gone.
    pub fn into_cap(self) -> Cap {
        self._handle.into_cap()
    }

    /// The capability as an untyped owned handle (released on drop).
    pub fn into_handle(self) -> CapHandle {
        self._handle
    }
}

impl<T: Interface> Deref for Owned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.client
    }
}
