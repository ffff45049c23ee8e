//! Interface ids of the kernel capability interfaces.
//!
//! Each id is the Cap'n Proto type id of the interface in `caps/schema/capos.capnp`,
//! taken from the generated bindings. A capability table entry exposes exactly one of
//! these (or a userspace-defined id); the id, not a rights mask, is the permission.

use crate::schema::capos_capnp as s;

/// `Console`: write-only text output.
pub const CONSOLE: u64 = s::console::_private::TYPE_ID;
/// `TerminalSession`: line terminal with input.
pub const TERMINAL_SESSION: u64 = s::terminal_session::_private::TYPE_ID;
/// `Timer`: monotonic clock and sleeps.
pub const TIMER: u64 = s::timer::_private::TYPE_ID;
/// `Endpoint`: the owner side of an IPC endpoint (may RECV and RETURN).
pub const ENDPOINT: u64 = s::endpoint::_private::TYPE_ID;
/// `ClientEndpoint`: the CALL-only facet of an endpoint.
pub const CLIENT_ENDPOINT: u64 = s::client_endpoint::_private::TYPE_ID;
/// `ProcessSpawner`: start processes from boot binaries.
pub const PROCESS_SPAWNER: u64 = s::process_spawner::_private::TYPE_ID;
/// `ProcessHandle`: wait for or stop one child process.
pub const PROCESS_HANDLE: u64 = s::process_handle::_private::TYPE_ID;
/// `BootPackage`: read the manifest and boot binaries.
pub const BOOT_PACKAGE: u64 = s::boot_package::_private::TYPE_ID;
/// `FrameAllocator`: allocate physical memory as memory objects.
pub const FRAME_ALLOCATOR: u64 = s::frame_allocator::_private::TYPE_ID;
/// `MemoryObject`: mappable physical memory.
pub const MEMORY_OBJECT: u64 = s::memory_object::_private::TYPE_ID;
/// `VirtualMemory`: anonymous mappings in the holder's address space.
pub const VIRTUAL_MEMORY: u64 = s::virtual_memory::_private::TYPE_ID;
/// `ThreadSpawner`: start threads in the holder.
pub const THREAD_SPAWNER: u64 = s::thread_spawner::_private::TYPE_ID;
/// `ThreadHandle`: join one thread.
pub const THREAD_HANDLE: u64 = s::thread_handle::_private::TYPE_ID;
/// `ThreadControl`: operations on the calling thread.
pub const THREAD_CONTROL: u64 = s::thread_control::_private::TYPE_ID;
/// `Null`: does nothing; measures the cost of a capability call itself.
pub const NULL: u64 = s::null::_private::TYPE_ID;
/// `EntropySource`: random bytes.
pub const ENTROPY_SOURCE: u64 = s::entropy_source::_private::TYPE_ID;
/// `SystemInfo`: uptime, memory, CPUs, processes.
pub const SYSTEM_INFO: u64 = s::system_info::_private::TYPE_ID;
/// `SessionAuthority`: mint, scope and end sessions.
pub const SESSION_AUTHORITY: u64 = s::session_authority::_private::TYPE_ID;
/// `UserSession`: one session.
pub const USER_SESSION: u64 = s::user_session::_private::TYPE_ID;

/// `Launcher` (`services.capnp`, served by init): what a manifest's
/// launcher cap expects. Not a kernel interface: the holder's CapSet shows
/// the `ClientEndpoint` it speaks `Launcher` through.
pub const LAUNCHER: u64 = crate::schema::services_capnp::launcher::_private::TYPE_ID;

/// Every kernel interface with its schema name, in schema order.
pub const ALL: [(&str, u64); 19] = [
    ("Console", CONSOLE),
    ("TerminalSession", TERMINAL_SESSION),
    ("Timer", TIMER),
    ("Endpoint", ENDPOINT),
    ("ClientEndpoint", CLIENT_ENDPOINT),
    ("ProcessSpawner", PROCESS_SPAWNER),
    ("ProcessHandle", PROCESS_HANDLE),
    ("BootPackage", BOOT_PACKAGE),
    ("FrameAllocator", FRAME_ALLOCATOR),
    ("MemoryObject", MEMORY_OBJECT),
    ("VirtualMemory", VIRTUAL_MEMORY),
    ("ThreadSpawner", THREAD_SPAWNER),
    ("ThreadHandle", THREAD_HANDLE),
    ("ThreadControl", THREAD_CONTROL),
    ("Null", NULL),
    ("EntropySource", ENTROPY_SOURCE),
    ("SystemInfo", SYSTEM_INFO),
    ("SessionAuthority", SESSION_AUTHORITY),
    ("UserSession", USER_SESSION),
];

/// The schema name of a kernel interface id, if it is one.
pub fn name_of(interface_id: u64) -> Option<&'static str> {
    ALL.iter()
        .find(|(_, id)| *id == interface_id)
        .map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_constants_match_generated_type_ids() {
        // The `...InterfaceId` constants in capos.capnp are what manifests use; they must
        // name the same ids as the interfaces themselves.
        let declared = [
            s::CONSOLE_INTERFACE_ID,
            s::TERMINAL_SESSION_INTERFACE_ID,
            s::TIMER_INTERFACE_ID,
            s::ENDPOINT_INTERFACE_ID,
            s::CLIENT_ENDPOINT_INTERFACE_ID,
            s::PROCESS_SPAWNER_INTERFACE_ID,
            s::PROCESS_HANDLE_INTERFACE_ID,
            s::BOOT_PACKAGE_INTERFACE_ID,
            s::FRAME_ALLOCATOR_INTERFACE_ID,
            s::MEMORY_OBJECT_INTERFACE_ID,
            s::VIRTUAL_MEMORY_INTERFACE_ID,
            s::THREAD_SPAWNER_INTERFACE_ID,
            s::THREAD_HANDLE_INTERFACE_ID,
            s::THREAD_CONTROL_INTERFACE_ID,
            s::NULL_INTERFACE_ID,
            s::ENTROPY_SOURCE_INTERFACE_ID,
            s::SYSTEM_INFO_INTERFACE_ID,
            s::SESSION_AUTHORITY_INTERFACE_ID,
            s::USER_SESSION_INTERFACE_ID,
        ];
        assert_eq!(declared.len(), ALL.len());
        assert_eq!(
            LAUNCHER,
            crate::schema::services_capnp::LAUNCHER_INTERFACE_ID
        );
        for ((name, id), want) in ALL.iter().zip(declared) {
            assert_eq!(*id, want, "{name}");
        }
    }

    #[test]
    fn ids_are_distinct_and_named() {
        for (i, (name, id)) in ALL.iter().enumerate() {
            assert_eq!(name_of(*id), Some(*name));
            assert!(ALL[i + 1..].iter().all(|(_, other)| other != id));
        }
        assert_eq!(CONSOLE, 0xdfa8_4506_728b_f29c);
        assert_eq!(NULL, 0xebbe_9c32_53cd_bcaa);
        assert_eq!(name_of(0), None);
    }
}
