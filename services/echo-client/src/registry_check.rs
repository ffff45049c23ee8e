//! The schema registry as a client sees it: finds `Echo` among the
//! registry's interfaces, reads its methods from the node the registry
//! serves, then the fields of `echo`'s parameter struct, checks both
//! against what the generated code says (`capos_caps::api::echo`, the
//! bindings' type ids), has an unknown id refused, and stops the registry.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capos_rt::api::{SchemaRegistry, ServiceControl};
use capos_rt::capnp;
use capos_rt::capnp::message::ReaderOptions;
use capos_rt::capnp::schema_capnp::{field, node, type_};
use capos_rt::capnp::traits::HasTypeId;
use capos_rt::caps::api::echo;
use capos_rt::caps::schema::services_capnp::echo::echo_params;
use capos_rt::{CallError, ClientEndpoint, Runtime};

/// An id no node can have (Cap'n Proto type ids have the top bit set).
const UNKNOWN_ID: u64 = 0x0123_4567_89ab_cdef;

/// A message the registry answered with (a `Node` at its root).
type Message = capnp::message::Reader<capnp::serialize::OwnedSegments>;

fn read_node(bytes: &[u8]) -> Result<Message, CallError> {
    let mut options = ReaderOptions::new();
    options
        .traversal_limit_in_words(Some(bytes.len() / 8 * 4 + 64))
        .nesting_limit(16);
    Ok(capnp::serialize::read_message(bytes, options)?)
}

/// The schema spelling of a field's type, for the common ones.
fn type_name(t: type_::Reader<'_>) -> &'static str {
    match t.which() {
        Ok(type_::Void(())) => "Void",
        Ok(type_::Bool(())) => "Bool",
        Ok(type_::Uint16(())) => "UInt16",
        Ok(type_::Uint32(())) => "UInt32",
        Ok(type_::Uint64(())) => "UInt64",
        Ok(type_::Int64(())) => "Int64",
        Ok(type_::Text(())) => "Text",
        Ok(type_::Data(())) => "Data",
        Ok(type_::List(_)) => "List",
        Ok(type_::Struct(_)) => "struct",
        Ok(type_::Enum(_)) => "enum",
        Ok(type_::Interface(_)) => "interface",
        _ => "?",
    }
}

/// Runs the check if this process holds a `registry` cap (and stops the
/// registry if it holds `registryControl`).
pub fn run(rt: &Runtime, say: &dyn Fn(&str)) {
    let Ok(ep) = rt.cap::<ClientEndpoint>("registry") else {
        return;
    };
    let registry: SchemaRegistry = ep.protocol();
    if let Err(e) = check(&registry, say) {
        say(&format!("registry-check: FAIL {e}"));
    }
    match registry.node(UNKNOWN_ID) {
        Err(CallError::Exception(e)) => say(&format!(
            "registry-check: node({UNKNOWN_ID:#x}) refused: {}",
            e.message
        )),
        other => say(&format!(
            "registry-check: FAIL node of an unknown id: {other:?}"
        )),
    }
    if let Ok(control) = rt.cap::<ClientEndpoint>("registryControl") {
        let control: ServiceControl = control.protocol();
        match control.stop() {
            Ok(()) => say("registry-check: asked the registry to stop"),
            Err(e) => say(&format!("registry-check: FAIL stop: {e}")),
        }
    }
}

fn check(registry: &SchemaRegistry, say: &dyn Fn(&str)) -> Result<(), String> {
    let e = |e: CallError| format!("{e}");
    let c = |e: capnp::Error| format!("{e}");
    let reply = registry.interfaces().map_err(e)?;
    let entries = reply.get().map_err(e)?.get_entries().map_err(c)?;
    let mut found = None;
    for entry in entries {
        let name = entry
            .get_name()
            .map_err(c)?
            .to_str()
            .map_err(|e| format!("{e}"))?;
        if name.rsplit(':').next() == Some(echo::NAME) {
            found = Some((entry.get_id(), String::from(name)));
        }
    }
    let (id, name) = found.ok_or("no Echo among the registry's interfaces")?;
    if id != echo::ID {
        return Err(format!(
            "{name} has id {id:#x}, the generated api says {:#x}",
            echo::ID
        ));
    }
    say(&format!(
        "registry-check: {} interfaces; {name} is {id:#x}",
        entries.len()
    ));

    let message = read_node(&registry.node(id).map_err(e)?).map_err(e)?;
    let n = message.get_root::<node::Reader<'_>>().map_err(c)?;
    let node::Interface(iface) = n.which().map_err(|e| format!("{e}"))? else {
        return Err(format!("node {id:#x} is not an interface"));
    };
    let methods = iface.get_methods().map_err(c)?;
    // A method's ordinal is its position in the interface's method list.
    let mut got = Vec::new();
    for (m, ordinal) in methods.iter().zip(0u16..) {
        let name = m
            .get_name()
            .map_err(c)?
            .to_str()
            .map_err(|e| format!("{e}"))?;
        got.push(format!("{name}@{ordinal}"));
    }
    let want: Vec<String> = echo::METHODS
        .iter()
        .zip(0u16..)
        .map(|(name, ordinal)| format!("{name}@{ordinal}"))
        .collect();
    if n.get_id() != echo::ID || got != want {
        return Err(format!(
            "node {:#x} has methods [{}], the generated api says [{}]",
            n.get_id(),
            got.join(" "),
            want.join(" ")
        ));
    }
    say(&format!("registry-check: Echo has {}", got.join(" ")));

    let params = methods
        .try_get(u32::from(echo::ECHO))
        .ok_or("Echo has no method echo")?
        .get_param_struct_type();
    if params != <echo_params::Reader<'_> as HasTypeId>::TYPE_ID {
        return Err(format!(
            "echo's parameters are {params:#x}, the bindings say {:#x}",
            <echo_params::Reader<'_> as HasTypeId>::TYPE_ID
        ));
    }
    let message = read_node(&registry.node(params).map_err(e)?).map_err(e)?;
    let n = message.get_root::<node::Reader<'_>>().map_err(c)?;
    let node::Struct(s) = n.which().map_err(|e| format!("{e}"))? else {
        return Err(format!("node {params:#x} is not a struct"));
    };
    let mut fields = Vec::new();
    for f in s.get_fields().map_err(c)? {
        let name = f
            .get_name()
            .map_err(c)?
            .to_str()
            .map_err(|e| format!("{e}"))?;
        let ty = match f.which() {
            Ok(field::Slot(slot)) => type_name(slot.get_type().map_err(c)?),
            _ => "group",
        };
        fields.push(format!("{name} :{ty}"));
    }
    let display = n
        .get_display_name()
        .map_err(c)?
        .to_str()
        .map_err(|e| format!("{e}"))?;
    say(&format!(
        "registry-check: {display} has {}",
        fields.join(", ")
    ));
    Ok(())
}
