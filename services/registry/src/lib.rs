//! The schema registry's index of the compiled schema: what the `registry`
//! service serves, kept apart from its ring loop so that it is tested on
//! the host (`cargo test -p registry --lib`).
//!
//! [`Registry::new`] reads a `CodeGeneratorRequest` (the build's
//! `capos_caps::SCHEMA_REQUEST`) once and keeps only answers: the
//! `SchemaRegistry.interfaces` result, ready to send, and every node of the
//! request as its own single-segment message whose root is a `schema.capnp`
//! `Node`, sorted by id. Nothing is parsed again per call, and the memory
//! held is about the size of the request.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capos_rt::capnp;
use capos_rt::capnp::message::{Builder, HeapAllocator, ReaderOptions};
use capos_rt::capnp::schema_capnp::{code_generator_request, node, value};
use capos_rt::caps::api::schema_registry;
use capos_rt::caps::schema::services_capnp::schema_registry as proto;

/// The result capacity the generated client asks for when a method
/// declares no `$resultBytes` (`capos_codegen::client::DEFAULT_RESULT_BYTES`).
pub const DEFAULT_RESULT_BYTES: usize = 4096;

/// A request the registry cannot serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(pub String);

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

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

impl From<core::str::Utf8Error> for Error {
    fn from(e: core::str::Utf8Error) -> Self {
        Error(format!("schema name is not UTF-8: {e}"))
    }
}

/// Why a `node` call is answered with an exception.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No node has this id.
    Unknown(u64),
    /// The node's result does not fit the result buffer the client offers.
    TooLarge {
        /// The node.
        id: u64,
        /// Result bytes it needs.
        bytes: usize,
        /// The result buffer (`$resultBytes` of `node`).
        limit: usize,
    },
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refusal::Unknown(id) => write!(f, "no schema node has id {id:#018x}"),
            Refusal::TooLarge { id, bytes, limit } => write!(
                f,
                "schema node {id:#018x} needs {bytes} result bytes; the result buffer holds {limit}"
            ),
        }
    }
}

/// One interface of the schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its type id.
    pub id: u64,
    /// Its display name, e.g. `capos.capnp:Timer`.
    pub name: String,
}

/// The compiled schema, indexed for `SchemaRegistry`.
pub struct Registry {
    entries: Vec<Entry>,
    /// The serialized `interfaces` result.
    interfaces: Vec<u8>,
    /// `(id, single-segment message of the node)`, sorted by id.
    nodes: Vec<(u64, Vec<u8>)>,
    /// Result capacity of `node` (its `$resultBytes`).
    node_limit: usize,
}

