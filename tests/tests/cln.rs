//! A deposit through the wall on the `cln` backend: the built filter in the host, the sidecar on
//! FakeCln (the test double of Core Lightning's and the hold plugin's gRPC). Paid, held, then
//! refunded (the hold plugin cancels the invoice) or forfeited on a trap path (it settles it);
//! the money is read on the plugin's side.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use fake_cln::FakeCln;
use lightning_wall_e2e::testing::Request;
use lightning_wall_e2e::{Wall, status};

struct ClnWall {
    wall: Wall,
    fake: FakeCln,
    /// FakeCln's servers run here, apart from the sidecar's runtime.
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn start() -> ClnWall {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(FakeCln::start()).unwrap();
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
    ClnWall {
        wall: Wall::start_on_node(1, &node),
        fake,
        _rt: rt,
        _dir: dir,
    }
}

impl ClnWall {
    /// Challenge through the filter, pay on FakeCln, fetch the credential.
    fn held_deposit(&mut self, path: &str) -> (String, [u8; 32]) {
        let challenge = self.wall.challenge(path);
        let hash = self
            .fake
            .pay_request(challenge["invoice"].as_str().unwrap())
            .unwrap();
        let status = self
            .wall
            .deposit_status(challenge["macaroon"].as_str().unwrap());
        assert_eq!(status["state"], "held", "{status}");
        (status["credential"].as_str().unwrap().to_owned(), hash)
    }

    /// Waits until the hold plugin shows the invoice in `want`, ticking the filter meanwhile.
    fn wait_plugin_state(&mut self, hash: [u8; 32], want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.fake.hold_invoice(hash).map(|i| i.state) == Some(want) {
                return;
            }
            self.wall.tick();
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "the plugin never showed {want}: {:?}",
            self.fake.hold_invoice(hash)
        );
    }
}

#[test]
fn a_deposit_on_cln_is_held_opens_the_site_and_is_refunded_when_the_visitor_leaves() {
    let mut w = start();
    let (credential, hash) = w.held_deposit("/articles/1");
    assert_eq!(w.fake.hold_invoice(hash).unwrap().state, "accepted");
    let auth = format!("L402 {credential}");
    let ex = w
        .wall
        .send(&Request::get("/articles/1").header("authorization", &auth));
    assert_eq!(status(&ex), Some(200));
    let left = w.wall.leave(&credential);
    // Refunded after the leave grace, once the plugin confirms the cancel (docs/filter.md).
    assert_eq!(left["state"], "leaving");
    w.wait_plugin_state(hash, "cancelled");
    w.wall.tick();
    let ex = w
        .wall
        .send(&Request::get("/articles/1").header("authorization", &auth));
    assert_eq!(status(&ex), Some(402), "a refunded deposit opens nothing");
}

#[test]
fn a_deposit_on_cln_is_forfeited_on_a_trap_path_and_the_plugin_settles_it() {
    let mut w = start();
    let (credential, hash) = w.held_deposit("/home");
    let auth = format!("L402 {credential}");
    let ex = w
        .wall
        .send(&Request::get("/wp-login.php").header("authorization", &auth));
    assert_eq!(status(&ex), Some(403));
    assert!(ex.upstream_request.is_none());
    w.wait_plugin_state(hash, "paid");
    // A leave after the forfeit changes nothing: the money stays settled.
    let left = w.wall.leave(&credential);
    assert_ne!(left["state"], "refunded", "{left}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(w.fake.hold_invoice(hash).unwrap().state, "paid");
    assert_eq!(
        w.fake
            .requests()
            .iter()
            .filter(|c| *c == "hold.Cancel")
            .count(),
        0
    );
}
