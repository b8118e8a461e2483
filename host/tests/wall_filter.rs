//! Smoke test of the host with the project's own filter (target/wasm/lightning_wall_filter.wasm):
//! it must load, start and answer a request without the VM failing.
// Test code: a failed expectation is reported by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use lightning_wall_host::testing::{Request, TestHost, echo_upstream};
use lightning_wall_host::{CallResponse, HostError};

#[test]
fn the_project_filter_loads_and_answers_without_failing_the_vm() {
    let built = TestHost::builder(common::wall_filter())
        .configuration(r#"{"sidecar_cluster": "lightning_wall_sidecar"}"#)
        // No sidecar here: every call-out is answered the way Envoy reports an unreachable one.
        .cluster_handler("lightning_wall_sidecar", |_| {
            CallResponse::connect_failure()
        })
        .build();
    let mut host = match built {
        Ok(h) => h,
        Err(e @ HostError::ConfigureRejected { .. }) => panic!("filter rejected its config: {e}"),
        Err(e) => panic!("the host could not start the filter: {e}"),
    };
    let ex = host.send(&Request::get("/"), echo_upstream);
    assert!(!ex.failed, "the filter's VM failed: {:?}", host.logs());
    let resp = ex.response.expect("the client got an answer");
    // Before its first bootstrap (here: never, the sidecar is unreachable) the filter fails
    // closed by default: 503 with Retry-After, nothing reaches the upstream.
    assert_eq!(resp.status(), Some(503));
    assert_eq!(ex.local_reply.map(|r| r.status), Some(503));
    assert!(ex.upstream_request.is_none());
    assert!(resp.headers.get("retry-after").is_some());
}
