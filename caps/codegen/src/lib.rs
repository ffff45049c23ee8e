//! Reads the interfaces of the capOS schema out of a Cap'n Proto
//! `CodeGeneratorRequest` and writes Rust for both sides of every call:
//! method-ordinal constants and server dispatch ([`server::generate`]) and
//! typed client stubs ([`client::generate`]).
//!
//! The model ([`Schema`]) keeps only what the generators need: each
//! interface's id, name and module path in the `capnpc` bindings, and each
//! method's ordinal with its parameter and result fields. Rust paths follow
//! the naming rules `capnpc` uses, so the generated code names the same
//! types the bindings define.

pub mod client;
pub mod server;

use capnp::schema_capnp::{code_generator_request, field, node, type_};
use std::collections::HashMap;

/// One schema file's interfaces, in declaration order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// Every interface of the requested files.
    pub interfaces: Vec<Interface>,
}

/// One interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Schema name, e.g. `Console`.
    pub name: String,
    /// Cap'n Proto type id: the interface id on the wire.
    pub id: u64,
    /// Module name of the interface, e.g. `console`.
    pub module: String,
    /// Path of the interface's module in the bindings, relative to the
    /// bindings root, e.g. `capos_capnp::console`.
    pub path: String,
    /// Methods by ordinal.
    pub methods: Vec<Method>,
}

/// One method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Method {
    /// Schema name, e.g. `writeLine`.
    pub name: String,
    /// Snake-case name, e.g. `write_line`.
    pub snake: String,
    /// The ordinal: the method id on the wire.
    pub ordinal: u16,
    /// Parameter struct.
    pub params: Struct,
    /// Result struct.
    pub results: Struct,
    /// Result capacity the client asks for (`$resultBytes`), if declared.
    pub result_bytes: Option<u32>,
}

/// A parameter or result struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Struct {
    /// Path of the struct's module in the bindings, e.g.
    /// `capos_capnp::console::write_params`.
    pub path: String,
    /// Its fields in ordinal order.
    pub fields: Vec<Field>,
    /// Whether it has a union (then it is never flattened into arguments).
    pub has_union: bool,
}

impl Struct {
    /// Whether every field maps to a plain Rust value.
    pub fn is_flat(&self) -> bool {
        !self.has_union && self.fields.iter().all(|f| f.kind.is_flat())
    }
}

/// One field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Schema name.
    pub name: String,
    /// Snake-case name (getter `get_{snake}`, setter `set_{snake}`).
    pub snake: String,
    /// What it holds.
    pub kind: Kind,
    /// The interface name a `$resultCap` annotation gives it: the field is
    /// the index of a result capability of that interface.
    pub result_cap: Option<String>,
}

/// A field's type, as far as the generators care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `Void`.
    Void,
    /// `Bool`.
    Bool,
    /// An integer or float, with its Rust type name.
    Number(&'static str),
    /// `Text`.
    Text,
    /// `Data`.
    Data,
    /// An enum, with the path of its Rust type in the bindings.
    Enum(String),
    /// A struct, list, interface or any-pointer.
    Other,
}

impl Kind {
    /// Whether the kind maps to a plain Rust argument or result.
    pub fn is_flat(&self) -> bool {
        !matches!(self, Kind::Other)
    }
}

/// A request that does not describe a schema the generators understand.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<capnp::Error> for Error {
    fn from(e: capnp::Error) -> Self {
        Error(format!("malformed CodeGeneratorRequest: {e}"))
    }
}

impl From<capnp::NotInSchema> for Error {
    fn from(e: capnp::NotInSchema) -> Self {
        Error(format!("schema node of an unknown kind: {e}"))
    }
}

impl From<std::str::Utf8Error> for Error {
    fn from(e: std::str::Utf8Error) -> Self {
        Error(format!("schema name is not UTF-8: {e}"))
    }
}

/// `camelCase` to `snake_case`, as `capnpc` names modules and accessors.
pub fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `camelCase` to `SCREAMING_SNAKE_CASE`, for constants.
pub fn screaming(camel: &str) -> String {
    snake(camel).to_ascii_uppercase()
}

