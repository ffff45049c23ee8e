//! Every method of every capOS interface: parameters with no arguments
//! encode to a message the generated reader accepts (walked field by field
//! through the generated bindings' introspection), and `describe` mentions
//! every field.

use capnp::message::ReaderOptions;
use capos_caps::schema::{capos_capnp, services_capnp};
use capos_reflect::{describe, Schema};

/// `(module, params, results, interface, method)` for every method, in
/// schema order. The test fails when the schema gains a method this list
/// lacks.
macro_rules! every_method {
    ($check:ident) => {{
        let mut n = 0;
        $check!(
            capos_capnp::console,
            write_params,
            write_results,
            "Console",
            "write"
        );
        n += 1;
        $check!(
            capos_capnp::console,
            write_line_params,
            write_line_results,
            "Console",
            "writeLine"
        );
        n += 1;
        $check!(
            capos_capnp::terminal_session,
            write_params,
            write_results,
            "TerminalSession",
            "write"
        );
        n += 1;
        $check!(
            capos_capnp::terminal_session,
            write_line_params,
            write_line_results,
            "TerminalSession",
            "writeLine"
        );
        n += 1;
        $check!(
            capos_capnp::terminal_session,
            read_line_params,
            read_line_results,
            "TerminalSession",
            "readLine"
        );
        n += 1;
        $check!(
            capos_capnp::terminal_session,
            read_key_params,
            read_key_results,
            "TerminalSession",
            "readKey"
        );
        n += 1;
        $check!(
            capos_capnp::terminal_session,
            cancel_read_params,
            cancel_read_results,
            "TerminalSession",
            "cancelRead"
        );
        n += 1;
        $check!(
            capos_capnp::terminal_session,
            read_keys_params,
            read_keys_results,
            "TerminalSession",
            "readKeys"
        );
        n += 1;
        $check!(capos_capnp::timer, now_params, now_results, "Timer", "now");
        n += 1;
        $check!(
            capos_capnp::timer,
            sleep_params,
            sleep_results,
            "Timer",
            "sleep"
        );
        n += 1;
        $check!(
            capos_capnp::timer,
            sleep_until_params,
            sleep_until_results,
            "Timer",
            "sleepUntil"
        );
        n += 1;
        $check!(
            capos_capnp::endpoint,
            client_facet_params,
            client_facet_results,
            "Endpoint",
            "clientFacet"
        );
        n += 1;
        $check!(
            capos_capnp::process_spawner,
            spawn_params,
            spawn_results,
            "ProcessSpawner",
            "spawn"
        );
        n += 1;
        $check!(
            capos_capnp::process_handle,
            wait_params,
            wait_results,
            "ProcessHandle",
            "wait"
        );
        n += 1;
        $check!(
            capos_capnp::process_handle,
            pid_params,
            pid_results,
            "ProcessHandle",
            "pid"
        );
        n += 1;
        $check!(
            capos_capnp::process_handle,
            kill_params,
            kill_results,
            "ProcessHandle",
            "kill"
        );
        n += 1;
        $check!(
            capos_capnp::boot_package,
            manifest_size_params,
            manifest_size_results,
            "BootPackage",
            "manifestSize"
        );
        n += 1;
        $check!(
            capos_capnp::boot_package,
            read_manifest_params,
            read_manifest_results,
            "BootPackage",
            "readManifest"
        );
        n += 1;
        $check!(
            capos_capnp::boot_package,
            list_binaries_params,
            list_binaries_results,
            "BootPackage",
            "listBinaries"
        );
        n += 1;
        $check!(
            capos_capnp::boot_package,
            read_binary_params,
            read_binary_results,
            "BootPackage",
            "readBinary"
        );
        n += 1;
        $check!(
            capos_capnp::frame_allocator,
            allocate_params,
            allocate_results,
            "FrameAllocator",
            "allocate"
        );
        n += 1;
        $check!(
            capos_capnp::memory_object,
            info_params,
            info_results,
            "MemoryObject",
            "info"
        );
        n += 1;
        $check!(
            capos_capnp::memory_object,
            map_params,
            map_results,
            "MemoryObject",
            "map"
        );
        n += 1;
        $check!(
            capos_capnp::memory_object,
            unmap_params,
            unmap_results,
            "MemoryObject",
            "unmap"
        );
        n += 1;
        $check!(
            capos_capnp::virtual_memory,
            map_params,
            map_results,
            "VirtualMemory",
            "map"
        );
        n += 1;
        $check!(
            capos_capnp::virtual_memory,
            unmap_params,
            unmap_results,
            "VirtualMemory",
            "unmap"
        );
        n += 1;
        $check!(
            capos_capnp::virtual_memory,
            protect_params,
            protect_results,
            "VirtualMemory",
            "protect"
        );
        n += 1;
        $check!(
            capos_capnp::thread_spawner,
            spawn_params,
            spawn_results,
            "ThreadSpawner",
            "spawn"
        );
        n += 1;
        $check!(
            capos_capnp::thread_handle,
            join_params,
            join_results,
            "ThreadHandle",
            "join"
        );
        n += 1;
        $check!(
            capos_capnp::thread_handle,
            thread_id_params,
            thread_id_results,
            "ThreadHandle",
            "threadId"
        );
        n += 1;
        $check!(
            capos_capnp::thread_control,
            current_id_params,
            current_id_results,
            "ThreadControl",
            "currentId"
        );
        n += 1;
        $check!(
            capos_capnp::thread_control,
            yield_now_params,
            yield_now_results,
            "ThreadControl",
            "yieldNow"
        );
        n += 1;
        $check!(
            capos_capnp::thread_control,
            exit_thread_params,
            exit_thread_results,
            "ThreadControl",
            "exitThread"
        );
        n += 1;
        $check!(capos_capnp::null, ping_params, ping_results, "Null", "ping");
        n += 1;
        $check!(
            capos_capnp::null,
            counters_params,
            counters_results,
            "Null",
            "counters"
        );
        n += 1;
        $check!(
            capos_capnp::null,
            echo_later_params,
            echo_later_results,
            "Null",
            "echoLater"
        );
        n += 1;
        $check!(
            capos_capnp::entropy_source,
            read_params,
            read_results,
            "EntropySource",
            "read"
        );
        n += 1;
        $check!(
            capos_capnp::entropy_source,
            source_params,
            source_results,
            "EntropySource",
            "source"
        );
        n += 1;
        $check!(
            capos_capnp::system_info,
            summary_params,
            summary_results,
            "SystemInfo",
            "summary"
        );
        n += 1;
        $check!(
            capos_capnp::system_info,
            motd_params,
            motd_results,
            "SystemInfo",
            "motd"
        );
        n += 1;
        $check!(
            capos_capnp::session_authority,
            create_params,
            create_results,
            "SessionAuthority",
            "create"
        );
        n += 1;
        $check!(
            capos_capnp::session_authority,
            scope_params,
            scope_results,
            "SessionAuthority",
            "scope"
        );
        n += 1;
        $check!(
            capos_capnp::session_authority,
            end_params,
            end_results,
            "SessionAuthority",
            "end"
        );
        n += 1;
        $check!(
            capos_capnp::session_authority,
            reference_params,
            reference_results,
            "SessionAuthority",
            "reference"
        );
        n += 1;
        $check!(
            capos_capnp::user_session,
            info_params,
            info_results,
            "UserSession",
            "info"
        );
        n += 1;
        $check!(
            services_capnp::credential_store,
            verify_params,
            verify_results,
            "CredentialStore",
            "verify"
        );
        n += 1;
        $check!(
            services_capnp::credential_store,
            setup_params,
            setup_results,
            "CredentialStore",
            "setup"
        );
        n += 1;
        $check!(
            services_capnp::credential_store,
            status_params,
            status_results,
            "CredentialStore",
            "status"
        );
        n += 1;
        $check!(
            services_capnp::session_manager,
            anonymous_params,
            anonymous_results,
            "SessionManager",
            "anonymous"
        );
        n += 1;
        $check!(
            services_capnp::session_manager,
            login_params,
            login_results,
            "SessionManager",
            "login"
        );
        n += 1;
        $check!(
            services_capnp::session_manager,
            setup_params,
            setup_results,
            "SessionManager",
            "setup"
        );
        n += 1;
        $check!(
            services_capnp::session_manager,
            logout_params,
            logout_results,
            "SessionManager",
            "logout"
        );
        n += 1;
        $check!(
            services_capnp::session_manager,
            current_params,
            current_results,
            "SessionManager",
            "current"
        );
        n += 1;
        $check!(
            services_capnp::session_manager,
            bundle_params,
            bundle_results,
            "SessionManager",
            "bundle"
        );
        n += 1;
        $check!(
            services_capnp::session_manager,
            setup_needed_params,
            setup_needed_results,
            "SessionManager",
            "setupNeeded"
        );
        n += 1;
        $check!(
            services_capnp::audit_log,
            read_params,
            read_results,
            "AuditLog",
            "read"
        );
        n += 1;
        $check!(
            services_capnp::echo,
            echo_params,
            echo_results,
            "Echo",
            "echo"
        );
        n += 1;
        $check!(
            services_capnp::echo,
            fail_params,
            fail_results,
            "Echo",
            "fail"
        );
        n += 1;
        $check!(
            services_capnp::echo,
            quit_params,
            quit_results,
            "Echo",
            "quit"
        );
        n += 1;
        $check!(
            services_capnp::echo,
            inspect_caps_params,
            inspect_caps_results,
            "Echo",
            "inspectCaps"
        );
        n += 1;
        $check!(
            services_capnp::echo,
            use_timer_params,
            use_timer_results,
            "Echo",
            "useTimer"
        );
        n += 1;
        $check!(
            services_capnp::shared_memory_demo,
            share_params,
            share_results,
            "SharedMemoryDemo",
            "share"
        );
        n += 1;
        $check!(
            services_capnp::shared_memory_demo,
            check_params,
            check_results,
            "SharedMemoryDemo",
            "check"
        );
        n += 1;
        $check!(
            services_capnp::shared_memory_demo,
            refused_returns_params,
            refused_returns_results,
            "SharedMemoryDemo",
            "refusedReturns"
        );
        n += 1;
        $check!(
            services_capnp::shared_memory_demo,
            done_params,
            done_results,
            "SharedMemoryDemo",
            "done"
        );
        n += 1;
        $check!(
            services_capnp::shared_memory_demo,
            give_frames_params,
            give_frames_results,
            "SharedMemoryDemo",
            "giveFrames"
        );
        n += 1;
        $check!(
            services_capnp::keeper,
            keep_params,
            keep_results,
            "Keeper",
            "keep"
        );
        n += 1;
        $check!(
            services_capnp::keeper,
            quit_params,
            quit_results,
            "Keeper",
            "quit"
        );
        n += 1;
        $check!(
            services_capnp::watch,
            watch_params,
            watch_results,
            "Watch",
            "watch"
        );
        n += 1;
        $check!(
            services_capnp::watch,
            full_params,
            full_results,
            "Watch",
            "full"
        );
        n += 1;
        $check!(
            services_capnp::sleepers,
            join_params,
            join_results,
            "Sleepers",
            "join"
        );
        n += 1;
        $check!(
            services_capnp::sleeper,
            go_params,
            go_results,
            "Sleeper",
            "go"
        );
        n += 1;
        $check!(
            services_capnp::sleeper,
            result_params,
            result_results,
            "Sleeper",
            "result"
        );
        n += 1;
        $check!(
            services_capnp::schema_registry,
            interfaces_params,
            interfaces_results,
            "SchemaRegistry",
            "interfaces"
        );
        n += 1;
        $check!(
            services_capnp::schema_registry,
            node_params,
            node_results,
            "SchemaRegistry",
            "node"
        );
        n += 1;
        $check!(
            services_capnp::service_control,
            stop_params,
            stop_results,
            "ServiceControl",
            "stop"
        );
        n += 1;
        $check!(
            services_capnp::launcher,
            launch_params,
            launch_results,
            "Launcher",
            "launch"
        );
        n += 1;
        $check!(
            services_capnp::launcher,
            allowed_params,
            allowed_results,
            "Launcher",
            "allowed"
        );
        n += 1;
        $check!(
            services_capnp::std_i_o,
            write_params,
            write_results,
            "StdIO",
            "write"
        );
        n += 1;
        $check!(
            services_capnp::std_i_o,
            write_line_params,
            write_line_results,
            "StdIO",
            "writeLine"
        );
        n += 1;
        $check!(
            services_capnp::std_i_o,
            read_line_params,
            read_line_results,
            "StdIO",
            "readLine"
        );
        n += 1;
        n
    }};
}

