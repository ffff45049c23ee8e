//! `FrameAllocator` and `MemoryObject`: physical memory as a capability that
//! several processes can map to share it.
//!
//! `allocate` charges the caller's ledger (`Frames`) for the pages before
//! taking any frame, and the charge travels with the frames: it is given
//! back only when the last holder has released the object and the last
//! mapping of it is gone. Each mapping additionally charges the mapping
//! process's ledger for the pages it maps, until it is unmapped or the
//! process exits, so a process cannot keep frames pinned through a mapping
//! after releasing its cap. Mappings are borrowed pages in the shared window
//! of the address space (`aspace::SHARED_BASE..SHARED_END`); the space never
//! frees them, it only drops its hold on the object after the entries are
//! gone. Shared memory is never executable.

use super::{names, serve, tri, Call, KernelObject, Outcome, ResultCap};
use crate::proc::aspace::{self, UserPerm, VmError};
use crate::proc::Process;
use alloc::boxed::Box;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use capnp::message::Builder;
use capos_caps::exception::CapException;
use capos_caps::ledger::{Reservation, Resource};
use capos_caps::schema::capos_capnp::{frame_allocator, memory_object};

const PAGE: u64 = 4096;
/// Largest object one `allocate` may ask for, in pages (16 MiB).
pub const MAX_OBJECT_PAGES: u32 = 4096;

/// The frames of one memory object and the charge for them.
struct Backing {
    frames: Vec<u64>,
    _charge: Reservation,
}

impl Drop for Backing {
    fn drop(&mut self) {
        for &f in &self.frames {
            aspace::free_frame(f);
        }
    }
}

/// What a mapping keeps while it exists: the frames and its own charge.
struct MappingHold {
    _backing: Arc<Backing>,
    _charge: Reservation,
}

/// `FrameAllocator`: allocates zeroed physical memory as `MemoryObject`s.
pub struct FrameAllocator;

impl FrameAllocator {
    fn allocate(
        &self,
        process: &Process,
        pages: u32,
        contiguous: bool,
    ) -> Result<MemoryObject, CapException> {
        if pages == 0 || pages > MAX_OBJECT_PAGES {
            return Err(CapException::failed(format!(
                "{pages} pages: an object has 1 to {MAX_OBJECT_PAGES} pages"
            )));
        }
        let count = u64::from(pages);
        let charge = process
            .ledger
            .reserve(Resource::Frames, count)
            .map_err(|e| CapException::overloaded(format!("frame quota: {e}")))?;
        let out_of_memory = || CapException::overloaded(format!("out of memory for {pages} pages"));
        let mut frames = Vec::with_capacity(pages as usize);
        if contiguous {
            let base = aspace::alloc_frame_run(count).map_err(|_| out_of_memory())?;
            frames.extend((0..count).map(|i| base + i * PAGE));
        } else {
            for _ in 0..count {
                match aspace::alloc_frame() {
                    Ok(f) => frames.push(f),
                    Err(_) => {
                        frames.into_iter().for_each(aspace::free_frame);
                        return Err(out_of_memory());
                    }
                }
            }
        }
        Ok(MemoryObject {
            backing: Arc::new(Backing {
                frames,
                _charge: charge,
            }),
        })
    }
}

names!(FrameAllocator, frame_allocator, "frame-allocator");

impl KernelObject for FrameAllocator {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(frame_allocator, self, cx)
    }
}

impl<'a> capos_caps::api::frame_allocator::Server<Call<'a>> for FrameAllocator {
    fn allocate(
        &self,
        cx: &mut Call<'a>,
        p: frame_allocator::allocate_params::Reader<'_>,
    ) -> Outcome {
        let object = tri!(self.allocate(cx.caller(), p.get_pages(), p.get_contiguous()));
        let index = cx.push_result_cap(ResultCap::new(Arc::new(object)));
        let mut out = Builder::new_default();
        out.init_root::<frame_allocator::allocate_results::Builder>()
            .set_memory(index);
        cx.reply(&out)
    }
}

