//! What the generated clients ([`crate::api`]) cannot say by themselves:
//! reads of a whole manifest or binary in chunks, spawning with a list of
//! grants, the endpoint's RECV and RETURN (ring operations, not methods),
//! calls that send capabilities, views of shared memory, the heap's guard
//! on `VirtualMemory`, and serving a protocol from an endpoint.

use alloc::string::String;
use alloc::vec::Vec;
pub use capos_caps::manifest::Placement;
use capos_caps::schema::capos_capnp::process_spawner;
use capos_caps::CapException;
use capos_ring::MAX_RESULT_LEN;

use crate::api;
use crate::capset::Interface;
use crate::error::CallError;
use crate::handle::{Cap, CapHandle, Owned};

pub use crate::api::{
    BootPackage, ClientEndpoint, Console, Endpoint, EntropySource, FrameAllocator, MemoryObject,
    ProcessHandle, ProcessSpawner, SessionAuthority, SystemInfo, TerminalSession, Timer,
    UserSession,
};

/// The measurement-only `Null` interface.
pub type NullCap = api::Null;

/// A blocking CALL of `method` on `cap` with serialized `params`, a result
/// buffer of `capacity` bytes and `caps` sent with it; the result bytes and
/// the capabilities returned after them, owned (released on drop unless
/// adopted).
pub fn call_raw(
    cap: &Cap,
    method: u16,
    params: Vec<u8>,
    capacity: usize,
    caps: &[(&Cap, u32)],
) -> Result<(Vec<u8>, Vec<CapHandle>), CallError> {
    let ring = cap.ring();
    let t = ring.submit_with_transfers(cap.id(), method, params, capacity, &descriptors(caps))?;
    split_result_caps(ring.wait(t)?, ring)
}

impl core::fmt::Write for Console {
    /// Formatting straight to the console; a failed call is `fmt::Error`.
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        Console::write(self, s.as_bytes()).map_err(|_| core::fmt::Error)
    }
}

/// One boot binary as `BootPackage.listBinaries` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryInfo {
    /// The manifest name of the binary.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Largest chunk [`BootPackage::read_manifest_all`] and
/// [`BootPackage::read_binary_all`] ask for per call. The kernel may return
/// less; the loops cope.
pub const READ_CHUNK: u32 = 16 * 1024;

/// Largest manifest [`BootPackage::read_manifest_all`] accepts: the
/// manifest decoder's own limit.
pub const MAX_MANIFEST_BYTES: u64 = capos_caps::manifest::DecodeLimits::DEFAULT.max_bytes as u64;

impl BootPackage {
    /// The whole manifest, read in chunks of at most [`READ_CHUNK`] bytes.
    pub fn read_manifest_all(&self) -> Result<Vec<u8>, CallError> {
        let size = self.manifest_size()?;
        if size > MAX_MANIFEST_BYTES {
            return Err(CallError::Protocol(
                "manifest larger than the decoder accepts",
            ));
        }
        read_all(size, |offset, max| self.read_manifest(offset, max))
    }

    /// Every boot binary with its size.
    pub fn binaries(&self) -> Result<Vec<BinaryInfo>, CallError> {
        let reply = self.list_binaries()?;
        let list = reply.get()?.get_binaries()?;
        let mut out = Vec::with_capacity(list.len() as usize);
        for b in list.iter() {
            let name = b
                .get_name()?
                .to_str()
                .map_err(|_| CallError::Protocol("binary name is not UTF-8"))?;
            out.push(BinaryInfo {
                name: name.into(),
                size: b.get_size(),
            });
        }
        Ok(out)
    }

    /// The whole of binary `name`, whose size `size` came from
    /// [`BootPackage::binaries`].
    pub fn read_binary_all(&self, name: &str, size: u64) -> Result<Vec<u8>, CallError> {
        read_all(size, |offset, max| self.read_binary(name, offset, max))
    }
}

