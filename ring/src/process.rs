//! The process ABI: how the kernel starts a process, the two system calls,
//! the fixed user addresses of the ring and CapSet pages, and the CapSet
//! page layout. Like the ring layout, every value here is ABI.
//!
//! # Entry
//!
//! A process starts at its ELF entry point in ring 3 with
//! `RDI` = [`RING_ADDR`], `RSI` = its pid, `RDX` = [`CAPSET_ADDR`],
//! `RSP` = [`STACK_TOP`] (16-byte aligned), every other general register zero
//! and `RFLAGS.IF` set.
//!
//! # System calls
//!
//! `SYSCALL` with the number in `RAX` and arguments in `RDI`, `RSI`; the
//! result comes back in `RAX`. Registers follow a C function call: `RCX` and
//! `R11` are clobbered (the CPU uses them), `RDI`, `RSI`, `RDX` and
//! `R8`-`R10` come back zero, and `RBX`, `RBP`, `RSP`, `R12`-`R15` are
//! preserved. (The kernel then saves nothing on entry but the return
//! state: an empty `cap_enter` is a few instructions shorter.)
//!
//! | number | call | arguments | result |
//! |---|---|---|---|
//! | [`SYS_CAP_ENTER`] | `cap_enter(min_complete, timeout_ns)` | completions wanted, timeout | completions available (≥ 0), or a negative [`SyscallError`] / [`crate::TransportError`] code |
//! | [`SYS_EXIT`] | `exit(code)` | exit code | does not return |
//!
//! `cap_enter` drains the caller's submission queue, then waits until at
//! least `min_complete` completions are available, or `timeout_ns`
//! nanoseconds pass (`0` never waits, [`TIMEOUT_FOREVER`] waits forever).

/// `cap_enter(min_complete, timeout_ns)`.
pub const SYS_CAP_ENTER: u64 = 0;
/// `exit(code)`.
pub const SYS_EXIT: u64 = 1;
/// `timeout_ns` value that waits without limit.
pub const TIMEOUT_FOREVER: u64 = u64::MAX;

/// Lowest address a service image may occupy (the first MiB stays unmapped
/// so null-pointer-like accesses fault).
pub const USER_IMAGE_MIN: u64 = 0x0010_0000;
/// Address services are linked at by `rt/link.ld`.
pub const USER_IMAGE_BASE: u64 = 0x0040_0000;
/// End (exclusive) of the range service images may occupy.
pub const USER_IMAGE_END: u64 = 0x0000_7000_0000_0000;
/// The process's ring, writable, never executable.
pub const RING_ADDR: u64 = 0x0000_7fff_f000_0000;
/// The process's CapSet page, read-only, never executable.
pub const CAPSET_ADDR: u64 = 0x0000_7fff_f001_0000;
/// Initial stack pointer; the stack grows down from here.
pub const STACK_TOP: u64 = 0x0000_7fff_ffff_0000;
/// Stack size in pages; the page below the stack is never mapped.
pub const STACK_PAGES: u64 = 16;

/// Errors `cap_enter` and unknown syscalls return (negative `RAX`). They do
/// not overlap [`crate::TransportError`] codes.
#[repr(i64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyscallError {
    /// The syscall number is not `cap_enter` or `exit`.
    BadSyscall = -32,
    /// `min_complete` is larger than the completion queue.
    MinCompleteTooLarge = -33,
}

impl SyscallError {
    /// The raw `RAX` value.
    pub const fn code(self) -> i64 {
        self as i64
    }

    /// The error for a raw value, if it is one of these.
    pub const fn from_code(code: i64) -> Option<Self> {
        match code {
            -32 => Some(Self::BadSyscall),
            -33 => Some(Self::MinCompleteTooLarge),
            _ => None,
        }
    }
}

/// `"CSET"`: first word of the CapSet page.
pub const CAPSET_MAGIC: u32 = u32::from_le_bytes(*b"CSET");
/// Version of the CapSet layout.
pub const CAPSET_VERSION: u32 = 1;
/// Longest capability name in a CapSet entry.
pub const CAPSET_NAME_MAX: usize = 31;
/// Size of the CapSet header.
pub const CAPSET_HEADER_SIZE: usize = 16;
/// Size of one CapSet entry.
pub const CAPSET_ENTRY_SIZE: usize = 48;
/// Most entries one CapSet page holds.
pub const CAPSET_MAX_ENTRIES: usize = (4096 - CAPSET_HEADER_SIZE) / CAPSET_ENTRY_SIZE;

