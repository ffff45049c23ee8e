//! Typed clients for the kernel interfaces, built on the schema bindings in
//! `capos_caps::schema::capos_capnp`.
//!
//! Each method encodes its `$Params` struct, makes one blocking CALL with
//! the method's ordinal, and decodes its `$Results` struct. Transport
//! errors, exceptions and malformed results come back as [`CallError`].

use alloc::string::String;
use alloc::vec::Vec;
use capnp::message::Builder;
use capos_caps::interfaces;
pub use capos_caps::manifest::Placement;
use capos_caps::schema::capos_capnp::{boot_package, console};
use capos_ring::MAX_RESULT_LEN;

use crate::capset::Interface;
use crate::error::CallError;
use crate::handle::Cap;
use crate::wire;

macro_rules! interface {
    ($ty:ident, $id:expr, $name:literal) => {
        impl Interface for $ty {
            const INTERFACE_ID: u64 = $id;
            const NAME: &'static str = $name;
            fn from_cap(cap: Cap) -> Self {
                $ty { cap }
            }
            fn cap(&self) -> &Cap {
                &self.cap
            }
        }
    };
}

/// Method ordinals of `Console`.
mod console_method {
    pub const WRITE: u16 = 0;
    pub const WRITE_LINE: u16 = 1;
}

/// Write-only text output (`Console`).
#[derive(Clone)]
pub struct Console {
    cap: Cap,
}

interface!(Console, interfaces::CONSOLE, "Console");

impl Console {
    /// Writes raw bytes.
    pub fn write(&self, data: &[u8]) -> Result<(), CallError> {
        let mut m = Builder::new_default();
        m.init_root::<console::write_params::Builder>()
            .set_data(data);
        self.cap.call(console_method::WRITE, wire::to_bytes(&m))?;
        Ok(())
    }

    /// Writes `text` followed by a newline.
    pub fn write_line(&self, text: &str) -> Result<(), CallError> {
        let mut m = Builder::new_default();
        m.init_root::<console::write_line_params::Builder>()
            .set_text(text);
        self.cap
            .call(console_method::WRITE_LINE, wire::to_bytes(&m))?;
        Ok(())
    }
}

impl core::fmt::Write for Console {
    /// Formatting straight to the console; a failed call is `fmt::Error`.
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        Console::write(self, s.as_bytes()).map_err(|_| core::fmt::Error)
    }
}

/// Method ordinals of `BootPackage`.
mod boot_method {
    pub const MANIFEST_SIZE: u16 = 0;
    pub const READ_MANIFEST: u16 = 1;
    pub const LIST_BINARIES: u16 = 2;
    pub const READ_BINARY: u16 = 3;
}

/// One boot binary as `BootPackage.listBinaries` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryInfo {
    /// The manifest name of the binary.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Read access to the boot manifest and boot binaries (`BootPackage`).
#[derive(Clone)]
pub struct BootPackage {
    cap: Cap,
}

interface!(BootPackage, interfaces::BOOT_PACKAGE, "BootPackage");

/// Largest chunk [`BootPackage::read_manifest_all`] and
/// [`BootPackage::read_binary_all`] ask for per call. The kernel may return
/// less; the loops cope.
pub const READ_CHUNK: u32 = 16 * 1024;

/// Largest manifest [`BootPackage::read_manifest_all`] accepts: the
/// manifest decoder's own limit.
pub const MAX_MANIFEST_BYTES: u64 = capos_caps::manifest::DecodeLimits::DEFAULT.max_bytes as u64;

/// Result capacity for a read of up to `max` bytes: the data plus room for
/// the message framing (or an exception).
fn read_capacity(max: u32) -> usize {
    (max as usize + 1024).min(MAX_RESULT_LEN as usize)
}

/// Largest `maxBytes` a single read may ask for so that its result fits in
/// one ring result buffer.
pub const MAX_READ: u32 = MAX_RESULT_LEN - 1024;

