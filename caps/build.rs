//! Build script: generates the Cap'n Proto bindings for `schema/*.capnp`
//! into OUT_DIR, and from the same schema the method ordinals and server
//! dispatch (`api.rs`, through `capos-codegen`).
//!
//! The generated interface code names `Box` and `str::to_string` through the std
//! prelude, which a `no_std` crate does not have, so the output is rewritten to
//! spell both through `alloc` explicitly.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=schema");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let request = out.join("schema.request");
    capnpc::CompilerCommand::new()
        .src_prefix("schema")
        .file("schema/capos.capnp")
        .file("schema/manifest.capnp")
        .file("schema/services.capnp")
        .default_parent_module(vec!["schema".into()])
        .raw_code_generator_request_path(&request)
        .run()
        .expect("capnp schema compilation failed (is the `capnp` compiler installed?)");

    for name in ["capos_capnp.rs", "manifest_capnp.rs", "services_capnp.rs"] {
        let path = out.join(name);
        let code = std::fs::read_to_string(&path).expect("generated bindings are readable");
        std::fs::write(&path, make_no_std(&code)).expect("generated bindings are writable");
    }

    let bytes = std::fs::read(&request).expect("the raw CodeGeneratorRequest was written");
    let schema = capos_codegen::read_request(&bytes).expect("the schema's interfaces are readable");
    let api = capos_codegen::server::generate(&schema, "crate::schema", "crate::server");
    std::fs::write(out.join("api.rs"), api).expect("api.rs is writable");
}

/// Replaces std-prelude names in generated code with their `alloc` paths.
fn make_no_std(code: &str) -> String {
    let mut fixed = String::with_capacity(code.len() + 4096);
    let mut rest = code;
    while let Some(at) = rest.find("Box<") {
        let before = &rest[..at];
        fixed.push_str(before);
        let qualified = before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':');
        if !qualified {
            fixed.push_str("::alloc::boxed::");
        }
        fixed.push_str("Box<");
        rest = &rest[at + 4..];
    }
    fixed.push_str(rest);
    fixed.replace("\".to_string()", "\".into()")
}
