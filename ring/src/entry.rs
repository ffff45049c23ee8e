//! Submission and completion entries, transfer records, and their word encoding.
//!
//! Entries cross shared memory as little-endian 64-bit words (eight per SQE,
//! four per CQE). The `#[repr(C)]` structs below have exactly the same byte
//! image as those words on the little-endian x86_64 ABI; the compile-time
//! assertions pin every offset, and a unit test checks that the word encoding
//! matches the struct's in-memory bytes.

use core::mem::{offset_of, size_of};

use crate::error::TransportError;

/// Number of 64-bit words in an SQE.
pub const SQE_WORDS: usize = 8;
/// Number of 64-bit words in a CQE.
pub const CQE_WORDS: usize = 4;

/// A submission queue entry exactly as userspace writes it.
///
/// Every bit pattern is a representable `Sqe`; whether it is a legal request
/// is decided by [`Sqe::validate`]. Which fields each opcode uses is listed in
/// `docs/ring-abi.md`; fields an opcode does not use must be zero.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Sqe {
    /// Operation, one of [`crate::request::Opcode`].
    pub opcode: u8,
    /// `SQE_FLAG_*` bits allowed for this opcode.
    pub flags: u8,
    /// Cap'n Proto method ordinal within the target capability's interface.
    pub method_id: u16,
    /// Number of [`TransferDescriptor`]s at `xfer_addr`.
    pub xfer_count: u16,
    /// Must be zero.
    pub reserved0: u16,
    /// Target capability id, opaque to the ring (the capability table owns
    /// its bit layout).
    pub cap_id: u64,
    /// Echoed unchanged in the matching CQE.
    pub user_data: u64,
    /// User address of the parameters (CALL) or the returned payload (RETURN).
    pub params_addr: u64,
    /// User address of the result buffer (CALL, RECV).
    pub result_addr: u64,
    /// Length of the parameters or payload in bytes.
    pub params_len: u32,
    /// Capacity of the result buffer in bytes.
    pub result_len: u32,
    /// User address of the transfer descriptor array (8-byte aligned).
    pub xfer_addr: u64,
    /// RETURN only: the kernel-assigned id of the call being answered.
    pub call_id: u64,
}

const _: () = assert!(size_of::<Sqe>() == 64);
const _: () = assert!(offset_of!(Sqe, opcode) == 0);
const _: () = assert!(offset_of!(Sqe, flags) == 1);
const _: () = assert!(offset_of!(Sqe, method_id) == 2);
const _: () = assert!(offset_of!(Sqe, xfer_count) == 4);
const _: () = assert!(offset_of!(Sqe, reserved0) == 6);
const _: () = assert!(offset_of!(Sqe, cap_id) == 8);
const _: () = assert!(offset_of!(Sqe, user_data) == 16);
const _: () = assert!(offset_of!(Sqe, params_addr) == 24);
const _: () = assert!(offset_of!(Sqe, result_addr) == 32);
const _: () = assert!(offset_of!(Sqe, params_len) == 40);
const _: () = assert!(offset_of!(Sqe, result_len) == 44);
const _: () = assert!(offset_of!(Sqe, xfer_addr) == 48);
const _: () = assert!(offset_of!(Sqe, call_id) == 56);

impl Sqe {
    /// Decodes the eight little-endian words of a slot.
    pub const fn from_words(w: &[u64; SQE_WORDS]) -> Self {
        Sqe {
            opcode: w[0] as u8,
            flags: (w[0] >> 8) as u8,
            method_id: (w[0] >> 16) as u16,
            xfer_count: (w[0] >> 32) as u16,
            reserved0: (w[0] >> 48) as u16,
            cap_id: w[1],
            user_data: w[2],
            params_addr: w[3],
            result_addr: w[4],
            params_len: w[5] as u32,
            result_len: (w[5] >> 32) as u32,
            xfer_addr: w[6],
            call_id: w[7],
        }
    }

    /// Encodes the entry as the eight little-endian words of a slot.
    pub const fn to_words(&self) -> [u64; SQE_WORDS] {
        [
            self.opcode as u64
                | (self.flags as u64) << 8
                | (self.method_id as u64) << 16
                | (self.xfer_count as u64) << 32
                | (self.reserved0 as u64) << 48,
            self.cap_id,
            self.user_data,
            self.params_addr,
            self.result_addr,
            self.params_len as u64 | (self.result_len as u64) << 32,
            self.xfer_addr,
            self.call_id,
        ]
    }

    /// Decodes 64 raw bytes (for example a copy taken from user memory).
    pub fn from_bytes(bytes: &[u8; SQE_SIZE_BYTES]) -> Self {
        Self::from_words(&words_from_bytes(bytes))
    }

