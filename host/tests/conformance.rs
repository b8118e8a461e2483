//! Conformance of the host with Envoy's proxy-wasm semantics, checked with the conformance
//! filter (host/conformance-filter) built for both wasm targets.

mod common;

use lightning_wall_host::testing::{Request, TestHost, echo_upstream};

#[test]
fn smoke() {
    let mut host = TestHost::builder(common::conformance())
        .configuration("cluster=sidecar")
        .cluster_handler("sidecar", |_| {
            lightning_wall_host::CallResponse::new(200, &[], "hi")
        })
        .build()
        .unwrap();
    let ex = host.send(
        &Request::get("/headers").header("x-one", "1"),
        echo_upstream,
    );
    println!("{ex:#?}");
    for l in host.logs() {
        println!("{l:?}");
    }
}