impl Registry {
    /// Reads `request` (a serialized `CodeGeneratorRequest`, at any
    /// alignment) and builds every answer. Fails if the request does not
    /// decode, two nodes share an id, a requested file has no node, or the
    /// `interfaces` answer does not fit its own result buffer.
    pub fn new(request: &[u8]) -> Result<Self, Error> {
        let mut options = ReaderOptions::new();
        // Enough to read every word a few times (indexing, sizing and
        // copying each node once), and no more.
        options
            .traversal_limit_in_words(Some(request.len() / 8 * 8 + 4096))
            .nesting_limit(64);
        // `read_message` copies into aligned segments.
        let message = capnp::serialize::read_message(request, options)?;
        let request = message.get_root::<code_generator_request::Reader<'_>>()?;
        let all = request.get_nodes()?;
        let mut index: Vec<(u64, u32)> = all
            .iter()
            .zip(0u32..)
            .map(|(n, i)| (n.get_id(), i))
            .collect();
        index.sort_unstable();
        if let Some(w) = index.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error(format!("two schema nodes have id {:#018x}", w[0].0)));
        }
        let find = |id: u64| {
            index
                .binary_search_by_key(&id, |e| e.0)
                .ok()
                .map(|i| all.get(index[i].1))
        };

        let mut entries = Vec::new();
        for file in request.get_requested_files()? {
            let f = find(file.get_id()).ok_or_else(|| {
                Error(format!(
                    "requested file {:#018x} has no node",
                    file.get_id()
                ))
            })?;
            collect(&find, f, &mut entries)?;
        }

        let result_bytes = all
            .iter()
            .find(|n| {
                matches!(n.which(), Ok(node::Annotation(_)))
                    && short_name(*n).is_ok_and(|s| s == "resultBytes")
            })
            .map(|n| n.get_id());
        let registry = find(schema_registry::ID)
            .ok_or_else(|| Error("the schema has no SchemaRegistry interface".into()))?;
        let limit = |method| result_limit(registry, method, result_bytes);
        let interfaces_limit = limit(schema_registry::INTERFACES)?;
        let node_limit = limit(schema_registry::NODE)?;

        let interfaces = interfaces_answer(&entries)?;
        if interfaces.len() > interfaces_limit {
            return Err(Error(format!(
                "the interfaces answer needs {} bytes; its result buffer holds {interfaces_limit}",
                interfaces.len()
            )));
        }
        let mut nodes = Vec::with_capacity(index.len());
        for &(id, i) in &index {
            nodes.push((id, single_node(all.get(i))?));
        }
        Ok(Registry {
            entries,
            interfaces,
            nodes,
            node_limit,
        })
    }

    /// Every interface, in schema order (requested files in order, each
    /// depth first through its nested nodes in declaration order: the order
    /// of `capos_caps::api::ALL`).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The serialized result of `interfaces`.
    pub fn interfaces_answer(&self) -> &[u8] {
        &self.interfaces
    }

    /// The node with type id `id` as a single-segment message whose root is
    /// a `schema.capnp` `Node`.
    pub fn node(&self, id: u64) -> Option<&[u8]> {
        self.nodes
            .binary_search_by_key(&id, |n| n.0)
            .ok()
            .map(|i| self.nodes[i].1.as_slice())
    }

    /// The serialized result of `node(id)`, or why it is refused.
    pub fn node_answer(&self, id: u64) -> Result<Vec<u8>, Refusal> {
        let node = self.node(id).ok_or(Refusal::Unknown(id))?;
        let words = u32::try_from(node.len() / 8 + 8).unwrap_or(u32::MAX);
        let mut m = Builder::new(HeapAllocator::new().first_segment_words(words));
        m.init_root::<proto::node_results::Builder<'_>>()
            .set_node(node);
        let bytes = capnp::serialize::write_message_to_words(&m);
        if bytes.len() > self.node_limit {
            return Err(Refusal::TooLarge {
                id,
                bytes: bytes.len(),
                limit: self.node_limit,
            });
        }
        Ok(bytes)
    }

    /// How many nodes it serves.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Bytes of answers it holds.
    pub fn bytes(&self) -> usize {
        self.interfaces.len() + self.nodes.iter().map(|n| n.1.len()).sum::<usize>()
    }

    /// The result capacity `node` answers within.
    pub fn node_limit(&self) -> usize {
        self.node_limit
    }
}

/// A node's name without its file prefix (`Timer` of `capos.capnp:Timer`).
fn short_name<'a>(n: node::Reader<'a>) -> Result<&'a str, Error> {
    let display = n.get_display_name()?.to_str()?;
    let prefix = n.get_display_name_prefix_length() as usize;
    Ok(display.get(prefix..).unwrap_or(display))
}

/// Interfaces under `parent`, depth first in declaration order.
fn collect<'a>(
    find: &dyn Fn(u64) -> Option<node::Reader<'a>>,
    parent: node::Reader<'a>,
    out: &mut Vec<Entry>,
) -> Result<(), Error> {
    for nested in parent.get_nested_nodes()? {
        let Some(child) = find(nested.get_id()) else {
            continue;
        };
        if let node::Interface(_) = child.which()? {
            out.push(Entry {
                id: child.get_id(),
                name: child.get_display_name()?.to_str()?.into(),
            });
        }
        collect(find, child, out)?;
    }
    Ok(())
}

