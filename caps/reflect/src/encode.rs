//! Parameters from parsed arguments: a Cap'n Proto message laid out by the
//! parameter struct's node.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::describe::type_name;
use crate::parse::{Arg, Value, ValueKind};
use crate::schema::{FieldKind, Schema, StructNode, Type};
use crate::wire::{size, Builder, StructLoc};
use crate::{CallError, Error, Mistake, Span};

/// An encoded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The method ordinal: the method id on the wire.
    pub ordinal: u16,
    /// The parameters: a single-segment Cap'n Proto message (segment table
    /// included) whose root is the method's parameter struct.
    pub params: Vec<u8>,
}

/// Encodes a call of `method` on interface `iface` with `args` (named or
/// positional, as parsed). Fields not given keep their defaults.
pub fn encode(schema: &Schema, iface: u64, method: &str, args: &[Arg]) -> Result<Encoded, Error> {
    let m = schema.method(iface, method)?;
    let owner = format!("the parameters of {}.{}", schema.name(iface), m.name);
    let params = encode_with_owner(schema, m.params, args, &owner)?;
    Ok(Encoded {
        ordinal: m.ordinal,
        params,
    })
}

/// Encodes a message whose root is struct `id`, with `fields` as in a
/// struct literal.
pub fn encode_struct(schema: &Schema, id: u64, fields: &[Arg]) -> Result<Vec<u8>, Error> {
    let owner = schema.name(id);
    encode_with_owner(schema, id, fields, &owner)
}

fn encode_with_owner(
    schema: &Schema,
    id: u64,
    args: &[Arg],
    owner: &str,
) -> Result<Vec<u8>, Error> {
    let node = schema.struct_node(id)?;
    let mut enc = Encoder {
        schema,
        b: Builder::new(),
    };
    let loc = enc.b.init_struct(0, node.data_words, node.pointers)?;
    enc.fill(loc, node, args, owner, "")?;
    Ok(enc.b.finish())
}

struct Encoder<'s> {
    schema: &'s Schema,
    b: Builder,
}

fn mistake(span: Span, path: &str, m: Mistake) -> Error {
    Error::from(CallError::new(Some(span), path, m))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.into()
    } else {
        format!("{path}.{name}")
    }
}

fn wrong(v: &Value, path: &str, expected: String) -> Error {
    mistake(
        v.span,
        path,
        Mistake::WrongType {
            field: path.into(),
            expected,
            got: v.kind.describe(),
        },
    )
}

fn unsupported(v: &Value, path: &str, why: &str) -> Error {
    mistake(
        v.span,
        path,
        Mistake::Unsupported {
            field: path.into(),
            why: why.into(),
        },
    )
}

fn schema_err(what: String) -> Error {
    Error::Schema(what)
}

