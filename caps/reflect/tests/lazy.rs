//! A schema fed node by node, from single-node messages as the schema
//! registry's `node(id)` serves them, describes, encodes and decodes like
//! one built from the whole request.

use std::collections::BTreeMap;

use capnp::message::{Builder, ReaderOptions};
use capnp::schema_capnp::{code_generator_request, node};
use capnp::serialize;
use capos_reflect::{decode, describe, encode, parse, Error, Schema};

/// Every interface, struct and enum node of the compiled schema as a
/// single-segment message whose root is the `Node`.
fn served_nodes() -> BTreeMap<u64, Vec<u8>> {
    let message =
        serialize::read_message(capos_caps::SCHEMA_REQUEST, ReaderOptions::new()).unwrap();
    let request = message
        .get_root::<code_generator_request::Reader<'_>>()
        .unwrap();
    let mut served = BTreeMap::new();
    for n in request.get_nodes().unwrap() {
        if !matches!(
            n.which().unwrap(),
            node::Struct(_) | node::Enum(_) | node::Interface(_)
        ) {
            continue;
        }
        let mut single = Builder::new_default();
        single.set_root(n).unwrap();
        assert_eq!(single.get_segments_for_output().len(), 1);
        served.insert(n.get_id(), serialize::write_message_to_words(&single));
    }
    served
}

const LINES: &[(&str, &str)] = &[
    ("Echo", r#"echo.echo(data: "hi")"#),
    ("Null", r#"null.echoLater(data: "x", nanos: 1000000)"#),
    ("Timer", "timer.sleep(5)"),
    (
        "ProcessSpawner",
        r#"p.spawn(name: "w", binaryName: "worker", grants: [(name = "c", source = (kernel = console))], placement: (cpu = 1))"#,
    ),
    ("TerminalSession", "t.readLine(maxBytes: 80, echo: visible)"),
];

#[test]
fn a_lazily_fed_schema_describes_and_encodes_like_the_whole_request() {
    let full = Schema::builtin().unwrap();
    let served = served_nodes();
    let mut shared = Schema::new();
    for (name, id) in capos_caps::api::ALL {
        // One schema per interface: only what that interface needs is fetched.
        let mut lazy = Schema::new();
        let mut fetched = Vec::new();
        let count = lazy
            .load(*id, |want| {
                fetched.push(want);
                served.get(&want).cloned()
            })
            .unwrap();
        assert_eq!(count, fetched.len());
        assert!(
            lazy.len() < full.len(),
            "{name}: fetched only what it needs"
        );
        assert_eq!(lazy.first_missing(*id), None);
        assert_eq!(describe(&lazy, *id).unwrap(), describe(&full, *id).unwrap());
        assert_eq!(lazy.find_interface(name), Some(*id));
        for m in &full.interface(*id).unwrap().methods {
            let a = encode(&full, *id, &m.name, &[]).unwrap();
            let b = encode(&lazy, *id, &m.name, &[]).unwrap();
            assert_eq!(a, b, "{name}.{}", m.name);
            let results = full.method(*id, &m.name).unwrap().results;
            let empty = capos_reflect::encode_struct(&full, results, &[]).unwrap();
            assert_eq!(
                decode(&lazy, *id, m.ordinal, &empty).unwrap(),
                decode(&full, *id, m.ordinal, &empty).unwrap()
            );
        }
        shared.load(*id, |want| served.get(&want).cloned()).unwrap();
    }
    for (iface, line) in LINES {
        let id = full.find_interface(iface).unwrap();
        let l = parse(line).unwrap();
        let a = encode(&full, id, &l.method, &l.args).unwrap();
        let b = encode(&shared, id, &l.method, &l.args).unwrap();
        assert_eq!(a, b, "{line}");
        let m = full.method(id, &l.method).unwrap();
        assert_eq!(
            capos_reflect::decode_struct(&shared, m.params, &a.params).unwrap(),
            capos_reflect::decode_struct(&full, m.params, &a.params).unwrap()
        );
    }
}

#[test]
fn missing_nodes_are_reported_by_id_for_fetch_and_retry() {
    let full = Schema::builtin().unwrap();
    let served = served_nodes();
    let spawner = full.find_interface("ProcessSpawner").unwrap();
    let line = parse(r#"p.spawn(grants: [(source = (kernel = timer))])"#).unwrap();
    let mut lazy = Schema::new();
    let mut fetches = 0;
    // The loop a shell runs without `load`: try, fetch what is missing, retry.
    let call = loop {
        match encode(&lazy, spawner, &line.method, &line.args) {
            Ok(call) => break call,
            Err(Error::Missing(id)) => {
                fetches += 1;
                assert_eq!(lazy.insert_node(&served[&id]).unwrap(), id);
            }
            Err(e) => panic!("{e}"),
        }
    };
    // The interface, spawn's params, CapGrant, its `source` group and
    // KernelCapKind; not the results, Placement or the other interfaces.
    assert_eq!(fetches, 5);
    assert_eq!(
        call,
        encode(&full, spawner, &line.method, &line.args).unwrap()
    );
    assert_eq!(
        Schema::new().node(spawner).unwrap_err(),
        Error::Missing(spawner)
    );
    assert_eq!(
        describe(&Schema::new(), spawner).unwrap_err().to_string(),
        "schema node 0xceb500d0b476a0d0 is not loaded"
    );
}

#[test]
fn load_fails_on_a_node_the_registry_does_not_have() {
    let served = served_nodes();
    let timer = 0xa06e_7a0d_0d2e_312e;
    let mut lazy = Schema::new();
    let err = lazy
        .load(timer, |want| {
            if want == timer {
                served.get(&want).cloned()
            } else {
                None
            }
        })
        .unwrap_err();
    assert!(matches!(err, Error::Missing(id) if id != timer));
    // A node served under the wrong id is refused.
    let echo = 0x975f_538c_dc85_f147;
    let err = Schema::new()
        .load(echo, |_| served.get(&timer).cloned())
        .unwrap_err();
    assert!(err.to_string().contains("was given"), "{err}");
    assert!(Schema::new().insert_node(&[1, 2, 3]).is_err());
}
