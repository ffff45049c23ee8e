//! Result messages as Cap'n Proto text.

use alloc::format;
use alloc::string::{String, ToString};
use core::fmt::Write;

use capnp::message::ReaderOptions;

use crate::literal;
use crate::schema::{FieldKind, Schema, StructNode, Type};
use crate::wire::{size, step_bits, ListLoc, Ptr, Segment, StructLoc};
use crate::Error;

/// Deepest nesting of structs and lists printed.
const MAX_DEPTH: usize = 64;

/// Most elements of one list printed; the rest are counted.
pub const MAX_LIST_ELEMENTS: usize = 4096;

/// Prints the results of method `ordinal` of interface `iface` from the
/// result message `bytes` (a serialized message, not necessarily aligned;
/// empty bytes read as the empty message, all defaults).
pub fn decode(schema: &Schema, iface: u64, ordinal: u16, bytes: &[u8]) -> Result<String, Error> {
    let m = schema.method_by_ordinal(iface, ordinal)?;
    decode_struct(schema, m.results, bytes)
}

/// Prints a message whose root is struct `id`, e.g. `(data = "hi")`.
///
/// Fields print in declaration order, all of them (defaults too), except
/// union members other than the one set. Text and Data print as quoted
/// strings, Data as `0x"..."` hex unless it is UTF-8 without control
/// characters (other than newline and tab); enums by enumerant name (a
/// value the schema does not name prints as its number); result-cap fields
/// as `<cap N: Interface>`; capability pointers as `<capability N>`.
pub fn decode_struct(schema: &Schema, id: u64, bytes: &[u8]) -> Result<String, Error> {
    let node = schema.struct_node(id)?;
    let mut out = String::new();
    let p = Printer { schema };
    if bytes.is_empty() {
        let seg = Segment { bytes: &[] };
        p.strukt(&seg, &StructLoc::EMPTY, node, 0, &mut out)?;
        return Ok(out);
    }
    let mut options = ReaderOptions::new();
    options
        .traversal_limit_in_words(Some(bytes.len() / 8 * 4 + 1024))
        .nesting_limit(MAX_DEPTH as i32);
    let bad = |e: capnp::Error| Error::Message(e.to_string());
    let message = capnp::serialize::read_message(bytes, options).map_err(bad)?;
    let words = message.canonicalize().map_err(bad)?;
    let seg = Segment {
        bytes: capnp::Word::words_to_bytes(&words),
    };
    let root = match seg.ptr(0)? {
        Ptr::Struct(l) => l,
        Ptr::Null => StructLoc::EMPTY,
        _ => return Err(Error::Message("the root is not a struct".into())),
    };
    p.strukt(&seg, &root, node, 0, &mut out)?;
    Ok(out)
}

/// An application exception (a `CapException` message in the result
/// buffer) as `kind: message`, e.g. `failed: no such file`.
pub fn decode_exception(bytes: &[u8]) -> Result<String, Error> {
    capos_caps::CapException::decode(bytes)
        .map(|e| e.to_string())
        .map_err(|e| Error::Message(e.to_string()))
}

struct Printer<'s> {
    schema: &'s Schema,
}

fn too_deep() -> Error {
    Error::Message("nesting too deep".into())
}

