//! End-to-end tests of the `mkmanifest` command: the default manifest passes and every
//! malformed manifest in `tests/bad-manifests/` fails with its exact expected message.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Each malformed manifest and the one error it must produce, written from the rules
/// in docs/manifest.md.
const CASES: &[(&str, &str)] = &[
    (
        "unknown-import-service",
        r#"service "echo-client": cap "echo": imports export "echo" of unknown service "echo-srv""#,
    ),
    (
        "unknown-export",
        r#"service "echo-client": cap "echo": imports export "ping", which service "echo-server" does not declare"#,
    ),
    (
        "import-declared-later",
        r#"service "echo-client": cap "echo": imports export "echo" of service "echo-server", which is declared later (exporters must come first)"#,
    ),
    (
        "duplicate-service",
        r#"service "echo-client": is declared more than once"#,
    ),
    (
        "unknown-service-binary",
        r#"service "timer-demo": runs binary "timer", which the manifest does not declare"#,
    ),
    (
        "duplicate-cap",
        r#"service "timer-demo": cap "console": is declared more than once"#,
    ),
    (
        "missing-source",
        r#"service "timer-demo": cap "timer": has no source"#,
    ),
    (
        "interface-mismatch",
        r#"service "echo-client": cap "echo": expects interface 0xcbfd3ce01f06ba53 (Endpoint) but its source provides 0x9e8a4b887bf7d685 (ClientEndpoint)"#,
    ),
    (
        "raw-endpoint-export",
        r#"service "echo-server": export "echo": exports endpoint "endpoint" raw; endpoint exports must be attenuated to client facets"#,
    ),
    (
        "reexport",
        r#"service "echo-client": export "relay": re-exports cap "echo", which is itself an import"#,
    ),
    (
        "export-unknown-cap",
        r#"service "echo-server": export "echo": names cap "ep", which this service does not declare"#,
    ),
    (
        "export-not-endpoint",
        r#"service "echo-server": export "log": exports cap "console" of kernel kind console; only endpoints can be exported"#,
    ),
    (
        "boot-package-to-service",
        r#"service "timer-demo": cap "boot": boot package authority is reserved for init"#,
    ),
    (
        "not-held-by-init",
        r#"service "timer-demo": cap "clock": needs a kernel timer cap, which init does not hold to pass on"#,
    ),
    (
        "init-unknown-binary",
        r#"init: runs binary "sbin-init", which the manifest does not declare"#,
    ),
    (
        "init-import",
        r#"init: cap "echo": init can only hold kernel-minted caps"#,
    ),
    (
        "duplicate-binary",
        r#"binary "init": is declared more than once"#,
    ),
    (
        "schema-version",
        "manifest: schema version 2 is not supported (this build reads version 1)",
    ),
    (
        "boot-process-unknown-binary",
        r#"boot process 1 ("sbin-worker"): runs binary "sbin-worker", which the manifest does not declare"#,
    ),
    (
        "boot-process-boot-package",
        r#"boot process 0 ("timer-demo"): cap "boot": bootPackage is only granted to init"#,
    ),
    (
        "not-implemented-kind",
        r#"service "timer-demo": cap "threads": kernel capability kind threadSpawner is not available in this kernel yet"#,
    ),
    (
        "boot-process-spawner",
        r#"boot process 1 ("timer-demo"): cap "spawner": processSpawner is only granted to init"#,
    ),
    (
        "boot-process-import",
        r#"boot process 0 ("echo-client"): cap "echo": boot processes can only hold kernel-minted caps"#,
    ),
    (
        "boot-process-duplicate-cap",
        r#"boot process 1 ("timer-demo"): cap "console": is declared more than once"#,
    ),
    (
        "boot-process-cap-mismatch",
        r#"boot process 0 ("timer-demo"): cap "null": expects interface 0xdfa84506728bf29c (Console) but its source provides 0xebbe9c3253cdbcaa (Null)"#,
    ),
    (
        "boot-process-missing-source",
        r#"boot process 0 ("timer-demo"): cap "timer": has no source"#,
    ),
    (
        "boot-process-empty-cap-name",
        r#"boot process 0 ("timer-demo"): cap "": name is empty"#,
    ),
    (
        "too-many-boot-processes",
        "kernel: has 17 boot processes; at most 16 are allowed",
    ),
    (
        "pinned-beyond-max-cpus",
        r#"service "timer-demo": is pinned to CPU 2, but kernel.maxCpus = 2 brings up only CPUs 0 to 1"#,
    ),
    (
        "cap-slots-too-many",
        r#"service "timer-demo": asks for capSlots = 5000; at most 4096 are allowed (0 means the default, 256)"#,
    ),
    (
        "cap-slots-below-caps",
        r#"service "echo-client": asks for capSlots = 1, fewer than the 2 caps it starts with"#,
    ),
    (
        "init-cap-slots-too-many",
        "init: asks for capSlots = 4097; at most 4096 are allowed (0 means the default, 256)",
    ),
    (
        "launchable-unknown-binary",
        r#"service "timer-demo": lists launchable binary "hostile", which the manifest does not declare"#,
    ),
    (
        "launchable-without-launcher",
        r#"service "timer-demo": lists launchable binaries but holds no launcher cap to start them with"#,
    ),
    (
        "launcher-without-init-endpoint",
        r#"init: services ask for a launcher, but init holds no kernel endpoint cap named "launcher" to serve it on"#,
    ),
    (
        "init-launcher",
        r#"init: cap "launcher": a launcher is served by init to the services it starts; only a service can hold one"#,
    ),
    (
        "init-cap-mismatch",
        r#"init: cap "timer": expects interface 0xdfa84506728bf29c (Console) but its source provides 0xa06e7a0d0d2e312e (Timer)"#,
    ),
    (
        "bad-password-hash",
        r#"account "operator": password hash is not a valid Argon2id PHC string"#,
    ),
    (
        "weak-password-hash",
        r#"account "operator": password hash has parameters m=4096,t=3,p=1; accepted are m from 19456 to 65536 KiB, t from 2 to 10, p = 1"#,
    ),
    (
        "second-operator",
        r#"account "root": has profile "operator", which account "operator" has already; at most one account is the operator"#,
    ),
    (
        "frame-limit-too-many",
        r#"service "timer-demo": asks for frameLimit = 16385; at most 16384 are allowed (0 means the default, 4096)"#,
    ),
];

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn mkmanifest(args: &[&Path]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mkmanifest"))
        .args(args)
        .output()
        .expect("mkmanifest runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn every_bad_manifest_fails_with_its_message() {
    let dir = crate_dir().join("tests/bad-manifests");
    for (name, expected) in CASES {
        let file = dir.join(format!("{name}.capnp"));
        let (code, stdout, stderr) = mkmanifest(&[Path::new("check"), &file]);
        assert_eq!(code, 1, "{name}: {stdout}{stderr}");
        let want = format!(
            "error: {expected}\n{}: rejected (1 error)\n",
            file.display()
        );
        assert_eq!(stderr, want, "{name}");
        assert!(stdout.is_empty());
    }
}

#[test]
fn every_bad_manifest_file_has_a_case() {
    let mut files: Vec<String> = std::fs::read_dir(crate_dir().join("tests/bad-manifests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "capnp"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|name| name != "common")
        .collect();
    files.sort();
    let mut cases: Vec<String> = CASES.iter().map(|(n, _)| n.to_string()).collect();
    cases.sort();
    assert_eq!(files, cases);
}

#[test]
fn default_manifest_checks_and_builds() {
    let default = crate_dir().join("../manifests/default.capnp");
    let (code, stdout, stderr) = mkmanifest(&[Path::new("check"), &default]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("ok (schema 1, 7 binaries, init + 6 services)"),
        "{stdout}"
    );
    assert!(stdout.contains("echo<-echo-server.echo"), "{stdout}");
    assert!(stdout.contains("shm<-shm-producer.shm"), "{stdout}");
    assert!(stdout.contains("frames=frameAllocator"), "{stdout}");

    let out: PathBuf =
        std::env::temp_dir().join(format!("capos-default-{}.bin", std::process::id()));
    let (code, _, stderr) = mkmanifest(&[Path::new("build"), &default, &out]);
    assert_eq!(code, 0, "{stderr}");
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    let m = capos_caps::manifest::decode(&bytes).unwrap();
    assert_eq!(capos_caps::manifest::check(&m), Ok(()));
    let names: Vec<&str> = m.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "echo-server",
            "registry",
            "echo-client",
            "shm-producer",
            "shm-consumer",
            "timer-demo"
        ]
    );
    let binaries: Vec<&str> = m.binaries.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        binaries,
        [
            "init",
            "echo-server",
            "echo-client",
            "registry",
            "shm-producer",
            "shm-consumer",
            "timer-demo"
        ]
    );
}