impl BootPackage {
    /// Size of the manifest in bytes.
    pub fn manifest_size(&self) -> Result<u64, CallError> {
        let mut m = Builder::new_default();
        m.init_root::<boot_package::manifest_size_params::Builder>();
        let bytes = self
            .cap
            .call(boot_method::MANIFEST_SIZE, wire::to_bytes(&m))?;
        let msg = wire::read(&bytes)?;
        Ok(msg
            .get_root::<boot_package::manifest_size_results::Reader>()?
            .get_size())
    }

    /// Up to `max_bytes` of the manifest starting at `offset` (fewer at the
    /// end; `max_bytes` is capped at [`MAX_READ`]).
    pub fn read_manifest(&self, offset: u64, max_bytes: u32) -> Result<Vec<u8>, CallError> {
        let max_bytes = max_bytes.min(MAX_READ);
        let mut m = Builder::new_default();
        let mut p = m.init_root::<boot_package::read_manifest_params::Builder>();
        p.set_offset(offset);
        p.set_max_bytes(max_bytes);
        let bytes = self.cap.call_with_capacity(
            boot_method::READ_MANIFEST,
            wire::to_bytes(&m),
            read_capacity(max_bytes),
        )?;
        let msg = wire::read(&bytes)?;
        let data = msg
            .get_root::<boot_package::read_manifest_results::Reader>()?
            .get_data()?;
        if data.len() > max_bytes as usize {
            return Err(CallError::Protocol(
                "readManifest returned more than maxBytes",
            ));
        }
        Ok(data.to_vec())
    }

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
    pub fn list_binaries(&self) -> Result<Vec<BinaryInfo>, CallError> {
        let mut m = Builder::new_default();
        m.init_root::<boot_package::list_binaries_params::Builder>();
        let bytes = self.cap.call_with_capacity(
            boot_method::LIST_BINARIES,
            wire::to_bytes(&m),
            MAX_RESULT_LEN as usize,
        )?;
        let msg = wire::read(&bytes)?;
        let list = msg
            .get_root::<boot_package::list_binaries_results::Reader>()?
            .get_binaries()?;
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

    /// Up to `max_bytes` of binary `name` starting at `offset` (fewer at the
    /// end; `max_bytes` is capped at [`MAX_READ`]).
    pub fn read_binary(
        &self,
        name: &str,
        offset: u64,
        max_bytes: u32,
    ) -> Result<Vec<u8>, CallError> {
        let max_bytes = max_bytes.min(MAX_READ);
        let mut m = Builder::new_default();
        let mut p = m.init_root::<boot_package::read_binary_params::Builder>();
        p.set_name(name);
        p.set_offset(offset);
        p.set_max_bytes(max_bytes);
        let bytes = self.cap.call_with_capacity(
            boot_method::READ_BINARY,
            wire::to_bytes(&m),
            read_capacity(max_bytes),
        )?;
        let msg = wire::read(&bytes)?;
        let data = msg
            .get_root::<boot_package::read_binary_results::Reader>()?
            .get_data()?;
        if data.len() > max_bytes as usize {
            return Err(CallError::Protocol(
                "readBinary returned more than maxBytes",
            ));
        }
        Ok(data.to_vec())
    }

    /// The whole of binary `name`, whose size `listBinaries` reported as
    /// `size`, read in chunks.
    pub fn read_binary_all(&self, name: &str, size: u64) -> Result<Vec<u8>, CallError> {
        read_all(size, |offset, max| self.read_binary(name, offset, max))
    }
}

/// Reads `size` bytes through `read(offset, max)` in chunks of at most
/// [`READ_CHUNK`]; an empty chunk before the end is a protocol error.
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
        let take = chunk.len().min(want as usize);
        out.extend_from_slice(&chunk[..take]);
    }
    Ok(out)
}

/// The measurement-only `Null` interface: a call that does nothing.
#[derive(Clone)]
pub struct NullCap {
    cap: Cap,
}

