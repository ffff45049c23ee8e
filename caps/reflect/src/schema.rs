//! The schema model: nodes by id, read from a whole `CodeGeneratorRequest`
//! or one single-node message at a time.
//!
//! Only what reflection needs is kept: names, struct layouts (section sizes,
//! slot offsets, primitive defaults, unions and groups), enumerants and
//! methods. Every lookup of a node that is not there answers
//! [`Error::Missing`] with its id, so a caller that fetches nodes lazily
//! (from the schema registry's `node(id)`) can fetch that one and retry;
//! [`Schema::load`] does exactly that for everything a call on one interface
//! can touch.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use capnp::schema_capnp::{code_generator_request, field, node, type_, value};

use crate::Error;

/// Id of the `resultCap` annotation declared in `capos.capnp`: on a
/// `UInt16` result field it marks the field as the index of a result
/// capability and names that capability's interface. Type ids are derived
/// from the file id and the name, so this is stable; a test checks it
/// against the compiled schema. Kept as a constant because a schema fed node
/// by node from the registry holds no annotation nodes.
pub const RESULT_CAP_ANNOTATION_ID: u64 = 0xb423_0b9c_baa0_5bc9;

/// The most nodes [`Schema::load`] fetches for one interface.
pub const MAX_FETCHES: usize = 1024;

/// Schema nodes by id.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    nodes: BTreeMap<u64, Node>,
}

/// One schema node.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The type id.
    pub id: u64,
    /// Display name, e.g. `capos.capnp:Timer` or `capos.capnp:Timer.now$Params`.
    pub display_name: String,
    /// Short name: the last component of the display name, e.g. `Timer`.
    pub name: String,
    /// What the node is.
    pub kind: NodeKind,
}

/// The kinds of node reflection understands.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A struct or a group.
    Struct(StructNode),
    /// An enum: its enumerant names by value.
    Enum(Vec<String>),
    /// An interface.
    Interface(InterfaceNode),
    /// A file, constant or annotation: kept only for its name.
    Other,
}

/// A struct's layout and fields.
#[derive(Clone, Debug, PartialEq)]
pub struct StructNode {
    /// Size of the data section in words.
    pub data_words: u16,
    /// Size of the pointer section in pointers.
    pub pointers: u16,
    /// Whether this is a group (it shares its parent's sections).
    pub is_group: bool,
    /// How many fields are union members (0: no union).
    pub discriminant_count: u16,
    /// Where the union discriminant lives, in 16-bit units of the data section.
    pub discriminant_offset: u32,
    /// Fields in declaration (code) order.
    pub fields: Vec<Field>,
}

impl StructNode {
    /// Field names in declaration order.
    pub fn field_names(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.name.clone()).collect()
    }
}

/// One field of a struct or group.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// Schema name.
    pub name: String,
    /// The union discriminant value, for union members.
    pub discriminant: Option<u16>,
    /// A slot or a group.
    pub kind: FieldKind,
    /// The interface a `$resultCap` annotation names: the field is the
    /// index of a result capability of that interface.
    pub result_cap: Option<String>,
}

/// Where a field's value lives.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldKind {
    /// A value in the struct's own sections.
    Slot {
        /// Offset in units of the type's size (bits for Bool, pointers for
        /// pointer types).
        offset: u32,
        /// The type.
        ty: Type,
        /// The default of a primitive as its raw little-endian bits (the
        /// wire holds `value ^ default`); 0 for pointer types.
        default: u64,
    },
    /// A group: the id of its struct node.
    Group(u64),
}

/// A Cap'n Proto type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    /// `Void`.
    Void,
    /// `Bool`.
    Bool,
    /// `Int8`.
    Int8,
    /// `Int16`.
    Int16,
    /// `Int32`.
    Int32,
    /// `Int64`.
    Int64,
    /// `UInt8`.
    UInt8,
    /// `UInt16`.
    UInt16,
    /// `UInt32`.
    UInt32,
    /// `UInt64`.
    UInt64,
    /// `Float32`.
    Float32,
    /// `Float64`.
    Float64,
    /// `Text`.
    Text,
    /// `Data`.
    Data,
    /// `List(T)`.
    List(Box<Type>),
    /// An enum, by node id.
    Enum(u64),
    /// A struct, by node id.
    Struct(u64),
    /// An interface (a capability pointer), by node id.
    Interface(u64),
    /// `AnyPointer` (or a generic parameter).
    AnyPointer,
}

