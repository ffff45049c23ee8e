//! Calls and results of the capOS interfaces, checked against the
//! generated `capnpc` bindings of the same schema.

use capnp::message::{Builder, ReaderOptions};
use capnp::serialize;
use capos_caps::schema::{capos_capnp, services_capnp};
use capos_reflect::{decode, decode_exception, describe, encode, parse, Error, Schema};

fn schema() -> Schema {
    Schema::builtin().expect("the compiled schema reads")
}

fn id(s: &Schema, name: &str) -> u64 {
    s.find_interface(name).expect(name)
}

/// Encodes `line` as a call on interface `iface`.
fn call(s: &Schema, iface: &str, line: &str) -> Vec<u8> {
    let l = parse(line).expect("the line parses");
    encode(s, id(s, iface), &l.method, &l.args)
        .unwrap_or_else(|e| panic!("{line}: {e}"))
        .params
}

/// The error of encoding `line` on `iface`, as a person reads it.
fn error(s: &Schema, iface: &str, line: &str) -> String {
    let l = parse(line).expect("the line parses");
    match encode(s, id(s, iface), &l.method, &l.args) {
        Ok(_) => panic!("{line} encoded"),
        Err(e) => e.to_string(),
    }
}

fn read(bytes: &[u8]) -> capnp::message::Reader<serialize::OwnedSegments> {
    serialize::read_message(bytes, ReaderOptions::new()).expect("a valid message")
}