interface!(NullCap, interfaces::NULL, "Null");

impl NullCap {
    /// A call with empty parameters and results.
    pub fn ping(&self) -> Result<(), CallError> {
        // `ping @0 () -> ()`: the parameters are an empty struct message.
        let mut m = Builder::new_default();
        m.init_root::<capos_caps::schema::capos_capnp::null::ping_params::Builder>();
        self.cap.call(0, wire::to_bytes(&m))?;
        Ok(())
    }
}

/// Protection bits for [`VirtualMemory`] (`capos.capnp` `prot*`).
pub mod prot {
    /// Readable.
    pub const READ: u32 = 1;
    /// Writable.
    pub const WRITE: u32 = 2;
    /// Executable.
    pub const EXEC: u32 = 4;
}

/// Anonymous memory in this process's own address space (`VirtualMemory`).
#[derive(Clone)]
pub struct VirtualMemory {
    cap: Cap,
}

interface!(VirtualMemory, interfaces::VIRTUAL_MEMORY, "VirtualMemory");

impl VirtualMemory {
    /// Maps `size` bytes (a multiple of 4096) of zeroed memory with `prot`;
    /// returns its address (at `hint` if that range is free, else chosen by
    /// the kernel; 0 = no hint).
    pub fn map(&self, hint: u64, size: u64, prot: u32) -> Result<u64, CallError> {
        use capos_caps::schema::capos_capnp::virtual_memory as vm;
        let mut m = Builder::new_default();
        let mut p = m.init_root::<vm::map_params::Builder>();
        p.set_hint(hint);
        p.set_size(size);
        p.set_prot(prot);
        let bytes = self.cap.call(0, wire::to_bytes(&m))?;
        let msg = wire::read(&bytes)?;
        Ok(msg.get_root::<vm::map_results::Reader>()?.get_addr())
    }

    /// Unmaps `[addr, addr + size)`, which must be mapped anonymous memory.
    /// Memory the heap grew into is refused with
    /// [`CallError::InvalidArgument`].
    pub fn unmap(&self, addr: u64, size: u64) -> Result<(), CallError> {
        use capos_caps::schema::capos_capnp::virtual_memory as vm;
        refuse_heap(addr, size)?;
        let mut m = Builder::new_default();
        let mut p = m.init_root::<vm::unmap_params::Builder>();
        p.set_addr(addr);
        p.set_size(size);
        self.cap.call(1, wire::to_bytes(&m)).map(|_| ())
    }

    /// Changes the rights of `[addr, addr + size)`. Memory the heap grew
    /// into is refused with [`CallError::InvalidArgument`].
    pub fn protect(&self, addr: u64, size: u64, prot: u32) -> Result<(), CallError> {
        use capos_caps::schema::capos_capnp::virtual_memory as vm;
        refuse_heap(addr, size)?;
        let mut m = Builder::new_default();
        let mut p = m.init_root::<vm::protect_params::Builder>();
        p.set_addr(addr);
        p.set_size(size);
        p.set_prot(prot);
        self.cap.call(2, wire::to_bytes(&m)).map(|_| ())
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

    /// The memory as bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the kernel mapped [addr, addr + len) read-write and zeroed
        // it for this process; only this buffer hands out references to it,
        // and `&mut self` makes the borrow exclusive. It stays mapped until
        // the program unmaps it, which needs the address and is its own
        // responsibility (after that, this buffer must not be used).
        unsafe { core::slice::from_raw_parts_mut(self.addr as *mut u8, self.len) }
    }
}

/// Allocates physical memory as [`MemoryObject`]s (`FrameAllocator`). The
/// frames are charged to this process until the object is gone.
#[derive(Clone)]
pub struct FrameAllocator {
    cap: Cap,
}

interface!(
    FrameAllocator,
    interfaces::FRAME_ALLOCATOR,
    "FrameAllocator"
);

