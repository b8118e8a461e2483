//! The sidecar with the `cln` backend against FakeCln, the test double of Core Lightning's and
//! the hold plugin's gRPC (`lifecycle_cln.rs`).

use std::time::{Duration, Instant};

use fake_cln::{Credentials, FakeCln};
use lightning_wall::node::cln::{ClnConfig, GrpcEndpoint};
use serde_json::Value;

use super::{Sidecar, hash_of, start_sidecar};

pub type ClnSidecar = Sidecar<FakeCln>;

/// The backend's configuration for FakeCln's credentials (regtest), with fast reconnects.
pub fn backend_config(c: &Credentials) -> ClnConfig {
    let endpoint = |url: &str, files: &fake_cln::ClientFiles, tls_name: &str| GrpcEndpoint {
        url: url.to_owned(),
        ca_cert: files.ca.clone(),
        client_cert: files.client_cert.clone(),
        client_key: std::fs::read(&files.client_key).unwrap(),
        tls_name: tls_name.to_owned(),
    };
    ClnConfig {
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        ..ClnConfig::new(
            endpoint(&c.node_url, &c.node, "cln"),
            endpoint(&c.hold_url, &c.hold, "hold"),
            "regtest",
        )
    }
}

impl ClnSidecar {
    /// A sidecar on a fresh FakeCln (the plugin's default `hold-expiry-deadline`, 3), configured
    /// in YAML as an operator would, client keys from `{file:}`.
    pub async fn start(idle_timeout: &str, reconcile_interval: &str) -> ClnSidecar {
        let fake = FakeCln::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let c = fake.write_credentials(dir.path()).unwrap();
        let node = format!(
            "node:
  backend: cln
  cln:
    grpc: {{ url: {}, ca_cert_file: {}, client_cert_file: {}, client_key: {{ file: {} }} }}
    hold: {{ url: {}, ca_cert_file: {}, client_cert_file: {}, client_key: {{ file: {} }} }}
    network: regtest",
            c.node_url,
            c.node.ca.display(),
            c.node.client_cert.display(),
            c.node.client_key.display(),
            c.hold_url,
            c.hold.ca.display(),
            c.hold.client_cert.display(),
            c.hold.client_key.display(),
        );
        start_sidecar(fake, dir, &node, idle_timeout, reconcile_interval).await
    }

    /// A deposit paid on FakeCln and reported held by the sidecar: its challenge.
    pub async fn held_deposit(&self, ip: &str) -> Value {
        let c = self.challenged(ip).await;
        self.fake
            .pay_request(c["invoice"].as_str().unwrap())
            .unwrap();
        assert_eq!(self.status(&c, 10).await["state"], "held");
        c
    }

    /// Waits until the hold plugin shows the invoice in `want` (`unpaid`, `accepted`, `paid`,
    /// `cancelled`), at most `within`.
    pub async fn wait_plugin_state(&self, c: &Value, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.fake.hold_invoice(hash_of(c)).map(|i| i.state) == Some(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the hold plugin never showed {want}: {:?}",
            self.fake.hold_invoice(hash_of(c))
        );
    }

    /// Calls FakeCln has served, by name (`hold.Settle`).
    pub fn calls_to(&self, call: &str) -> usize {
        self.fake.requests().iter().filter(|c| *c == call).count()
    }
}
