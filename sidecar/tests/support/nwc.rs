//! The sidecar with the `nwc` backend against FakeNwc, a NIP-47 wallet service double on a real
//! Nostr relay on loopback (`lifecycle_nwc.rs`).

use std::time::{Duration, Instant};

use fake_nwc::{FakeNwc, HoldState};
use lightning_wall::config::Config;
use lightning_wall::serve::start;
use serde_json::Value;

use super::{Sidecar, hash_of, start_sidecar};

pub type NwcSidecar = Sidecar<FakeNwc>;

impl NwcSidecar {
    /// A sidecar on a fresh FakeNwc, configured in YAML as an operator would, the connection
    /// string from `{file:}`.
    pub async fn start(idle_timeout: &str, reconcile_interval: &str) -> NwcSidecar {
        let fake = FakeNwc::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let connection = dir.path().join("nwc-connection");
        std::fs::write(&connection, format!("{}\n", fake.connection_string())).unwrap();
        let node = format!(
            "node:
  backend: nwc
  nwc:
    connection: {{ file: {} }}
    network: regtest",
            connection.display()
        );
        start_sidecar(fake, dir, &node, idle_timeout, reconcile_interval).await
    }

    /// Stops the sidecar and starts it again on the same configuration and data (a deploy or a
    /// crash in the middle of deposits); a remote payer pays `pay_while_down` meanwhile.
    pub async fn restart(self, pay_while_down: Option<&str>) -> NwcSidecar {
        let Sidecar {
            fake,
            running,
            http,
            _dir,
        } = self;
        running.shutdown().await;
        if let Some(invoice) = pay_while_down {
            fake.pay_request(invoice).await.unwrap();
        }
        let config = Config::load(&_dir.path().join("lightning-wall.yaml")).unwrap();
        let running = start(config).await.unwrap();
        Sidecar {
            fake,
            running,
            http,
            _dir,
        }
    }

    /// A deposit paid on FakeNwc and reported held by the sidecar: its challenge.
    pub async fn held_deposit(&self, ip: &str) -> Value {
        let c = self.challenged(ip).await;
        self.fake
            .pay_request(c["invoice"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(self.status(&c, 10).await["state"], "held");
        c
    }

    pub fn wallet_state(&self, c: &Value) -> Option<HoldState> {
        self.fake.invoice_state(&hash_of(c))
    }

    /// Waits until the wallet shows the invoice in `want`, at most `within`.
    pub async fn wait_wallet_state(&self, c: &Value, want: HoldState, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.wallet_state(c) == Some(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the wallet never showed {want:?}: {:?}",
            self.wallet_state(c)
        );
    }

    /// Requests the wallet has served, by method (`settle_hold_invoice`).
    pub fn calls_to(&self, method: &str) -> usize {
        self.fake.requests().iter().filter(|m| *m == method).count()
    }
}
