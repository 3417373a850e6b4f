//! Generates the gRPC code from `proto/tq/v1/tq.proto` without a system `protoc`: protox
//! parses the schema, tonic-prost-build writes the Rust (STACK.md).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["tq/v1/tq.proto"], ["proto"])?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(fds)?;
    Ok(())
}