/// Reads `size` bytes through `read(offset, max)` in chunks of at most
/// [`READ_CHUNK`]; an empty chunk before the end, or a longer one than asked
/// for, is a protocol error.
fn read_all(
    size: u64,
    mut read: impl FnMut(u64, u32) -> Result<Vec<u8>, CallError>,
) -> Result<Vec<u8>, CallError> {
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    while (out.len() as u64) < size {
        let left = size - out.len() as u64;
        let want = u32::try_from(left).unwrap_or(u32::MAX).min(READ_CHUNK);
        let chunk = read(out.len() as u64, want)?;
        if chunk.is_empty() {
            return Err(CallError::Protocol("read ended before the announced size"));
        }
        if chunk.len() > want as usize {
            return Err(CallError::Protocol("read returned more than asked for"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Protection bits for [`VirtualMemory`] (`capos.capnp` `prot*`).
pub mod prot {
    /// Readable.
    pub const READ: u32 = capos_caps::schema::capos_capnp::PROT_READ;
    /// Writable.
    pub const WRITE: u32 = capos_caps::schema::capos_capnp::PROT_WRITE;
    /// Executable.
    pub const EXEC: u32 = capos_caps::schema::capos_capnp::PROT_EXEC;
}

/// Anonymous memory in this process's own address space: the generated
/// client, guarded so that the program cannot unmap or re-protect memory
/// its own heap grew into.
#[derive(Clone)]
pub struct VirtualMemory {
    inner: api::VirtualMemory,
}

impl Interface for VirtualMemory {
    const INTERFACE_ID: u64 = capos_caps::api::virtual_memory::ID;
    const NAME: &'static str = capos_caps::api::virtual_memory::NAME;
    fn from_cap(cap: Cap) -> Self {
        VirtualMemory {
            inner: api::VirtualMemory::from_cap(cap),
        }
    }
    fn cap(&self) -> &Cap {
        self.inner.cap()
    }
}

impl VirtualMemory {
    /// Maps `size` bytes (a multiple of 4096) of zeroed memory with `prot`;
    /// returns its address (at `hint` if that range is free, else chosen by
    /// the kernel; 0 = no hint).
    pub fn map(&self, hint: u64, size: u64, prot: u32) -> Result<u64, CallError> {
        self.inner.map(hint, size, prot)
    }

    /// Unmaps `[addr, addr + size)`, which must be mapped anonymous memory.
    /// Memory the heap grew into, and a buffer lent to a raw submission
    /// ([`crate::Ring::submit_raw_into`]) until it is given back, are
    /// refused with [`CallError::InvalidArgument`].
    pub fn unmap(&self, addr: u64, size: u64) -> Result<(), CallError> {
        refuse_heap(addr, size)?;
        self.cap().ring().refuse_lent(addr, size)?;
        self.inner.unmap(addr, size)
    }

    /// Changes the rights of `[addr, addr + size)`. Memory the heap grew
    /// into is refused with [`CallError::InvalidArgument`].
    pub fn protect(&self, addr: u64, size: u64, prot: u32) -> Result<(), CallError> {
        refuse_heap(addr, size)?;
        self.inner.protect(addr, size, prot)
    }

    /// Maps `size` bytes read-write and returns them as a buffer owned by
    /// the caller; dropping the buffer does not unmap (call
    /// [`VirtualMemory::unmap`] with [`AnonBuffer::addr`]).
    #[cfg(target_os = "none")]
    pub fn map_buffer(&self, size: u64) -> Result<AnonBuffer, CallError> {
        let addr = self.map(0, size, prot::READ | prot::WRITE)?;
        Ok(AnonBuffer {
            addr,
            len: size as usize,
        })
    }
}

/// The heap's grown memory must stay mapped read-write while the heap
/// lives; the client will not unmap or re-protect it.
fn refuse_heap(addr: u64, size: u64) -> Result<(), CallError> {
    #[cfg(target_os = "none")]
    if crate::heap::overlaps(addr, size) {
        return Err(CallError::InvalidArgument("the range holds heap memory"));
    }
    let _ = (addr, size);
    Ok(())
}

/// Read-write anonymous memory from [`VirtualMemory::map_buffer`].
#[cfg(target_os = "none")]
pub struct AnonBuffer {
    addr: u64,
    len: usize,
}

#[cfg(target_os = "none")]
impl AnonBuffer {
    /// Start address.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memory as bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the kernel mapped [addr, addr + len) read-write and zeroed
        // it for this process; only this buffer hands out references to it,
        // and `&mut self` makes the borrow exclusive (the kernel writes it
        // only for a raw submission the buffer was moved into, see
        // `Ring::submit_raw_into`, and the buffer comes back once that
        // operation completed). It stays mapped until
        // the program unmaps it, which needs the address and is its own
        // responsibility (after that, this buffer must not be used).
        unsafe { core::slice::from_raw_parts_mut(self.addr as *mut u8, self.len) }
    }
}

impl MemoryObject {
    /// The object's size in pages and bytes.
    pub fn size(&self) -> Result<(u32, u64), CallError> {
        let reply = self.info()?;
        let r = reply.get()?;
        Ok((r.get_page_count(), r.get_size_bytes()))
    }

    /// Maps the whole object read-write and returns a view of it.
    #[cfg(target_os = "none")]
    pub fn map_shared(&self) -> Result<SharedMemory, CallError> {
        let (_, size) = self.size()?;
        let addr = self.map(0, 0, size, prot::READ | prot::WRITE)?;
        Ok(SharedMemory {
            addr,
            len: size as usize,
        })
    }
}

/// A read-write mapping of a [`MemoryObject`] that other processes may map
/// too: every access is a volatile or atomic one, since the other side can
/// change the memory at any time.
#[cfg(target_os = "none")]
pub struct SharedMemory {
    addr: u64,
    len: usize,
}

#[cfg(target_os = "none")]
impl SharedMemory {
    /// Start address.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, for a mapped object).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 8-byte word `index` as an atomic (for flags and counters).
    pub fn word(&self, index: usize) -> &core::sync::atomic::AtomicU64 {
        assert!(
            (index + 1) * 8 <= self.len,
            "word {index} is outside the mapping"
        );
        // SAFETY: the word lies inside the read-write mapping (checked),
        // which stays mapped while `self` lives (unmapping needs the address
        // and is the program's own act); the address is 8-byte aligned
        // (mappings are page aligned); AtomicU64 has no invalid values and
        // tolerates concurrent access from the other process.
        unsafe { &*((self.addr as usize + index * 8) as *const core::sync::atomic::AtomicU64) }
    }

    /// Copies `data` into the mapping at `offset`, byte by byte (volatile).
    pub fn write(&self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= self.len, "write outside the mapping");
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: inside the read-write mapping (checked above);
            // volatile, because another process shares the bytes.
            unsafe { core::ptr::write_volatile((self.addr as usize + offset + i) as *mut u8, b) };
        }
    }

    /// Copies bytes from the mapping at `offset` into `out` (volatile).
    pub fn read(&self, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= self.len, "read outside the mapping");
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: as in `write`, reading.
            *b =
                unsafe { core::ptr::read_volatile((self.addr as usize + offset + i) as *const u8) };
        }
    }
}