fn schema() -> Schema {
    Schema::builtin().expect("the compiled schema reads")
}

#[test]
fn empty_params_of_every_method_read_through_the_generated_bindings() {
    let s = schema();
    macro_rules! check {
        ($file:ident::$module:ident, $params:ident, $results:ident, $iface:literal, $method:literal) => {{
            use $file::$module as m;
            let id = s.find_interface($iface).expect($iface);
            let call = capos_reflect::encode(&s, id, $method, &[]).expect($method);
            let message = capnp::serialize::read_message(&call.params[..], ReaderOptions::new())
                .expect("a valid message");
            let root = message
                .get_root::<m::$params::Reader<'_>>()
                .expect("the generated reader accepts it");
            // Walk every field through the generated reader's schema.
            let dynamic: capnp::dynamic_value::Reader<'_> = root.into();
            let text = format!("{dynamic:?}");
            assert!(text.starts_with('('), "{text}");
            let node = s
                .struct_node(s.method(id, $method).unwrap().params)
                .unwrap();
            let params = message
                .get_root::<capnp::any_pointer::Reader<'_>>()
                .unwrap();
            let size = params.target_size().unwrap();
            assert_eq!(
                size.word_count,
                u64::from(node.data_words) + u64::from(node.pointers),
                "{}.{}: the root struct has the node's size",
                $iface,
                $method
            );
            // The results struct's fields, as the generated bindings know them.
            let mut results = capnp::message::Builder::new_default();
            let built: capnp::dynamic_value::Builder<'_> =
                results.init_root::<m::$results::Builder<'_>>().into();
            let described = describe(&s, id).unwrap();
            let line = described
                .lines()
                .find(|l| l.trim_start().starts_with(concat!($method, " @")))
                .expect("a line per method");
            for f in built
                .downcast::<capnp::dynamic_struct::Builder<'_>>()
                .get_schema()
                .get_fields()
                .unwrap()
            {
                let name = f.get_proto().get_name().unwrap().to_str().unwrap();
                assert!(
                    line.contains(&format!("{name} :")),
                    "{line} lacks result {name}"
                );
            }
            for f in dynamic
                .downcast::<capnp::dynamic_struct::Reader<'_>>()
                .get_schema()
                .get_fields()
                .unwrap()
            {
                let name = f.get_proto().get_name().unwrap().to_str().unwrap();
                assert!(
                    line.contains(&format!("{name} :")),
                    "{line} lacks parameter {name}"
                );
            }
        }};
    }
    let listed = every_method!(check);
    let in_schema: usize = capos_caps::api::ALL
        .iter()
        .map(|(_, id)| s.interface(*id).unwrap().methods.len())
        .sum();
    assert_eq!(
        listed, in_schema,
        "every method of the schema is listed here"
    );
}