impl FrameAllocator {
    /// A new object of `pages` zeroed pages (physically consecutive if
    /// `contiguous`).
    pub fn allocate(
        &self,
        pages: u32,
        contiguous: bool,
    ) -> Result<crate::Owned<MemoryObject>, CallError> {
        use capos_caps::schema::capos_capnp::frame_allocator as fa;
        let mut m = Builder::new_default();
        let mut p = m.init_root::<fa::allocate_params::Builder>();
        p.set_pages(pages);
        p.set_contiguous(contiguous);
        let ring = self.cap.ring();
        let t = ring.submit(self.cap.id(), 0, wire::to_bytes(&m), 256)?;
        let (bytes, mut caps) = split_result_caps(ring.wait(t)?, ring)?;
        let index = wire::read(&bytes)?
            .get_root::<fa::allocate_results::Reader>()?
            .get_memory();
        if usize::from(index) >= caps.len() {
            return Err(CallError::Protocol("bad memory object index"));
        }
        crate::Owned::adopt_checked(caps.swap_remove(usize::from(index)).into_cap())
    }
}

/// Physical memory that any holder can map into its own space
/// (`MemoryObject`): the way two processes share memory.
#[derive(Clone)]
pub struct MemoryObject {
    cap: Cap,
}

interface!(MemoryObject, interfaces::MEMORY_OBJECT, "MemoryObject");

impl MemoryObject {
    /// The object's size: `(pages, bytes)`.
    pub fn info(&self) -> Result<(u32, u64), CallError> {
        use capos_caps::schema::capos_capnp::memory_object as mo;
        let mut m = Builder::new_default();
        m.init_root::<mo::info_params::Builder>();
        let bytes = self.cap.call(0, wire::to_bytes(&m))?;
        let msg = wire::read(&bytes)?;
        let r = msg.get_root::<mo::info_results::Reader>()?;
        Ok((r.get_page_count(), r.get_size_bytes()))
    }

    /// Maps `size` bytes of the object from `offset` (both multiples of
    /// 4096) with `prot` (never executable); returns the address (at `hint`
    /// if that range is free, else chosen by the kernel; 0 = no hint).
    pub fn map(&self, hint: u64, offset: u64, size: u64, prot: u32) -> Result<u64, CallError> {
        use capos_caps::schema::capos_capnp::memory_object as mo;
        let mut m = Builder::new_default();
        let mut p = m.init_root::<mo::map_params::Builder>();
        p.set_hint(hint);
        p.set_offset(offset);
        p.set_size(size);
        p.set_prot(prot);
        let bytes = self.cap.call(1, wire::to_bytes(&m))?;
        let msg = wire::read(&bytes)?;
        Ok(msg.get_root::<mo::map_results::Reader>()?.get_addr())
    }

    /// Removes a whole mapping [`MemoryObject::map`] made.
    pub fn unmap(&self, addr: u64, size: u64) -> Result<(), CallError> {
        use capos_caps::schema::capos_capnp::memory_object as mo;
        let mut m = Builder::new_default();
        let mut p = m.init_root::<mo::unmap_params::Builder>();
        p.set_addr(addr);
        p.set_size(size);
        self.cap.call(2, wire::to_bytes(&m)).map(|_| ())
    }

