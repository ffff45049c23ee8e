//! The Cap'n Proto wire format, for one segment: a builder that lays out
//! structs and lists word by word, and a bounds-checked reader of
//! single-segment messages without far pointers (what
//! `capnp::message::Reader::canonicalize` produces).

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use crate::Error;

/// Largest message the builder makes, in words.
const MAX_WORDS: usize = 1 << 24;

/// List element sizes as the wire encodes them.
pub(crate) mod size {
    pub const VOID: u8 = 0;
    pub const BIT: u8 = 1;
    pub const BYTE: u8 = 2;
    pub const TWO: u8 = 3;
    pub const FOUR: u8 = 4;
    pub const EIGHT: u8 = 5;
    pub const POINTER: u8 = 6;
    pub const COMPOSITE: u8 = 7;
}

/// Bits per element of a non-composite list.
pub(crate) fn step_bits(elem_size: u8) -> u64 {
    match elem_size {
        size::VOID => 0,
        size::BIT => 1,
        size::BYTE => 8,
        size::TWO => 16,
        size::FOUR => 32,
        _ => 64,
    }
}

/// Where a struct lives: word indices of its two sections and their sizes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StructLoc {
    pub data: usize,
    pub data_words: u16,
    pub ptrs: usize,
    pub ptr_count: u16,
}

impl StructLoc {
    /// A struct with empty sections (what a null struct pointer reads as).
    pub const EMPTY: StructLoc = StructLoc {
        data: 0,
        data_words: 0,
        ptrs: 0,
        ptr_count: 0,
    };
}

/// A single-segment message under construction. Word 0 is the root pointer.
pub(crate) struct Builder {
    bytes: Vec<u8>,
}

impl Builder {
    pub fn new() -> Self {
        Self { bytes: vec![0; 8] }
    }

    fn words(&self) -> usize {
        self.bytes.len() / 8
    }

    /// Allocates `n` zeroed words; answers the index of the first.
    pub fn alloc(&mut self, n: usize) -> Result<usize, Error> {
        let at = self.words();
        if at + n > MAX_WORDS {
            return Err(Error::Schema("the parameters are too large".into()));
        }
        self.bytes.resize((at + n) * 8, 0);
        Ok(at)
    }