    /// The entry's 64-byte image.
    pub fn to_bytes(&self) -> [u8; SQE_SIZE_BYTES] {
        bytes_from_words(&self.to_words())
    }
}

const SQE_SIZE_BYTES: usize = SQE_WORDS * 8;
const CQE_SIZE_BYTES: usize = CQE_WORDS * 8;

fn words_from_bytes<const W: usize, const B: usize>(bytes: &[u8; B]) -> [u64; W] {
    core::array::from_fn(|i| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_le_bytes(word)
    })
}

fn bytes_from_words<const W: usize, const B: usize>(words: &[u64; W]) -> [u8; B] {
    let mut out = [0u8; B];
    for (chunk, word) in out.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    out
}

/// `Cqe::flags` bit: the result bytes are a serialized `CapException`
/// (an application error), not a normal result.
pub const CQE_FLAG_EXCEPTION: u32 = 1 << 0;
/// `Cqe::flags` bit: `xfer_count` [`TransferResult`] records follow the
/// result bytes in the result buffer.
pub const CQE_FLAG_TRANSFER_RESULTS: u32 = 1 << 1;
/// Every defined CQE flag.
pub const CQE_FLAGS_ALL: u32 = CQE_FLAG_EXCEPTION | CQE_FLAG_TRANSFER_RESULTS;

/// A completion queue entry as the kernel writes it.
#[repr(C, align(32))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cqe {
    /// `user_data` of the SQE this completes.
    pub user_data: u64,
    /// `>= 0`: success, usually bytes written to the result buffer.
    /// `< 0`: a [`TransportError`] code.
    pub result: i32,
    /// `CQE_FLAG_*` bits.
    pub flags: u32,
    /// RECV only: kernel-assigned id of the delivered call, to be named by the
    /// answering RETURN. Zero otherwise.
    pub call_id: u64,
    /// Number of [`TransferResult`] records appended after the result bytes.
    pub xfer_count: u32,
    /// Zero.
    pub reserved0: u32,
}

const _: () = assert!(size_of::<Cqe>() == 32);
const _: () = assert!(offset_of!(Cqe, user_data) == 0);
const _: () = assert!(offset_of!(Cqe, result) == 8);
const _: () = assert!(offset_of!(Cqe, flags) == 12);
const _: () = assert!(offset_of!(Cqe, call_id) == 16);
const _: () = assert!(offset_of!(Cqe, xfer_count) == 24);
const _: () = assert!(offset_of!(Cqe, reserved0) == 28);

/// What a CQE's `result` says, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CqeStatus {
    /// Non-negative result.
    Ok(u32),
    /// A known transport error.
    Err(TransportError),
    /// A negative value this version of the ABI does not define.
    Unknown(i32),
}

impl Cqe {
    /// A completion carrying a non-negative result.
    ///
    /// Values above `i32::MAX` cannot be represented and are clamped to it;
    /// ring results are bounded by [`crate::MAX_RESULT_LEN`] so this never
    /// happens for byte counts.
    pub const fn success(user_data: u64, value: u32) -> Self {
        let result = if value > i32::MAX as u32 {
            i32::MAX
        } else {
            value as i32
        };
        Cqe {
            user_data,
            result,
            flags: 0,
            call_id: 0,
            xfer_count: 0,
            reserved0: 0,
        }
    }

    /// A completion reporting a transport error.
    pub const fn error(user_data: u64, err: TransportError) -> Self {
        Cqe {
            user_data,
            result: err.code(),
            flags: 0,
            call_id: 0,
            xfer_count: 0,
            reserved0: 0,
        }
    }

    /// Decodes `result`.
    pub const fn status(&self) -> CqeStatus {
        if self.result >= 0 {
            CqeStatus::Ok(self.result as u32)
        } else {
            match TransportError::from_i32(self.result) {
                Some(err) => CqeStatus::Err(err),
                None => CqeStatus::Unknown(self.result),
            }
        }
    }

    /// Decodes the four little-endian words of a slot.
    pub const fn from_words(w: &[u64; CQE_WORDS]) -> Self {
        Cqe {
            user_data: w[0],
            result: w[1] as u32 as i32,
            flags: (w[1] >> 32) as u32,
            call_id: w[2],
            xfer_count: w[3] as u32,
            reserved0: (w[3] >> 32) as u32,
        }
    }

    /// Encodes the entry as the four little-endian words of a slot.
    pub const fn to_words(&self) -> [u64; CQE_WORDS] {
        [
            self.user_data,
            self.result as u32 as u64 | (self.flags as u64) << 32,
            self.call_id,
            self.xfer_count as u64 | (self.reserved0 as u64) << 32,
        ]
    }