#[test]
fn smoke_and_procs_manifests_check() {
    let smoke = crate_dir().join("../manifests/smoke.capnp");
    let (code, stdout, stderr) = mkmanifest(&[Path::new("check"), &smoke]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("ok (schema 1, 7 binaries, init + 0 services)"),
        "{stdout}"
    );

    let procs = crate_dir().join("../manifests/procs.capnp");
    let out: PathBuf = std::env::temp_dir().join(format!("capos-procs-{}.bin", std::process::id()));
    let (code, stdout, stderr) = mkmanifest(&[Path::new("build"), &procs, &out]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("ok (schema 1, 10 binaries, init + 12 boot processes + 0 services)"),
        "{stdout}"
    );
    assert!(stdout.contains("boot[11]"), "{stdout}");
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    let m = capos_caps::manifest::decode(&bytes).unwrap();
    assert_eq!(capos_caps::manifest::check(&m), Ok(()));
    let boot: Vec<&str> = m
        .kernel
        .boot_processes
        .iter()
        .map(|p| p.binary.as_str())
        .collect();
    assert_eq!(
        boot,
        [
            "worker",
            "worker",
            "worker",
            "worker",
            "fault-pf",
            "fault-gp",
            "fault-ud",
            "fault-de",
            "fault-nm",
            "hostile",
            "timer-demo",
            "vm-demo"
        ]
    );
    let hostile = &m.kernel.boot_processes[9];
    let caps: Vec<&str> = hostile.caps.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(caps, ["console", "null"]);
    assert_eq!(
        hostile.caps[1].expected_interface_id,
        capos_caps::interfaces::NULL
    );
    let timer = &m.kernel.boot_processes[10];
    let caps: Vec<&str> = timer.caps.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(caps, ["console", "timer"]);
    assert_eq!(
        timer.caps[1].expected_interface_id,
        capos_caps::interfaces::TIMER
    );
}