    /// Writes the low `width` bits of `raw` at absolute bit `bit`
    /// (`width` is 1, 8, 16, 32 or 64 and `bit` a multiple of it).
    pub fn put_bits(&mut self, bit: usize, width: u32, raw: u64) {
        if width == 0 {
            return;
        }
        if width == 1 {
            let byte = &mut self.bytes[bit / 8];
            let mask = 1u8 << (bit % 8);
            if raw & 1 != 0 {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
            return;
        }
        let n = (width / 8) as usize;
        let at = bit / 8;
        self.bytes[at..at + n].copy_from_slice(&raw.to_le_bytes()[..n]);
    }

    fn put_word(&mut self, word: usize, v: u64) {
        self.bytes[word * 8..word * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn offset_bits(at: usize, target: usize) -> u64 {
        let off = target as i64 - (at as i64 + 1);
        u64::from((off as i32 as u32) << 2)
    }

    /// Allocates a struct and points the pointer at word `at` to it.
    pub fn init_struct(
        &mut self,
        at: usize,
        data_words: u16,
        ptr_count: u16,
    ) -> Result<StructLoc, Error> {
        let total = usize::from(data_words) + usize::from(ptr_count);
        if total == 0 {
            // An empty struct points just before itself: offset -1, so the
            // pointer is not null.
            self.put_word(at, u64::from((-1i32 as u32) << 2));
            return Ok(StructLoc::EMPTY);
        }
        let data = self.alloc(total)?;
        self.put_word(at, Self::struct_ptr(at, data, data_words, ptr_count));
        Ok(StructLoc {
            data,
            data_words,
            ptrs: data + usize::from(data_words),
            ptr_count,
        })
    }

    fn struct_ptr(at: usize, target: usize, data_words: u16, ptr_count: u16) -> u64 {
        Self::offset_bits(at, target) | u64::from(data_words) << 32 | u64::from(ptr_count) << 48
    }

    /// Allocates a non-composite list of `count` elements of `elem_size`,
    /// points the pointer at word `at` to it, and answers its first word.
    pub fn init_list(&mut self, at: usize, elem_size: u8, count: usize) -> Result<usize, Error> {
        let count32 = Self::count(count)?;
        let words = (count as u64 * step_bits(elem_size)).div_ceil(64) as usize;
        let start = self.alloc(words)?;
        let tail = u64::from(elem_size) | u64::from(count32) << 3;
        self.put_word(at, Self::offset_bits(at, start) | 1 | tail << 32);
        Ok(start)
    }

    /// Allocates a composite list of `count` structs and answers where each is.
    pub fn init_struct_list(
        &mut self,
        at: usize,
        count: usize,
        data_words: u16,
        ptr_count: u16,
    ) -> Result<Vec<StructLoc>, Error> {
        let count32 = Self::count(count)?;
        let per = usize::from(data_words) + usize::from(ptr_count);
        let words = count * per;
        let words32 = Self::count(words)?;
        let tag = self.alloc(1 + words)?;
        let tail = u64::from(size::COMPOSITE) | u64::from(words32) << 3;
        self.put_word(at, Self::offset_bits(at, tag) | 1 | tail << 32);
        self.put_word(
            tag,
            u64::from(count32) << 2 | u64::from(data_words) << 32 | u64::from(ptr_count) << 48,
        );
        Ok((0..count)
            .map(|i| {
                let data = tag + 1 + i * per;
                StructLoc {
                    data,
                    data_words,
                    ptrs: data + usize::from(data_words),
                    ptr_count,
                }
            })
            .collect())
    }

    fn count(n: usize) -> Result<u32, Error> {
        u32::try_from(n)
            .ok()
            .filter(|&c| c < 1 << 29)
            .ok_or_else(|| Error::Schema("a list is too long".into()))
    }

    /// Writes bytes as a byte list at pointer word `at`.
    pub fn put_bytes(&mut self, at: usize, bytes: &[u8], nul: bool) -> Result<(), Error> {
        let n = bytes.len() + usize::from(nul);
        let start = self.init_list(at, size::BYTE, n)?;
        self.bytes[start * 8..start * 8 + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    /// The message: segment table (one segment) and the segment.
    pub fn finish(self) -> Vec<u8> {
        let words = self.words() as u32;
        let mut out = Vec::with_capacity(8 + self.bytes.len());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&words.to_le_bytes());
        out.extend_from_slice(&self.bytes);
        out
    }
}

/// What a pointer points at.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ptr {
    Null,
    Struct(StructLoc),
    List(ListLoc),
    /// A capability pointer, with its index.
    Cap(u32),
}

/// Where a list lives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListLoc {
    /// Word of the first element (after the tag, for composite lists).
    pub start: usize,
    pub elem_size: u8,
    pub count: usize,
    /// For composite lists: each element's section sizes.
    pub data_words: u16,
    pub ptr_count: u16,
}

impl ListLoc {
    pub const EMPTY: ListLoc = ListLoc {
        start: 0,
        elem_size: size::VOID,
        count: 0,
        data_words: 0,
        ptr_count: 0,
    };

    /// Element `i` of a composite list.
    pub fn struct_at(&self, i: usize) -> StructLoc {
        let per = usize::from(self.data_words) + usize::from(self.ptr_count);
        let data = self.start + i * per;
        StructLoc {
            data,
            data_words: self.data_words,
            ptrs: data + usize::from(self.data_words),
            ptr_count: self.ptr_count,
        }
    }
}

/// A single segment, read-only, every access bounds-checked.
pub(crate) struct Segment<'a> {
    pub bytes: &'a [u8],
}

fn bad(what: &str) -> Error {
    Error::Message(what.to_string())
}

impl Segment<'_> {
    fn words(&self) -> usize {
        self.bytes.len() / 8
    }