    /// Maps the whole object read-write and returns a view of it.
    #[cfg(target_os = "none")]
    pub fn map_shared(&self) -> Result<SharedMemory, CallError> {
        let (_, size) = self.info()?;
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

/// Starts boot binaries as processes (`ProcessSpawner`; held by init).
#[derive(Clone)]
pub struct ProcessSpawner {
    cap: Cap,
}

interface!(
    ProcessSpawner,
    interfaces::PROCESS_SPAWNER,
    "ProcessSpawner"
);

impl ProcessSpawner {
    /// Starts boot binary `binary` as a process named `name` holding exactly
    /// the kernel-minted `grants`; returns an owned handle to it.
    pub fn spawn(
        &self,
        name: &str,
        binary: &str,
        grants: &[KernelGrant<'_>],
    ) -> Result<crate::Owned<ProcessHandle>, CallError> {
        let specs: Vec<GrantSpec<'_>> = grants
            .iter()
            .map(|g| GrantSpec::Kernel {
                name: g.name,
                kind: g.kind,
            })
            .collect();
        Ok(self.spawn_with(name, binary, &specs)?.handle)
    }

    /// Starts `binary` with `grants`, which may also copy capabilities this
    /// process holds ([`GrantSpec::Copy`]). Returns the handle and, for each
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
        use capos_caps::schema::capos_capnp::process_spawner as ps;
        let placement = options.placement;
        if let Placement::Unknown(_) = placement {
            return Err(CallError::InvalidArgument("unknown placement"));
        }
        let mut transfers = Vec::new();
        let mut m = Builder::new_default();
        {
            let mut p = m.init_root::<ps::spawn_params::Builder>();
            p.set_name(name);
            p.set_binary_name(binary);
            p.set_frame_limit(options.frame_limit);
            p.set_cap_slot_limit(options.cap_slot_limit);
            if placement != Placement::AnyCpu {
                capos_caps::manifest::write_placement(placement, p.reborrow().init_placement());
            }
            let mut list = p.init_grants(grants.len() as u32);
            for (i, g) in grants.iter().enumerate() {
                let mut e = list.reborrow().get(i as u32);
                match g {
                    GrantSpec::Kernel { name, kind } => {
                        e.set_name(name);
                        e.set_expected_interface_id(kind.interface_id());
                        e.init_source()
                            .set_kernel(capos_caps::manifest::kind_to_schema(*kind));
                    }
                    GrantSpec::Copy { name, cap } => {
                        e.set_name(name);
                        e.set_expected_interface_id(cap.interface_id());
                        e.init_source().set_transferred(transfers.len() as u16);
                        transfers.push(capos_ring::TransferDescriptor {
                            cap_id: cap.id(),
                            mode: capos_ring::TRANSFER_COPY,
                            reserved0: 0,
                        });
                    }
                }
            }
        }
        let ring = self.cap.ring();
        let ticket =
            ring.submit_with_transfers(self.cap.id(), 0, wire::to_bytes(&m), 2048, &transfers)?;
        let done = ring.wait(ticket)?;
        let cqe = done.cqe;
        let len = match cqe.status() {
            capos_ring::CqeStatus::Ok(n) => n as usize,
            _ => {
                return done
                    .into_result()
                    .and(Err(CallError::Protocol("spawn failed")))
            }
        };
        if cqe.flags & capos_ring::CQE_FLAG_TRANSFER_RESULTS == 0 || cqe.xfer_count == 0 {
            // An exception, or a malformed reply.
            done.into_result()?;
            return Err(CallError::Protocol("spawn returned no process handle"));
        }
        let caps = result_caps(&done.result, len, cqe.xfer_count as usize, ring)?;
        let msg = wire::read(&done.result[..len])?;
        let r = msg.get_root::<ps::spawn_results::Reader>()?;
        let handle_cap = caps
            .get(usize::from(r.get_handle()))
            .cloned()
            .ok_or(CallError::Protocol("bad handle index"))?;
        let handle = crate::Owned::adopt_checked(handle_cap)?;
        let mut facets = Vec::new();
        for f in r.get_facets()? {
            let cap = caps
                .get(usize::from(f.get_client()))
                .cloned()
                .ok_or(CallError::Protocol("bad facet index"))?;
            let grant = f
                .get_grant()?
                .to_str()
                .map_err(|_| CallError::Protocol("facet name is not UTF-8"))?;
            facets.push((
                alloc::string::String::from(grant),
                crate::Owned::adopt_checked(cap)?,
            ));
        }
        Ok(Spawned { handle, facets })
    }
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
}

/// What [`ProcessSpawner::spawn_with`] returns.
pub struct Spawned {
    /// The child.
    pub handle: crate::Owned<ProcessHandle>,
    /// For each endpoint grant (by grant name), a client facet.
    pub facets: Vec<(alloc::string::String, crate::Owned<ClientEndpoint>)>,
}

/// The client side of an endpoint (`ClientEndpoint`): CALL only, with the
/// method ids and parameters of whatever protocol the server speaks.
#[derive(Clone)]
pub struct ClientEndpoint {
    cap: Cap,
}

interface!(
    ClientEndpoint,
    interfaces::CLIENT_ENDPOINT,
    "ClientEndpoint"
);

impl ClientEndpoint {
    /// Calls the server: `method` with raw `params`; returns its raw result.
    pub fn call(&self, method: u16, params: Vec<u8>) -> Result<Vec<u8>, CallError> {
        self.cap.call(method, params)
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
    ) -> Result<(Vec<u8>, Vec<crate::CapHandle>), CallError> {
        let ring = self.cap.ring();
        let t =
            ring.submit_with_transfers(self.cap.id(), method, params, 4096, &descriptors(caps))?;
        split_result_caps(ring.wait(t)?, ring)
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

/// The result bytes of a completion and the capabilities after them, owned
/// (released on drop unless adopted). An error or exception carries none.
fn split_result_caps(
    done: crate::Completion,
    ring: &crate::Ring,
) -> Result<(Vec<u8>, Vec<crate::CapHandle>), CallError> {
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
        .map(crate::CapHandle::adopt)
        .collect();
    let mut bytes = done.into_result()?;
    bytes.truncate(len);
    Ok((bytes, caps))
}

/// The owner side of an endpoint (`Endpoint`): receives calls and answers
/// them.
#[derive(Clone)]
pub struct Endpoint {
    cap: Cap,
}

interface!(Endpoint, interfaces::ENDPOINT, "Endpoint");

/// A call delivered by [`Endpoint::recv`].
pub struct IncomingCall {
    /// Id to answer with.
    pub call_id: u64,
    /// Method the caller invoked.
    pub method_id: u16,
    /// The calling process.
    pub caller_pid: u32,
    /// The caller's parameter bytes.
    pub params: Vec<u8>,
    /// Capabilities the caller sent, now in this process's table.
    pub caps: Vec<Cap>,
}

impl Endpoint {
    /// A new client facet of this endpoint (CALL only), owned.
    pub fn client_facet(&self) -> Result<crate::Owned<ClientEndpoint>, CallError> {
        use capos_caps::schema::capos_capnp::endpoint as ep;
        let mut m = Builder::new_default();
        m.init_root::<ep::client_facet_params::Builder>();
        let ring = self.cap.ring();
        let t = ring.submit(self.cap.id(), 0, wire::to_bytes(&m), 256)?;
        let (bytes, mut caps) = split_result_caps(ring.wait(t)?, ring)?;
        let index = usize::from(
            wire::read(&bytes)?
                .get_root::<ep::client_facet_results::Reader>()?
                .get_client(),
        );
        if index >= caps.len() {
            return Err(CallError::Protocol("bad client facet index"));
        }
        crate::Owned::adopt_checked(caps.swap_remove(index).into_cap())
    }

    /// Blocks until a call arrives (parameters up to `capacity` bytes).
    pub fn recv(&self, capacity: usize) -> Result<IncomingCall, CallError> {
        let ring = self.cap.ring();
        let ticket = ring.submit_recv(
            self.cap.id(),
            capos_ring::process::CALL_HEADER_SIZE + capacity,
        )?;
        let done = ring.wait(ticket)?;
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
        let params = bytes
            .get(capos_ring::process::CALL_HEADER_SIZE..)
            .ok_or(CallError::Protocol("missing parameters"))?
            .to_vec();
        let caps = result_caps(&all, len, records, ring)?;
        Ok(IncomingCall {
            call_id: h.call_id,
            method_id: h.method_id,
            caller_pid: h.caller_pid,
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
        let ring = self.cap.ring();
        let t = ring.submit_return(self.cap.id(), call_id, result, false, &descriptors(caps))?;
        ring.wait(t)?.into_result().map(|_| ())
    }

    /// Answers `call_id` with an application exception.
    pub fn reply_exception(
        &self,
        call_id: u64,
        e: &capos_caps::exception::CapException,
    ) -> Result<(), CallError> {
        let ring = self.cap.ring();
        let t = ring.submit_return(self.cap.id(), call_id, e.encode(), true, &[])?;
        ring.wait(t)?.into_result().map(|_| ())
    }
}

/// A child process (`ProcessHandle`).
#[derive(Clone)]
pub struct ProcessHandle {
    cap: Cap,
}

interface!(ProcessHandle, interfaces::PROCESS_HANDLE, "ProcessHandle");

impl ProcessHandle {
    /// Blocks until the child exits; returns its exit code (at once if it
    /// already has).
    pub fn wait(&self) -> Result<i64, CallError> {
        use capos_caps::schema::capos_capnp::process_handle as ph;
        let mut m = Builder::new_default();
        m.init_root::<ph::wait_params::Builder>();
        let bytes = self.cap.call(0, wire::to_bytes(&m))?;
        Ok(wire::read(&bytes)?
            .get_root::<ph::wait_results::Reader>()?
            .get_exit_code())
    }

    /// The child's pid.
    pub fn pid(&self) -> Result<u64, CallError> {
        use capos_caps::schema::capos_capnp::process_handle as ph;
        let mut m = Builder::new_default();
        m.init_root::<ph::pid_params::Builder>();
        let bytes = self.cap.call(1, wire::to_bytes(&m))?;
        Ok(wire::read(&bytes)?
            .get_root::<ph::pid_results::Reader>()?
            .get_pid())
    }
}

/// Monotonic time and sleeps (`Timer`).
#[derive(Clone)]
pub struct Timer {
    cap: Cap,
}

interface!(Timer, interfaces::TIMER, "Timer");

impl Timer {
    /// Nanoseconds on the kernel's monotonic clock.
    pub fn now(&self) -> Result<u64, CallError> {
        let mut m = Builder::new_default();
        m.init_root::<capos_caps::schema::capos_capnp::timer::now_params::Builder>();
        let bytes = self.cap.call(0, wire::to_bytes(&m))?;
        let msg = wire::read(&bytes)?;
        Ok(msg
            .get_root::<capos_caps::schema::capos_capnp::timer::now_results::Reader>()?
            .get_nanos())
    }

    /// Blocks for at least `nanos` nanoseconds.
    pub fn sleep(&self, nanos: u64) -> Result<(), CallError> {
        self.cap
            .ring()
            .wait(self.start_sleep(nanos)?)?
            .into_result()
            .map(|_| ())
    }

    /// Starts a sleep without waiting; collect it with [`crate::Ring::wait`]
    /// (or `poll` + `take`). Completions arrive in deadline order.
    pub fn start_sleep(&self, nanos: u64) -> Result<crate::Ticket, CallError> {
        let mut m = Builder::new_default();
        m.init_root::<capos_caps::schema::capos_capnp::timer::sleep_params::Builder>()
            .set_nanos(nanos);
        self.cap
            .ring()
            .submit(self.cap.id(), 1, wire::to_bytes(&m), 0)
    }
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
    fn read_all_rejects_early_end() {
        let err = read_all(10, |off, _| {
            Ok(if off == 0 { vec![1; 4] } else { Vec::new() })
        });
        assert!(matches!(err, Err(CallError::Protocol(_))));
        assert_eq!(
            read_all(0, |_, _| unreachable!()).unwrap(),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn read_capacity_stays_within_the_ring_limit() {
        assert!(read_capacity(MAX_READ) <= MAX_RESULT_LEN as usize);
        assert!(read_capacity(u32::MAX) <= MAX_RESULT_LEN as usize);
        assert!(read_capacity(READ_CHUNK) > READ_CHUNK as usize);
    }
}
