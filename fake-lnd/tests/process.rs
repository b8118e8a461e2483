//! The `fake-lnd` binary as other tests run it: credentials written, addresses announced on one
//! JSON line, the control API answering.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the process even when an assertion fails first.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_fake_lnd_process_announces_itself_and_obeys_its_control_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_fake-lnd"))
            .args([
                "--dir",
                dir.path().to_str().unwrap(),
                "--block-height",
                "700",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let announced: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(
        announced["url"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    let cert = std::fs::read_to_string(dir.path().join("tls.cert")).unwrap();
    assert!(cert.contains("BEGIN CERTIFICATE"));
    // An lnd-format macaroon: V2 binary (version byte 2), as lnd writes admin.macaroon.
    let macaroon = std::fs::read(dir.path().join("admin.macaroon")).unwrap();
    assert_eq!(macaroon.first(), Some(&2), "{macaroon:?}");

    let control = announced["control"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let mined: serde_json::Value = client
        .post(format!("{control}/advance_blocks"))
        .json(&serde_json::json!({"blocks": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mined["block_height"], 705);
    let refused = client
        .post(format!("{control}/pay"))
        .json(&serde_json::json!({"payment_request": "lnbcrt1garbage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
}