/// `MemoryObject`: a set of frames any holder can map into its own space.
pub struct MemoryObject {
    backing: Arc<Backing>,
}

impl MemoryObject {
    fn pages(&self) -> u64 {
        self.backing.frames.len() as u64
    }

    /// The identity mappings are matched by at unmap.
    fn identity(&self) -> usize {
        Arc::as_ptr(&self.backing) as usize
    }

    /// Page range `[offset, offset + size)` of the object, in pages.
    fn page_range(&self, offset: u64, size: u64) -> Result<(usize, usize), CapException> {
        let end = offset
            .checked_add(size)
            .ok_or_else(|| CapException::failed("range wraps"))?;
        if size == 0 || !offset.is_multiple_of(PAGE) || !size.is_multiple_of(PAGE) {
            return Err(CapException::failed(
                "offset and size must be multiples of 4096, size non-zero",
            ));
        }
        if end > self.pages() * PAGE {
            return Err(CapException::failed(format!(
                "{offset:#x}..{end:#x} is outside the {}-byte object",
                self.pages() * PAGE
            )));
        }
        Ok(((offset / PAGE) as usize, (end / PAGE) as usize))
    }

    fn map(
        &self,
        process: &Process,
        hint: u64,
        offset: u64,
        size: u64,
        prot: u32,
    ) -> Result<u64, CapException> {
        let perm = super::vm::perm_of(prot)?;
        if perm == UserPerm::ReadExec {
            return Err(CapException::failed("shared memory is never executable"));
        }
        let (first, last) = self.page_range(offset, size)?;
        let charge = process
            .ledger
            .reserve(Resource::Frames, (last - first) as u64)
            .map_err(|e| CapException::overloaded(format!("frame quota: {e}")))?;
        let hold = Box::new(MappingHold {
            _backing: self.backing.clone(),
            _charge: charge,
        });
        process
            .aspace
            .map_borrowed(
                hint,
                &self.backing.frames[first..last],
                perm,
                self.identity(),
                hold,
            )
            .map_err(|e| match e {
                VmError::OutOfMemory => CapException::overloaded("out of memory for page tables"),
                _ => CapException::failed("no free room in the shared window"),
            })
    }

    fn unmap(&self, process: &Process, addr: u64, size: u64) -> Result<(), CapException> {
        if size == 0 || !size.is_multiple_of(PAGE) {
            return Err(CapException::failed(
                "size must be a non-zero multiple of 4096",
            ));
        }
        process
            .aspace
            .unmap_borrowed(addr, size / PAGE, self.identity())
            .map_err(|_| {
                CapException::failed(format!(
                    "{addr:#x} (+{size:#x}) is not a whole mapping of this memory object"
                ))
            })
    }
}

names!(MemoryObject, memory_object, "memory-object");

impl KernelObject for MemoryObject {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(memory_object, self, cx)
    }
}

impl<'a> capos_caps::api::memory_object::Server<Call<'a>> for MemoryObject {
    fn info(&self, cx: &mut Call<'a>) -> Outcome {
        let mut out = Builder::new_default();
        let mut r = out.init_root::<memory_object::info_results::Builder>();
        r.set_page_count(self.pages() as u32);
        r.set_size_bytes(self.pages() * PAGE);
        cx.reply(&out)
    }

    fn map(&self, cx: &mut Call<'a>, p: memory_object::map_params::Reader<'_>) -> Outcome {
        let addr = tri!(MemoryObject::map(
            self,
            cx.caller(),
            p.get_hint(),
            p.get_offset(),
            p.get_size(),
            p.get_prot(),
        ));
        let mut out = Builder::new_default();
        out.init_root::<memory_object::map_results::Builder>()
            .set_addr(addr);
        cx.reply(&out)
    }

    fn unmap(&self, cx: &mut Call<'a>, p: memory_object::unmap_params::Reader<'_>) -> Outcome {
        tri!(MemoryObject::unmap(
            self,
            cx.caller(),
            p.get_addr(),
            p.get_size()
        ));
        cx.reply_empty()
    }
}