#[test]
fn hostile_inputs_and_usage_errors() {
    let garbage = std::env::temp_dir().join(format!("capos-garbage-{}.bin", std::process::id()));
    std::fs::write(&garbage, [0xffu8; 24]).unwrap();
    let (code, _, stderr) = mkmanifest(&[Path::new("check"), &garbage]);
    std::fs::remove_file(&garbage).unwrap();
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("error: manifest is not a valid SystemManifest message: "),
        "{stderr}"
    );

    let schema = crate_dir().join("schema/capos.capnp");
    let (code, _, stderr) = mkmanifest(&[Path::new("check"), &schema]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("error: capnp eval failed for "),
        "{stderr}"
    );

    let (code, _, stderr) = mkmanifest(&[Path::new("frobnicate")]);
    assert_eq!(code, 2);
    assert!(stderr.starts_with("usage:"));
}

/// Runs `mkmanifest passwd` with `input` on stdin.
fn passwd(input: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mkmanifest"))
        .arg("passwd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mkmanifest runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn passwd_prints_an_argon2id_hash_of_the_line() {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let (code, stdout, stderr) = passwd(b"correct horse\n");
    assert_eq!(code, 0, "{stderr}");
    let hash = stdout.trim_end();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert_eq!(
        capos_caps::manifest::phc::check(hash),
        Ok(capos_caps::manifest::phc::Params::DEFAULT)
    );
    let parsed = PasswordHash::new(hash).unwrap();
    let argon = argon2::Argon2::default();
    assert!(argon.verify_password(b"correct horse", &parsed).is_ok());
    assert!(argon.verify_password(b"correct horse\n", &parsed).is_err());
    // A fresh salt each time.
    let (_, again, _) = passwd(b"correct horse\n");
    assert_ne!(again, stdout);
    // Nothing to hash, or more than authd accepts.
    let (code, _, stderr) = passwd(b"\n");
    assert_eq!(code, 1, "{stderr}");
    let (code, _, stderr) = passwd(&[b'x'; 1025]);
    assert_eq!(code, 1, "{stderr}");
}