/// How [`ProcessSpawner::spawn_with_options`] places and limits a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpawnOptions {
    /// Where the child's thread runs.
    pub placement: Placement,
    /// The child's frame quota in pages (0: the kernel's default).
    pub frame_limit: u32,
    /// The child's cap-slot quota (0: the kernel's default, 256).
    pub cap_slot_limit: u32,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        SpawnOptions {
            placement: Placement::AnyCpu,
            frame_limit: 0,
            cap_slot_limit: 0,
        }
    }
}

/// A kernel-minted capability for a child started by [`ProcessSpawner`].
#[derive(Clone, Copy, Debug)]
pub struct KernelGrant<'a> {
    /// The name the child sees in its CapSet.
    pub name: &'a str,
    /// What the kernel mints.
    pub kind: capos_caps::manifest::KernelKind,
}

/// One grant for [`ProcessSpawner::spawn_with`].
#[derive(Clone, Copy)]
pub enum GrantSpec<'a> {
    /// A capability the kernel mints for the child.
    Kernel {
        /// CapSet name in the child.
        name: &'a str,
        /// What to mint.
        kind: capos_caps::manifest::KernelKind,
    },
    /// A copy of a capability this process holds.
    Copy {
        /// CapSet name in the child.
        name: &'a str,
        /// The capability to copy.
        cap: &'a Cap,
    },
    /// A capability this process holds, moved to the child.
    Move {
        /// CapSet name in the child.
        name: &'a str,
        /// The capability to move.
        cap: &'a Cap,
    },
}

/// What [`ProcessSpawner::spawn_with`] returns.
pub struct Spawned {
    /// The child.
    pub handle: Owned<ProcessHandle>,
    /// For each endpoint grant (by grant name), a client facet.
    pub facets: Vec<(String, Owned<ClientEndpoint>)>,
}

