//! Interfaces, methods and types in Cap'n Proto syntax, for `inspect`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::schema::{FieldKind, Method, NodeKind, Schema, StructNode, Type};
use crate::Error;

/// A type in Cap'n Proto syntax: `UInt64`, `List(CapGrant)`, `Placement`.
/// Named types whose node is missing print as their id.
pub fn type_name(schema: &Schema, ty: &Type) -> String {
    match ty {
        Type::Void => "Void".into(),
        Type::Bool => "Bool".into(),
        Type::Int8 => "Int8".into(),
        Type::Int16 => "Int16".into(),
        Type::Int32 => "Int32".into(),
        Type::Int64 => "Int64".into(),
        Type::UInt8 => "UInt8".into(),
        Type::UInt16 => "UInt16".into(),
        Type::UInt32 => "UInt32".into(),
        Type::UInt64 => "UInt64".into(),
        Type::Float32 => "Float32".into(),
        Type::Float64 => "Float64".into(),
        Type::Text => "Text".into(),
        Type::Data => "Data".into(),
        Type::List(t) => format!("List({})", type_name(schema, t)),
        Type::Enum(id) | Type::Struct(id) | Type::Interface(id) => schema.name(*id),
        Type::AnyPointer => "AnyPointer".into(),
    }
}

/// The fields of a struct as a parenthesised list: `(name :Text, cpu
/// :UInt32)`. Union members are grouped as `union(a :T | b :U)`, groups
/// as `name :group(...)`, result-cap fields as `handle :UInt16 -> Iface`.
pub fn describe_fields(schema: &Schema, node: &StructNode) -> Result<String, Error> {
    let mut parts: Vec<String> = Vec::new();
    let mut members: Vec<String> = Vec::new();
    let mut union_at = None;
    for f in &node.fields {
        let mut s = format!("{} :", f.name);
        match &f.kind {
            FieldKind::Slot { ty, .. } => s.push_str(&type_name(schema, ty)),
            FieldKind::Group(g) => {
                s.push_str("group");
                s.push_str(&describe_fields(schema, schema.struct_node(*g)?)?);
            }
        }
        if let Some(iface) = &f.result_cap {
            let _ = write!(s, " -> {iface}");
        }
        if f.discriminant.is_some() {
            union_at.get_or_insert(parts.len());
            members.push(s);
        } else {
            parts.push(s);
        }
    }
    if let Some(at) = union_at {
        parts.insert(at, format!("union({})", members.join(" | ")));
    }
    Ok(format!("({})", parts.join(", ")))
}

/// One method: `echo @0 (data :Data) -> (data :Data)`.
pub fn describe_method(schema: &Schema, method: &Method) -> Result<String, Error> {
    Ok(format!(
        "{} @{} {} -> {}",
        method.name,
        method.ordinal,
        describe_fields(schema, schema.struct_node(method.params)?)?,
        describe_fields(schema, schema.struct_node(method.results)?)?,
    ))
}

/// An interface for `inspect`: a header line with its name and id, one
/// line per method, then one line per struct and enum the methods use
/// (transitively), each indented by two spaces.
///
/// ```text
/// interface Echo @0x975f538cdc85f147
///   echo @0 (data :Data) -> (data :Data)
///   ...
/// ```
pub fn describe(schema: &Schema, iface: u64) -> Result<String, Error> {
    let i = schema.interface(iface)?;
    let mut out = format!("interface {} @{iface:#018x}\n", schema.node(iface)?.name);
    let mut used = Vec::new();
    for m in &i.methods {
        let _ = writeln!(out, "  {}", describe_method(schema, m)?);
        collect_types(schema, m.params, &mut used)?;
        collect_types(schema, m.results, &mut used)?;
    }
    for id in used {
        let node = schema.node(id)?;
        match &node.kind {
            NodeKind::Struct(s) => {
                let _ = writeln!(
                    out,
                    "  struct {} {}",
                    node.name,
                    describe_fields(schema, s)?
                );
            }
            NodeKind::Enum(e) => {
                let _ = writeln!(out, "  enum {} ({})", node.name, e.join(", "));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Named structs and enums that the fields of struct `id` use, transitively,
/// in first-use order.
fn collect_types(schema: &Schema, id: u64, used: &mut Vec<u64>) -> Result<(), Error> {
    for f in &schema.struct_node(id)?.fields {
        match &f.kind {
            FieldKind::Group(g) => collect_types(schema, *g, used)?,
            FieldKind::Slot { ty, .. } => collect_type(schema, ty, used)?,
        }
    }
    Ok(())
}

fn collect_type(schema: &Schema, ty: &Type, used: &mut Vec<u64>) -> Result<(), Error> {
    match ty {
        Type::List(t) => collect_type(schema, t, used),
        Type::Enum(id) if !used.contains(id) => {
            used.push(*id);
            Ok(())
        }
        Type::Struct(id) if !used.contains(id) => {
            used.push(*id);
            collect_types(schema, *id, used)
        }
        _ => Ok(()),
    }
}