/// The `$resultBytes` of `method` of `iface` (annotation `annotation`), or
/// the client's default.
fn result_limit(
    iface: node::Reader<'_>,
    method: u16,
    annotation: Option<u64>,
) -> Result<usize, Error> {
    let node::Interface(i) = iface.which()? else {
        return Err(Error("SchemaRegistry is not an interface".into()));
    };
    let m = i
        .get_methods()?
        .try_get(u32::from(method))
        .ok_or_else(|| Error(format!("SchemaRegistry has no method {method}")))?;
    for a in m.get_annotations()? {
        if Some(a.get_id()) == annotation {
            if let value::Uint32(v) = a.get_value()?.which()? {
                return Ok(v as usize);
            }
        }
    }
    Ok(DEFAULT_RESULT_BYTES)
}

/// The serialized `interfaces` result listing `entries`.
fn interfaces_answer(entries: &[Entry]) -> Result<Vec<u8>, Error> {
    let count = u32::try_from(entries.len()).map_err(|_| Error("too many interfaces".into()))?;
    let mut m = Builder::new_default();
    let mut list = m
        .init_root::<proto::interfaces_results::Builder<'_>>()
        .init_entries(count);
    for (e, i) in entries.iter().zip(0u32..) {
        let mut b = list.reborrow().get(i);
        b.set_id(e.id);
        b.set_name(e.name.as_str());
    }
    Ok(capnp::serialize::write_message_to_words(&m))
}