/// Header of the CapSet page: `magic`, `version`, `count`, `entry_size`
/// (four little-endian `u32`s), followed by `count` [`CapSetEntry`]s.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapSetHeader {
    /// [`CAPSET_MAGIC`].
    pub magic: u32,
    /// [`CAPSET_VERSION`].
    pub version: u32,
    /// Number of entries.
    pub count: u32,
    /// [`CAPSET_ENTRY_SIZE`].
    pub entry_size: u32,
}

/// One named bootstrap capability: `cap_id` (u64), `interface_id` (u64),
/// `name_len` (u8), `name` (31 bytes, UTF-8, zero-padded).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapSetEntry {
    /// The capability id in the process's table.
    pub cap_id: u64,
    /// The Cap'n Proto interface id the capability exposes.
    pub interface_id: u64,
    /// Bytes of `name` in use.
    pub name_len: u8,
    /// The name, zero-padded.
    pub name: [u8; CAPSET_NAME_MAX],
}

const _: () = {
    assert!(core::mem::size_of::<CapSetHeader>() == CAPSET_HEADER_SIZE);
    assert!(core::mem::size_of::<CapSetEntry>() == CAPSET_ENTRY_SIZE);
    assert!(core::mem::offset_of!(CapSetEntry, interface_id) == 8);
    assert!(core::mem::offset_of!(CapSetEntry, name_len) == 16);
    assert!(core::mem::offset_of!(CapSetEntry, name) == 17);
    assert!(RING_ADDR > USER_IMAGE_END && CAPSET_ADDR > RING_ADDR);
    assert!(STACK_TOP - (STACK_PAGES + 1) * 4096 > CAPSET_ADDR);
};

impl CapSetEntry {
    /// An entry, or `None` if the name is empty or longer than
    /// [`CAPSET_NAME_MAX`].
    pub fn new(name: &str, cap_id: u64, interface_id: u64) -> Option<Self> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > CAPSET_NAME_MAX {
            return None;
        }
        let mut buf = [0u8; CAPSET_NAME_MAX];
        buf[..bytes.len()].copy_from_slice(bytes);
        Some(Self {
            cap_id,
            interface_id,
            name_len: bytes.len() as u8,
            name: buf,
        })
    }

    /// The name, if `name_len` and the bytes are valid.
    pub fn name(&self) -> Option<&str> {
        let bytes = self.name.get(..usize::from(self.name_len))?;
        core::str::from_utf8(bytes).ok()
    }

    fn to_bytes(self) -> [u8; CAPSET_ENTRY_SIZE] {
        let mut out = [0u8; CAPSET_ENTRY_SIZE];
        out[0..8].copy_from_slice(&self.cap_id.to_le_bytes());
        out[8..16].copy_from_slice(&self.interface_id.to_le_bytes());
        out[16] = self.name_len;
        out[17..48].copy_from_slice(&self.name);
        out
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        let word = |r: core::ops::Range<usize>| -> Option<u64> {
            Some(u64::from_le_bytes(b.get(r)?.try_into().ok()?))
        };
        let mut name = [0u8; CAPSET_NAME_MAX];
        name.copy_from_slice(b.get(17..48)?);
        Some(Self {
            cap_id: word(0..8)?,
            interface_id: word(8..16)?,
            name_len: *b.get(16)?,
            name,
        })
    }
}

/// Why CapSet bytes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapSetError {
    /// Too short for the header or the entries it announces.
    Truncated,
    /// Wrong magic, version or entry size.
    BadHeader,
    /// More entries than [`CAPSET_MAX_ENTRIES`] (or than the output holds).
    TooMany,
}

/// Writes a CapSet page image into `page` (at least 4096 bytes).
pub fn encode_capset(entries: &[CapSetEntry], page: &mut [u8]) -> Result<(), CapSetError> {
    if entries.len() > CAPSET_MAX_ENTRIES {
        return Err(CapSetError::TooMany);
    }
    let need = CAPSET_HEADER_SIZE + entries.len() * CAPSET_ENTRY_SIZE;
    let out = page.get_mut(..need).ok_or(CapSetError::Truncated)?;
    out[0..4].copy_from_slice(&CAPSET_MAGIC.to_le_bytes());
    out[4..8].copy_from_slice(&CAPSET_VERSION.to_le_bytes());
    out[8..12].copy_from_slice(&(entries.len() as u32).to_le_bytes());
    out[12..16].copy_from_slice(&(CAPSET_ENTRY_SIZE as u32).to_le_bytes());
    for (i, e) in entries.iter().enumerate() {
        let at = CAPSET_HEADER_SIZE + i * CAPSET_ENTRY_SIZE;
        out[at..at + CAPSET_ENTRY_SIZE].copy_from_slice(&e.to_bytes());
    }
    Ok(())
}

