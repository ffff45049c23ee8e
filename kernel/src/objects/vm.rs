//! The `VirtualMemory` capability: anonymous memory in its holder's own
//! address space. `map` places zeroed pages in the anonymous window,
//! `unmap` frees them, `protect` changes their rights. W^X holds on every
//! page; the image, ring, CapSet and stack pages are not anonymous pages,
//! so no method can touch them. Every mapped page is charged to the holder's
//! ledger (`Frames`) until it is unmapped or the process exits. `unmap` and
//! `protect` change the whole range in one address-space call, so a range
//! costs one TLB shoot-down, not one per page.

use super::{names, serve, tri, Call, KernelObject, Outcome};
use crate::proc::aspace::UserPerm;
use crate::proc::Process;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::sync::{Arc, Weak};
use capnp::message::Builder;
use capos_caps::exception::CapException;
use capos_caps::ledger::{Reservation, Resource};
use capos_caps::schema::capos_capnp::virtual_memory;

/// Start of the window anonymous mappings are placed in.
pub const ANON_BASE: u64 = 0x0000_1000_0000_0000;
/// End (exclusive) of the anonymous window (below the ring, CapSet and
/// stack pages, above any service image).
pub const ANON_END: u64 = 0x0000_6000_0000_0000;
/// Largest single `map`, in bytes.
pub const MAX_MAP: u64 = 64 << 20;

const PAGE: u64 = 4096;
const PROT_READ: u32 = 1;
const PROT_WRITE: u32 = 2;
const PROT_EXEC: u32 = 4;

struct State {
    /// Anonymous pages and their rights.
    pages: BTreeMap<u64, UserPerm>,
    /// Where the next map without a usable hint goes.
    next: u64,
    /// One frame charge per page in `pages`.
    charge: Option<Reservation>,
}

/// `VirtualMemory`, bound to one process at its creation.
pub struct VirtualMemory {
    process: spin::Once<Weak<Process>>,
    state: crate::sync::SpinLock<State>,
}

impl VirtualMemory {
    /// An unbound object; `bind_holder` ties it to the process it is granted to.
    pub fn new() -> Self {
        Self {
            process: spin::Once::new(),
            state: crate::sync::SpinLock::new(State {
                pages: BTreeMap::new(),
                next: ANON_BASE,
                charge: None,
            }),
        }
    }
}

impl Default for VirtualMemory {
    fn default() -> Self {
        Self::new()
    }
}

fn failed(msg: impl Into<alloc::string::String>) -> CapException {
    CapException::failed(msg)
}

/// The page rights `prot` asks for (W^X and readable, or an exception).
pub(crate) fn perm_of(prot: u32) -> Result<UserPerm, CapException> {
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC) != 0 {
        return Err(failed(format!("unknown protection bits {prot:#x}")));
    }
    match (
        prot & PROT_READ != 0,
        prot & PROT_WRITE != 0,
        prot & PROT_EXEC != 0,
    ) {
        (_, true, true) => Err(failed("writable and executable mapping refused (W^X)")),
        (true, false, false) => Ok(UserPerm::Read),
        (true, true, false) => Ok(UserPerm::ReadWrite),
        (true, false, true) => Ok(UserPerm::ReadExec),
        (false, _, _) => Err(failed("mappings must be readable")),
    }
}

/// Page-aligned, non-empty `[addr, addr + size)` inside the anonymous window.
fn range(addr: u64, size: u64) -> Result<(u64, u64), CapException> {
    let end = addr
        .checked_add(size)
        .ok_or_else(|| failed("range wraps"))?;
    if size == 0 || !addr.is_multiple_of(PAGE) || !size.is_multiple_of(PAGE) {
        return Err(failed(
            "address and size must be non-zero multiples of 4096",
        ));
    }
    if addr < ANON_BASE || end > ANON_END {
        return Err(failed(format!(
            "{addr:#x}..{end:#x} is outside the anonymous window"
        )));
    }
    Ok((addr, end))
}

