//! Generates the gRPC clients of the `cln` backend (Core Lightning's `cln.Node` and the hold
//! plugin's `hold.Hold`) from the vendored protos in `proto/` (see `proto/README.md`). protox
//! parses them in Rust, so building needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["hold.proto", "cln/node.proto"], ["proto", "proto/cln"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