/// A validated view of CapSet bytes.
#[derive(Clone, Copy, Debug)]
pub struct CapSet<'a> {
    entries: &'a [u8],
    count: usize,
}

impl<'a> CapSet<'a> {
    /// Checks the header and that every announced entry is present.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CapSetError> {
        let word = |at: usize| -> Result<u32, CapSetError> {
            let b = bytes.get(at..at + 4).ok_or(CapSetError::Truncated)?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        if word(0)? != CAPSET_MAGIC
            || word(4)? != CAPSET_VERSION
            || word(12)? as usize != CAPSET_ENTRY_SIZE
        {
            return Err(CapSetError::BadHeader);
        }
        let count = word(8)? as usize;
        if count > CAPSET_MAX_ENTRIES {
            return Err(CapSetError::TooMany);
        }
        let end = CAPSET_HEADER_SIZE + count * CAPSET_ENTRY_SIZE;
        let entries = bytes
            .get(CAPSET_HEADER_SIZE..end)
            .ok_or(CapSetError::Truncated)?;
        Ok(Self { entries, count })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entries in order (an entry whose bytes do not decode is skipped).
    pub fn iter(&self) -> impl Iterator<Item = CapSetEntry> + 'a {
        self.entries
            .chunks_exact(CAPSET_ENTRY_SIZE)
            .filter_map(CapSetEntry::from_bytes)
    }

    /// The entry named `name`.
    pub fn find(&self, name: &str) -> Option<CapSetEntry> {
        self.iter().find(|e| e.name() == Some(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capset_round_trips_and_finds_by_name() {
        let entries = [
            CapSetEntry::new("console", 0x0101, 0xdfa8_4506_728b_f29c).unwrap(),
            CapSetEntry::new("boot", 0x0102, 0xf2b5_3ebe_0df4_188d).unwrap(),
        ];
        let mut page = [0u8; 4096];
        encode_capset(&entries, &mut page).unwrap();
        let set = CapSet::parse(&page).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.find("boot"), Some(entries[1]));
        assert_eq!(set.find("missing"), None);
        assert_eq!(set.iter().collect::<Vec<_>>(), entries);
    }

    #[test]
    fn names_are_bounded() {
        assert!(CapSetEntry::new("", 1, 2).is_none());
        assert!(CapSetEntry::new(&"x".repeat(CAPSET_NAME_MAX), 1, 2).is_some());
        assert!(CapSetEntry::new(&"x".repeat(CAPSET_NAME_MAX + 1), 1, 2).is_none());
    }

    #[test]
    fn hostile_capset_bytes_are_refused() {
        let mut page = [0u8; 4096];
        assert_eq!(CapSet::parse(&page).unwrap_err(), CapSetError::BadHeader);
        encode_capset(&[], &mut page).unwrap();
        page[8..12].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(CapSet::parse(&page).unwrap_err(), CapSetError::TooMany);
        page[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(
            CapSet::parse(&page[..40]).unwrap_err(),
            CapSetError::Truncated
        );
        assert_eq!(
            CapSet::parse(&page[..3]).unwrap_err(),
            CapSetError::Truncated
        );
        let mut e = CapSetEntry::new("ok", 1, 2).unwrap();
        e.name_len = 200;
        assert_eq!(e.name(), None);
    }

    #[test]
    fn syscall_errors_round_trip() {
        for e in [SyscallError::BadSyscall, SyscallError::MinCompleteTooLarge] {
            assert_eq!(SyscallError::from_code(e.code()), Some(e));
        }
        assert_eq!(SyscallError::from_code(-1), None);
    }
}

/// Header the kernel writes at the start of a RECV buffer when it delivers a
/// call, followed by the call's parameter bytes. Little-endian:
/// `call_id` (u64), `method_id` (u16), `session_flags` (u16), `params_len`
/// (u32), `caller_pid` (u32), reserved (u32); with
/// [`crate::RECV_FLAG_CALLER_SESSION`] the header is
/// [`CALL_HEADER_SESSION_SIZE`] bytes and bytes 24..40 hold the caller
/// reference (when [`CALLER_REFERENCE_PRESENT`] is set). The RECV
/// completion's `result` is the header plus parameter length and its
/// `call_id` field repeats `call_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallHeader {
    /// Non-zero id to answer with RETURN.
    pub call_id: u64,
    /// Method ordinal the caller invoked (the endpoint's own protocol).
    pub method_id: u16,
    /// [`CALLER_SESSION_LIVE`], [`CALLER_REFERENCE_PRESENT`].
    pub session_flags: u16,
    /// Bytes of parameters after the header.
    pub params_len: u32,
    /// The calling process.
    pub caller_pid: u32,
}

/// Size of [`CallHeader`] in a RECV buffer.
pub const CALL_HEADER_SIZE: usize = 24;
/// Size of the header a RECV with [`crate::RECV_FLAG_CALLER_SESSION`]
/// receives: [`CallHeader`], then the 16-byte caller reference.
pub const CALL_HEADER_SESSION_SIZE: usize = 40;
/// Bytes of a caller reference.
pub const CALLER_REFERENCE_LEN: usize = 16;

/// `session_flags`: the caller's session (the session of the scoped
/// capability the call went through, else the calling process's) was live
/// when the call was made. Always delivered.
pub const CALLER_SESSION_LIVE: u16 = 1 << 0;
/// `session_flags`: bytes 24..40 hold the caller reference (only on a RECV
/// that asked for it).
pub const CALLER_REFERENCE_PRESENT: u16 = 1 << 1;

impl CallHeader {
    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; CALL_HEADER_SIZE] {
        let mut b = [0u8; CALL_HEADER_SIZE];
        b[0..8].copy_from_slice(&self.call_id.to_le_bytes());
        b[8..10].copy_from_slice(&self.method_id.to_le_bytes());
        b[10..12].copy_from_slice(&self.session_flags.to_le_bytes());
        b[12..16].copy_from_slice(&self.params_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.caller_pid.to_le_bytes());
        b
    }

    /// The header's bytes followed by `reference` (a
    /// [`CALL_HEADER_SESSION_SIZE`]-byte header).
    pub fn to_bytes_with_reference(
        &self,
        reference: &[u8; CALLER_REFERENCE_LEN],
    ) -> [u8; CALL_HEADER_SESSION_SIZE] {
        let mut b = [0u8; CALL_HEADER_SESSION_SIZE];
        b[..CALL_HEADER_SIZE].copy_from_slice(&self.to_bytes());
        b[CALL_HEADER_SIZE..].copy_from_slice(reference);
        b
    }

    /// Parses a header, if `b` is long enough.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let h = b.get(..CALL_HEADER_SIZE)?;
        Some(Self {
            call_id: u64::from_le_bytes(h[0..8].try_into().ok()?),
            method_id: u16::from_le_bytes(h[8..10].try_into().ok()?),
            session_flags: u16::from_le_bytes(h[10..12].try_into().ok()?),
            params_len: u32::from_le_bytes(h[12..16].try_into().ok()?),
            caller_pid: u32::from_le_bytes(h[16..20].try_into().ok()?),
        })
    }

