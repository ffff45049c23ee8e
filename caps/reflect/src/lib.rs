//! Run-time reflection on capOS interfaces, for the shell's typed calls and
//! `inspect`.
//!
//! Interfaces are read at run time from schema nodes (`schema.capnp` `Node`
//! messages, as the schema registry serves them), not from compiled-in Rust
//! types:
//!
//! * [`Schema`]: nodes by id, from a whole `CodeGeneratorRequest`
//!   ([`Schema::from_request`], [`Schema::builtin`]) or node by node
//!   ([`Schema::insert_node`]). A lookup of an absent node answers
//!   [`Error::Missing`]; [`Schema::load`] fetches everything one interface
//!   needs through a callback.
//! * [`describe`]: an interface's methods in Cap'n Proto syntax.
//! * [`parse`]: the call language, `$t = target.method(name: value, ...)`
//!   (grammar in `docs/shell.md`).
//! * [`encode`]: parameters from parsed arguments, as a Cap'n Proto message
//!   laid out by the parameter struct's node.
//! * [`decode`]: result messages (and `CapException`s) as Cap'n Proto text.
//!
//! A typical call, with `schema` holding the interface `iface`:
//!
//! ```
//! let schema = capos_reflect::Schema::builtin().unwrap();
//! let echo = schema.find_interface("Echo").unwrap();
//! let line = capos_reflect::parse("echo.echo(data: \"hi\")").unwrap();
//! let call = capos_reflect::encode(&schema, echo, &line.method, &line.args).unwrap();
//! assert_eq!(call.ordinal, 0);
//! // ... send `call.params`, receive `results` ...
//! # let results = call.params.clone();
//! let text = capos_reflect::decode(&schema, echo, call.ordinal, &results).unwrap();
//! assert_eq!(text, "(data = \"hi\")");
//! ```
#![cfg_attr(not(test), no_std)]
extern crate alloc;

mod decode;
mod describe;
mod encode;
mod literal;
mod parse;
pub mod schema;
mod wire;

pub use decode::{decode, decode_exception, decode_struct};
pub use describe::{describe, describe_method, type_name};
pub use encode::{encode, encode_struct, Encoded};
pub use parse::{parse, parse_value, Arg, Line, Target, Value, ValueKind};
pub use schema::{Schema, Type};

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A byte range of the parsed line: where a value or name was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

/// Everything that can go wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// The node with this id is not in the schema: fetch it (the registry's
    /// `node(id)`), [`Schema::insert_node`] it and retry.
    Missing(u64),
    /// A schema node or request that is malformed or not understood.
    Schema(String),
    /// The line does not parse.
    Parse(ParseError),
    /// The call does not fit the interface: a person's mistake.
    Call(Box<CallError>),
    /// A result message that is malformed.
    Message(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Missing(id) => write!(f, "schema node {id:#018x} is not loaded"),
            Error::Schema(m) => write!(f, "schema: {m}"),
            Error::Parse(e) => e.fmt(f),
            Error::Call(e) => e.fmt(f),
            Error::Message(m) => write!(f, "malformed message: {m}"),
        }
    }
}

impl From<capnp::Error> for Error {
    fn from(e: capnp::Error) -> Self {
        Error::Schema(alloc::format!("{e}"))
    }
}

impl From<capnp::NotInSchema> for Error {
    fn from(e: capnp::NotInSchema) -> Self {
        Error::Schema(alloc::format!("{e}"))
    }
}

impl From<core::str::Utf8Error> for Error {
    fn from(e: core::str::Utf8Error) -> Self {
        Error::Schema(alloc::format!("name is not UTF-8: {e}"))
    }
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Error::Parse(e)
    }
}

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        Error::Call(Box::new(e))
    }
}

/// A line that does not parse: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the line.
    pub pos: usize,
    /// What was wrong, e.g. `expected ')'`.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}: {}", self.pos, self.message)
    }
}