    /// Decodes 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; CQE_SIZE_BYTES]) -> Self {
        Self::from_words(&words_from_bytes(bytes))
    }

    /// The entry's 32-byte image.
    pub fn to_bytes(&self) -> [u8; CQE_SIZE_BYTES] {
        bytes_from_words(&self.to_words())
    }
}

/// `TransferDescriptor::mode`: the receiver gets a copy; the sender keeps its cap.
pub const TRANSFER_COPY: u32 = 1;
/// `TransferDescriptor::mode`: the cap moves; the sender's slot is released on commit.
pub const TRANSFER_MOVE: u32 = 2;
/// Size of one [`TransferDescriptor`] in user memory.
pub const TRANSFER_DESCRIPTOR_SIZE: u32 = 16;
/// Required alignment of the transfer descriptor array.
pub const TRANSFER_DESCRIPTOR_ALIGN: u64 = 8;
/// Size of one [`TransferResult`] record in a result buffer.
pub const TRANSFER_RESULT_SIZE: u32 = 16;

/// One capability a CALL or RETURN hands to the other side, as laid out in
/// user memory at `Sqe::xfer_addr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TransferDescriptor {
    /// Sender-side capability id.
    pub cap_id: u64,
    /// [`TRANSFER_COPY`] or [`TRANSFER_MOVE`]; zero is invalid so that
    /// zero-filled memory never transfers anything.
    pub mode: u32,
    /// Must be zero.
    pub reserved0: u32,
}

const _: () = assert!(size_of::<TransferDescriptor>() == TRANSFER_DESCRIPTOR_SIZE as usize);
const _: () = assert!(offset_of!(TransferDescriptor, cap_id) == 0);
const _: () = assert!(offset_of!(TransferDescriptor, mode) == 8);
const _: () = assert!(offset_of!(TransferDescriptor, reserved0) == 12);

/// A checked transfer mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransferMode {
    /// [`TRANSFER_COPY`].
    Copy,
    /// [`TRANSFER_MOVE`].
    Move,
}

impl TransferDescriptor {
    /// Decodes 16 bytes copied from user memory.
    pub fn from_bytes(bytes: &[u8; 16]) -> Self {
        let [cap_id, rest]: [u64; 2] = words_from_bytes(bytes);
        TransferDescriptor {
            cap_id,
            mode: rest as u32,
            reserved0: (rest >> 32) as u32,
        }
    }

    /// The descriptor's 16-byte image.
    pub fn to_bytes(&self) -> [u8; 16] {
        bytes_from_words(&[
            self.cap_id,
            self.mode as u64 | (self.reserved0 as u64) << 32,
        ])
    }

    /// Checks the descriptor and returns its cap id and mode.
    pub const fn validate(&self) -> Result<(u64, TransferMode), TransportError> {
        if self.reserved0 != 0 {
            return Err(TransportError::InvalidTransfer);
        }
        match self.mode {
            TRANSFER_COPY => Ok((self.cap_id, TransferMode::Copy)),
            TRANSFER_MOVE => Ok((self.cap_id, TransferMode::Move)),
            _ => Err(TransportError::InvalidTransfer),
        }
    }
}

/// A capability received with a completion, appended after the result bytes
/// when [`CQE_FLAG_TRANSFER_RESULTS`] is set.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TransferResult {
    /// The new capability id in the receiver's table.
    pub cap_id: u64,
    /// Cap'n Proto interface id of the received capability.
    pub interface_id: u64,
}

const _: () = assert!(size_of::<TransferResult>() == TRANSFER_RESULT_SIZE as usize);
const _: () = assert!(offset_of!(TransferResult, cap_id) == 0);
const _: () = assert!(offset_of!(TransferResult, interface_id) == 8);

impl TransferResult {
    /// Decodes 16 bytes from a result buffer.
    pub fn from_bytes(bytes: &[u8; 16]) -> Self {
        let [cap_id, interface_id]: [u64; 2] = words_from_bytes(bytes);
        TransferResult {
            cap_id,
            interface_id,
        }
    }

