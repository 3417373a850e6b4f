//! Generates the gRPC code from `proto/tq/v1/tq.proto` without a system `protoc`: protox
//! parses the schema, tonic-prost-build writes the Rust (STACK.md).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["tq/v1/tq.proto"], ["proto"])?;
    // Without `transport` the messages alone: the services' code needs tonic's transport.
    let services = std::env::var_os("CARGO_FEATURE_TRANSPORT").is_some();
    tonic_prost_build::configure()
        .build_server(services)
        .build_client(services)
        .compile_fds(fds.clone())?;
    if !services {
        return Ok(());
    }
    // The coordinator's server once more, alone, answering `ClusterStatus` from bytes
    // encoded once per publication (`status_bytes.rs`). The messages are the ones above, so
    // only the service is generated here, and clients see the same wire format.
    let mut server = fds;
    for file in &mut server.file {
        file.message_type.clear();
        file.enum_type.clear();
        file.service.retain(|s| s.name() == "Coordinator");
        // Its comments are located by index, which the lines above moved.
        file.source_code_info = None;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("coordinator_server");
    std::fs::create_dir_all(&out)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .out_dir(out)
        .extern_path(".tq.v1", "crate::pb")
        .extern_path(".tq.v1.ClusterStatus", "crate::status_bytes::EncodedStatus")
        .compile_fds(server)?;
    Ok(())
}