/// `n` copied into a fresh message of one segment, serialized.
fn single_node(n: node::Reader<'_>) -> Result<Vec<u8>, Error> {
    // The node's words plus the root pointer, with room to spare.
    let words = n.total_size()?.word_count + 1 + 8;
    let words = u32::try_from(words).map_err(|_| Error("schema node too large".into()))?;
    let mut m = Builder::new(HeapAllocator::new().first_segment_words(words));
    m.set_root(n)?;
    if m.get_segments_for_output().len() != 1 {
        return Err(Error(format!(
            "schema node {:#018x} did not fit one segment",
            n.get_id()
        )));
    }
    Ok(capnp::serialize::write_message_to_words(&m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use capnp::schema_capnp::type_;
    use capos_rt::caps::api::{echo, ALL};
    use capos_rt::caps::SCHEMA_REQUEST;

    fn registry() -> Registry {
        Registry::new(SCHEMA_REQUEST).expect("the build's schema indexes")
    }

    fn read(bytes: &[u8]) -> capnp::message::Reader<capnp::serialize::OwnedSegments> {
        capnp::serialize::read_message(bytes, ReaderOptions::new()).unwrap()
    }

    /// The node of `id` as the client decodes it.
    fn decoded(r: &Registry, id: u64) -> capnp::message::Reader<capnp::serialize::OwnedSegments> {
        let answer = read(&r.node_answer(id).unwrap());
        let data = answer
            .get_root::<proto::node_results::Reader<'_>>()
            .unwrap()
            .get_node()
            .unwrap()
            .to_vec();
        read(&data)
    }

    #[test]
    fn interfaces_are_the_schema_interfaces_in_schema_order() {
        let r = registry();
        let ids: Vec<u64> = r.entries().iter().map(|e| e.id).collect();
        let want: Vec<u64> = ALL.iter().map(|(_, id)| *id).collect();
        assert_eq!(ids, want);
        for (e, (name, _)) in r.entries().iter().zip(ALL) {
            let (file, short) = e.name.split_once(':').unwrap();
            assert!(
                file == "capos.capnp" || file == "services.capnp",
                "{}",
                e.name
            );
            assert_eq!(short, *name);
        }
        assert!(r.entries().iter().any(|e| e.name == "capos.capnp:Timer"));
        assert!(r.entries().iter().any(|e| e.name == "services.capnp:Echo"));
    }

    #[test]
    fn the_interfaces_answer_decodes_to_the_entries() {
        let r = registry();
        assert!(r.interfaces_answer().len() <= 65536);
        let m = read(r.interfaces_answer());
        let list = m
            .get_root::<proto::interfaces_results::Reader<'_>>()
            .unwrap()
            .get_entries()
            .unwrap();
        assert_eq!(list.len() as usize, r.entries().len());
        for (got, want) in list.iter().zip(r.entries()) {
            assert_eq!(got.get_id(), want.id);
            assert_eq!(got.get_name().unwrap().to_str().unwrap(), want.name);
        }
    }

    #[test]
    fn echo_node_has_the_generated_methods() {
        let r = registry();
        let m = decoded(&r, echo::ID);
        let n = m.get_root::<node::Reader<'_>>().unwrap();
        assert_eq!(n.get_id(), echo::ID);
        let node::Interface(i) = n.which().unwrap() else {
            panic!("Echo is not an interface node");
        };
        let names: Vec<String> = i
            .get_methods()
            .unwrap()
            .iter()
            .map(|m| m.get_name().unwrap().to_str().unwrap().into())
            .collect();
        assert_eq!(names, echo::METHODS);
        assert_eq!(names[usize::from(echo::USE_TIMER)], "useTimer");
    }

    #[test]
    fn implicit_param_structs_are_served() {
        let r = registry();
        let m = decoded(&r, echo::ID);
        let node::Interface(i) = m.get_root::<node::Reader<'_>>().unwrap().which().unwrap() else {
            panic!("Echo is not an interface node");
        };
        let params = i
            .get_methods()
            .unwrap()
            .get(u32::from(echo::ECHO))
            .get_param_struct_type();
        let m = decoded(&r, params);
        let n = m.get_root::<node::Reader<'_>>().unwrap();
        let name = n.get_display_name().unwrap().to_str().unwrap();
        assert_eq!(name, "services.capnp:Echo.echo$Params");
        let node::Struct(s) = n.which().unwrap() else {
            panic!("echo's parameters are not a struct node");
        };
        let fields = s.get_fields().unwrap();
        assert_eq!(fields.len(), 1);
        let f = fields.get(0);
        assert_eq!(f.get_name().unwrap().to_str().unwrap(), "data");
        let capnp::schema_capnp::field::Slot(slot) = f.which().unwrap() else {
            panic!("data is not a slot");
        };
        assert!(matches!(
            slot.get_type().unwrap().which().unwrap(),
            type_::Data(())
        ));
    }

    #[test]
    fn every_node_is_one_segment_rooted_at_itself() {
        let r = registry();
        assert!(r.node_count() > ALL.len());
        for (id, bytes) in &r.nodes {
            assert_eq!(
                u32::from_le_bytes(bytes[..4].try_into().unwrap()),
                0,
                "one segment"
            );
            let m = read(bytes);
            assert_eq!(m.get_root::<node::Reader<'_>>().unwrap().get_id(), *id);
        }
    }

    #[test]
    fn unknown_ids_are_refused_by_name() {
        let r = registry();
        let e = r.node_answer(0x1234).unwrap_err();
        assert_eq!(e, Refusal::Unknown(0x1234));
        assert_eq!(format!("{e}"), "no schema node has id 0x0000000000001234");
    }

    #[test]
    fn the_node_limit_is_the_schema_result_bytes_and_is_enforced() {
        let mut r = registry();
        assert_eq!(r.node_limit(), 65536);
        let small = r.node_answer(echo::ID).unwrap().len();
        r.node_limit = small - 1;
        match r.node_answer(echo::ID) {
            Err(Refusal::TooLarge { id, bytes, limit }) => {
                assert_eq!((id, bytes, limit), (echo::ID, small, small - 1))
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn misaligned_and_malformed_requests() {
        let mut shifted = alloc::vec![0u8; SCHEMA_REQUEST.len() + 1];
        shifted[1..].copy_from_slice(SCHEMA_REQUEST);
        let r = Registry::new(&shifted[1..]).unwrap();
        assert_eq!(r.entries(), registry().entries());
        assert!(Registry::new(&SCHEMA_REQUEST[..SCHEMA_REQUEST.len() / 2]).is_err());
        assert!(Registry::new(&[]).is_err());
    }
}
