//! Unit tests for manifest decoding and both validation layers.

use super::*;
use alloc::string::ToString;

fn bin(name: &str) -> Binary {
    Binary {
        name: name.into(),
        module: name.into(),
    }
}

/// The shape of `manifests/default.capnp`.
fn sample() -> Manifest {
    Manifest {
        schema_version: SCHEMA_VERSION,
        binaries: ["init", "echo-server", "echo-client", "timer-demo"]
            .into_iter()
            .map(bin)
            .collect(),
        kernel: KernelParams::default(),
        init: InitProcess {
            binary: "init".into(),
            caps: vec![
                CapRef::kernel("console", KernelKind::Console),
                CapRef::kernel("timer", KernelKind::Timer),
                CapRef::kernel("boot", KernelKind::BootPackage),
                CapRef::kernel("spawner", KernelKind::ProcessSpawner),
            ],
            cap_slots: 0,
        },
        services: vec![
            Service {
                name: "echo-server".into(),
                binary: "echo-server".into(),
                caps: vec![
                    CapRef::kernel("console", KernelKind::Console),
                    CapRef::kernel("endpoint", KernelKind::Endpoint),
                ],
                exports: vec![Export::client("echo", "endpoint")],
                placement: Placement::AnyCpu,
                cap_slots: 1024,
                launchable: vec![],
                ..Service::default()
            },
            Service {
                name: "echo-client".into(),
                binary: "echo-client".into(),
                caps: vec![
                    CapRef::kernel("console", KernelKind::Console),
                    CapRef::import("echo", "echo-server", "echo"),
                ],
                exports: vec![],
                placement: Placement::Cpu(1),
                cap_slots: 0,
                launchable: vec![],
                ..Service::default()
            },
            Service {
                name: "timer-demo".into(),
                binary: "timer-demo".into(),
                caps: vec![
                    CapRef::kernel("console", KernelKind::Console),
                    CapRef::kernel("timer", KernelKind::Timer),
                ],
                exports: vec![],
                placement: Placement::AnyCpu,
                cap_slots: MAX_CAP_SLOTS,
                launchable: vec![],
                ..Service::default()
            },
        ],
        sessions: SessionsConfig::default(),
    }
}

