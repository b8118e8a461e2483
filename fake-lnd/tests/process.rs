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

/// Starts the binary on `dir` with `args` and reads the JSON line it announces itself with.
fn start(dir: &std::path::Path, args: &[&str]) -> (KillOnDrop, serde_json::Value) {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_fake-lnd"))
            .args(["--dir", dir.to_str().unwrap()])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, serde_json::from_str(&line).unwrap())
}

#[tokio::test]
async fn the_fake_lnd_process_announces_itself_and_obeys_its_control_api() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, announced) = start(dir.path(), &["--block-height", "700"]);
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

/// What a walk through docs/going-live.md needs from the process in place of a real node:
/// `lncli bakemacaroon` (a macaroon with only the permissions asked for, enforced by the REST
/// API) and channels with inbound liquidity (`doctor`'s liquidity check).
#[tokio::test]
async fn the_fake_lnd_process_bakes_macaroons_and_sets_channels_over_its_control_api() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, announced) = start(dir.path(), &[]);
    let url = announced["url"].as_str().unwrap().to_owned();
    let control = announced["control"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    // Only the macaroon is under test here, not TLS (FakeLnd's CA-flagged self-signed
    // certificate is pinned by the sidecar, which reqwest cannot do).
    let lnd = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let bake = |permissions: &'static [&'static str]| {
        let http = http.clone();
        let control = control.clone();
        async move {
            let baked: serde_json::Value = http
                .post(format!("{control}/bake_macaroon"))
                .json(&serde_json::json!({ "permissions": permissions }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            baked["macaroon"].as_str().unwrap().to_owned()
        }
    };
    let getinfo = |macaroon: String| {
        let lnd = lnd.clone();
        let url = url.clone();
        async move {
            lnd.get(format!("{url}/v1/getinfo"))
                .header("grpc-metadata-macaroon", macaroon)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(getinfo(bake(&["info:read"]).await).await, 200);
    assert_ne!(
        getinfo(bake(&["invoices:read", "invoices:write"]).await).await,
        200,
        "a baked macaroon carries only the permissions asked for"
    );

    let set: serde_json::Value = http
        .post(format!("{control}/channels"))
        .json(&serde_json::json!({"channels": [
            {"capacity_sat": 500000, "local_balance_sat": 200000, "remote_balance_sat": 300000,
             "max_accepted_htlcs": 30}
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["channels"], 1, "{set}");
    let admin = hex::encode(std::fs::read(dir.path().join("admin.macaroon")).unwrap());
    let channels: serde_json::Value = lnd
        .get(format!("{url}/v1/channels"))
        .header("grpc-metadata-macaroon", admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = channels["channels"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{channels}");
    assert_eq!(listed[0]["remote_balance"], "300000", "{channels}");
    assert_eq!(
        listed[0]["remote_constraints"]["max_accepted_htlcs"], 30,
        "{channels}"
    );
}
