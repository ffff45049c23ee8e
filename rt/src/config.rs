//! The manifest's `sessions` section as a service with `sessionsConfig =
//! true` receives it: a MemoryObject named
//! [`SESSIONS_CONFIG_CAP`](capos_caps::manifest::SESSIONS_CONFIG_CAP)
//! holding a length-prefixed `SessionsConfig` message (written by init).

use crate::client::MemoryObject;
use crate::runtime::Runtime;
use alloc::format;
use alloc::string::String;
use capos_caps::manifest::{self, SessionsConfig};

/// Reads and decodes the `config` MemoryObject; the mapping is removed
/// again, the decoded copy is what the caller keeps.
pub fn sessions(rt: &Runtime) -> Result<SessionsConfig, String> {
    let config = rt
        .cap::<MemoryObject>(manifest::SESSIONS_CONFIG_CAP)
        .map_err(|e| format!("no config: {e}"))?;
    let view = config
        .map_shared()
        .map_err(|e| format!("mapping the config failed: {e}"))?;
    let mut bytes = alloc::vec![0u8; view.len()];
    view.read(0, &mut bytes);
    let _ = config.unmap(view.addr(), view.len() as u64);
    manifest::decode_sessions_config(&bytes).map_err(|e| format!("the config does not decode: {e}"))
}
