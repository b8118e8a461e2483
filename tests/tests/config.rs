//! The plugin configuration is validated in `on_configure`: Envoy refuses a bad one up front
//! instead of the filter failing requests later.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lightning_wall_e2e::filter_runtime;
use lightning_wall_e2e::testing::TestHost;
use lightning_wall_host::{CallResponse, HostError};

#[test]
fn a_bad_plugin_configuration_is_rejected_at_configure() {
    for config in [
        "",
        "not json",
        "{}",
        r#"{"sidecar_cluster": ""}"#,
        r#"{"sidecar_cluster": "x", "timeout_ms": 0}"#,
        r#"{"sidecar_cluster": "x", "failure_mode": "sometimes"}"#,
        r#"{"sidecar_cluster": "x", "master_key": "00"}"#,
    ] {
        let built = TestHost::builder(filter_runtime())
            .configuration(config)
            .build();
        assert!(
            matches!(built, Err(HostError::ConfigureRejected { .. })),
            "accepted {config:?}"
        );
    }
}

#[test]
fn a_good_configuration_starts_and_bootstraps_on_the_first_tick() {
    let mut host = TestHost::builder(filter_runtime())
        .configuration(r#"{"sidecar_cluster": "sidecar", "bearer_token": "t0ken"}"#)
        .cluster_handler("sidecar", |req| {
            // The bearer token goes to the internal listener on every call.
            assert_eq!(req.headers.get("authorization"), Some("Bearer t0ken"));
            CallResponse::connect_failure()
        })
        .build()
        .unwrap();
    assert_eq!(host.tick_period(0), Some(std::time::Duration::from_secs(1)));
    // No call-out from on_configure (a trap in nginx, docs/filter.md "Hosts"): the first tick
    // bootstraps.
    assert!(host.logs_containing("bootstrap failed").is_empty());
    host.tick_all();
    assert!(!host.logs_containing("bootstrap failed").is_empty());
    assert!(
        host.logs_containing("t0ken").is_empty(),
        "the token is never logged"
    );
}