    /// The caller reference of a [`CALL_HEADER_SESSION_SIZE`]-byte header,
    /// if its flags say one is there.
    pub fn reference(&self, b: &[u8]) -> Option<[u8; CALLER_REFERENCE_LEN]> {
        if self.session_flags & CALLER_REFERENCE_PRESENT == 0 {
            return None;
        }
        b.get(CALL_HEADER_SIZE..CALL_HEADER_SESSION_SIZE)?
            .try_into()
            .ok()
    }
}

#[cfg(test)]
mod call_header_tests {
    use super::*;

    #[test]
    fn call_header_round_trips_and_rejects_short_input() {
        let h = CallHeader {
            call_id: 7,
            method_id: 3,
            session_flags: CALLER_SESSION_LIVE,
            params_len: 100,
            caller_pid: 9,
        };
        assert_eq!(CallHeader::from_bytes(&h.to_bytes()), Some(h));
        assert_eq!(h.reference(&h.to_bytes()), None);
        assert_eq!(CallHeader::from_bytes(&[0u8; CALL_HEADER_SIZE - 1]), None);
    }

    #[test]
    fn session_header_carries_flags_at_10_and_the_reference_at_24() {
        let h = CallHeader {
            call_id: 7,
            method_id: 3,
            session_flags: CALLER_SESSION_LIVE | CALLER_REFERENCE_PRESENT,
            params_len: 0,
            caller_pid: 9,
        };
        let r = [0xab; CALLER_REFERENCE_LEN];
        let b = h.to_bytes_with_reference(&r);
        assert_eq!(b.len(), CALL_HEADER_SESSION_SIZE);
        assert_eq!(u16::from_le_bytes([b[10], b[11]]), 3);
        let back = CallHeader::from_bytes(&b).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.reference(&b), Some(r));
        assert_eq!(back.reference(&b[..CALL_HEADER_SIZE]), None);
    }
}