impl VirtualMemory {
    fn process(&self) -> Result<Arc<Process>, CapException> {
        self.process
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| CapException::disconnected("address space is gone"))
    }

    fn map(&self, hint: u64, size: u64, prot: u32) -> Result<u64, CapException> {
        let perm = perm_of(prot)?;
        if size > MAX_MAP {
            return Err(failed(format!(
                "{size} bytes is more than one map may ask for ({MAX_MAP})"
            )));
        }
        let process = self.process()?;
        let mut st = self.state.lock();
        let free = |st: &State, a: u64| {
            range(a, size).is_ok() && st.pages.range(a..a + size).next().is_none()
        };
        let addr = if hint != 0 && free(&st, hint) {
            hint
        } else {
            st.next
        };
        let (start, end) = range(addr, size)?;
        if !free(&st, start) {
            return Err(failed("no free room in the anonymous window"));
        }
        let pages = (end - start) / PAGE;
        let charge = process
            .ledger
            .reserve(Resource::Frames, pages)
            .map_err(|e| CapException::overloaded(format!("frame quota: {e}")))?;
        let mut va = start;
        while va < end {
            if let Err(e) = process.aspace.map_new(va, perm) {
                // Roll back what this call mapped; the charge is dropped.
                if va > start {
                    let _ = process.aspace.unmap_range(start, va);
                    st.pages.retain(|&p, _| !(start..va).contains(&p));
                }
                return Err(failed(format!("out of memory mapping {va:#x}: {e:?}")));
            }
            st.pages.insert(va, perm);
            va += PAGE;
        }
        match st.charge.as_mut() {
            Some(c) => {
                let _ = c.merge(charge);
            }
            None => st.charge = Some(charge),
        }
        st.next = st.next.max(end);
        Ok(start)
    }

    fn unmap(&self, addr: u64, size: u64) -> Result<(), CapException> {
        let (start, end) = range(addr, size)?;
        let process = self.process()?;
        let mut st = self.state.lock();
        let pages = (end - start) / PAGE;
        if st.pages.range(start..end).count() as u64 != pages {
            return Err(failed(format!(
                "{start:#x}..{end:#x} is not all mapped anonymous memory"
            )));
        }
        // One call for the whole range: one shoot-down, frames freed after.
        process
            .aspace
            .unmap_range(start, end)
            .map_err(|e| failed(format!("unmap {start:#x}..{end:#x}: {e:?}")))?;
        let mut va = start;
        while va < end {
            st.pages.remove(&va);
            va += PAGE;
        }
        if let Some(c) = st.charge.as_mut() {
            drop(c.split_off(pages));
        }
        Ok(())
    }

    fn protect(&self, addr: u64, size: u64, prot: u32) -> Result<(), CapException> {
        let perm = perm_of(prot)?;
        let (start, end) = range(addr, size)?;
        let process = self.process()?;
        let mut st = self.state.lock();
        if st.pages.range(start..end).count() as u64 != (end - start) / PAGE {
            return Err(failed(format!(
                "{start:#x}..{end:#x} is not all mapped anonymous memory"
            )));
        }
        process
            .aspace
            .protect_range(start, end, perm)
            .map_err(|e| failed(format!("protect {start:#x}..{end:#x}: {e:?}")))?;
        let mut va = start;
        while va < end {
            st.pages.insert(va, perm);
            va += PAGE;
        }
        Ok(())
    }
}

names!(VirtualMemory, virtual_memory, "virtual-memory");

impl KernelObject for VirtualMemory {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(virtual_memory, self, cx)
    }

    /// Binds the object to the process it was granted to (once).
    fn bind_holder(&self, holder: &Arc<Process>) {
        self.process.call_once(|| Arc::downgrade(holder));
    }
}

impl<'a> capos_caps::api::virtual_memory::Server<Call<'a>> for VirtualMemory {
    fn map(&self, cx: &mut Call<'a>, p: virtual_memory::map_params::Reader<'_>) -> Outcome {
        let addr = tri!(VirtualMemory::map(
            self,
            p.get_hint(),
            p.get_size(),
            p.get_prot()
        ));
        let mut out = Builder::new_default();
        out.init_root::<virtual_memory::map_results::Builder>()
            .set_addr(addr);
        cx.reply(&out)
    }

    fn unmap(&self, cx: &mut Call<'a>, p: virtual_memory::unmap_params::Reader<'_>) -> Outcome {
        tri!(VirtualMemory::unmap(self, p.get_addr(), p.get_size()));
        cx.reply_empty()
    }

    fn protect(&self, cx: &mut Call<'a>, p: virtual_memory::protect_params::Reader<'_>) -> Outcome {
        tri!(VirtualMemory::protect(
            self,
            p.get_addr(),
            p.get_size(),
            p.get_prot()
        ));
        cx.reply_empty()
    }
}