/// Rust's keywords that `capnpc` suffixes with `_` when a module is named
/// after one.
const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try",
];

fn module_name(camel: &str) -> String {
    let mut name = snake(camel);
    if KEYWORDS.contains(&name.as_str()) {
        name.push('_');
    }
    name
}

/// Upper camel case of an enum's name, as `capnpc` names the Rust enum.
fn type_name(name: &str) -> String {
    let mut c = name.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Reads the raw request `capnp compile -o-` (or `capnpc`'s
/// `raw_code_generator_request_path`) wrote.
pub fn read_request(bytes: &[u8]) -> Result<Schema, Error> {
    let mut options = capnp::message::ReaderOptions::new();
    options.traversal_limit_in_words(Some(64 * 1024 * 1024));
    let message = capnp::serialize::read_message(bytes, options)?;
    let request = message.get_root::<code_generator_request::Reader>()?;
    parse(request)
}

struct Nodes<'a> {
    by_id: HashMap<u64, node::Reader<'a>>,
    /// Module path of every named node (files, structs, interfaces, enums).
    paths: HashMap<u64, String>,
    /// Id of the `resultCap` and `resultBytes` annotations, where declared.
    result_cap: Option<u64>,
    result_bytes: Option<u64>,
}

fn parse(request: code_generator_request::Reader<'_>) -> Result<Schema, Error> {
    let mut nodes = Nodes {
        by_id: HashMap::new(),
        paths: HashMap::new(),
        result_cap: None,
        result_bytes: None,
    };
    for n in request.get_nodes()? {
        nodes.by_id.insert(n.get_id(), n);
    }
    // Paths: walk down from each file node through its nested nodes.
    let files: Vec<node::Reader<'_>> = nodes
        .by_id
        .values()
        .filter(|n| matches!(n.which(), Ok(node::File(()))))
        .copied()
        .collect();
    for file in &files {
        let display = file.get_display_name()?.to_str()?;
        let stem = display
            .rsplit('/')
            .next()
            .unwrap_or(display)
            .trim_end_matches(".capnp");
        let module = format!("{}_capnp", stem.replace(['-', '.'], "_"));
        nodes.paths.insert(file.get_id(), module.clone());
        assign_paths(&mut nodes, *file, &module)?;
    }
    let mut interfaces = Vec::new();
    for requested in request.get_requested_files()? {
        let file = nodes
            .by_id
            .get(&requested.get_id())
            .copied()
            .ok_or_else(|| Error("requested file has no node".into()))?;
        collect(&nodes, file, &mut interfaces)?;
    }
    Ok(Schema { interfaces })
}

fn assign_paths(nodes: &mut Nodes<'_>, parent: node::Reader<'_>, path: &str) -> Result<(), Error> {
    for nested in parent.get_nested_nodes()? {
        let name = nested.get_name()?.to_str()?;
        let Some(child) = nodes.by_id.get(&nested.get_id()).copied() else {
            continue;
        };
        let child_path = match child.which()? {
            node::Enum(_) => format!("{path}::{}", type_name(name)),
            node::Annotation(_) => {
                match name {
                    "resultCap" => nodes.result_cap = Some(child.get_id()),
                    "resultBytes" => nodes.result_bytes = Some(child.get_id()),
                    _ => {}
                }
                continue;
            }
            _ => format!("{path}::{}", module_name(name)),
        };
        nodes.paths.insert(child.get_id(), child_path.clone());
        assign_paths(nodes, child, &child_path)?;
    }
    Ok(())
}

/// Interfaces under `parent`, depth first in declaration order.
fn collect(
    nodes: &Nodes<'_>,
    parent: node::Reader<'_>,
    out: &mut Vec<Interface>,
) -> Result<(), Error> {
    for nested in parent.get_nested_nodes()? {
        let Some(child) = nodes.by_id.get(&nested.get_id()).copied() else {
            continue;
        };
        if let node::Interface(iface) = child.which()? {
            out.push(interface(
                nodes,
                child,
                nested.get_name()?.to_str()?,
                iface,
            )?);
        }
        collect(nodes, child, out)?;
    }
    Ok(())
}

fn interface(
    nodes: &Nodes<'_>,
    n: node::Reader<'_>,
    name: &str,
    iface: node::interface::Reader<'_>,
) -> Result<Interface, Error> {
    let path = nodes.paths.get(&n.get_id()).cloned().unwrap_or_default();
    if !iface.get_superclasses()?.is_empty() {
        return Err(Error(format!(
            "{name}: interface inheritance is not supported"
        )));
    }
    let mut methods = Vec::new();
    for (ordinal, m) in iface.get_methods()?.iter().enumerate() {
        let method_name = m.get_name()?.to_str()?.to_string();
        let snake_name = snake(&method_name);
        let ordinal =
            u16::try_from(ordinal).map_err(|_| Error(format!("{name}: too many methods")))?;
        let params = structure(
            nodes,
            m.get_param_struct_type(),
            &format!("{path}::{snake_name}_params"),
        )?;
        let results = structure(
            nodes,
            m.get_result_struct_type(),
            &format!("{path}::{snake_name}_results"),
        )?;
        let mut result_bytes = None;
        for a in m.get_annotations()? {
            if Some(a.get_id()) == nodes.result_bytes {
                if let capnp::schema_capnp::value::Uint32(v) = a.get_value()?.which()? {
                    result_bytes = Some(v);
                }
            }
        }
        methods.push(Method {
            name: method_name,
            snake: snake_name,
            ordinal,
            params,
            results,
            result_bytes,
        });
    }
    Ok(Interface {
        name: name.to_string(),
        id: n.get_id(),
        module: module_name(name),
        path,
        methods,
    })
}

/// The struct `id`; `implicit` is its path when it is a method's implicit
/// `$Params`/`$Results` struct (those have no scope of their own).
fn structure(nodes: &Nodes<'_>, id: u64, implicit: &str) -> Result<Struct, Error> {
    let n = nodes
        .by_id
        .get(&id)
        .copied()
        .ok_or_else(|| Error(format!("no node {id:#x}")))?;
    let node::Struct(s) = n.which()? else {
        return Err(Error(format!("{implicit}: not a struct")));
    };
    let path = if n.get_scope_id() == 0 {
        implicit.to_string()
    } else {
        nodes
            .paths
            .get(&id)
            .cloned()
            .ok_or_else(|| Error(format!("{implicit}: struct has no path")))?
    };
    let mut fields = Vec::new();
    for f in s.get_fields()? {
        let name = f.get_name()?.to_str()?.to_string();
        let kind = match f.which()? {
            field::Slot(slot) => kind(nodes, slot.get_type()?)?,
            field::Group(_) => Kind::Other,
        };
        let mut result_cap = None;
        for a in f.get_annotations()? {
            if Some(a.get_id()) == nodes.result_cap {
                if let capnp::schema_capnp::value::Text(t) = a.get_value()?.which()? {
                    result_cap = Some(t?.to_str()?.to_string());
                }
            }
        }
        fields.push(Field {
            snake: snake(&name),
            name,
            kind,
            result_cap,
        });
    }
    Ok(Struct {
        path,
        fields,
        has_union: s.get_discriminant_count() != 0,
    })
}

fn kind(nodes: &Nodes<'_>, t: type_::Reader<'_>) -> Result<Kind, Error> {
    Ok(match t.which()? {
        type_::Void(()) => Kind::Void,
        type_::Bool(()) => Kind::Bool,
        type_::Int8(()) => Kind::Number("i8"),
        type_::Int16(()) => Kind::Number("i16"),
        type_::Int32(()) => Kind::Number("i32"),
        type_::Int64(()) => Kind::Number("i64"),
        type_::Uint8(()) => Kind::Number("u8"),
        type_::Uint16(()) => Kind::Number("u16"),
        type_::Uint32(()) => Kind::Number("u32"),
        type_::Uint64(()) => Kind::Number("u64"),
        type_::Float32(()) => Kind::Number("f32"),
        type_::Float64(()) => Kind::Number("f64"),
        type_::Text(()) => Kind::Text,
        type_::Data(()) => Kind::Data,
        type_::Enum(e) => Kind::Enum(
            nodes
                .paths
                .get(&e.get_type_id())
                .cloned()
                .ok_or_else(|| Error("enum has no path".into()))?,
        ),
        _ => Kind::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_capnpc() {
        assert_eq!(snake("writeLine"), "write_line");
        assert_eq!(snake("sleepUntil"), "sleep_until");
        assert_eq!(snake("ping"), "ping");
        assert_eq!(screaming("readBinary"), "READ_BINARY");
        assert_eq!(module_name("TerminalSession"), "terminal_session");
        assert_eq!(module_name("Type"), "type_");
        assert_eq!(type_name("lineStatus"), "LineStatus");
    }
}

#[cfg(test)]
mod schema_tests {
    //! The generator against the project's own schema (needs `capnp`).

    use super::*;
    use std::process::Command;

    fn project_schema() -> Schema {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema");
        let out = Command::new("capnp")
            .args(["compile", "-o-", "--src-prefix", dir])
            .arg(format!("{dir}/capos.capnp"))
            .arg(format!("{dir}/services.capnp"))
            .output()
            .expect("the capnp compiler runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        read_request(&out.stdout).expect("the request parses")
    }

    fn iface<'a>(s: &'a Schema, name: &str) -> &'a Interface {
        s.interfaces.iter().find(|i| i.name == name).expect(name)
    }

    #[test]
    fn ordinals_ids_and_paths_come_from_the_schema() {
        let s = project_schema();
        let console = iface(&s, "Console");
        assert_eq!(console.id, 0xdfa8_4506_728b_f29c);
        assert_eq!(console.path, "capos_capnp::console");
        let names: Vec<(&str, u16)> = console
            .methods
            .iter()
            .map(|m| (m.name.as_str(), m.ordinal))
            .collect();
        assert_eq!(names, [("write", 0), ("writeLine", 1)]);
        assert_eq!(
            console.methods[1].params.path,
            "capos_capnp::console::write_line_params"
        );
        let echo = iface(&s, "Echo");
        assert_eq!(echo.path, "services_capnp::echo");
        assert_eq!(echo.methods[3].snake, "inspect_caps");
    }

    #[test]
    fn annotations_and_flatness_are_read() {
        let s = project_schema();
        let alloc = &iface(&s, "FrameAllocator").methods[0];
        assert_eq!(
            alloc.results.fields[0].result_cap.as_deref(),
            Some("MemoryObject")
        );
        assert!(alloc.params.is_flat());
        let boot = iface(&s, "BootPackage");
        assert_eq!(boot.methods[1].result_bytes, Some(17408));
        assert_eq!(boot.methods[0].result_bytes, None);
        let spawn = &iface(&s, "ProcessSpawner").methods[0];
        assert!(
            !spawn.params.is_flat(),
            "grants and placement are not plain values"
        );
        let read_line = &iface(&s, "TerminalSession").methods[2];
        assert!(matches!(read_line.results.fields[0].kind, Kind::Enum(_)));
    }

    #[test]
    fn every_method_becomes_a_required_handler_and_a_dispatch_arm() {
        let s = project_schema();
        let code = server::generate(&s, "crate::schema", "crate::server");
        for i in &s.interfaces {
            for m in &i.methods {
                assert!(code.contains(&format!("        fn {}(&self, cx: &mut C", m.snake)));
                assert!(code.contains(&format!("            {} =>", screaming(&m.name))));
            }
        }
        // Handlers are declarations only: no default body.
        assert!(!code.contains("-> C::Reply {"));
        let client = client::generate(&s, "crate::api", "capos_caps::schema", "capos_caps::api");
        assert!(client.contains("pub fn allocate(&self, pages: u32, contiguous: bool) -> Result<crate::api::Owned<MemoryObject>"));
    }
}
