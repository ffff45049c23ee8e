//! User memory as typed, checked ranges.
//!
//! A buffer named in an SQE reaches the kernel as a raw address and length.
//! `capos_ring::UserBuf` has already checked the arithmetic (inside the user
//! half, no wrap, within its length limit); here it becomes a [`UserRead`]
//! or [`UserWrite`], which is the only form the address-space accessors
//! (`AddressSpace::read`, `write`, `copy_between`) take. Whether the pages
//! are mapped with the needed rights is checked by those accessors under
//! the address-space lock, in the same hold as the copy they guard, so a
//! concurrent unmap can never land between a check and its copy. The kernel
//! never forms a Rust reference into user memory: copies go through the
//! direct map of the frames the page tables name.

use capos_ring::UserBuf;

/// A range of one process's memory the kernel may read (`WRITE = false`)
/// or write (`WRITE = true`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserSlice<const WRITE: bool> {
    addr: u64,
    len: u32,
}

/// A user buffer the kernel reads (parameters, payloads, descriptors).
pub type UserRead = UserSlice<false>;
/// A user buffer the kernel writes (results, received calls).
pub type UserWrite = UserSlice<true>;

impl<const WRITE: bool> UserSlice<WRITE> {
    /// The empty range.
    pub const EMPTY: Self = UserSlice { addr: 0, len: 0 };

    /// A range whose arithmetic the ring ABI has checked.
    pub const fn from_buf(buf: UserBuf) -> Self {
        UserSlice {
            addr: buf.addr(),
            len: buf.len(),
        }
    }

    /// A range the kernel itself computed (for example the ring page): the
    /// caller vouches that it lies in the user half without wrapping.
    pub const fn trusted(addr: u64, len: u32) -> Self {
        UserSlice { addr, len }
    }

    /// First address.
    pub const fn addr(self) -> u64 {
        self.addr
    }

    /// Length in bytes.
    pub const fn len(self) -> u32 {
        self.len
    }

    /// Whether the range is empty.
    pub const fn is_empty(self) -> bool {
        self.len == 0
    }
}
