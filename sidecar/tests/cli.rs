//! The `lightning-wall` binary: check-config exit codes and messages, `dev pay` JSON for normal
//! and hold invoices against a running sidecar, `token inspect`, admin commands.

use std::process::Command;

use lightning_wall::config::Config;
use serde_json::{Value, json};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lightning-wall"))
}

#[test]
fn check_config_accepts_the_example_and_lists_every_problem_of_a_bad_file() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/lightning-wall.yaml"
    );
    let ok = bin()
        .args(["check-config", "--config", example])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "node: {backend: lnd}\nroutes:\n  - {id: A, match: {}, mode: pay, pay: {amount_sat: 0}}\n",
    )
    .unwrap();
    let out = bin()
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "3 problem(s)",
        "node.lnd: required",
        "routes[0].id: must be 1-32 characters",
        "routes[0].pay.amount_sat: must be between 1 and 1000000 (got 0)",
    ] {
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[test]
fn token_inspect_decodes_without_verifying() {
    // The test vector of docs/wire-format.md (pymacaroons output).
    let token = "AgEEbHNhdAJCAAByzW6EIsQH-20JhpDxEwt97X7C9_Xh0wvZ1SHwFTY3kwICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAAAGIL1GvK_fIYl-XGz7YQC7OXi7zhnkYVJ067HwC8oJUM6S";
    let out = bin().args(["token", "inspect", token]).output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["identifier"]["payment_hash"],
        "72cd6e8422c407fb6d098690f1130b7ded7ec2f7f5e1d30bd9d521f015363793"
    );
    assert_eq!(v["verified"], false);
    let bad = bin()
        .args(["token", "inspect", "not a token"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_pay_and_admin_commands_reach_a_running_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin-token"), "tok\n").unwrap();
    let path = dir.path().join("lightning-wall.yaml");
    std::fs::write(
        &path,
        r#"
node: { backend: dev }
listeners:
  internal: { bind: "127.0.0.1:0" }
  public: { bind: "127.0.0.1:0" }
  admin: { bind: "127.0.0.1:0", token: { file: admin-token } }
routes:
  - { id: api, match: {}, mode: pay, pay: { amount_sat: 5 } }
  - { id: wall, match: {}, mode: deposit, deposit: { amount_sat: 50 } }
"#,
    )
    .unwrap();
    // `admin-token` is relative: resolved from the config file's directory.
    let running = lightning_wall::serve::start(Config::load(&path).unwrap())
        .await
        .unwrap();
    let internal = format!("http://{}", running.internal);
    let http = reqwest::Client::new();
    let mut paid = Vec::new();
    for route in ["api", "wall"] {
        let c: Value = http
            .post(format!("{internal}/v1/challenge"))
            .json(&json!({"route_id": route, "client_ip": "192.0.2.1"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let invoice = c["invoice"].as_str().unwrap().to_owned();
        let sidecar = internal.clone();
        let out = tokio::task::spawn_blocking(move || {
            bin()
                .args(["dev", "pay", &invoice, "--sidecar", &sidecar])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        paid.push((c, serde_json::from_slice::<Value>(&out.stdout).unwrap()));
    }
    assert_eq!(paid[0].1["status"], "settled");
    assert_eq!(paid[0].1["preimage"].as_str().unwrap().len(), 64);
    assert_eq!(paid[1].1, json!({"status": "held"}));

    let admin_url = format!("http://{}", running.admin.unwrap());
    let list = tokio::task::spawn_blocking(move || {
        bin()
            .args(["admin", "--url", &admin_url, "--token", "tok", "list"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(
        listed["deposits"][0]["payment_hash"],
        paid[1].0["payment_hash"]
    );
    running.shutdown().await;
}

/// Runs the binary off the async runtime (it blocks until the process exits).
async fn run_bin(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || bin().args(args).output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reload_applies_an_edited_file_and_names_the_problem_of_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin-token"), "tok\n").unwrap();
    let path = dir.path().join("lightning-wall.yaml");
    let original = r#"
node: { backend: dev }
listeners:
  internal: { bind: "127.0.0.1:0" }
  public: { bind: "127.0.0.1:0" }
  admin: { bind: "127.0.0.1:0", token: { file: admin-token } }
routes:
  - { id: wall, match: {}, mode: deposit, deposit: { amount_sat: 50 } }
"#;
    std::fs::write(&path, original).unwrap();
    let running = lightning_wall::serve::start(Config::load(&path).unwrap())
        .await
        .unwrap();
    let internal = format!("http://{}", running.internal);
    let admin_url = format!("http://{}", running.admin.unwrap());
    let reload = || {
        run_bin(
            ["admin", "--url", &admin_url, "--token", "tok", "reload"]
                .map(String::from)
                .to_vec(),
        )
    };
    let http = reqwest::Client::new();
    let price = || async {
        let c: Value = http
            .post(format!("{internal}/v1/challenge"))
            .json(&json!({"route_id": "wall", "client_ip": "192.0.2.1"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        c["amount_sat"].clone()
    };
    assert_eq!(price().await, 50);

    // A valid edit: applied now. The sidecar's own 2-second poll may have applied it first
    // (then the answer is "unchanged"); either way the answer names generation 2.
    std::fs::write(&path, original.replace("amount_sat: 50", "amount_sat: 60")).unwrap();
    let out = reload().await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["generation"], 2, "{answer}");
    assert!(
        answer["outcome"] == "applied" && answer["changed"] == json!(["routes"])
            || answer["outcome"] == "unchanged",
        "{answer}"
    );
    assert_eq!(price().await, 60);

    // An invalid file: refused whether or not the poll saw it first, the message names the
    // field, the exit status is a failure and the old config stays.
    std::fs::write(&path, original.replace("amount_sat: 50", "amount_sat: 0")).unwrap();
    let out = reload().await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refused") && stderr.contains("deposit.amount_sat"),
        "{stderr}"
    );
    assert_eq!(price().await, 60, "the old config stays");
    running.shutdown().await;
}
