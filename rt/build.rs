//! Build script: relink every service when `link.ld` changes, and generate
//! the typed client stubs (`api.rs`) from the schema through
//! `capos-codegen`.
//!
//! Cargo does not track files passed to the linker through RUSTFLAGS.
//! Declaring the script here makes capos-rt rebuild when it changes, and
//! with it every service binary that depends on it.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../caps/schema");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let request = out.join("schema.request");
    // The bindings themselves come from capos-caps; only the request is used.
    capnpc::CompilerCommand::new()
        .src_prefix("../caps/schema")
        .file("../caps/schema/capos.capnp")
        .file("../caps/schema/manifest.capnp")
        .file("../caps/schema/services.capnp")
        .output_path(out.join("unused-bindings"))
        .raw_code_generator_request_path(&request)
        .run()
        .expect("capnp schema compilation failed (is the `capnp` compiler installed?)");
    let bytes = std::fs::read(&request).expect("the raw CodeGeneratorRequest was written");
    let schema = capos_codegen::read_request(&bytes).expect("the schema's interfaces are readable");
    let code = capos_codegen::client::generate(
        &schema,
        "crate::api",
        "capos_caps::schema",
        "capos_caps::api",
    );
    std::fs::write(out.join("api.rs"), code).expect("api.rs is writable");
}
