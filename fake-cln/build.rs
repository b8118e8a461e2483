//! The servers of `hold.Hold` and `cln.Node`, generated from the same vendored protos as the
//! sidecar's clients (`sidecar/proto/`), so FakeCln speaks exactly the wire format they do.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../sidecar/proto");
    let descriptors = protox::compile(
        ["hold.proto", "cln/node.proto"],
        ["../sidecar/proto", "../sidecar/proto/cln"],
    )?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