impl Type {
    /// Width in bits of a value of this type in a data section or list,
    /// or `None` for pointer types.
    pub fn data_bits(&self) -> Option<u32> {
        Some(match self {
            Type::Void => 0,
            Type::Bool => 1,
            Type::Int8 | Type::UInt8 => 8,
            Type::Int16 | Type::UInt16 | Type::Enum(_) => 16,
            Type::Int32 | Type::UInt32 | Type::Float32 => 32,
            Type::Int64 | Type::UInt64 | Type::Float64 => 64,
            _ => return None,
        })
    }

    /// For integer types: (bits, signed).
    pub fn integer(&self) -> Option<(u32, bool)> {
        Some(match self {
            Type::Int8 => (8, true),
            Type::Int16 => (16, true),
            Type::Int32 => (32, true),
            Type::Int64 => (64, true),
            Type::UInt8 => (8, false),
            Type::UInt16 => (16, false),
            Type::UInt32 => (32, false),
            Type::UInt64 => (64, false),
            _ => return None,
        })
    }
}

/// An interface's methods.
#[derive(Clone, Debug, PartialEq)]
pub struct InterfaceNode {
    /// Methods by ordinal.
    pub methods: Vec<Method>,
    /// Interfaces this one extends (their methods are not reflected).
    pub superclasses: Vec<u64>,
}

/// One method.
#[derive(Clone, Debug, PartialEq)]
pub struct Method {
    /// Schema name.
    pub name: String,
    /// The ordinal: the method id on the wire.
    pub ordinal: u16,
    /// Node id of the parameter struct.
    pub params: u64,
    /// Node id of the result struct.
    pub results: u64,
}

fn options() -> capnp::message::ReaderOptions {
    let mut o = capnp::message::ReaderOptions::new();
    o.traversal_limit_in_words(Some(64 * 1024 * 1024));
    o
}

impl Schema {
    /// An empty schema, to be fed with [`Schema::insert_node`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Every node of a raw `CodeGeneratorRequest` (the output of
    /// `capnp compile -o-`). The bytes need not be word-aligned.
    pub fn from_request(bytes: &[u8]) -> Result<Self, Error> {
        let message = capnp::serialize::read_message(bytes, options())?;
        let request = message.get_root::<code_generator_request::Reader<'_>>()?;
        let mut schema = Self::new();
        for n in request.get_nodes()? {
            let node = Node::read(n)?;
            schema.nodes.insert(node.id, node);
        }
        Ok(schema)
    }

    /// The schema compiled into `capos-caps` (`SCHEMA_REQUEST`): every
    /// kernel interface and service protocol.
    pub fn builtin() -> Result<Self, Error> {
        Self::from_request(capos_caps::SCHEMA_REQUEST)
    }

