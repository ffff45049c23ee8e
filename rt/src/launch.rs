//! Serving `Launcher.launch`: the checks every launcher makes on a launch
//! request (init's, and the session manager's restricted one), written once.
//!
//! A launch names a binary, a process name and a grant list; each grant is
//! either a capability sent with the call (by transfer index, each at most
//! once, of the interface the grant expects) or a child-local kernel kind.
//! Everything sent with the call is owned by the launcher from the moment
//! it arrives: what is passed on moves to the child, the rest is released
//! on every path out.

use crate::caps::exception::CapException;
use crate::caps::manifest::{self, KernelKind};
use crate::caps::schema::capos_capnp::cap_grant;
use crate::caps::schema::services_capnp::launcher as proto;
use crate::client::{Answer, GrantSpec, ProcessSpawner, ServerCall, SpawnOptions};
use crate::handle::{Cap, CapHandle};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// A launch that was started.
pub struct Launched {
    /// The answer to send (the child's ProcessHandle moved with it).
    pub answer: Answer,
    /// The binary started.
    pub binary: String,
    /// The child's pid.
    pub pid: u64,
}

/// `text` as a `&str`, or the failure to answer with.
pub fn text<'r>(
    what: &str,
    t: capnp::Result<capnp::text::Reader<'r>>,
) -> Result<&'r str, CapException> {
    t.ok()
        .and_then(|t| t.to_str().ok())
        .ok_or_else(|| CapException::failed(format!("{what} is not UTF-8 text")))
}

/// Runs one `launch` call: checks the binary with `allowed` (which answers
/// the refusal to send), resolves the grants against the capabilities the
/// call carried (taken from `cx`), and starts the child through `spawner`
/// with `options`, in `session` (a UserSession) if given, else in the
/// launcher's own.
pub fn launch(
    spawner: &ProcessSpawner,
    cx: &mut ServerCall,
    p: proto::launch_params::Reader<'_>,
    options: SpawnOptions,
    session: Option<&Cap>,
    allowed: impl FnOnce(&str) -> Result<(), CapException>,
) -> Result<Launched, CapException> {
    // Everything sent is owned from here on: whatever is not passed on to
    // the child is released on every path out.
    let sent: Vec<Option<CapHandle>> = core::mem::take(&mut cx.caps)
        .into_iter()
        .map(|c| Some(CapHandle::adopt(c)))
        .collect();
    let binary = text("binary", p.get_binary())?;
    allowed(binary)?;
    let name = text("name", p.get_name())?;
    let list = p
        .get_grants()
        .map_err(|e| CapException::failed(format!("malformed grants: {e}")))?;
    let mut names: Vec<&str> = Vec::with_capacity(list.len() as usize);
    // Each grant's source: a capability sent with the call, or a kind.
    let mut sources: Vec<Result<&Cap, KernelKind>> = Vec::new();
    let mut used = alloc::vec![false; sent.len()];
    for g in list.iter() {
        let gname = text("grant name", g.get_name())?;
        let expected = g.get_expected_interface_id();
        match g.get_source().which() {
            Ok(cap_grant::source::Transferred(i)) => {
                let i = usize::from(i);
                let Some(cap) = sent.get(i).and_then(Option::as_ref) else {
                    return Err(CapException::failed(format!(
                        "grant {gname:?}: names transfer index {i}, but {} capabilities were sent",
                        sent.len()
                    )));
                };
                if core::mem::replace(&mut used[i], true) {
                    return Err(CapException::failed(format!(
                        "grant {gname:?}: transfer index {i} is named by an earlier grant too"
                    )));
                }
                if cap.interface_id() != expected {
                    return Err(CapException::failed(format!(
                        "grant {gname:?}: expects interface {expected:#x}, but capability {i} is {:#x}",
                        cap.interface_id()
                    )));
                }
                sources.push(Ok(cap));
            }
            Ok(cap_grant::source::Kernel(Ok(kind))) => {
                let kind = manifest::kind_from_schema(kind);
                if !kind.is_child_local() {
                    return Err(CapException::failed(format!(
                        "grant {gname:?}: a launcher mints only child-local kernel caps, not {kind}; send a {kind} cap you hold instead"
                    )));
                }
                if kind.interface_id() != expected {
                    return Err(CapException::failed(format!(
                        "grant {gname:?}: expects interface {expected:#x}, but kind {kind} provides {:#x}",
                        kind.interface_id()
                    )));
                }
                sources.push(Err(kind));
            }
            _ => {
                return Err(CapException::failed(format!(
                    "grant {gname:?}: unknown source"
                )))
            }
        }
        names.push(gname);
    }
    let grants: Vec<GrantSpec<'_>> = names
        .iter()
        .zip(&sources)
        .map(|(name, source)| match source {
            Ok(cap) => GrantSpec::Move { name, cap },
            Err(kind) => GrantSpec::Kernel { name, kind: *kind },
        })
        .collect();
    let spawned = spawner
        .spawn_in_session(name, binary, &grants, options, session)
        .map_err(|e| CapException::failed(format!("cannot start {binary:?}: {e}")))?;
    drop(grants);
    drop(sources);
    // The moved caps now belong to the child: forget them, release the rest.
    for (i, cap) in sent.into_iter().enumerate() {
        if let Some(cap) = cap {
            if used[i] {
                let _ = cap.into_cap();
            }
        }
    }
    // Client facets of child-local endpoints stay unused here.
    drop(spawned.facets);
    let pid = spawned
        .handle
        .pid()
        .map_err(|e| CapException::failed(format!("the child's pid is unknown: {e}")))?;
    let mut out = capnp::message::Builder::new_default();
    out.init_root::<proto::launch_results::Builder<'_>>()
        .set_handle(0);
    Ok(Launched {
        answer: cx.result_with_caps(
            &out,
            alloc::vec![(spawned.handle.into_cap(), crate::ring::TRANSFER_MOVE)],
        ),
        binary: String::from(binary),
        pid,
    })
}

/// Answers `allowed` with `binaries`.
pub fn allowed_answer(cx: &mut ServerCall, binaries: &[String]) -> Answer {
    let mut out = capnp::message::Builder::new_default();
    let mut list = out
        .init_root::<proto::allowed_results::Builder<'_>>()
        .init_binaries(binaries.len() as u32);
    for (i, b) in binaries.iter().enumerate() {
        list.set(i as u32, b.as_str());
    }
    cx.result(&out)
}
