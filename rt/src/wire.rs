//! Cap'n Proto message helpers for typed clients, and an allocation-free
//! encoder for the one message the panic path sends.
//!
//! CALL parameters and results travel as standard (unpacked) Cap'n Proto
//! serialization: a segment table followed by the segments, as
//! `capnp::serialize::write_message` produces.

use alloc::vec::Vec;
use capnp::message::{Builder, HeapAllocator, Reader, ReaderOptions};
use capnp::serialize::OwnedSegments;

use crate::error::CallError;

/// Serializes a message built by a typed client into CALL parameter bytes.
pub fn to_bytes(message: &Builder<HeapAllocator>) -> Vec<u8> {
    capnp::serialize::write_message_to_words(message)
}

/// Reads result bytes as a message. The traversal limit is proportional to
/// the bytes given, so a hostile result cannot make the reader loop.
pub fn read(bytes: &[u8]) -> Result<Reader<OwnedSegments>, CallError> {
    let mut options = ReaderOptions::new();
    options
        .traversal_limit_in_words(Some(bytes.len() / 8 * 4 + 64))
        .nesting_limit(16);
    Ok(capnp::serialize::read_message(bytes, options)?)
}

/// Bytes [`encode_data_params`] adds around the data: the segment table
/// (8), the root struct pointer (8) and the struct's one pointer (8).
pub const DATA_PARAMS_OVERHEAD: usize = 24;

/// Writes a one-segment message whose root is a struct with a single `Data`
/// pointer field (such as `Console.write`'s parameters) into `out`, without
/// allocating. Data that does not fit is cut. Returns the bytes used.
///
/// The panic path uses this: it must work when the heap is exhausted or
/// its lock is held.
pub fn encode_data_params(data: &[u8], out: &mut [u8]) -> usize {
    let room = out.len().saturating_sub(DATA_PARAMS_OVERHEAD) & !7;
    let data = &data[..data.len().min(room)];
    let data_words = data.len().div_ceil(8);
    let total = DATA_PARAMS_OVERHEAD + data_words * 8;
    if out.len() < total {
        return 0;
    }
    // Segment table: segment count minus one, then the segment's size in
    // words (two pointer words plus the data words).
    out[0..4].copy_from_slice(&0u32.to_le_bytes());
    out[4..8].copy_from_slice(&(2 + data_words as u32).to_le_bytes());
    // Root pointer: struct (tag 0), offset 0, no data words, one pointer.
    let root: u64 = 1 << 48;
    out[8..16].copy_from_slice(&root.to_le_bytes());
    // The struct's pointer: list (tag 1), offset 0 (the data follows),
    // element size 2 (bytes), element count in bits 35..64.
    let list: u64 = 1 | (2 << 32) | ((data.len() as u64) << 35);
    out[16..24].copy_from_slice(&list.to_le_bytes());
    out[24..24 + data.len()].copy_from_slice(data);
    out[24 + data.len()..total].fill(0);
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use capos_caps::schema::capos_capnp::console;

    fn decode_write(bytes: &[u8]) -> Vec<u8> {
        let msg = read(bytes).unwrap();
        let p = msg.get_root::<console::write_params::Reader>().unwrap();
        p.get_data().unwrap().to_vec()
    }

    #[test]
    fn hand_encoded_params_match_the_schema() {
        for data in [&b""[..], b"x", b"panic: boom\n", &[0xAB; 64]] {
            let mut out = [0xFFu8; 256];
            let n = encode_data_params(data, &mut out);
            assert_eq!(n % 8, 0);
            assert_eq!(decode_write(&out[..n]), data);
            // Same bytes as the capnp library writes.
            let mut b = Builder::new_default();
            b.init_root::<console::write_params::Builder>()
                .set_data(data);
            assert_eq!(&out[..n], &to_bytes(&b)[..]);
        }
    }

    #[test]
    fn long_data_is_cut_to_fit() {
        let mut out = [0u8; 64];
        let n = encode_data_params(&[7; 100], &mut out);
        assert_eq!(n, 64);
        assert_eq!(decode_write(&out[..n]), vec![7; 40]);
        assert_eq!(encode_data_params(b"x", &mut [0u8; 16]), 0);
    }

    #[test]
    fn garbage_results_are_errors() {
        assert!(read(&[]).is_err());
        assert!(read(&[0xFF; 40]).is_err());
    }
}