    /// Adds one node from a single-node message whose root is a
    /// `schema.capnp` `Node` (what the schema registry's `node(id)` answers).
    /// Returns its id; a node already present is replaced.
    pub fn insert_node(&mut self, bytes: &[u8]) -> Result<u64, Error> {
        let message = capnp::serialize::read_message(bytes, options())?;
        let node = Node::read(message.get_root::<node::Reader<'_>>()?)?;
        let id = node.id;
        self.nodes.insert(id, node);
        Ok(id)
    }

    /// Whether node `id` is present.
    pub fn contains(&self, id: u64) -> bool {
        self.nodes.contains_key(&id)
    }

    /// How many nodes are present.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node is present.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `id`, or [`Error::Missing`].
    pub fn node(&self, id: u64) -> Result<&Node, Error> {
        self.nodes.get(&id).ok_or(Error::Missing(id))
    }

    /// Struct (or group) node `id`.
    pub fn struct_node(&self, id: u64) -> Result<&StructNode, Error> {
        match &self.node(id)?.kind {
            NodeKind::Struct(s) => Ok(s),
            _ => Err(Error::Schema(format!("node {id:#x} is not a struct"))),
        }
    }

    /// Enumerant names of enum node `id`.
    pub fn enum_node(&self, id: u64) -> Result<&[String], Error> {
        match &self.node(id)?.kind {
            NodeKind::Enum(e) => Ok(e),
            _ => Err(Error::Schema(format!("node {id:#x} is not an enum"))),
        }
    }

    /// Interface node `id`.
    pub fn interface(&self, id: u64) -> Result<&InterfaceNode, Error> {
        match &self.node(id)?.kind {
            NodeKind::Interface(i) => Ok(i),
            _ => Err(Error::Schema(format!("node {id:#x} is not an interface"))),
        }
    }

    /// Every interface present: (id, short name), by id.
    pub fn interfaces(&self) -> impl Iterator<Item = (u64, &str)> {
        self.nodes
            .values()
            .filter(|n| matches!(n.kind, NodeKind::Interface(_)))
            .map(|n| (n.id, n.name.as_str()))
    }

    /// The interface named `name` among the nodes present: by short name
    /// (`Timer`), by display name (`capos.capnp:Timer`), or by short name
    /// ignoring ASCII case when exactly one interface matches that way.
    pub fn find_interface(&self, name: &str) -> Option<u64> {
        let ifaces = || {
            self.nodes
                .values()
                .filter(|n| matches!(n.kind, NodeKind::Interface(_)))
        };
        if let Some(n) = ifaces().find(|n| n.name == name || n.display_name == name) {
            return Some(n.id);
        }
        let mut folded = ifaces().filter(|n| n.name.eq_ignore_ascii_case(name));
        match (folded.next(), folded.next()) {
            (Some(n), None) => Some(n.id),
            _ => None,
        }
    }

    /// Method `name` of interface `iface`, or [`Error::Call`] with
    /// [`crate::Mistake::UnknownMethod`] listing the methods.
    pub fn method(&self, iface: u64, name: &str) -> Result<&Method, Error> {
        let i = self.interface(iface)?;
        i.methods.iter().find(|m| m.name == name).ok_or_else(|| {
            Error::from(crate::CallError::new(
                None,
                "",
                crate::Mistake::UnknownMethod {
                    interface: self.name(iface),
                    method: name.to_owned(),
                    methods: i.methods.iter().map(|m| m.name.clone()).collect(),
                },
            ))
        })
    }

    /// Method `ordinal` of interface `iface`.
    pub fn method_by_ordinal(&self, iface: u64, ordinal: u16) -> Result<&Method, Error> {
        self.interface(iface)?
            .methods
            .get(usize::from(ordinal))
            .ok_or_else(|| {
                Error::Schema(format!(
                    "{} has no method with ordinal {ordinal}",
                    self.name(iface)
                ))
            })
    }

    /// Short name of node `id`, or its id in hex when it is missing.
    pub fn name(&self, id: u64) -> String {
        self.nodes
            .get(&id)
            .map_or_else(|| format!("{id:#018x}"), |n| n.name.clone())
    }

    /// The first node missing from what a call on interface `iface` can
    /// touch (the interface, its parameter and result structs, and the
    /// structs, groups, enums and interfaces their fields name,
    /// transitively), or `None` when everything is present.
    pub fn first_missing(&self, iface: u64) -> Option<u64> {
        let mut seen = Vec::new();
        let mut stack = alloc::vec![iface];
        while let Some(id) = stack.pop() {
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            let Some(node) = self.nodes.get(&id) else {
                return Some(id);
            };
            match &node.kind {
                NodeKind::Interface(i) if id == iface => {
                    for m in &i.methods {
                        stack.push(m.results);
                        stack.push(m.params);
                    }
                }
                NodeKind::Struct(s) => {
                    for f in s.fields.iter().rev() {
                        match &f.kind {
                            FieldKind::Group(g) => stack.push(*g),
                            FieldKind::Slot { ty, .. } => push_type_deps(ty, &mut stack),
                        }
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Fetches every node [`Schema::first_missing`] reports for `iface`
    /// through `fetch` (which answers a single-node message, as the schema
    /// registry's `node(id)` does) until nothing is missing. Fails with
    /// [`Error::Missing`] when `fetch` has no node for an id, and stops
    /// after [`MAX_FETCHES`] fetches.
    pub fn load<F>(&mut self, iface: u64, mut fetch: F) -> Result<usize, Error>
    where
        F: FnMut(u64) -> Option<Vec<u8>>,
    {
        let mut fetched = 0;
        while let Some(id) = self.first_missing(iface) {
            if fetched == MAX_FETCHES {
                return Err(Error::Schema(format!(
                    "more than {MAX_FETCHES} nodes needed for {iface:#x}"
                )));
            }
            let bytes = fetch(id).ok_or(Error::Missing(id))?;
            let got = self.insert_node(&bytes)?;
            if got != id {
                return Err(Error::Schema(format!(
                    "asked for node {id:#x}, was given {got:#x}"
                )));
            }
            fetched += 1;
        }
        Ok(fetched)
    }
}

fn push_type_deps(ty: &Type, stack: &mut Vec<u64>) {
    match ty {
        Type::List(t) => push_type_deps(t, stack),
        Type::Enum(id) | Type::Struct(id) | Type::Interface(id) => stack.push(*id),
        _ => {}
    }
}

impl Node {
    fn read(n: node::Reader<'_>) -> Result<Self, Error> {
        let display_name = n.get_display_name()?.to_string()?;
        let prefix = n.get_display_name_prefix_length() as usize;
        let name = display_name
            .get(prefix..)
            .unwrap_or(&display_name)
            .to_owned();
        let kind = match n.which()? {
            node::Struct(s) => {
                let mut fields = Vec::new();
                for f in s.get_fields()? {
                    fields.push((f.get_code_order(), read_field(f)?));
                }
                fields.sort_by_key(|(order, _)| *order);
                NodeKind::Struct(StructNode {
                    data_words: s.get_data_word_count(),
                    pointers: s.get_pointer_count(),
                    is_group: s.get_is_group(),
                    discriminant_count: s.get_discriminant_count(),
                    discriminant_offset: s.get_discriminant_offset(),
                    fields: fields.into_iter().map(|(_, f)| f).collect(),
                })
            }
            node::Enum(e) => {
                let mut names = Vec::new();
                for en in e.get_enumerants()? {
                    names.push(en.get_name()?.to_string()?);
                }
                NodeKind::Enum(names)
            }
            node::Interface(i) => {
                let mut methods = Vec::new();
                for (ordinal, m) in i.get_methods()?.iter().enumerate() {
                    methods.push(Method {
                        name: m.get_name()?.to_string()?,
                        ordinal: u16::try_from(ordinal)
                            .map_err(|_| Error::Schema("too many methods".into()))?,
                        params: m.get_param_struct_type(),
                        results: m.get_result_struct_type(),
                    });
                }
                let mut superclasses = Vec::new();
                for s in i.get_superclasses()? {
                    superclasses.push(s.get_id());
                }
                NodeKind::Interface(InterfaceNode {
                    methods,
                    superclasses,
                })
            }
            _ => NodeKind::Other,
        };
        Ok(Node {
            id: n.get_id(),
            display_name,
            name,
            kind,
        })
    }
}

fn read_field(f: field::Reader<'_>) -> Result<Field, Error> {
    let name = f.get_name()?.to_string()?;
    let d = f.get_discriminant_value();
    let discriminant = (d != field::NO_DISCRIMINANT).then_some(d);
    let kind = match f.which()? {
        field::Slot(slot) => {
            let ty = read_type(slot.get_type()?)?;
            let default = if slot.has_default_value() {
                default_bits(slot.get_default_value()?)?
            } else {
                0
            };
            FieldKind::Slot {
                offset: slot.get_offset(),
                ty,
                default,
            }
        }
        field::Group(g) => FieldKind::Group(g.get_type_id()),
    };
    let mut result_cap = None;
    for a in f.get_annotations()? {
        if a.get_id() == RESULT_CAP_ANNOTATION_ID {
            if let value::Text(t) = a.get_value()?.which()? {
                result_cap = Some(t?.to_string()?);
            }
        }
    }
    Ok(Field {
        name,
        discriminant,
        kind,
        result_cap,
    })
}

fn read_type(t: type_::Reader<'_>) -> Result<Type, Error> {
    Ok(match t.which()? {
        type_::Void(()) => Type::Void,
        type_::Bool(()) => Type::Bool,
        type_::Int8(()) => Type::Int8,
        type_::Int16(()) => Type::Int16,
        type_::Int32(()) => Type::Int32,
        type_::Int64(()) => Type::Int64,
        type_::Uint8(()) => Type::UInt8,
        type_::Uint16(()) => Type::UInt16,
        type_::Uint32(()) => Type::UInt32,
        type_::Uint64(()) => Type::UInt64,
        type_::Float32(()) => Type::Float32,
        type_::Float64(()) => Type::Float64,
        type_::Text(()) => Type::Text,
        type_::Data(()) => Type::Data,
        type_::List(l) => Type::List(Box::new(read_type(l.get_element_type()?)?)),
        type_::Enum(e) => Type::Enum(e.get_type_id()),
        type_::Struct(s) => Type::Struct(s.get_type_id()),
        type_::Interface(i) => Type::Interface(i.get_type_id()),
        type_::AnyPointer(_) => Type::AnyPointer,
    })
}

/// A primitive default as the raw bits the wire XORs with.
fn default_bits(v: value::Reader<'_>) -> Result<u64, Error> {
    Ok(match v.which()? {
        value::Bool(b) => u64::from(b),
        value::Int8(x) => u64::from(x as u8),
        value::Int16(x) => u64::from(x as u16),
        value::Int32(x) => u64::from(x as u32),
        value::Int64(x) => x as u64,
        value::Uint8(x) => u64::from(x),
        value::Uint16(x) => u64::from(x),
        value::Uint32(x) => u64::from(x),
        value::Uint64(x) => x,
        value::Float32(x) => u64::from(x.to_bits()),
        value::Float64(x) => x.to_bits(),
        value::Enum(x) => u64::from(x),
        _ => 0,
    })
}