impl Printer<'_> {
    fn strukt(
        &self,
        seg: &Segment<'_>,
        loc: &StructLoc,
        node: &StructNode,
        depth: usize,
        out: &mut String,
    ) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        let active = if node.discriminant_count > 0 {
            Some(seg.field_bits(loc, node.discriminant_offset as usize * 16, 16)? as u16)
        } else {
            None
        };
        out.push('(');
        let mut first = true;
        for f in &node.fields {
            if f.discriminant.is_some() && f.discriminant != active {
                continue;
            }
            if !first {
                out.push_str(", ");
            }
            first = false;
            out.push_str(&f.name);
            out.push_str(" = ");
            match &f.kind {
                FieldKind::Group(g) => {
                    let group = self.schema.struct_node(*g)?;
                    self.strukt(seg, loc, group, depth + 1, out)?;
                }
                FieldKind::Slot {
                    offset,
                    ty,
                    default,
                } => match ty.data_bits() {
                    Some(bits) => {
                        let raw =
                            seg.field_bits(loc, *offset as usize * bits as usize, bits)? ^ default;
                        match &f.result_cap {
                            Some(iface) if bits == 16 => {
                                let _ = write!(out, "<cap {raw}: {iface}>");
                            }
                            _ => self.scalar(ty, raw, out)?,
                        }
                    }
                    None => {
                        let p = seg.field_ptr(loc, *offset as usize)?;
                        self.pointer(seg, ty, p, depth + 1, out)?;
                    }
                },
            }
        }
        out.push(')');
        Ok(())
    }

    fn scalar(&self, ty: &Type, raw: u64, out: &mut String) -> Result<(), Error> {
        let _ = match ty {
            Type::Void => write!(out, "void"),
            Type::Bool => write!(out, "{}", raw & 1 != 0),
            Type::Int8 => write!(out, "{}", raw as u8 as i8),
            Type::Int16 => write!(out, "{}", raw as u16 as i16),
            Type::Int32 => write!(out, "{}", raw as u32 as i32),
            Type::Int64 => write!(out, "{}", raw as i64),
            Type::UInt8 | Type::UInt16 | Type::UInt32 | Type::UInt64 => write!(out, "{raw}"),
            Type::Float32 => {
                let f = f32::from_bits(raw as u32);
                literal::float(f64::from(f), Some(f), out);
                Ok(())
            }
            Type::Float64 => {
                literal::float(f64::from_bits(raw), None, out);
                Ok(())
            }
            Type::Enum(id) => {
                let names = self.schema.enum_node(*id)?;
                match names.get(raw as usize) {
                    Some(name) => write!(out, "{name}"),
                    None => write!(out, "{raw}"),
                }
            }
            _ => return Err(Error::Schema("not a data type".into())),
        };
        Ok(())
    }

    fn pointer(
        &self,
        seg: &Segment<'_>,
        ty: &Type,
        p: Ptr,
        depth: usize,
        out: &mut String,
    ) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        if let Ptr::Cap(i) = p {
            let _ = write!(out, "<capability {i}>");
            return Ok(());
        }
        let wrong = || Error::Message(format!("a pointer of the wrong kind for {ty:?}"));
        match ty {
            Type::Text | Type::Data => {
                let bytes = match p {
                    Ptr::Null => &[][..],
                    Ptr::List(l) => seg.byte_list(&l)?,
                    _ => return Err(wrong()),
                };
                if *ty == Type::Text {
                    let text = bytes.strip_suffix(&[0]).unwrap_or(bytes);
                    literal::quote(text, out);
                } else {
                    literal::data(bytes, out);
                }
            }
            Type::Struct(id) => {
                let loc = match p {
                    Ptr::Null => StructLoc::EMPTY,
                    Ptr::Struct(l) => l,
                    _ => return Err(wrong()),
                };
                self.strukt(seg, &loc, self.schema.struct_node(*id)?, depth, out)?;
            }
            Type::List(elem) => {
                let l = match p {
                    Ptr::Null => ListLoc::EMPTY,
                    Ptr::List(l) => l,
                    _ => return Err(wrong()),
                };
                self.list(seg, elem, &l, depth, out)?;
            }
            Type::Interface(_) | Type::AnyPointer => {
                out.push_str(match p {
                    Ptr::Null => "null",
                    _ => "<pointer>",
                });
            }
            _ => return Err(Error::Schema("not a pointer type".into())),
        }
        Ok(())
    }

    fn list(
        &self,
        seg: &Segment<'_>,
        elem: &Type,
        l: &ListLoc,
        depth: usize,
        out: &mut String,
    ) -> Result<(), Error> {
        let shown = l.count.min(MAX_LIST_ELEMENTS);
        let mismatch = || Error::Message("a list of the wrong element size".into());
        out.push('[');
        for i in 0..shown {
            if i > 0 {
                out.push_str(", ");
            }
            if l.count == 0 {
                break;
            }
            if let Some(bits) = elem.data_bits() {
                if step_bits(l.elem_size) != u64::from(bits)
                    || l.elem_size == size::POINTER
                    || l.elem_size == size::COMPOSITE
                {
                    return Err(mismatch());
                }
                let raw = seg.bits(l.start * 64 + i * bits as usize, bits)?;
                self.scalar(elem, raw, out)?;
            } else if let Type::Struct(id) = elem {
                let loc = match l.elem_size {
                    size::COMPOSITE => l.struct_at(i),
                    size::VOID => StructLoc::EMPTY,
                    _ => return Err(mismatch()),
                };
                self.strukt(seg, &loc, self.schema.struct_node(*id)?, depth + 1, out)?;
            } else {
                if l.elem_size != size::POINTER {
                    return Err(mismatch());
                }
                let p = seg.ptr(l.start + i)?;
                self.pointer(seg, elem, p, depth + 1, out)?;
            }
        }
        if l.count > shown {
            let _ = write!(out, ", ... {} more", l.count - shown);
        }
        out.push(']');
        Ok(())
    }
}