/// A call that parses but does not fit the interface.
#[derive(Clone, Debug, PartialEq)]
pub struct CallError {
    /// Where in the line, when known.
    pub span: Option<Span>,
    /// Path of the offending value from the parameters, e.g.
    /// `grants[0].name` (empty for the method itself).
    pub path: String,
    /// What was wrong.
    pub mistake: Mistake,
}

impl CallError {
    pub(crate) fn new(span: Option<Span>, path: &str, mistake: Mistake) -> Self {
        Self {
            span,
            path: path.into(),
            mistake,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.span {
            write!(f, "at {}: ", s.start)?;
        }
        self.mistake.fmt(f)
    }
}

/// The mistakes a person can make in a call.
#[derive(Clone, Debug, PartialEq)]
pub enum Mistake {
    /// The interface has no such method.
    UnknownMethod {
        /// The interface's name.
        interface: String,
        /// The name given.
        method: String,
        /// The methods it has.
        methods: Vec<String>,
    },
    /// The struct has no such field.
    UnknownField {
        /// What has the fields: `the parameters of Echo.echo`, or a struct's name.
        owner: String,
        /// The name given.
        field: String,
        /// The fields it has.
        fields: Vec<String>,
    },
    /// More positional arguments than parameters.
    TooManyArguments {
        /// What has the fields.
        owner: String,
        /// How many fields it has.
        fields: usize,
    },
    /// A field given twice.
    DuplicateField(String),
    /// Two members of one union given.
    UnionConflict {
        /// The member given first.
        first: String,
        /// The member given second.
        second: String,
    },
    /// A value of the wrong kind for the field's type.
    WrongType {
        /// The field (path).
        field: String,
        /// The field's type in Cap'n Proto syntax.
        expected: String,
        /// What was given, e.g. `a number`.
        got: &'static str,
    },
    /// An integer that does not fit the field's type.
    OutOfRange {
        /// The field (path).
        field: String,
        /// The field's type.
        expected: String,
        /// The literal as written.
        literal: String,
    },
    /// An enumerant the enum does not have.
    BadEnumerant {
        /// The field (path).
        field: String,
        /// The enum's name.
        enum_name: String,
        /// The name given.
        got: String,
        /// Its enumerants.
        enumerants: Vec<String>,
    },
    /// Text that is not valid UTF-8 (made with `\x` escapes).
    NotUtf8(String),
    /// A value this library cannot put in a message: capabilities travel
    /// out of band, so interface and `AnyPointer` fields take none.
    Unsupported {
        /// The field (path).
        field: String,
        /// Why.
        why: String,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names.join(", ")
}

impl fmt::Display for Mistake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mistake::UnknownMethod {
                interface,
                method,
                methods,
            } => write!(
                f,
                "{interface} has no method `{method}`; its methods: {}",
                list(methods)
            ),
            Mistake::UnknownField {
                owner,
                field,
                fields,
            } => write!(
                f,
                "no field `{field}` in {owner}; its fields: {}",
                list(fields)
            ),
            Mistake::TooManyArguments { owner, fields } => {
                write!(f, "too many values: {owner} has {fields} fields")
            }
            Mistake::DuplicateField(name) => write!(f, "`{name}` is given twice"),
            Mistake::UnionConflict { first, second } => write!(
                f,
                "`{first}` and `{second}` are members of one union: give only one"
            ),
            Mistake::WrongType {
                field,
                expected,
                got,
            } => write!(f, "`{field}` is {expected}, got {got}"),
            Mistake::OutOfRange {
                field,
                expected,
                literal,
            } => write!(f, "`{field}` is {expected}: {literal} is out of its range"),
            Mistake::BadEnumerant {
                field,
                enum_name,
                got,
                enumerants,
            } => write!(
                f,
                "`{field}` is {enum_name}, which has no enumerant `{got}`; its enumerants: {}",
                list(enumerants)
            ),
            Mistake::NotUtf8(field) => write!(f, "`{field}` is Text, got bytes that are not UTF-8"),
            Mistake::Unsupported { field, why } => write!(f, "`{field}`: {why}"),
        }
    }
}
