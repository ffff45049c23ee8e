//! The capability shell's logic that needs no capabilities, kept apart from
//! its ring loop (`main.rs`) so that it is tested on the host
//! (`cargo test -p shell --lib`): the line editor ([`editor`]) and the
//! command language ([`command`]). Typed calls are parsed, encoded and
//! decoded by `capos_reflect` against schema nodes from the registry.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod command;
pub mod editor;
