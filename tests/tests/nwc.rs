//! A deposit through the wall on the `nwc` backend: the built filter in the host, the sidecar on
//! FakeNwc (a NIP-47 wallet service double on a real Nostr relay). Paid, held, then refunded (the
//! wallet cancels the hold invoice) or forfeited on a trap path (it settles it); the money is
//! read in the wallet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use fake_nwc::{FakeNwc, HoldState};
use lightning_wall_e2e::testing::Request;
use lightning_wall_e2e::{Wall, status};

struct NwcWall {
    wall: Wall,
    fake: FakeNwc,
    /// FakeNwc's relay and wallet service run here, apart from the sidecar's runtime.
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn start() -> NwcWall {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(FakeNwc::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let connection = dir.path().join("nwc-connection");
    std::fs::write(&connection, fake.connection_string()).unwrap();
    let node = format!(
        "node:
  backend: nwc
  nwc:
    connection: {{ file: {} }}
    network: regtest",
        connection.display()
    );
    NwcWall {
        wall: Wall::start_on_node(1, &node),
        fake,
        rt,
        _dir: dir,
    }
}

impl NwcWall {
    /// Challenge through the filter, pay in the wallet, fetch the credential.
    fn held_deposit(&mut self, path: &str) -> (String, [u8; 32]) {
        let challenge = self.wall.challenge(path);
        let hash = self
            .rt
            .block_on(
                self.fake
                    .pay_request(challenge["invoice"].as_str().unwrap()),
            )
            .unwrap();
        let status = self
            .wall
            .deposit_status(challenge["macaroon"].as_str().unwrap());
        assert_eq!(status["state"], "held", "{status}");
        (status["credential"].as_str().unwrap().to_owned(), hash)
    }

    /// Waits until the wallet shows the invoice in `want`, ticking the filter meanwhile.
    fn wait_wallet_state(&mut self, hash: [u8; 32], want: HoldState) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.fake.invoice_state(&hash) == Some(want) {
                return;
            }
            self.wall.tick();
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "the wallet never showed {want:?}: {:?}",
            self.fake.invoice_state(&hash)
        );
    }
}

#[test]
fn a_deposit_on_nwc_is_held_opens_the_site_and_is_refunded_when_the_visitor_leaves() {
    let mut w = start();
    let (credential, hash) = w.held_deposit("/articles/1");
    assert!(matches!(
        w.fake.invoice_state(&hash),
        Some(HoldState::Accepted { .. })
    ));
    let auth = format!("L402 {credential}");
    let ex = w
        .wall
        .send(&Request::get("/articles/1").header("authorization", &auth));
    assert_eq!(status(&ex), Some(200));
    let left = w.wall.leave(&credential);
    // Refunded after the leave grace, once the wallet confirms the cancel (docs/filter.md).
    assert_eq!(left["state"], "leaving");
    w.wait_wallet_state(hash, HoldState::Canceled);
    w.wall.tick();
    let ex = w
        .wall
        .send(&Request::get("/articles/1").header("authorization", &auth));
    assert_eq!(status(&ex), Some(402), "a refunded deposit opens nothing");
}

#[test]
fn a_deposit_on_nwc_is_forfeited_on_a_trap_path_and_the_wallet_settles_it() {
    let mut w = start();
    let (credential, hash) = w.held_deposit("/home");
    let auth = format!("L402 {credential}");
    let ex = w
        .wall
        .send(&Request::get("/wp-login.php").header("authorization", &auth));
    assert_eq!(status(&ex), Some(403));
    assert!(ex.upstream_request.is_none());
    w.wait_wallet_state(hash, HoldState::Settled);
    // A leave after the forfeit changes nothing: the money stays settled.
    let left = w.wall.leave(&credential);
    assert_ne!(left["state"], "refunded", "{left}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(w.fake.invoice_state(&hash), Some(HoldState::Settled));
    assert_eq!(
        w.fake
            .requests()
            .iter()
            .filter(|c| *c == "cancel_hold_invoice")
            .count(),
        0
    );
}