    pub fn word(&self, w: usize) -> Result<u64, Error> {
        let b = self
            .bytes
            .get(w * 8..w * 8 + 8)
            .ok_or_else(|| bad("pointer out of bounds"))?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// `width` bits at absolute bit `bit` (in bounds: checked by the caller
    /// against the section it reads).
    pub fn bits(&self, bit: usize, width: u32) -> Result<u64, Error> {
        if width == 0 {
            return Ok(0);
        }
        if width == 1 {
            let b = self
                .bytes
                .get(bit / 8)
                .ok_or_else(|| bad("out of bounds"))?;
            return Ok(u64::from(b >> (bit % 8) & 1));
        }
        let n = (width / 8) as usize;
        let at = bit / 8;
        let b = self
            .bytes
            .get(at..at + n)
            .ok_or_else(|| bad("out of bounds"))?;
        let mut a = [0; 8];
        a[..n].copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A data field of `s`: 0 when it lies beyond the struct's data section
    /// (an older, smaller struct).
    pub fn field_bits(&self, s: &StructLoc, bit_in_data: usize, width: u32) -> Result<u64, Error> {
        if bit_in_data + width as usize > usize::from(s.data_words) * 64 {
            return Ok(0);
        }
        self.bits(s.data * 64 + bit_in_data, width)
    }

    /// Pointer `i` of `s`: null when beyond its pointer section.
    pub fn field_ptr(&self, s: &StructLoc, i: usize) -> Result<Ptr, Error> {
        if i >= usize::from(s.ptr_count) {
            return Ok(Ptr::Null);
        }
        self.ptr(s.ptrs + i)
    }

    /// Reads the pointer at word `at`.
    pub fn ptr(&self, at: usize) -> Result<Ptr, Error> {
        let p = self.word(at)?;
        if p == 0 {
            return Ok(Ptr::Null);
        }
        let kind = p & 3;
        let offset = i64::from((p as u32 as i32) >> 2);
        let target = at as i64 + 1 + offset;
        let in_bounds = |start: i64, words: u64| -> Result<usize, Error> {
            if start < 0 || start as u64 + words > self.words() as u64 {
                return Err(bad("pointer out of bounds"));
            }
            Ok(start as usize)
        };
        match kind {
            0 => {
                let data_words = (p >> 32) as u16;
                let ptr_count = (p >> 48) as u16;
                let total = u64::from(data_words) + u64::from(ptr_count);
                let data = if total == 0 {
                    0
                } else {
                    in_bounds(target, total)?
                };
                Ok(Ptr::Struct(StructLoc {
                    data,
                    data_words,
                    ptrs: data + usize::from(data_words),
                    ptr_count,
                }))
            }
            1 => {
                let elem_size = ((p >> 32) & 7) as u8;
                let count = (p >> 35) as usize;
                if elem_size == size::COMPOSITE {
                    let tag_at = in_bounds(target, 1 + count as u64)?;
                    let tag = self.word(tag_at)?;
                    if tag & 3 != 0 {
                        return Err(bad("composite list tag is not a struct tag"));
                    }
                    let n = ((tag as u32) >> 2) as usize;
                    let data_words = (tag >> 32) as u16;
                    let ptr_count = (tag >> 48) as u16;
                    let per = usize::from(data_words) + usize::from(ptr_count);
                    if n * per > count {
                        return Err(bad("composite list longer than its words"));
                    }
                    Ok(Ptr::List(ListLoc {
                        start: tag_at + 1,
                        elem_size,
                        count: n,
                        data_words,
                        ptr_count,
                    }))
                } else {
                    let words = (count as u64 * step_bits(elem_size)).div_ceil(64);
                    let start = if words == 0 {
                        0
                    } else {
                        in_bounds(target, words)?
                    };
                    Ok(Ptr::List(ListLoc {
                        start,
                        elem_size,
                        count,
                        data_words: 0,
                        ptr_count: 0,
                    }))
                }
            }
            3 if (p >> 2) & ((1 << 30) - 1) == 0 => Ok(Ptr::Cap((p >> 32) as u32)),
            _ => Err(bad("far pointer in a single-segment message")),
        }
    }

    /// The bytes of a byte list.
    pub fn byte_list(&self, l: &ListLoc) -> Result<&[u8], Error> {
        if l.elem_size != size::BYTE {
            return Err(bad("expected a list of bytes"));
        }
        self.bytes
            .get(l.start * 8..l.start * 8 + l.count)
            .ok_or_else(|| bad("list out of bounds"))
    }
}