/// A mutation of the sample and the first error it must cause.
type Case = (fn(&mut Manifest), &'static str);

fn first_error(m: &Manifest) -> String {
    match check(m) {
        Ok(()) => "accepted".into(),
        Err(errors) => errors[0].to_string(),
    }
}

#[test]
fn sample_is_valid_and_round_trips() {
    let m = sample();
    assert_eq!(check(&m), Ok(()));
    let bytes = m.encode();
    assert_eq!(decode(&bytes).unwrap(), m);
}

#[test]
fn motd_round_trips_and_defaults_to_empty() {
    let m = sample();
    assert_eq!(decode(&m.encode()).unwrap().kernel.motd, "");
    let mut m = sample();
    m.kernel.motd = "Hello, operator.".into();
    assert_eq!(check(&m), Ok(()));
    assert_eq!(decode(&m.encode()).unwrap().kernel.motd, "Hello, operator.");
}

#[test]
fn session_kinds_are_implemented() {
    for kind in [
        KernelKind::Entropy,
        KernelKind::SystemInfo,
        KernelKind::SessionAuthority,
    ] {
        assert!(kind.is_implemented(), "{kind:?}");
    }
    assert!(!KernelKind::ThreadSpawner.is_implemented());
}

/// The sample with two kernel-started boot processes.
fn with_boot_processes() -> Manifest {
    let mut m = sample();
    m.kernel.boot_processes = vec![
        InitProcess {
            binary: "timer-demo".into(),
            caps: vec![CapRef::kernel("console", KernelKind::Console)],
            cap_slots: 2,
        },
        InitProcess {
            binary: "echo-client".into(),
            caps: vec![
                CapRef::kernel("console", KernelKind::Console),
                CapRef::kernel("null", KernelKind::Null),
                CapRef::kernel("timer", KernelKind::Timer),
            ],
            cap_slots: 0,
        },
    ];
    m
}

#[test]
fn boot_processes_are_valid_and_round_trip() {
    let m = with_boot_processes();
    assert_eq!(check(&m), Ok(()));
    let decoded = decode(&m.encode()).unwrap();
    assert_eq!(decoded.kernel.boot_processes.len(), 2);
    assert_eq!(decoded, m);

    let mut full = sample();
    full.kernel.boot_processes = vec![InitProcess::default(); MAX_BOOT_PROCESSES];
    for p in &mut full.kernel.boot_processes {
        p.binary = "timer-demo".into();
    }
    assert_eq!(check(&full), Ok(()));
}

#[test]
fn cap_slot_quotas_mean_what_they_say() {
    assert_eq!(cap_slot_quota(0), DEFAULT_CAP_SLOTS);
    assert_eq!(cap_slot_quota(1), 1);
    assert_eq!(cap_slot_quota(MAX_CAP_SLOTS), MAX_CAP_SLOTS);
    assert_eq!(
        u64::from(DEFAULT_CAP_SLOTS),
        crate::ledger::Limits::DEFAULT.get(crate::ledger::Resource::CapSlots)
    );
    let decoded = decode(&with_boot_processes().encode()).unwrap();
    let quotas: Vec<u32> = decoded.services.iter().map(|s| s.cap_slots).collect();
    assert_eq!(quotas, [1024, 0, MAX_CAP_SLOTS]);
    assert_eq!(decoded.kernel.boot_processes[0].cap_slots, 2);
}

#[test]
fn decoding_is_bounded() {
    let bytes = sample().encode();
    assert!(matches!(decode(&[]), Err(DecodeError::Malformed(_))));
    for cut in (0..bytes.len()).step_by(8) {
        assert!(
            decode(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes decoded"
        );
    }
    let mut long = bytes.clone();
    long.extend_from_slice(&[0; 8]);
    assert_eq!(decode(&long), Err(DecodeError::TrailingBytes(8)));
    let big = vec![0u8; DecodeLimits::DEFAULT.max_bytes + 8];
    assert_eq!(
        decode(&big),
        Err(DecodeError::TooLarge {
            len: big.len(),
            max: 1 << 20
        })
    );

    let mut many = sample();
    many.services = (0..129)
        .map(|i| Service {
            name: alloc::format!("s{i}"),
            ..Service::default()
        })
        .collect();
    let err = decode(&many.encode()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "manifest has 129 services; at most 128 are accepted"
    );

    let mut crowded = sample();
    crowded.kernel.boot_processes = vec![InitProcess::default(); 65];
    let err = decode(&crowded.encode()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "manifest has 65 boot processes; at most 64 are accepted"
    );
    let mut crowded_caps = sample();
    crowded_caps.kernel.boot_processes = vec![InitProcess {
        binary: "timer-demo".into(),
        caps: vec![CapRef::kernel("c", KernelKind::Console); 65],
        cap_slots: 0,
    }];
    let err = decode(&crowded_caps.encode()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "manifest has 65 caps in one process; at most 64 are accepted"
    );

    let mut wordy = sample();
    wordy.binaries[0].module = "m".repeat(300);
    let err = decode(&wordy.encode()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a module string is 300 bytes long; at most 256 are accepted"
    );

    let limits = DecodeLimits {
        nesting: 2,
        ..DecodeLimits::DEFAULT
    };
    assert!(matches!(
        codec::decode_with(&bytes, &limits),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn garbage_never_panics() {
    let bytes = with_boot_processes().encode();
    let mut state = 0x1234_5678_u32;
    for _ in 0..2000 {
        let mut mutated = bytes.clone();
        for _ in 0..4 {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let at = (state as usize >> 8) % mutated.len();
            mutated[at] = (state >> 24) as u8;
        }
        if let Ok(m) = decode(&mutated) {
            let _ = check(&m);
        }
    }
}

#[test]
fn kernel_layer_rules() {
    let cases: Vec<Case> = vec![
        (|m| m.schema_version = 2, "manifest: schema version 2 is not supported (this build reads version 1)"),
        (|m| m.binaries.push(bin("init")), "binary \"init\": is declared more than once"),
        (|m| m.binaries[1].name.clear(), "binary \"\": name is empty"),
        (|m| m.binaries[1].name = "x".repeat(33), "binary \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\": name is 33 bytes long; at most 32 are allowed"),
        (|m| m.binaries[2].module.clear(), "binary \"echo-client\": module string is empty"),
        (|m| m.init.binary = "sbin-init".into(), "init: runs binary \"sbin-init\", which the manifest does not declare"),
        (|m| m.init.caps[1].name = "console".into(), "init: cap \"console\": is declared more than once"),
        (|m| m.init.caps[0].source = CapSource::Unset, "init: cap \"console\": has no source"),
        (|m| m.init.caps[0].source = CapSource::UnknownKernelKind(40), "init: cap \"console\": names unknown kernel cap kind 40"),
        (|m| m.init.caps[0].source = CapSource::UnknownVariant(3), "init: cap \"console\": has unknown source variant 3"),
        (
            |m| m.init.caps.push(CapRef::import("echo", "echo-server", "echo")),
            "init: cap \"echo\": init can only hold kernel-minted caps",
        ),
        (
            |m| m.init.caps[1].expected_interface_id = crate::interfaces::CONSOLE,
            "init: cap \"timer\": expects interface 0xdfa84506728bf29c (Console) but its source provides 0xa06e7a0d0d2e312e (Timer)",
        ),
        (
            |m| m.init.cap_slots = MAX_CAP_SLOTS + 1,
            "init: asks for capSlots = 4097; at most 4096 are allowed (0 means the default, 256)",
        ),
        (|m| m.init.cap_slots = 3, "init: asks for capSlots = 3, fewer than the 4 caps it starts with"),
    ];
    for (mutate, expected) in cases {
        let mut m = sample();
        mutate(&mut m);
        assert_eq!(validate_kernel_layer(&m).unwrap_err().to_string(), expected);
        assert_eq!(first_error(&m), expected);
    }
}

#[test]
fn boot_process_rules() {
    let cases: Vec<Case> = vec![
        (
            |m| m.kernel.boot_processes[1].binary = "sbin-worker".into(),
            "boot process 1 (\"sbin-worker\"): runs binary \"sbin-worker\", which the manifest does not declare",
        ),
        (
            |m| m.kernel.boot_processes[1].caps[1].name = "console".into(),
            "boot process 1 (\"echo-client\"): cap \"console\": is declared more than once",
        ),
        (
            |m| m.kernel.boot_processes[0].caps[0].name.clear(),
            "boot process 0 (\"timer-demo\"): cap \"\": name is empty",
        ),
        (
            |m| m.kernel.boot_processes[0].caps[0].name = "n".repeat(33),
            "boot process 0 (\"timer-demo\"): cap \"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\": name is 33 bytes long; at most 32 are allowed",
        ),
        (
            |m| m.kernel.boot_processes[0].caps[0].source = CapSource::Unset,
            "boot process 0 (\"timer-demo\"): cap \"console\": has no source",
        ),
        (
            |m| m.kernel.boot_processes[0].caps[0].source = CapSource::UnknownKernelKind(40),
            "boot process 0 (\"timer-demo\"): cap \"console\": names unknown kernel cap kind 40",
        ),
        (
            |m| m.kernel.boot_processes[0].caps[0].source = CapSource::UnknownVariant(3),
            "boot process 0 (\"timer-demo\"): cap \"console\": has unknown source variant 3",
        ),
        (
            |m| m.kernel.boot_processes[1].caps.push(CapRef::import("echo", "echo-server", "echo")),
            "boot process 1 (\"echo-client\"): cap \"echo\": boot processes can only hold kernel-minted caps",
        ),
        (
            |m| m.kernel.boot_processes[1].caps.push(CapRef::kernel("boot", KernelKind::BootPackage)),
            "boot process 1 (\"echo-client\"): cap \"boot\": bootPackage is only granted to init",
        ),
        (
            |m| m.kernel.boot_processes[0].caps.push(CapRef::kernel("spawner", KernelKind::ProcessSpawner)),
            "boot process 0 (\"timer-demo\"): cap \"spawner\": processSpawner is only granted to init",
        ),
        (
            |m| m.kernel.boot_processes[1].caps[1].expected_interface_id = crate::interfaces::CONSOLE,
            "boot process 1 (\"echo-client\"): cap \"null\": expects interface 0xdfa84506728bf29c (Console) but its source provides 0xebbe9c3253cdbcaa (Null)",
        ),
        (
            |m| {
                let extra = m.kernel.boot_processes[0].clone();
                m.kernel.boot_processes.resize(MAX_BOOT_PROCESSES + 1, extra);
            },
            "kernel: has 17 boot processes; at most 16 are allowed",
        ),
        (
            |m| m.kernel.boot_processes[1].cap_slots = u32::MAX,
            "boot process 1 (\"echo-client\"): asks for capSlots = 4294967295; at most 4096 are allowed (0 means the default, 256)",
        ),
        (
            |m| m.kernel.boot_processes[1].cap_slots = 2,
            "boot process 1 (\"echo-client\"): asks for capSlots = 2, fewer than the 3 caps it starts with",
        ),
        (
            |m| {
                m.init.caps.push(CapRef::kernel("terminal", KernelKind::Terminal));
                m.kernel.boot_processes[0].caps.push(CapRef::kernel("tty", KernelKind::Terminal));
            },
            "boot process 0 (\"timer-demo\"): cap \"tty\": asks for the terminal, which has one holder: init (cap \"terminal\") has it",
        ),
    ];
    for (mutate, expected) in cases {
        let mut m = with_boot_processes();
        mutate(&mut m);
        assert_eq!(validate_kernel_layer(&m).unwrap_err().to_string(), expected);
        assert_eq!(first_error(&m), expected);
        assert_eq!(validate_service_graph(&m), Ok(()), "{expected}");
    }
}

#[test]
fn boot_process_errors_name_index_and_binary() {
    let mut m = with_boot_processes();
    m.kernel.boot_processes[1].caps[0].source = CapSource::Unset;
    assert_eq!(
        validate_kernel_layer(&m).unwrap_err().subject,
        Subject::BootProcessCap {
            index: 1,
            binary: "echo-client".into(),
            cap: "console".into()
        }
    );
    // Init-only kinds stay legal for init itself, and services never see boot
    // processes: a boot process named like a service changes nothing there.
    m.kernel.boot_processes[1].caps[0].source = CapSource::Kernel(KernelKind::Console);
    m.kernel.boot_processes[0].binary = "echo-server".into();
    assert_eq!(check(&m), Ok(()));
}

#[test]
fn service_graph_rules() {
    let cases: Vec<Case> = vec![
        (|m| m.init.caps.truncate(2), "init: has services to start but holds no kernel bootPackage cap"),
        (|m| m.services[2].name = "echo-server".into(), "service \"echo-server\": is declared more than once"),
        (|m| m.services[2].name.clear(), "service \"\": name is empty"),
        (|m| m.services[2].binary = "timer".into(), "service \"timer-demo\": runs binary \"timer\", which the manifest does not declare"),
        (|m| m.services[2].caps[1].name = "console".into(), "service \"timer-demo\": cap \"console\": is declared more than once"),
        (|m| m.services[2].caps[1].source = CapSource::Unset, "service \"timer-demo\": cap \"timer\": has no source"),
        (
            |m| m.services[2].caps.push(CapRef::kernel("boot", KernelKind::BootPackage)),
            "service \"timer-demo\": cap \"boot\": boot package authority is reserved for init",
        ),
        (
            |m| m.services[2].caps.push(CapRef::kernel("tty", KernelKind::Terminal)),
            "service \"timer-demo\": cap \"tty\": needs a kernel terminal cap, which init does not hold to pass on",
        ),
        (
            |m| {
                m.init.caps.push(CapRef::kernel("terminal", KernelKind::Terminal));
                m.services[1].caps.push(CapRef::kernel("tty", KernelKind::Terminal));
                m.services[2].caps.push(CapRef::kernel("tty", KernelKind::Terminal));
            },
            "service \"timer-demo\": cap \"tty\": asks for the terminal, which has one holder: service \"echo-client\" has it",
        ),
        (
            |m| m.services[1].caps[1] = CapRef::import("echo", "echo-srv", "echo"),
            "service \"echo-client\": cap \"echo\": imports export \"echo\" of unknown service \"echo-srv\"",
        ),
        (
            |m| m.services[1].caps[1] = CapRef::import("echo", "echo-server", "ping"),
            "service \"echo-client\": cap \"echo\": imports export \"ping\", which service \"echo-server\" does not declare",
        ),
        (
            |m| m.services[0].caps.push(CapRef::import("self", "echo-server", "echo")),
            "service \"echo-server\": cap \"self\": imports export \"echo\" of its own service",
        ),
        (
            |m| m.services.swap(0, 1),
            "service \"echo-client\": cap \"echo\": imports export \"echo\" of service \"echo-server\", which is declared later (exporters must come first)",
        ),
        (
            |m| m.services[1].caps[1].expected_interface_id = crate::interfaces::ENDPOINT,
            "service \"echo-client\": cap \"echo\": expects interface 0xcbfd3ce01f06ba53 (Endpoint) but its source provides 0x9e8a4b887bf7d685 (ClientEndpoint)",
        ),
        (
            |m| m.services[0].exports[0].cap = "endpoints".into(),
            "service \"echo-server\": export \"echo\": names cap \"endpoints\", which this service does not declare",
        ),
        (
            |m| m.services[0].exports[0].facet = Facet::Raw,
            "service \"echo-server\": export \"echo\": exports endpoint \"endpoint\" raw; endpoint exports must be attenuated to client facets",
        ),
        (
            |m| m.services[0].exports[0].facet = Facet::Unknown(9),
            "service \"echo-server\": export \"echo\": names unknown facet 9",
        ),
        (
            |m| m.services[0].exports.push(Export::client("log", "console")),
            "service \"echo-server\": export \"log\": exports cap \"console\" of kernel kind console; only endpoints can be exported",
        ),
        (
            |m| m.services[1].exports.push(Export::client("echo2", "echo")),
            "service \"echo-client\": export \"echo2\": re-exports cap \"echo\", which is itself an import",
        ),
        (
            |m| m.services[0].exports.push(Export::client("echo", "endpoint")),
            "service \"echo-server\": export \"echo\": is declared more than once",
        ),
        (
            |m| m.services[2].placement = Placement::Cpu(64),
            "service \"timer-demo\": is pinned to CPU 64; CPUs are numbered 0 to 63",
        ),
        (
            |m| {
                m.kernel.max_cpus = 2;
                m.services[2].placement = Placement::Cpu(2);
            },
            "service \"timer-demo\": is pinned to CPU 2, but kernel.maxCpus = 2 brings up only CPUs 0 to 1",
        ),
        (
            |m| m.services[2].placement = Placement::Unknown(7),
            "service \"timer-demo\": has unknown placement variant 7",
        ),
        (
            |m| m.services[2].cap_slots = MAX_CAP_SLOTS + 1,
            "service \"timer-demo\": asks for capSlots = 4097; at most 4096 are allowed (0 means the default, 256)",
        ),
        (
            |m| m.services[1].cap_slots = 1,
            "service \"echo-client\": asks for capSlots = 1, fewer than the 2 caps it starts with",
        ),
    ];
    for (mutate, expected) in cases {
        let mut m = sample();
        mutate(&mut m);
        assert_eq!(validate_kernel_layer(&m), Ok(()), "{expected}");
        assert_eq!(
            validate_service_graph(&m).unwrap_err().to_string(),
            expected
        );
    }
}

#[test]
fn placements_round_trip_and_pins_within_the_cpus_are_valid() {
    let mut m = sample();
    m.services[0].placement = Placement::Cpu(0);
    m.services[2].placement = Placement::Cpu(MAX_CPUS - 1);
    assert_eq!(check(&m), Ok(()));
    let decoded = decode(&m.encode()).unwrap();
    let placements: Vec<Placement> = decoded.services.iter().map(|s| s.placement).collect();
    assert_eq!(
        placements,
        [
            Placement::Cpu(0),
            Placement::Cpu(1),
            Placement::Cpu(MAX_CPUS - 1)
        ]
    );
    // With maxCpus set, the last CPU it brings up is still a valid pin.
    m.kernel.max_cpus = 2;
    m.services[2].placement = Placement::Cpu(1);
    assert_eq!(check(&m), Ok(()));
    // A service that says nothing runs anywhere.
    m.services[2].placement = Placement::AnyCpu;
    assert_eq!(
        decode(&m.encode()).unwrap().services[2].placement,
        Placement::AnyCpu
    );
}

#[test]
fn child_local_kinds_need_nothing_from_init() {
    let mut m = sample();
    m.services[2].caps.extend([
        CapRef::kernel("frames", KernelKind::FrameAllocator),
        CapRef::kernel("vm", KernelKind::VirtualMemory),
        CapRef::kernel("ep", KernelKind::Endpoint),
    ]);
    assert_eq!(check(&m), Ok(()));
    // A kind the kernel cannot mint yet is refused with the kernel's words.
    m.services[2]
        .caps
        .push(CapRef::kernel("threads", KernelKind::ThreadSpawner));
    let err: Vec<String> = check(&m)
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect();
    let err = err.join("; ");
    assert!(
        err.contains("cap \"threads\": kernel capability kind threadSpawner is not available in this kernel yet"),
        "{err}"
    );
    m.services[2].caps.pop();
    m.services.clear();
    m.init.caps.clear();
    assert_eq!(check(&m), Ok(()), "init alone needs no caps");
}

#[test]
fn check_reports_every_violation_in_order() {
    let mut m = sample();
    m.schema_version = 0;
    m.services[1].caps[1] = CapRef::import("echo", "nobody", "echo");
    let errors = check(&m).unwrap_err();
    let texts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        texts,
        [
            "manifest: schema version 0 is not supported (this build reads version 1)",
            "service \"echo-client\": cap \"echo\": imports export \"echo\" of unknown service \"nobody\"",
        ]
    );
    assert_eq!(
        errors[1].subject,
        Subject::Cap {
            service: "echo-client".into(),
            cap: "echo".into()
        }
    );
}

#[test]
fn kinds_map_to_their_interfaces() {
    for kind in KernelKind::ALL {
        assert!(crate::interfaces::name_of(kind.interface_id()).is_some());
    }
    assert_eq!(KernelKind::ProcessSpawner.to_string(), "processSpawner");
    assert_eq!(
        KernelKind::ALL
            .iter()
            .filter(|k| k.is_child_local())
            .count(),
        5
    );
    assert!(KernelKind::Null.is_child_local());
    assert_eq!(KernelKind::Null.interface_id(), crate::interfaces::NULL);
    assert_eq!(KernelKind::Null.to_string(), "null");
}

/// The sample with a launcher: init serves it on its `launcher` endpoint,
/// timer-demo holds one that may start echo-client and timer-demo.
fn with_launcher() -> Manifest {
    let mut m = sample();
    m.init
        .caps
        .push(CapRef::kernel(INIT_LAUNCHER_CAP, KernelKind::Endpoint));
    m.services[2].caps.push(CapRef::launcher("launcher"));
    m.services[2].launchable = vec!["echo-client".into(), "timer-demo".into()];
    m
}

#[test]
fn launchers_are_valid_and_round_trip() {
    let m = with_launcher();
    assert_eq!(check(&m), Ok(()));
    let decoded = decode(&m.encode()).unwrap();
    assert_eq!(decoded, m);
    assert_eq!(decoded.services[2].caps[2].source, CapSource::Launcher);
    assert_eq!(
        decoded.services[2].caps[2].expected_interface_id,
        crate::interfaces::LAUNCHER
    );
    assert_eq!(
        decoded.services[2].launchable,
        ["echo-client", "timer-demo"]
    );

    // A launcher with nothing to launch is useless but harmless; the longest
    // allowlist passes.
    let mut empty = with_launcher();
    empty.services[2].launchable.clear();
    assert_eq!(check(&empty), Ok(()));
    let mut full = with_launcher();
    full.binaries = (0..MAX_LAUNCHABLE)
        .map(|i| bin(&alloc::format!("b{i}")))
        .chain(sample().binaries)
        .collect();
    full.services[2].launchable = (0..MAX_LAUNCHABLE)
        .map(|i| alloc::format!("b{i}"))
        .collect();
    assert_eq!(check(&full), Ok(()));
    assert_eq!(decode(&full.encode()).unwrap(), full);

    // The decoder bounds the list before validation sees it.
    let mut crowded = with_launcher();
    crowded.services[2].launchable = vec!["timer-demo".into(); 257];
    assert_eq!(
        decode(&crowded.encode()).unwrap_err().to_string(),
        "manifest has 257 launchable binaries in one service; at most 256 are accepted"
    );
}

#[test]
fn launcher_rules() {
    let cases: Vec<Case> = vec![
        (
            |m| m.services[2].launchable.push("hostile".into()),
            "service \"timer-demo\": lists launchable binary \"hostile\", which the manifest does not declare",
        ),
        (
            |m| m.services[2].launchable.push("echo-client".into()),
            "service \"timer-demo\": lists launchable binary \"echo-client\" more than once",
        ),
        (
            |m| m.services[2].launchable = vec!["timer-demo".into(); MAX_LAUNCHABLE + 1],
            "service \"timer-demo\": lists 65 launchable binaries; at most 64 are allowed",
        ),
        (
            |m| {
                m.services[2].caps.pop();
            },
            "service \"timer-demo\": lists launchable binaries but holds no launcher cap to start them with",
        ),
        (
            |m| m.services[1].launchable.push("timer-demo".into()),
            "service \"echo-client\": lists launchable binaries but holds no launcher cap to start them with",
        ),
        (
            |m| m.services[2].caps[2].expected_interface_id = crate::interfaces::CLIENT_ENDPOINT,
            "service \"timer-demo\": cap \"launcher\": expects interface 0x9e8a4b887bf7d685 (ClientEndpoint) but its source provides 0x8d781b59bd4555a1 (Launcher)",
        ),
        (
            |m| {
                m.init.caps.pop();
            },
            "init: services ask for a launcher, but init holds no kernel endpoint cap named \"launcher\" to serve it on",
        ),
        (
            |m| m.init.caps[4] = CapRef::kernel("launcher", KernelKind::Null),
            "init: services ask for a launcher, but init holds no kernel endpoint cap named \"launcher\" to serve it on",
        ),
        (
            |m| m.init.caps[4].name = "ep".into(),
            "init: services ask for a launcher, but init holds no kernel endpoint cap named \"launcher\" to serve it on",
        ),
    ];
    for (mutate, expected) in cases {
        let mut m = with_launcher();
        mutate(&mut m);
        assert_eq!(validate_kernel_layer(&m), Ok(()), "{expected}");
        assert_eq!(
            validate_service_graph(&m).unwrap_err().to_string(),
            expected
        );
    }
}

#[test]
fn only_services_hold_a_launcher() {
    let mut m = with_launcher();
    m.init.caps.push(CapRef::launcher("mine"));
    assert_eq!(
        validate_kernel_layer(&m).unwrap_err().to_string(),
        "init: cap \"mine\": a launcher is served by init to the services it starts; only a service can hold one"
    );
    let mut m = with_boot_processes();
    m.kernel.boot_processes[0]
        .caps
        .push(CapRef::launcher("launcher"));
    assert_eq!(
        validate_kernel_layer(&m).unwrap_err().to_string(),
        "boot process 0 (\"timer-demo\"): cap \"launcher\": a launcher is served by init to the services it starts; only a service can hold one"
    );
}

/// `mkmanifest passwd` of "hunter2".
const HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$fH/3ixB83YUb5uV/JrCCkg$8UEx3ZOB1yUksyCTl6wZrSQd6bFCbwxjl+EKpvcKZhU";

fn account(name: &str, principal: &str, profile: &str, hash: &str) -> Account {
    Account {
        name: name.into(),
        principal: principal.into(),
        profile: profile.into(),
        password_hash: hash.into(),
    }
}

/// The sample with accounts and profiles, a session manager stand-in
/// (echo-server exports `sessions`), a spawner copy, a config receiver and a
/// service started in a session.
fn with_sessions() -> Manifest {
    let mut m = sample();
    m.init
        .caps
        .push(CapRef::kernel("frames", KernelKind::FrameAllocator));
    m.services[0]
        .exports
        .push(Export::client("sessions", "endpoint"));
    m.services[0].caps.push(CapRef {
        name: "spawner".into(),
        expected_interface_id: crate::interfaces::PROCESS_SPAWNER,
        source: CapSource::Spawner,
    });
    m.services[0].sessions_config = true;
    m.services[0].frame_limit = MAX_FRAME_LIMIT;
    m.services[1].session = Some(ImportRef {
        service: "echo-server".into(),
        export: "sessions".into(),
    });
    m.sessions = SessionsConfig {
        accounts: vec![
            account("operator", "operator", "operator", HASH),
            account("guest", "guest-1", "guest", ""),
        ],
        profiles: vec![
            Profile {
                name: "operator".into(),
                launchable: vec!["timer-demo".into()],
                bundle: vec!["audit".into()],
            },
            Profile {
                name: "guest".into(),
                launchable: vec![],
                bundle: vec![],
            },
            Profile {
                name: "anonymous".into(),
                ..Profile::default()
            },
        ],
    };
    m
}

#[test]
fn sessions_are_valid_and_round_trip() {
    let m = with_sessions();
    assert_eq!(check(&m), Ok(()));
    let decoded = decode(&m.encode()).unwrap();
    assert_eq!(decoded, m);
    assert_eq!(decoded.services[0].caps[2].source, CapSource::Spawner);
    assert_eq!(decoded.services[0].frame_limit, MAX_FRAME_LIMIT);
    assert!(decoded.services[0].sessions_config);
    assert_eq!(
        decoded.services[1].session.as_ref().unwrap().export,
        "sessions"
    );
    assert_eq!(decoded.sessions.operator().unwrap().name, "operator");
}

#[test]
fn sessions_config_bytes_round_trip() {
    let m = with_sessions();
    let bytes = m.sessions.to_config_bytes();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(len, bytes.len() - 8);
    // One segment: the segment table says count - 1 = 0.
    assert_eq!(&bytes[8..12], &[0, 0, 0, 0]);
    // Page padding after the message is ignored.
    let mut padded = bytes.clone();
    padded.resize(4096, 0);
    assert_eq!(decode_sessions_config(&padded).unwrap(), m.sessions);
    // A truncated message, a lying prefix and garbage are errors, not panics.
    assert!(decode_sessions_config(&bytes[..bytes.len() - 8]).is_err());
    assert!(decode_sessions_config(&[0xff; 16]).is_err());
    assert!(decode_sessions_config(&[1, 2, 3]).is_err());
    let empty = SessionsConfig::default().to_config_bytes();
    assert_eq!(
        decode_sessions_config(&empty).unwrap(),
        SessionsConfig::default()
    );
}

#[test]
fn session_rules() {
    let cases: Vec<Case> = vec![
        (
            |m| m.sessions.accounts[0].password_hash = "hunter2".into(),
            "account \"operator\": password hash is not a valid Argon2id PHC string",
        ),
        (
            |m| m.sessions.accounts[0].password_hash = HASH.replace("argon2id", "argon2i"),
            "account \"operator\": password hash is not a valid Argon2id PHC string",
        ),
        (
            |m| m.sessions.accounts[0].password_hash = HASH.replace("v=19", "v=16"),
            "account \"operator\": password hash is not a valid Argon2id PHC string",
        ),
        (
            |m| m.sessions.accounts[0].password_hash = HASH.replace("m=19456", "m=19455"),
            "account \"operator\": password hash has parameters m=19455,t=2,p=1; accepted are m from 19456 to 65536 KiB, t from 2 to 10, p = 1",
        ),
        (
            |m| m.sessions.accounts[0].password_hash = HASH.replace("t=2", "t=1"),
            "account \"operator\": password hash has parameters m=19456,t=1,p=1; accepted are m from 19456 to 65536 KiB, t from 2 to 10, p = 1",
        ),
        (
            |m| m.sessions.accounts[0].password_hash = HASH.replace("p=1", "p=2"),
            "account \"operator\": password hash has parameters m=19456,t=2,p=2; accepted are m from 19456 to 65536 KiB, t from 2 to 10, p = 1",
        ),
        (
            |m| m.sessions.accounts[1].name = "operator".into(),
            "account \"operator\": is declared more than once",
        ),
        (
            |m| m.sessions.accounts[1].name = String::new(),
            "account \"\": name is empty",
        ),
        (
            |m| m.sessions.accounts[1].name = "g".repeat(33),
            "account \"ggggggggggggggggggggggggggggggggg\": name is 33 bytes long; at most 32 are allowed",
        ),
        (
            |m| m.sessions.accounts[1].principal = "operator".into(),
            "account \"guest\": principal \"operator\" is used by an earlier account too",
        ),
        (
            |m| m.sessions.accounts[1].principal = String::new(),
            "account \"guest\": principal is empty",
        ),
        (
            |m| m.sessions.accounts[1].profile = "admin".into(),
            "account \"guest\": uses profile \"admin\", which the manifest does not declare",
        ),
        (
            |m| m.sessions.accounts[1].profile = "operator".into(),
            "account \"guest\": has profile \"operator\", which account \"operator\" has already; at most one account is the operator",
        ),
        (
            |m| m.sessions.profiles[2].name = "guest".into(),
            "profile \"guest\": is declared more than once",
        ),
        (
            |m| m.sessions.profiles[1].launchable.push("shell".into()),
            "profile \"guest\": lists launchable binary \"shell\", which the manifest does not declare",
        ),
        (
            |m| m.services[0].frame_limit = MAX_FRAME_LIMIT + 1,
            "service \"echo-server\": asks for frameLimit = 16385; at most 16384 are allowed (0 means the default, 4096)",
        ),
        (
            |m| m.services[1].session.as_mut().unwrap().export = "echo2".into(),
            "service \"echo-client\": session: imports export \"echo2\", which service \"echo-server\" does not declare",
        ),
        (
            |m| m.services[1].session.as_mut().unwrap().service = "timer-demo".into(),
            "service \"echo-client\": session: imports export \"sessions\" of service \"timer-demo\", which is declared later (exporters must come first)",
        ),
        (
            |m| m.services[1].session.as_mut().unwrap().service = "sessiond".into(),
            "service \"echo-client\": session: imports export \"sessions\" of unknown service \"sessiond\"",
        ),
        (
            |m| {
                m.services[0].session = Some(ImportRef {
                    service: "echo-server".into(),
                    export: "sessions".into(),
                })
            },
            "service \"echo-server\": session: imports export \"sessions\" of its own service",
        ),
        (
            |m| m.services[0].caps[2].expected_interface_id = crate::interfaces::CLIENT_ENDPOINT,
            "service \"echo-server\": cap \"spawner\": expects interface 0x9e8a4b887bf7d685 (ClientEndpoint) but its source provides 0xceb500d0b476a0d0 (ProcessSpawner)",
        ),
        (
            |m| m.services[0].caps[2].name = "config".into(),
            "service \"echo-server\": has sessionsConfig, which grants a cap named \"config\", and declares a cap of that name too",
        ),
        (
            |m| m.services[0].cap_slots = 3,
            "service \"echo-server\": asks for capSlots = 3, fewer than the 4 caps it starts with",
        ),
        (
            |m| {
                m.init.caps.pop();
            },
            "init: has services to start but holds no kernel frameAllocator cap",
        ),
    ];
    for (mutate, expected) in cases {
        let mut m = with_sessions();
        mutate(&mut m);
        assert_eq!(validate_kernel_layer(&m), Ok(()), "{expected}");
        assert_eq!(
            validate_service_graph(&m).unwrap_err().to_string(),
            expected
        );
    }
}

#[test]
fn only_services_hold_a_spawner_copy() {
    let spawner = CapRef {
        name: "copy".into(),
        expected_interface_id: crate::interfaces::PROCESS_SPAWNER,
        source: CapSource::Spawner,
    };
    let mut m = sample();
    m.init.caps.push(spawner.clone());
    assert_eq!(
        validate_kernel_layer(&m).unwrap_err().to_string(),
        "init: cap \"copy\": a copy of init's spawner is granted by init to the services it starts; only a service can hold one"
    );
    let mut m = with_boot_processes();
    m.kernel.boot_processes[0].caps.push(spawner);
    assert_eq!(
        validate_kernel_layer(&m).unwrap_err().to_string(),
        "boot process 0 (\"timer-demo\"): cap \"copy\": a copy of init's spawner is granted by init to the services it starts; only a service can hold one"
    );
}

#[test]
fn phc_check_accepts_only_argon2id_within_the_range() {
    assert_eq!(phc::check(HASH), Ok(phc::Params::DEFAULT));
    let stronger = HASH.replace("m=19456", "m=65536").replace("t=2", "t=10");
    assert_eq!(
        phc::check(&stronger),
        Ok(phc::Params {
            m: 65536,
            t: 10,
            p: 1
        })
    );
    for bad in [
        "",
        "$",
        "$argon2id",
        "$argon2id$v=19",
        "$argon2id$v=19$m=19456,t=2,p=1",
        // No salt or no output.
        "$argon2id$v=19$m=19456,t=2,p=1$fH/3ixB83YUb5uV/JrCCkg",
        // No version.
        "$argon2id$m=19456,t=2,p=1$fH/3ixB83YUb5uV/JrCCkg$8UEx3ZOB1yUksyCTl6wZrSQd6bFCbwxjl+EKpvcKZhU",
        // A parameter missing, an extra one, a non-decimal one.
        "$argon2id$v=19$m=19456,t=2$fH/3ixB83YUb5uV/JrCCkg$8UEx3ZOB1yUksyCTl6wZrSQd6bFCbwxjl+EKpvcKZhU",
        "$argon2id$v=19$m=19456,t=2,p=1,x=3$fH/3ixB83YUb5uV/JrCCkg$8UEx3ZOB1yUksyCTl6wZrSQd6bFCbwxjl+EKpvcKZhU",
        "$argon2id$v=19$m=lots,t=2,p=1$fH/3ixB83YUb5uV/JrCCkg$8UEx3ZOB1yUksyCTl6wZrSQd6bFCbwxjl+EKpvcKZhU",
        // A 6-byte salt, a 6-byte output.
        "$argon2id$v=19$m=19456,t=2,p=1$fH/3ixB8$8UEx3ZOB1yUksyCTl6wZrSQd6bFCbwxjl+EKpvcKZhU",
        "$argon2id$v=19$m=19456,t=2,p=1$fH/3ixB83YUb5uV/JrCCkg$8UEx3ZOB",
        // bcrypt and scrypt strings.
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
    ] {
        assert_eq!(phc::check(bad), Err(phc::PhcError::Malformed), "{bad}");
    }
    assert_eq!(
        phc::check(&HASH.replace("m=19456", "m=65537")),
        Err(phc::PhcError::Params(phc::Params {
            m: 65537,
            t: 2,
            p: 1
        }))
    );
}

quickcheck::quickcheck! {
    /// Arbitrary text never panics the PHC check, and nothing below the
    /// floor is ever accepted.
    fn phc_check_survives_garbage(s: String) -> bool {
        match phc::check(&s) {
            Ok(p) => p.acceptable(),
            Err(_) => true,
        }
    }

    /// The valid hash with one byte replaced or cut: never a panic; when
    /// still accepted, within the range.
    fn phc_check_survives_mutations(at: usize, byte: u8, cut: bool) -> bool {
        let mut bytes = HASH.as_bytes().to_vec();
        let at = at % bytes.len();
        if cut {
            bytes.truncate(at);
        } else {
            bytes[at] = byte;
        }
        let Ok(s) = core::str::from_utf8(&bytes) else { return true };
        match phc::check(s) {
            Ok(p) => p.acceptable(),
            Err(_) => true,
        }
    }
}
