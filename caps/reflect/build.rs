//! Build script: compiles the test-only schema `tests/schema/reflect_test.capnp`
//! into OUT_DIR, both as `capnpc` bindings (the generated readers and builders
//! the tests check against) and as the raw `CodeGeneratorRequest` (what the
//! reflection reads). The library itself uses neither.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=tests/schema");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    capnpc::CompilerCommand::new()
        .src_prefix("tests/schema")
        .file("tests/schema/reflect_test.capnp")
        .raw_code_generator_request_path(out.join("reflect_test.request"))
        .run()
        .expect("capnp schema compilation failed (is the `capnp` compiler installed?)");
}