    /// The record's 16-byte image.
    pub fn to_bytes(&self) -> [u8; 16] {
        bytes_from_words(&[self.cap_id, self.interface_id])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-memory bytes of a `#[repr(C)]` value without padding.
    fn image<T: Copy, const N: usize>(value: &T) -> [u8; N] {
        assert_eq!(size_of::<T>(), N);
        let mut out = [0u8; N];
        // SAFETY: `value` is a live, initialised `T` of exactly `N` bytes
        // (asserted above) whose type has no padding (all its offsets are
        // pinned by compile-time assertions), so reading `N` bytes from it is
        // in bounds and reads only initialised memory; `out` is a distinct
        // local buffer of `N` bytes, so the regions do not overlap.
        unsafe {
            core::ptr::copy_nonoverlapping((value as *const T).cast::<u8>(), out.as_mut_ptr(), N);
        }
        out
    }

    fn sample_sqe() -> Sqe {
        Sqe {
            opcode: 0x11,
            flags: 0x22,
            method_id: 0x3344,
            xfer_count: 0x5566,
            reserved0: 0x7788,
            cap_id: 0x0102_0304_0506_0708,
            user_data: 0x1112_1314_1516_1718,
            params_addr: 0x2122_2324_2526_2728,
            result_addr: 0x3132_3334_3536_3738,
            params_len: 0x4142_4344,
            result_len: 0x4546_4748,
            xfer_addr: 0x5152_5354_5556_5758,
            call_id: 0x6162_6364_6566_6768,
        }
    }

    #[test]
    fn sqe_words_match_memory_image() {
        let sqe = sample_sqe();
        let bytes: [u8; 64] = image(&sqe);
        assert_eq!(sqe.to_bytes(), bytes);
        assert_eq!(Sqe::from_bytes(&bytes), sqe);
        assert_eq!(Sqe::from_words(&sqe.to_words()), sqe);
        assert_eq!(bytes[0], 0x11);
        assert_eq!(bytes[1], 0x22);
        assert_eq!(&bytes[2..4], &0x3344u16.to_le_bytes());
        assert_eq!(&bytes[56..64], &0x6162_6364_6566_6768u64.to_le_bytes());
    }

    #[test]
    fn cqe_words_match_memory_image() {
        let cqe = Cqe {
            user_data: 0xAABB_CCDD_EEFF_0011,
            result: -7,
            flags: 0x1234_5678,
            call_id: 0x0908_0706_0504_0302,
            xfer_count: 0xDEAD_BEEF,
            reserved0: 0x0BAD_F00D,
        };
        let bytes: [u8; 32] = image(&cqe);
        assert_eq!(cqe.to_bytes(), bytes);
        assert_eq!(Cqe::from_bytes(&bytes), cqe);
        assert_eq!(Cqe::from_words(&cqe.to_words()), cqe);
        assert_eq!(&bytes[8..12], &(-7i32).to_le_bytes());
    }

    #[test]
    fn transfer_records_match_memory_image() {
        let d = TransferDescriptor {
            cap_id: 0x1122_3344_5566_7788,
            mode: TRANSFER_MOVE,
            reserved0: 9,
        };
        let bytes: [u8; 16] = image(&d);
        assert_eq!(d.to_bytes(), bytes);
        assert_eq!(TransferDescriptor::from_bytes(&bytes), d);
        let r = TransferResult {
            cap_id: 5,
            interface_id: 0xFEDC_BA98_7654_3210,
        };
        let bytes: [u8; 16] = image(&r);
        assert_eq!(r.to_bytes(), bytes);
        assert_eq!(TransferResult::from_bytes(&bytes), r);
    }

    #[test]
    fn transfer_descriptor_validation() {
        let mut d = TransferDescriptor {
            cap_id: 42,
            mode: TRANSFER_COPY,
            reserved0: 0,
        };
        assert_eq!(d.validate(), Ok((42, TransferMode::Copy)));
        d.mode = TRANSFER_MOVE;
        assert_eq!(d.validate(), Ok((42, TransferMode::Move)));
        d.mode = 0;
        assert_eq!(d.validate(), Err(TransportError::InvalidTransfer));
        d.mode = 3;
        assert_eq!(d.validate(), Err(TransportError::InvalidTransfer));
        d.mode = TRANSFER_COPY;
        d.reserved0 = 1;
        assert_eq!(d.validate(), Err(TransportError::InvalidTransfer));
    }

    #[test]
    fn cqe_status_decoding() {
        assert_eq!(Cqe::success(1, 12).status(), CqeStatus::Ok(12));
        assert_eq!(Cqe::success(1, u32::MAX).result, i32::MAX);
        let e = Cqe::error(9, TransportError::BadCap);
        assert_eq!(e.user_data, 9);
        assert_eq!(e.status(), CqeStatus::Err(TransportError::BadCap));
        let odd = Cqe {
            result: -9999,
            ..Cqe::default()
        };
        assert_eq!(odd.status(), CqeStatus::Unknown(-9999));
    }
}