impl ProcessSpawner {
    /// Starts boot binary `binary` as a process named `name` holding exactly
    /// the kernel-minted `grants`; returns an owned handle to it.
    pub fn spawn(
        &self,
        name: &str,
        binary: &str,
        grants: &[KernelGrant<'_>],
    ) -> Result<Owned<ProcessHandle>, CallError> {
        let specs: Vec<GrantSpec<'_>> = grants
            .iter()
            .map(|g| GrantSpec::Kernel {
                name: g.name,
                kind: g.kind,
            })
            .collect();
        Ok(self.spawn_with(name, binary, &specs)?.handle)
    }

    /// Starts `binary` with `grants`, which may also copy or move
    /// capabilities this process holds. Returns the handle and, for each
    /// endpoint grant, a client facet of the child's new endpoint.
    pub fn spawn_with(
        &self,
        name: &str,
        binary: &str,
        grants: &[GrantSpec<'_>],
    ) -> Result<Spawned, CallError> {
        self.spawn_placed(name, binary, grants, Placement::AnyCpu)
    }

    /// Like [`Self::spawn_with`], with the child placed as `placement` says:
    /// [`Placement::Cpu`] pins it to one CPU (the kernel refuses a CPU that
    /// is not online, as an exception).
    pub fn spawn_placed(
        &self,
        name: &str,
        binary: &str,
        grants: &[GrantSpec<'_>],
        placement: Placement,
    ) -> Result<Spawned, CallError> {
        self.spawn_with_options(
            name,
            binary,
            grants,
            SpawnOptions {
                placement,
                ..SpawnOptions::default()
            },
        )
    }

    /// Like [`Self::spawn_with`], with the child placed and limited as
    /// `options` say.
    pub fn spawn_with_options(
        &self,
        name: &str,
        binary: &str,
        grants: &[GrantSpec<'_>],
        options: SpawnOptions,
    ) -> Result<Spawned, CallError> {
        self.spawn_in_session(name, binary, grants, options, None)
    }

    /// Like [`Self::spawn_with_options`], with the child running in
    /// `session` (a live `UserSession`, sent as one more transfer after the
    /// grants' own) instead of this process's session when it is given.
    pub fn spawn_in_session(
        &self,
        name: &str,
        binary: &str,
        grants: &[GrantSpec<'_>],
        options: SpawnOptions,
        session: Option<&Cap>,
    ) -> Result<Spawned, CallError> {
        let placement = options.placement;
        if let Placement::Unknown(_) = placement {
            return Err(CallError::InvalidArgument("unknown placement"));
        }
        let sent: Vec<(&Cap, u32)> = grants
            .iter()
            .filter_map(|g| match g {
                GrantSpec::Copy { cap, .. } => Some((*cap, capos_ring::TRANSFER_COPY)),
                GrantSpec::Move { cap, .. } => Some((*cap, capos_ring::TRANSFER_MOVE)),
                GrantSpec::Kernel { .. } => None,
            })
            .collect();
        let mut sent = sent;
        let session_index = match session {
            Some(cap) => {
                sent.push((cap, capos_ring::TRANSFER_COPY));
                (sent.len() - 1) as u16
            }
            None => u16::MAX,
        };
        let mut reply = self.call_spawn(
            |mut p| {
                p.set_name(name);
                p.set_binary_name(binary);
                p.set_frame_limit(options.frame_limit);
                p.set_cap_slot_limit(options.cap_slot_limit);
                p.set_session(session_index);
                if placement != Placement::AnyCpu {
                    capos_caps::manifest::write_placement(placement, p.reborrow().init_placement());
                }
                let mut list = p.init_grants(grants.len() as u32);
                let mut transferred = 0u16;
                for (i, g) in grants.iter().enumerate() {
                    let mut e = list.reborrow().get(i as u32);
                    match g {
                        GrantSpec::Kernel { name, kind } => {
                            e.set_name(name);
                            e.set_expected_interface_id(kind.interface_id());
                            e.init_source()
                                .set_kernel(capos_caps::manifest::kind_to_schema(*kind));
                        }
                        GrantSpec::Copy { name, cap } | GrantSpec::Move { name, cap } => {
                            e.set_name(name);
                            e.set_expected_interface_id(cap.interface_id());
                            e.init_source().set_transferred(transferred);
                            transferred += 1;
                        }
                    }
                }
            },
            &sent,
        )?;
        let (handle, facets) = spawned_indices(&reply)?;
        let handle = reply.take_cap::<ProcessHandle>(handle)?;
        let mut out = Vec::with_capacity(facets.len());
        for (grant, index) in facets {
            out.push((grant, reply.take_cap::<ClientEndpoint>(index)?));
        }
        Ok(Spawned {
            handle,
            facets: out,
        })
    }
}

impl SessionAuthority {
    /// `scope`: `cap` as a capability of the same interface `T` that works
    /// only while `session` is live and speaks for it.
    pub fn scope_cap<T: Interface>(
        &self,
        session: &UserSession,
        cap: &Cap,
    ) -> Result<Owned<T>, CallError> {
        let mut reply = self.call_scope(
            |_| {},
            &[
                (session.cap(), capos_ring::TRANSFER_COPY),
                (cap, capos_ring::TRANSFER_COPY),
            ],
        )?;
        let index = reply.get()?.get_scoped();
        reply.take_cap::<T>(index)
    }

    /// `end`: ends `session` (a second end changes nothing).
    pub fn end_session(&self, session: &UserSession) -> Result<(), CallError> {
        self.call_end(|_| {}, &[(session.cap(), capos_ring::TRANSFER_COPY)])?;
        Ok(())
    }

    /// `reference`: the 16 bytes the server of `endpoint` (its owner side,
    /// which stays where it is) sees for calls in `session`.
    pub fn reference_at(
        &self,
        session: &UserSession,
        endpoint: &Endpoint,
    ) -> Result<[u8; 16], CallError> {
        let reply = self.call_reference(
            |_| {},
            &[
                (session.cap(), capos_ring::TRANSFER_COPY),
                (endpoint.cap(), capos_ring::TRANSFER_MOVE),
            ],
        )?;
        reply
            .get()?
            .get_reference()?
            .try_into()
            .map_err(|_| CallError::Protocol("a reference is 16 bytes"))
    }
}

/// The handle's and each facet's result-cap index in a spawn reply.
#[allow(clippy::type_complexity)]
fn spawned_indices(
    reply: &api::Reply<process_spawner::spawn_results::Owned>,
) -> Result<(u16, Vec<(String, u16)>), CallError> {
    let r = reply.get()?;
    let mut facets = Vec::new();
    for f in r.get_facets()? {
        let grant = f
            .get_grant()?
            .to_str()
            .map_err(|_| CallError::Protocol("facet name is not UTF-8"))?;
        facets.push((String::from(grant), f.get_client()));
    }
    Ok((r.get_handle(), facets))
}

impl ClientEndpoint {
    /// Calls the server: `method` with raw `params`; returns its raw result.
    pub fn call(&self, method: u16, params: Vec<u8>) -> Result<Vec<u8>, CallError> {
        self.cap().call(method, params)
    }

    /// Calls the server sending `caps` with the call, each copied
    /// ([`capos_ring::TRANSFER_COPY`]) or moved ([`capos_ring::TRANSFER_MOVE`]).
    /// A moved cap leaves this process only if the call is delivered.
    pub fn call_with_transfers(
        &self,
        method: u16,
        params: Vec<u8>,
        caps: &[(&Cap, u32)],
    ) -> Result<Vec<u8>, CallError> {
        Ok(self.call_with_caps(method, params, caps)?.0)
    }

    /// Calls the server sending `caps` (as [`ClientEndpoint::call_with_transfers`])
    /// and returns its result bytes and the capabilities it returned, owned:
    /// adopt each as the type the protocol promises with
    /// [`crate::Owned::adopt_checked`], or drop it to release it.
    pub fn call_with_caps(
        &self,
        method: u16,
        params: Vec<u8>,
        caps: &[(&Cap, u32)],
    ) -> Result<(Vec<u8>, Vec<CapHandle>), CallError> {
        call_raw(self.cap(), method, params, 4096, caps)
    }

    /// This facet as a client of the protocol `T` the server speaks (a
    /// schema interface in `services.capnp`): `T`'s stubs send their method
    /// ordinals through this endpoint.
    pub fn protocol<T: Interface>(&self) -> T {
        T::from_cap(self.cap().clone())
    }
}

/// Transfer descriptors for `caps`, each with its mode.
fn descriptors(caps: &[(&Cap, u32)]) -> Vec<capos_ring::TransferDescriptor> {
    caps.iter()
        .map(|(c, mode)| capos_ring::TransferDescriptor {
            cap_id: c.id(),
            mode: *mode,
            reserved0: 0,
        })
        .collect()
}

/// The capabilities a completion carries: `count` transfer-result records
/// starting at byte `at` of `result`, as caps on `ring`.
fn result_caps(
    result: &[u8],
    at: usize,
    count: usize,
    ring: &crate::Ring,
) -> Result<Vec<Cap>, CallError> {
    (0..count)
        .map(|i| {
            let start = at + i * 16;
            let record: [u8; 16] = result
                .get(start..start + 16)
                .and_then(|r| r.try_into().ok())
                .ok_or(CallError::Protocol("transfer result record missing"))?;
            let rec = capos_ring::TransferResult::from_bytes(&record);
            Ok(Cap::new(rec.cap_id, rec.interface_id, ring.clone()))
        })
        .collect()
}

/// The result bytes of a completion and the capabilities after them, owned
/// (released on drop unless adopted). An error or exception carries none.
fn split_result_caps(
    done: crate::Completion,
    ring: &crate::Ring,
) -> Result<(Vec<u8>, Vec<CapHandle>), CallError> {
    let count = if done.cqe.flags & capos_ring::CQE_FLAG_TRANSFER_RESULTS != 0 {
        done.cqe.xfer_count as usize
    } else {
        0
    };
    let all = done.result.clone();
    let len = all
        .len()
        .saturating_sub(count * capos_ring::TRANSFER_RESULT_SIZE as usize);
    let caps = result_caps(&all, len, count, ring)?
        .into_iter()
        .map(CapHandle::adopt)
        .collect();
    let mut bytes = done.into_result()?;
    bytes.truncate(len);
    Ok((bytes, caps))
}

/// A call delivered by [`Endpoint::recv`].
pub struct IncomingCall {
    /// Id to answer with.
    pub call_id: u64,
    /// Method the caller invoked.
    pub method_id: u16,
    /// The calling process.
    pub caller_pid: u32,
    /// Whether the caller's session (its scoped capability's, else its
    /// process's) was live when the call was made.
    pub session_live: bool,
    /// The caller's reference at this endpoint, on a RECV that asked for
    /// it ([`Endpoint::recv_with_session`]).
    pub caller_reference: Option<[u8; 16]>,
    /// The caller's parameter bytes.
    pub params: Vec<u8>,
    /// Capabilities the caller sent, now in this process's table.
    pub caps: Vec<Cap>,
}

impl Endpoint {
    /// Blocks until a call arrives (parameters up to `capacity` bytes).
    pub fn recv(&self, capacity: usize) -> Result<IncomingCall, CallError> {
        let ticket = self.start_recv(capacity)?;
        let done = self.cap().ring().wait(ticket)?;
        self.finish_recv(done)
    }

    /// Submits a RECV (parameters up to `capacity` bytes) without waiting:
    /// wait for it with [`crate::Ring::wait`] or [`crate::Ring::wait_any`]
    /// and read the call with [`Self::finish_recv`].
    pub fn start_recv(&self, capacity: usize) -> Result<crate::Ticket, CallError> {
        self.cap().ring().submit_recv(
            self.cap().id(),
            capos_ring::process::CALL_HEADER_SIZE + capacity,
        )
    }

    /// [`Self::recv`], with the caller's session reference
    /// ([`IncomingCall::caller_reference`]).
    pub fn recv_with_session(&self, capacity: usize) -> Result<IncomingCall, CallError> {
        let ticket = self.start_recv_with_session(capacity)?;
        let done = self.cap().ring().wait(ticket)?;
        self.finish_recv(done)
    }

    /// [`Self::start_recv`] asking for the caller's session reference
    /// (`RECV_FLAG_CALLER_SESSION`); read the call with
    /// [`Self::finish_recv`].
    pub fn start_recv_with_session(&self, capacity: usize) -> Result<crate::Ticket, CallError> {
        self.cap().ring().submit_recv_flagged(
            self.cap().id(),
            capos_ring::process::CALL_HEADER_SESSION_SIZE + capacity,
            true,
        )
    }

    /// The call a completed RECV of [`Self::start_recv`] delivered.
    pub fn finish_recv(&self, done: crate::Completion) -> Result<IncomingCall, CallError> {
        let ring = self.cap().ring();
        let records = if done.cqe.flags & capos_ring::CQE_FLAG_TRANSFER_RESULTS != 0 {
            done.cqe.xfer_count as usize
        } else {
            0
        };
        let all = done.result.clone();
        let len = all.len().saturating_sub(records * 16);
        let bytes = done.into_result()?;
        let bytes = &bytes[..len.min(bytes.len())];
        let h = capos_ring::process::CallHeader::from_bytes(bytes)
            .ok_or(CallError::Protocol("short call header"))?;
        // The delivered length is the header's plus the parameters'.
        let header_len = bytes
            .len()
            .checked_sub(h.params_len as usize)
            .filter(|&n| {
                n == capos_ring::process::CALL_HEADER_SIZE
                    || n == capos_ring::process::CALL_HEADER_SESSION_SIZE
            })
            .ok_or(CallError::Protocol("call header of unknown size"))?;
        let caller_reference = if header_len == capos_ring::process::CALL_HEADER_SESSION_SIZE {
            h.reference(bytes)
        } else {
            None
        };
        let params = bytes
            .get(header_len..)
            .ok_or(CallError::Protocol("missing parameters"))?
            .to_vec();
        let caps = result_caps(&all, len, records, ring)?;
        Ok(IncomingCall {
            call_id: h.call_id,
            method_id: h.method_id,
            caller_pid: h.caller_pid,
            session_live: h.session_flags & capos_ring::process::CALLER_SESSION_LIVE != 0,
            caller_reference,
            params,
            caps,
        })
    }

    /// Answers `call_id` with `result`.
    pub fn reply(&self, call_id: u64, result: Vec<u8>) -> Result<(), CallError> {
        self.reply_with_caps(call_id, result, &[])
    }

    /// Answers `call_id` with `result` and sends `caps` to the caller, each
    /// copied ([`capos_ring::TRANSFER_COPY`]) or moved
    /// ([`capos_ring::TRANSFER_MOVE`]). If the transfer fails, nothing moves,
    /// the call stays unanswered and the error comes back here.
    pub fn reply_with_caps(
        &self,
        call_id: u64,
        result: Vec<u8>,
        caps: &[(&Cap, u32)],
    ) -> Result<(), CallError> {
        let ring = self.cap().ring();
        let t = ring.submit_return(self.cap().id(), call_id, result, false, &descriptors(caps))?;
        ring.wait(t)?.into_result().map(|_| ())
    }

    /// Answers `call_id` with an application exception.
    pub fn reply_exception(&self, call_id: u64, e: &CapException) -> Result<(), CallError> {
        let ring = self.cap().ring();
        let t = ring.submit_return(self.cap().id(), call_id, e.encode(), true, &[])?;
        ring.wait(t)?.into_result().map(|_| ())
    }

    /// Answers `call` with what a generated server dispatch produced.
    pub fn answer(&self, call_id: u64, answer: Answer) -> Result<(), CallError> {
        match answer {
            Answer::Result { bytes, caps } => {
                let sent: Vec<(&Cap, u32)> = caps.iter().map(|(c, m)| (c, *m)).collect();
                self.reply_with_caps(call_id, bytes, &sent)
            }
            Answer::Exception(e) => self.reply_exception(call_id, &e),
            Answer::Later => Ok(()),
        }
    }
}

/// What a userspace server's handler answers (the `Reply` of
/// [`ServerCall`]).
pub enum Answer {
    /// A result message, and capabilities to send with it (copied or
    /// moved, by ABI mode).
    Result {
        /// The serialized result.
        bytes: Vec<u8>,
        /// Capabilities sent with it.
        caps: Vec<(Cap, u32)>,
    },
    /// An application exception.
    Exception(CapException),
    /// Nothing yet: the handler kept the call's id
    /// ([`ServerCall::call_id`]) and answers it later itself, e.g. once a
    /// call of its own completes, while the server goes on serving others.
    Later,
}

/// One incoming call as a userspace server's handlers see it: who called,
/// the capabilities it sent, and how to answer. It is the
/// `capos_caps::server::Context` the generated `dispatch` functions take.
pub struct ServerCall {
    /// The call's id (for a handler that answers it itself, or tries to).
    pub call_id: u64,
    /// The calling process.
    pub caller_pid: u32,
    /// Capabilities sent with the call (now in this process's table, not
    /// owned: adopt or release them).
    pub caps: Vec<Cap>,
}

impl ServerCall {
    /// Answers with `message`.
    pub fn result(
        &mut self,
        message: &capnp::message::Builder<capnp::message::HeapAllocator>,
    ) -> Answer {
        Answer::Result {
            bytes: capnp::serialize::write_message_to_words(message),
            caps: Vec::new(),
        }
    }

    /// Answers with `message` and sends `caps` with it.
    pub fn result_with_caps(
        &mut self,
        message: &capnp::message::Builder<capnp::message::HeapAllocator>,
        caps: Vec<(Cap, u32)>,
    ) -> Answer {
        Answer::Result {
            bytes: capnp::serialize::write_message_to_words(message),
            caps,
        }
    }

    /// An empty result (every field at its default).
    pub fn empty(&mut self) -> Answer {
        Answer::Result {
            bytes: Vec::new(),
            caps: Vec::new(),
        }
    }
}

impl capos_caps::server::Context for ServerCall {
    type Reply = Answer;

    fn bad_params(&mut self, _interface: u64, _method: u16, error: capnp::Error) -> Answer {
        Answer::Exception(CapException::failed(alloc::format!(
            "malformed parameters: {error}"
        )))
    }

    fn no_such_method(&mut self, interface: u64, method: u16) -> Answer {
        Answer::Exception(CapException::unimplemented(interface, method))
    }
}

impl IncomingCall {
    /// The parameters, word-aligned for the decoder.
    pub fn aligned_params(&self) -> Vec<capnp::Word> {
        let mut words =
            alloc::vec![capnp::word(0, 0, 0, 0, 0, 0, 0, 0); self.params.len().div_ceil(8)];
        capnp::Word::words_to_bytes_mut(&mut words)[..self.params.len()]
            .copy_from_slice(&self.params);
        words
    }

    /// The context its handlers run in (moves the sent caps into it).
    pub fn context(&mut self) -> ServerCall {
        ServerCall {
            call_id: self.call_id,
            caller_pid: self.caller_pid,
            caps: core::mem::take(&mut self.caps),
        }
    }
}

impl Timer {
    /// Starts a sleep without waiting; collect it with [`crate::Ring::wait`]
    /// (or `poll` + `take`). Completions arrive in deadline order.
    pub fn start_sleep(&self, nanos: u64) -> Result<crate::Ticket, CallError> {
        let mut m = capnp::message::Builder::new_default();
        m.init_root::<capos_caps::schema::capos_capnp::timer::sleep_params::Builder>()
            .set_nanos(nanos);
        self.cap().ring().submit(
            self.cap().id(),
            capos_caps::api::timer::SLEEP,
            crate::wire::to_bytes(&m),
            0,
        )
    }
}

/// Result capacity for a read of up to `max` bytes: the data plus room for
/// the message framing (or an exception).
pub fn read_capacity(max: u32) -> usize {
    (max as usize + 1024).min(MAX_RESULT_LEN as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_all_concatenates_short_chunks() {
        let src: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let mut calls = 0;
        let got = read_all(src.len() as u64, |off, max| {
            calls += 1;
            assert!(max <= READ_CHUNK);
            // The object returns less than asked.
            let end = (off as usize + max.div_ceil(2) as usize).min(src.len());
            Ok(src[off as usize..end].to_vec())
        })
        .unwrap();
        assert_eq!(got, src);
        assert!(calls >= 5);
    }

    #[test]
    fn read_all_rejects_early_end_and_overlong_chunks() {
        let err = read_all(10, |off, _| {
            Ok(if off == 0 { vec![1; 4] } else { Vec::new() })
        });
        assert!(matches!(err, Err(CallError::Protocol(_))));
        let err = read_all(10, |_, max| Ok(vec![1; max as usize + 1]));
        assert!(matches!(err, Err(CallError::Protocol(_))));
        assert_eq!(
            read_all(0, |_, _| unreachable!()).unwrap(),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn read_capacity_stays_within_the_ring_limit() {
        assert!(read_capacity(u32::MAX) <= MAX_RESULT_LEN as usize);
        assert!(read_capacity(READ_CHUNK) > READ_CHUNK as usize);
    }
}