#[test]
fn echo_params_read_through_the_generated_reader() {
    let s = schema();
    for line in [
        r#"echo.echo(data: "hi")"#,
        r#"echo.echo("hi")"#,
        r#"echo.echo(data = 0x"6869")"#,
        r#"echo.echo(data: [104, 0x69])"#,
    ] {
        let bytes = call(&s, "Echo", line);
        let message = read(&bytes);
        let p = message
            .get_root::<services_capnp::echo::echo_params::Reader<'_>>()
            .unwrap();
        assert_eq!(p.get_data().unwrap(), b"hi", "{line}");
    }
    let l = parse(r#"echo.echo(data: "hi")"#).unwrap();
    assert_eq!(
        encode(&s, id(&s, "Echo"), &l.method, &l.args)
            .unwrap()
            .ordinal,
        0
    );
}

#[test]
fn text_and_integers_reach_the_generated_reader() {
    let s = schema();
    let bytes = call(&s, "Null", r#"null.echoLater(data: "x", nanos: 1000000)"#);
    let message = read(&bytes);
    let p = message
        .get_root::<capos_capnp::null::echo_later_params::Reader<'_>>()
        .unwrap();
    assert_eq!(p.get_data().unwrap(), b"x");
    assert_eq!(p.get_nanos(), 1_000_000);

    let bytes = call(
        &s,
        "Console",
        r#"console.writeLine(text: "tab\there \u{e9}\x21")"#,
    );
    let message = read(&bytes);
    let p = message
        .get_root::<capos_capnp::console::write_line_params::Reader<'_>>()
        .unwrap();
    assert_eq!(p.get_text().unwrap().to_str().unwrap(), "tab\there é!");

    let bytes = call(
        &s,
        "TerminalSession",
        "t.readLine(maxBytes: 0xff, echo: hidden)",
    );
    let message = read(&bytes);
    let p = message
        .get_root::<capos_capnp::terminal_session::read_line_params::Reader<'_>>()
        .unwrap();
    assert_eq!(p.get_max_bytes(), 255);
    assert_eq!(
        p.get_echo(),
        Ok(capos_capnp::terminal_session::EchoMode::Hidden)
    );
}

#[test]
fn spawn_params_with_lists_structs_unions_groups_and_enums() {
    let s = schema();
    let bytes = call(
        &s,
        "ProcessSpawner",
        r#"spawner.spawn(name: "w", binaryName: "worker",
            grants: [(name = "console", expectedInterfaceId = 0xdfa84506728bf29c,
                      source = (kernel = console)),
                     (name = "ep", source = (transferred = 3)),
                     (name = "null", source = (kernel = null))],
            placement: (cpu = 1), frameLimit: 100)"#,
    );
    let message = read(&bytes);
    let p = message
        .get_root::<capos_capnp::process_spawner::spawn_params::Reader<'_>>()
        .unwrap();
    assert_eq!(p.get_name().unwrap(), "w");
    assert_eq!(p.get_binary_name().unwrap(), "worker");
    assert_eq!(p.get_frame_limit(), 100);
    assert_eq!(p.get_cap_slot_limit(), 0);
    let grants = p.get_grants().unwrap();
    assert_eq!(grants.len(), 3);
    assert_eq!(grants.get(0).get_name().unwrap(), "console");
    assert_eq!(
        grants.get(0).get_expected_interface_id(),
        0xdfa8_4506_728b_f29c
    );
    use capos_capnp::cap_grant::source::Which;
    assert!(matches!(
        grants.get(0).get_source().which().unwrap(),
        Which::Kernel(Ok(capos_capnp::KernelCapKind::Console))
    ));
    assert!(matches!(
        grants.get(1).get_source().which().unwrap(),
        Which::Transferred(3)
    ));
    assert!(matches!(
        grants.get(2).get_source().which().unwrap(),
        Which::Kernel(Ok(capos_capnp::KernelCapKind::Null))
    ));
    assert!(matches!(
        p.get_placement().unwrap().which().unwrap(),
        capos_capnp::placement::Which::Cpu(1)
    ));
}

fn encoded<F>(build: F) -> Vec<u8>
where
    F: FnOnce(&mut Builder<capnp::message::HeapAllocator>),
{
    let mut message = Builder::new_default();
    build(&mut message);
    serialize::write_message_to_words(&message)
}

#[test]
fn results_built_by_the_generated_builders_decode_exactly() {
    let s = schema();
    let null = id(&s, "Null");
    let bytes = encoded(|m| {
        let mut r = m.init_root::<capos_capnp::null::counters_results::Builder<'_>>();
        r.set_heap_allocations(5);
        r.set_longest_interrupts_off(u64::MAX);
    });
    assert_eq!(
        decode(&s, null, 1, &bytes).unwrap(),
        "(heapAllocations = 5, longestInterruptsOff = 18446744073709551615)"
    );

    let echo = id(&s, "Echo");
    let bytes = encoded(|m| {
        m.init_root::<services_capnp::echo::echo_results::Builder<'_>>()
            .set_data(b"hi");
    });
    assert_eq!(decode(&s, echo, 0, &bytes).unwrap(), r#"(data = "hi")"#);
    let bytes = encoded(|m| {
        m.init_root::<services_capnp::echo::echo_results::Builder<'_>>()
            .set_data(&[0, 0xff, b'"']);
    });
    assert_eq!(
        decode(&s, echo, 0, &bytes).unwrap(),
        r#"(data = 0x"00ff22")"#
    );
    assert_eq!(decode(&s, echo, 1, &[]).unwrap(), "()");
    assert_eq!(decode(&s, echo, 0, &[]).unwrap(), r#"(data = "")"#);

    let terminal = id(&s, "TerminalSession");
    let bytes = encoded(|m| {
        let mut r = m.init_root::<capos_capnp::terminal_session::read_line_results::Builder<'_>>();
        r.set_status(capos_capnp::terminal_session::LineStatus::Truncated);
        r.set_line(b"say \"hi\"\n");
    });
    assert_eq!(
        decode(&s, terminal, 2, &bytes).unwrap(),
        r#"(status = truncated, line = "say \"hi\"\n")"#
    );

    let spawner = id(&s, "ProcessSpawner");
    let bytes = encoded(|m| {
        let mut r = m.init_root::<capos_capnp::process_spawner::spawn_results::Builder<'_>>();
        r.set_handle(0);
        let mut facets = r.init_facets(2);
        facets.reborrow().get(0).set_grant("ep");
        facets.reborrow().get(0).set_client(1);
        facets.reborrow().get(1).set_grant("log");
        facets.reborrow().get(1).set_client(2);
    });
    assert_eq!(
        decode(&s, spawner, 0, &bytes).unwrap(),
        r#"(handle = 0, facets = [(grant = "ep", client = 1), (grant = "log", client = 2)])"#
    );

    let frames = id(&s, "FrameAllocator");
    let bytes = encoded(|m| {
        m.init_root::<capos_capnp::frame_allocator::allocate_results::Builder<'_>>()
            .set_memory(2);
    });
    assert_eq!(
        decode(&s, frames, 0, &bytes).unwrap(),
        "(memory = <cap 2: MemoryObject>)"
    );

    let sleeper = id(&s, "Sleeper");
    let bytes = encoded(|m| {
        let mut r = m
            .init_root::<services_capnp::sleeper::result_results::Builder<'_>>()
            .init_result();
        r.set_index(3);
        r.set_in_order(true);
        r.set_late(7);
    });
    assert_eq!(
        decode(&s, sleeper, 1, &bytes).unwrap(),
        "(result = (index = 3, pid = 0, sleeps = 0, inOrder = true, early = 0, late = 7))"
    );

    let registry = id(&s, "SchemaRegistry");
    let bytes = encoded(|m| {
        let r = m.init_root::<services_capnp::schema_registry::interfaces_results::Builder<'_>>();
        let mut entries = r.init_entries(1);
        entries.reborrow().get(0).set_id(0xa06e_7a0d_0d2e_312e);
        entries.reborrow().get(0).set_name("capos.capnp:Timer");
    });
    assert_eq!(
        decode(&s, registry, 0, &bytes).unwrap(),
        r#"(entries = [(id = 11560311489980936494, name = "capos.capnp:Timer")])"#
    );
}

#[test]
fn unions_and_groups_decode_only_the_member_set() {
    let s = schema();
    let spawner = id(&s, "ProcessSpawner");
    let params = s.method(spawner, "spawn").unwrap().params;
    let bytes = call(
        &s,
        "ProcessSpawner",
        r#"p.spawn(grants: [(name = "t", source = (kernel = timer)), (source = (transferred = 9))], placement: (anyCpu = void))"#,
    );
    assert_eq!(
        capos_reflect::decode_struct(&s, params, &bytes).unwrap(),
        r#"(name = "", binaryName = "", grants = [(name = "t", expectedInterfaceId = 0, source = (kernel = timer)), (name = "", expectedInterfaceId = 0, source = (transferred = 9))], placement = (anyCpu = void), frameLimit = 0, capSlotLimit = 0, session = 65535)"#
    );
}

#[test]
fn exceptions_decode_as_kind_and_message() {
    let bytes = capos_caps::CapException::failed("no such file").encode();
    assert_eq!(decode_exception(&bytes).unwrap(), "failed: no such file");
    let bytes = capos_caps::CapException::overloaded("queue full").encode();
    assert_eq!(decode_exception(&bytes).unwrap(), "overloaded: queue full");
    assert!(decode_exception(&[0xff; 16]).is_err());
}

#[test]
fn mistakes_are_named_with_what_would_be_right() {
    let s = schema();
    assert_eq!(
        error(&s, "Echo", r#"echo.ech(data: "hi")"#),
        "Echo has no method `ech`; its methods: echo, fail, quit, inspectCaps, useTimer"
    );
    assert_eq!(
        error(&s, "Echo", r#"echo.echo(dat: "hi")"#),
        "at 10: no field `dat` in the parameters of Echo.echo; its fields: data"
    );
    assert_eq!(
        error(&s, "Echo", "echo.echo(data: 5)"),
        "at 16: `data` is Data, got an integer"
    );
    assert_eq!(
        error(&s, "Timer", r#"timer.sleep(nanos: "soon")"#),
        "at 19: `nanos` is UInt64, got a string"
    );
    assert_eq!(
        error(&s, "Timer", "timer.sleep(nanos: -1)"),
        "at 19: `nanos` is UInt64 (0 to 18446744073709551615): -1 is out of its range"
    );
    assert_eq!(
        error(&s, "FrameAllocator", "f.allocate(pages: 0x100000000)"),
        "at 18: `pages` is UInt32 (0 to 4294967295): 0x100000000 is out of its range"
    );
    assert_eq!(
        error(&s, "Timer", "timer.sleep(nanos: 1, nanos: 2)"),
        "at 22: `nanos` is given twice"
    );
    assert_eq!(
        error(&s, "Timer", "timer.sleep(1, 2)"),
        "at 15: too many values: the parameters of Timer.sleep has 1 fields"
    );
    assert_eq!(
        error(
            &s,
            "ProcessSpawner",
            "p.spawn(grants: [(source = (kernel = timr))])"
        ),
        "at 37: `grants[0].source.kernel` is KernelCapKind, which has no enumerant `timr`; \
         its enumerants: console, terminal, timer, endpoint, processSpawner, bootPackage, \
         frameAllocator, virtualMemory, threadSpawner, null, entropy, systemInfo, sessionAuthority"
    );
    assert_eq!(
        error(
            &s,
            "ProcessSpawner",
            "p.spawn(placement: (anyCpu = void, cpu = 2))"
        ),
        "at 35: `anyCpu` and `cpu` are members of one union: give only one"
    );
    assert_eq!(
        error(&s, "ProcessSpawner", "p.spawn(grants: [(nme = \"x\")])"),
        "at 18: no field `nme` in CapGrant; its fields: name, expectedInterfaceId, source"
    );
    assert_eq!(
        error(&s, "Console", r#"c.writeLine(text: "\xff")"#),
        "at 18: `text` is Text, got bytes that are not UTF-8"
    );
    assert_eq!(
        error(&s, "Echo", "echo.echo(data: $t)"),
        "at 16: `data`: variables cannot be passed as values (capabilities travel out of band)"
    );
    // The typed error carries the data a shell needs to offer completions.
    let l = parse("echo.nope()").unwrap();
    match encode(&s, id(&s, "Echo"), &l.method, &l.args) {
        Err(Error::Call(e)) => match e.mistake {
            capos_reflect::Mistake::UnknownMethod { methods, .. } => {
                assert_eq!(methods.len(), 5)
            }
            m => panic!("{m:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn describe_prints_methods_and_the_types_they_use() {
    let s = schema();
    let echo = describe(&s, id(&s, "Echo")).unwrap();
    assert_eq!(
        echo,
        "interface Echo @0x975f538cdc85f147\n\
         \x20 echo @0 (data :Data) -> (data :Data)\n\
         \x20 fail @1 () -> ()\n\
         \x20 quit @2 () -> ()\n\
         \x20 inspectCaps @3 () -> (count :UInt32)\n\
         \x20 useTimer @4 () -> (nanos :UInt64)\n"
    );
    let spawner = describe(&s, id(&s, "ProcessSpawner")).unwrap();
    assert!(spawner.contains(
        "  spawn @0 (name :Text, binaryName :Text, grants :List(CapGrant), placement :Placement, \
         frameLimit :UInt32, capSlotLimit :UInt32, session :UInt16) -> (handle :UInt16, facets :List(SpawnedFacet))\n"
    ));
    assert!(spawner.contains(
        "  struct CapGrant (name :Text, expectedInterfaceId :UInt64, \
         source :group(union(transferred :UInt16 | kernel :KernelCapKind)))\n"
    ));
    assert!(spawner.contains("  struct Placement (union(anyCpu :Void | cpu :UInt32))\n"));
    assert!(spawner.contains("  enum KernelCapKind (console, terminal, timer,"));
    let frames = describe(&s, id(&s, "FrameAllocator")).unwrap();
    assert!(frames.contains(
        "allocate @0 (pages :UInt32, contiguous :Bool) -> (memory :UInt16 -> MemoryObject)"
    ));
}

#[test]
fn interfaces_are_found_by_short_name_display_name_and_folded_case() {
    let s = schema();
    let timer = 0xa06e_7a0d_0d2e_312e;
    assert_eq!(s.find_interface("Timer"), Some(timer));
    assert_eq!(s.find_interface("capos.capnp:Timer"), Some(timer));
    assert_eq!(s.find_interface("timer"), Some(timer));
    assert_eq!(s.find_interface("Timers"), None);
    assert_eq!(
        s.find_interface("CapGrant"),
        None,
        "a struct is not an interface"
    );
    for (name, id) in capos_caps::api::ALL {
        assert_eq!(s.find_interface(name), Some(*id), "{name}");
    }
}

#[test]
fn the_result_cap_annotation_id_is_the_schemas() {
    let message =
        serialize::read_message(capos_caps::SCHEMA_REQUEST, ReaderOptions::new()).unwrap();
    let request = message
        .get_root::<capnp::schema_capnp::code_generator_request::Reader<'_>>()
        .unwrap();
    let found = request
        .get_nodes()
        .unwrap()
        .iter()
        .find(|n| n.get_display_name().unwrap() == "capos.capnp:resultCap")
        .expect("capos.capnp declares resultCap");
    assert_eq!(
        found.get_id(),
        capos_reflect::schema::RESULT_CAP_ANNOTATION_ID
    );
}
