//! Generates the gRPC code from `proto/tq/v1/tq.proto` without a system `protoc`: protox
//! parses the schema, tonic-prost-build writes the Rust (STACK.md).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["tq/v1/tq.proto"], ["proto"])?;
    // Without `transport` the messages alone: the services' code needs tonic's transport.
    let services = std::env::var_os("CARGO_FEATURE_TRANSPORT").is_some();
    tonic_prost_build::configure()
        .build_server(services)
        .build_client(services)
        .compile_fds(fds)?;
    Ok(())
}