impl Encoder<'_> {
    /// Sets `args` in the struct (or group) `node` at `loc`.
    fn fill(
        &mut self,
        loc: StructLoc,
        node: &StructNode,
        args: &[Arg],
        owner: &str,
        path: &str,
    ) -> Result<(), Error> {
        let mut given: Vec<usize> = Vec::new();
        let mut union_member: Option<usize> = None;
        for (i, arg) in args.iter().enumerate() {
            let (index, span) = match &arg.name {
                None => {
                    if i >= node.fields.len() {
                        return Err(mistake(
                            arg.value.span,
                            path,
                            Mistake::TooManyArguments {
                                owner: owner.into(),
                                fields: node.fields.len(),
                            },
                        ));
                    }
                    (i, arg.value.span)
                }
                Some((name, span)) => {
                    let index = node.fields.iter().position(|f| &f.name == name);
                    let Some(index) = index else {
                        return Err(mistake(
                            *span,
                            path,
                            Mistake::UnknownField {
                                owner: owner.into(),
                                field: name.clone(),
                                fields: node.field_names(),
                            },
                        ));
                    };
                    (index, *span)
                }
            };
            let field = &node.fields[index];
            let fpath = join(path, &field.name);
            if given.contains(&index) {
                return Err(mistake(
                    span,
                    &fpath,
                    Mistake::DuplicateField(fpath.clone()),
                ));
            }
            given.push(index);
            if let Some(d) = field.discriminant {
                if let Some(first) = union_member {
                    return Err(mistake(
                        span,
                        &fpath,
                        Mistake::UnionConflict {
                            first: node.fields[first].name.clone(),
                            second: field.name.clone(),
                        },
                    ));
                }
                union_member = Some(index);
                let bit = node.discriminant_offset as usize * 16;
                if bit + 16 > usize::from(loc.data_words) * 64 {
                    return Err(schema_err(format!(
                        "{owner}: discriminant out of its struct"
                    )));
                }
                self.b.put_bits(loc.data * 64 + bit, 16, u64::from(d));
            }
            match &field.kind {
                FieldKind::Group(gid) => {
                    let ValueKind::Struct(fields) = &arg.value.kind else {
                        return Err(wrong(&arg.value, &fpath, "a group".into()));
                    };
                    let group = self.schema.struct_node(*gid)?;
                    self.fill(loc, group, fields, &field.name, &fpath)?;
                }
                FieldKind::Slot {
                    offset,
                    ty,
                    default,
                } => match ty.data_bits() {
                    Some(bits) => {
                        let raw = self.scalar(ty, &arg.value, &fpath)?;
                        let bit = *offset as usize * bits as usize;
                        if bit + bits as usize > usize::from(loc.data_words) * 64 {
                            return Err(schema_err(format!("{fpath}: slot out of its struct")));
                        }
                        self.b.put_bits(loc.data * 64 + bit, bits, raw ^ default);
                    }
                    None => {
                        if *offset >= u32::from(loc.ptr_count) {
                            return Err(schema_err(format!("{fpath}: slot out of its struct")));
                        }
                        self.pointer(loc.ptrs + *offset as usize, ty, &arg.value, &fpath)?;
                    }
                },
            }
        }
        Ok(())
    }

    /// The raw bits of a data-section value of type `ty`.
    fn scalar(&self, ty: &Type, v: &Value, path: &str) -> Result<u64, Error> {
        let expected = || type_name(self.schema, ty);
        if let Some((bits, signed)) = ty.integer() {
            let ValueKind::Int(n, text) = &v.kind else {
                return Err(wrong(v, path, expected()));
            };
            let (lo, hi): (i128, i128) = if signed {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            if *n < lo || *n > hi {
                return Err(mistake(
                    v.span,
                    path,
                    Mistake::OutOfRange {
                        field: path.into(),
                        expected: format!("{} ({lo} to {hi})", expected()),
                        literal: text.clone(),
                    },
                ));
            }
            let mask = if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            return Ok((*n as u64) & mask);
        }
        match ty {
            Type::Void => match v.kind {
                ValueKind::Void => Ok(0),
                _ => Err(wrong(v, path, expected())),
            },
            Type::Bool => match v.kind {
                ValueKind::Bool(b) => Ok(u64::from(b)),
                _ => Err(wrong(v, path, expected())),
            },
            Type::Float32 | Type::Float64 => {
                if let ValueKind::Int(n, _) = v.kind {
                    return Ok(if *ty == Type::Float32 {
                        u64::from((n as f32).to_bits())
                    } else {
                        (n as f64).to_bits()
                    });
                }
                let text = match &v.kind {
                    ValueKind::Float(t) => t.as_str(),
                    ValueKind::Ident(t) if t == "inf" || t == "nan" => t.as_str(),
                    _ => return Err(wrong(v, path, expected())),
                };
                let finite = !text.contains("inf") && !text.contains("nan");
                let out_of_range = || {
                    mistake(
                        v.span,
                        path,
                        Mistake::OutOfRange {
                            field: path.into(),
                            expected: expected(),
                            literal: text.into(),
                        },
                    )
                };
                let text_num = text.strip_prefix('+').unwrap_or(text);
                if *ty == Type::Float32 {
                    let f = parse_float::<f32>(text_num).ok_or_else(out_of_range)?;
                    if finite && f.is_infinite() {
                        return Err(out_of_range());
                    }
                    Ok(u64::from(f.to_bits()))
                } else {
                    let f = parse_float::<f64>(text_num).ok_or_else(out_of_range)?;
                    if finite && f.is_infinite() {
                        return Err(out_of_range());
                    }
                    Ok(f.to_bits())
                }
            }
            Type::Enum(id) => {
                let ValueKind::Ident(name) = &v.kind else {
                    return Err(wrong(v, path, expected()));
                };
                let enumerants = self.schema.enum_node(*id)?;
                match enumerants.iter().position(|e| e == name) {
                    Some(i) => Ok(i as u64),
                    None => Err(mistake(
                        v.span,
                        path,
                        Mistake::BadEnumerant {
                            field: path.into(),
                            enum_name: self.schema.name(*id),
                            got: name.clone(),
                            enumerants: enumerants.to_vec(),
                        },
                    )),
                }
            }
            _ => Err(schema_err(format!("{path}: not a data type"))),
        }
    }

    /// Writes a pointer value of type `ty` at pointer word `at`.
    fn pointer(&mut self, at: usize, ty: &Type, v: &Value, path: &str) -> Result<(), Error> {
        if let ValueKind::Var(_) = v.kind {
            return Err(unsupported(
                v,
                path,
                "variables cannot be passed as values (capabilities travel out of band)",
            ));
        }
        match ty {
            Type::Text => {
                let ValueKind::Str(bytes) = &v.kind else {
                    return Err(wrong(v, path, "Text".into()));
                };
                if core::str::from_utf8(bytes).is_err() {
                    return Err(mistake(v.span, path, Mistake::NotUtf8(path.into())));
                }
                self.b.put_bytes(at, bytes, true)
            }
            Type::Data => match &v.kind {
                ValueKind::Str(bytes) | ValueKind::Bytes(bytes) => {
                    self.b.put_bytes(at, bytes, false)
                }
                ValueKind::List(items) => {
                    let mut bytes = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let raw = self.scalar(&Type::UInt8, item, &format!("{path}[{i}]"))?;
                        bytes.push(raw as u8);
                    }
                    self.b.put_bytes(at, &bytes, false)
                }
                _ => Err(wrong(v, path, "Data".into())),
            },
            Type::List(elem) => {
                let ValueKind::List(items) = &v.kind else {
                    return Err(wrong(v, path, type_name(self.schema, ty)));
                };
                self.list(at, elem, items, path)
            }
            Type::Struct(id) => {
                let ValueKind::Struct(fields) = &v.kind else {
                    return Err(wrong(v, path, type_name(self.schema, ty)));
                };
                let node = self.schema.struct_node(*id)?;
                let loc = self.b.init_struct(at, node.data_words, node.pointers)?;
                let owner = self.schema.name(*id);
                self.fill(loc, node, fields, &owner, path)
            }
            Type::Interface(_) => Err(unsupported(
                v,
                path,
                "capability fields take no value (capabilities travel out of band)",
            )),
            Type::AnyPointer => Err(unsupported(v, path, "AnyPointer fields take no value")),
            _ => Err(schema_err(format!("{path}: not a pointer type"))),
        }
    }

    fn list(&mut self, at: usize, elem: &Type, items: &[Value], path: &str) -> Result<(), Error> {
        if let Some(bits) = elem.data_bits() {
            let elem_size = match bits {
                0 => size::VOID,
                1 => size::BIT,
                8 => size::BYTE,
                16 => size::TWO,
                32 => size::FOUR,
                _ => size::EIGHT,
            };
            let mut raws = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                raws.push(self.scalar(elem, item, &format!("{path}[{i}]"))?);
            }
            let start = self.b.init_list(at, elem_size, items.len())?;
            for (i, raw) in raws.into_iter().enumerate() {
                self.b.put_bits(start * 64 + i * bits as usize, bits, raw);
            }
            return Ok(());
        }
        if let Type::Struct(id) = elem {
            let node = self.schema.struct_node(*id)?;
            let owner = self.schema.name(*id);
            let locs = self
                .b
                .init_struct_list(at, items.len(), node.data_words, node.pointers)?;
            for (i, (item, loc)) in items.iter().zip(locs).enumerate() {
                let ipath = format!("{path}[{i}]");
                let ValueKind::Struct(fields) = &item.kind else {
                    return Err(wrong(item, &ipath, owner));
                };
                self.fill(loc, node, fields, &owner, &ipath)?;
            }
            return Ok(());
        }
        let start = self.b.init_list(at, size::POINTER, items.len())?;
        for (i, item) in items.iter().enumerate() {
            self.pointer(start + i, elem, item, &format!("{path}[{i}]"))?;
        }
        Ok(())
    }
}

fn parse_float<T: core::str::FromStr>(text: &str) -> Option<T> {
    text.parse::<T>().ok()
}
