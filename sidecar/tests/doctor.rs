//! `lightning-wall doctor` against FakeLnd (the test double of lnd's REST contract, which bakes
//! and checks lnd-format macaroons and lists channels): a passing run, then each problem an
//! operator meets on the way to going live must be one clear finding with its fix — a missing
//! secret, a macaroon without the right permissions, too little inbound liquidity, and visitors
//! that all arrive as the proxy's loopback address.

use std::path::{Path, PathBuf};

use fake_lnd::{FakeChannel, FakeLnd};
use lightning_wall::config::Config;
use lightning_wall::doctor::{self, Level, Report};
use serde_json::json;

/// The macaroon recipe of docs/node-backends.md.
const RECIPE: &[&str] = &[
    "invoices:read",
    "invoices:write",
    "info:read",
    "offchain:read",
];

struct Setup {
    fake: FakeLnd,
    dir: tempfile::TempDir,
    config: PathBuf,
}

/// A config for a FakeLnd with one deposit route of 1,000 sat, `limits` as given and the
/// macaroon baked with `permissions` (0600, as the docs ask).
async fn setup(permissions: &[&str], limits: &str) -> Setup {
    let fake = FakeLnd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = fake.write_credentials(dir.path()).unwrap();
    let macaroon = dir.path().join("lightning-wall.macaroon");
    write_private(&macaroon, &fake.bake_macaroon(permissions));
    let config = dir.path().join("lightning-wall.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir: {data}
node:
  backend: lnd
  lnd:
    rest_url: {url}
    tls_cert_file: {cert}
    macaroon: {{ file: {macaroon} }}
    network: regtest
listeners:
  internal: {{ bind: "127.0.0.1:0" }}
  public: {{ bind: "127.0.0.1:0" }}
limits: {limits}
wall: {{ site_name: Doctor Test Shop }}
routes:
  - id: wall
    match: {{ path: {{ prefix: /members/ }} }}
    mode: deposit
    deposit: {{ amount_sat: 1000 }}
"#,
            data = dir.path().join("data").display(),
            url = fake.url(),
            cert = cert.display(),
            macaroon = macaroon.display(),
        ),
    )
    .unwrap();
    Setup { fake, dir, config }
}

fn write_private(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

const SMALL_LIMITS: &str = "{ max_held_deposits: 50 }";

fn only(report: &Report, level: Level, check: &str) -> String {
    let found = report.find(level, check);
    assert_eq!(found.len(), 1, "one {level:?} {check} expected:\n{report}");
    format!("{} / fix: {}", found[0].message, found[0].fix)
}

#[tokio::test]
async fn a_ready_configuration_passes_every_check_and_exits_0() {
    let s = setup(RECIPE, SMALL_LIMITS).await;
    let report = doctor::run(&s.config).await;
    assert_eq!(report.exit_code(), 0, "\n{report}");
    for check in [
        "config",
        "node.connect",
        "node.lnd.macaroon",
        "node.sync",
        "node.hold_invoice",
        "node.inbound",
        "node.htlc_slots",
    ] {
        assert!(
            !report.find(Level::Ok, check).is_empty(),
            "{check}:\n{report}"
        );
    }
    // The test invoice was created and cancelled on the node, never left open.
    let hodl: Vec<String> = s
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("POST /v2/invoices/"))
        .collect();
    assert_eq!(hodl, ["POST /v2/invoices/hodl", "POST /v2/invoices/cancel"]);
    // The macaroon never appears in the report.
    let text = report.to_string();
    let macaroon_hex =
        hex::encode(std::fs::read(s.dir.path().join("lightning-wall.macaroon")).unwrap());
    assert!(!text.contains(&macaroon_hex[..16]), "{text}");
}

#[tokio::test]
async fn a_missing_secret_is_a_failure_naming_the_field_and_the_node_is_not_contacted() {
    let s = setup(RECIPE, SMALL_LIMITS).await;
    std::fs::remove_file(s.dir.path().join("lightning-wall.macaroon")).unwrap();
    let report = doctor::run(&s.config).await;
    assert_eq!(report.exit_code(), 2, "\n{report}");
    let finding = only(&report, Level::Fail, "secret");
    assert!(finding.contains("node.lnd.macaroon"), "{finding}");
    assert!(finding.contains("No such file"), "{finding}");
    assert!(s.fake.requests().is_empty(), "{:?}", s.fake.requests());
}

#[tokio::test]
async fn a_secret_readable_by_others_is_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let s = setup(RECIPE, SMALL_LIMITS).await;
    let macaroon = s.dir.path().join("lightning-wall.macaroon");
    std::fs::set_permissions(&macaroon, std::fs::Permissions::from_mode(0o644)).unwrap();
    let report = doctor::run(&s.config).await;
    assert_eq!(report.exit_code(), 1, "\n{report}");
    assert!(only(&report, Level::Warn, "secret").contains("chmod 600"));
}

#[tokio::test]
async fn lnds_stock_invoice_macaroon_fails_with_the_recipe_as_fix() {
    // invoice.macaroon: invoices and address, no info:read, so not even getinfo works.
    let s = setup(
        &[
            "invoices:read",
            "invoices:write",
            "address:read",
            "address:write",
        ],
        SMALL_LIMITS,
    )
    .await;
    let report = doctor::run(&s.config).await;
    assert_eq!(report.exit_code(), 2, "\n{report}");
    let finding = only(&report, Level::Fail, "node.connect");
    assert!(finding.contains("permission denied"), "{finding}");
    assert!(
        finding.contains("lncli bakemacaroon invoices:read invoices:write info:read"),
        "{finding}"
    );
}

#[tokio::test]
async fn a_macaroon_without_invoices_write_is_named_and_the_test_invoice_fails() {
    let s = setup(
        &["invoices:read", "info:read", "offchain:read"],
        SMALL_LIMITS,
    )
    .await;
    let report = doctor::run(&s.config).await;
    assert_eq!(report.exit_code(), 2, "\n{report}");
    let finding = only(&report, Level::Fail, "node.lnd.macaroon");
    assert!(finding.contains("lacks invoices:write"), "{finding}");
    assert!(finding.contains("AddHoldInvoice"), "{finding}");
    assert!(only(&report, Level::Fail, "node.hold_invoice").contains("permission denied"));
}

#[tokio::test]
async fn a_macaroon_without_offchain_read_skips_the_liquidity_check_with_a_warning() {
    let s = setup(
        &["invoices:read", "invoices:write", "info:read"],
        SMALL_LIMITS,
    )
    .await;
    let report = doctor::run(&s.config).await;
    assert_eq!(report.exit_code(), 1, "\n{report}");
    assert!(only(&report, Level::Warn, "node.lnd.macaroon").contains("offchain:read"));
    assert_eq!(
        report.find(Level::Skip, "node.inbound").len(),
        1,
        "\n{report}"
    );
}

#[tokio::test]
async fn too_little_inbound_liquidity_for_the_limits_is_a_warning_with_the_number_that_fits() {
    // The defaults: 10,000 held deposits of 1,000 sat = 10,000,000 sat.
    let s = setup(RECIPE, "{}").await;
    s.fake.set_channels(vec![FakeChannel {
        remote_balance_sat: 120_000,
        remote_reserve_sat: 20_000,
        ..FakeChannel::default()
    }]);
    let report = doctor::run(&s.config).await;
    assert_eq!(report.exit_code(), 1, "\n{report}");
    let inbound = only(&report, Level::Warn, "node.inbound");
    assert!(
        inbound.contains("10000 × 1000 sat = 10000000 sat"),
        "{inbound}"
    );
    assert!(inbound.contains("100000 sat of inbound"), "{inbound}");
    assert!(inbound.contains("max_held_deposits to 100 "), "{inbound}");
    assert!(only(&report, Level::Warn, "node.htlc_slots").contains("483 free"));

    // No inbound at all: nobody can pay the deposit.
    s.fake.set_channels(vec![FakeChannel {
        remote_balance_sat: 0,
        ..FakeChannel::default()
    }]);
    let report = doctor::run(&s.config).await;
    assert_eq!(report.exit_code(), 2, "\n{report}");
    assert!(only(&report, Level::Fail, "node.inbound").contains("nobody can pay 1000 sat"));
}

#[tokio::test]
async fn held_deposits_use_up_htlc_slots() {
    let s = setup(
        RECIPE,
        "{ max_held_deposits: 3, max_held_deposits_per_prefix: 1 }",
    )
    .await;
    s.fake.set_channels(vec![FakeChannel {
        max_accepted_htlcs: 4,
        ..FakeChannel::default()
    }]);
    let report = doctor::run(&s.config).await;
    assert_eq!(report.exit_code(), 0, "\n{report}");
    // Two deposits held on the node now take two of the four slots.
    let running = lightning_wall::serve::start(Config::load(&s.config).unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for ip in ["203.0.113.1", "198.51.100.1"] {
        let c: serde_json::Value = http
            .post(format!("http://{}/v1/challenge", running.internal))
            .json(&json!({"route_id": "wall", "client_ip": ip}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        s.fake.pay_request(c["invoice"].as_str().unwrap()).unwrap();
    }
    let report = doctor::run(&s.config).await;
    running.shutdown().await;
    assert!(
        only(&report, Level::Warn, "node.htlc_slots").contains("2 free"),
        "\n{report}"
    );
}

#[tokio::test]
async fn visitors_that_all_arrive_from_loopback_are_a_warning_naming_xff() {
    let s = setup(
        RECIPE,
        "{ max_held_deposits: 50, challenge_mint_rate: { requests: 100, per: 1m } }",
    )
    .await;
    let running = lightning_wall::serve::start(Config::load(&s.config).unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let mint = |ip: String| {
        let http = http.clone();
        let url = format!("http://{}/v1/challenge", running.internal);
        async move {
            let r = http
                .post(url)
                .json(&json!({"route_id": "wall", "client_ip": ip}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    for _ in 0..3 {
        mint("127.0.0.1".into()).await;
    }
    // Too few deposits to tell yet.
    let report = doctor::run(&s.config).await;
    assert_eq!(
        report.find(Level::Skip, "visitors.addresses").len(),
        1,
        "\n{report}"
    );
    for _ in 0..9 {
        mint("127.0.0.1".into()).await;
    }
    let report = doctor::run(&s.config).await;
    let finding = only(&report, Level::Warn, "visitors.addresses");
    assert!(finding.contains("127.0.0.0/24"), "{finding}");
    assert!(finding.contains("xff_num_trusted_hops"), "{finding}");
    assert_eq!(report.exit_code(), 1, "\n{report}");

    // Real visitors from many networks: fine.
    for i in 0..12 {
        mint(format!("198.51.{i}.7")).await;
    }
    running.shutdown().await;
    let report = doctor::run(&s.config).await;
    assert_eq!(
        report.find(Level::Ok, "visitors.addresses").len(),
        1,
        "\n{report}"
    );
}

#[tokio::test]
async fn the_dev_backend_is_checked_as_far_as_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lightning-wall.yaml");
    std::fs::write(
        &config,
        "node: { backend: dev }\nwall: { site_name: Doctor Test Shop }\nroutes:\n  - { id: wall, match: {}, mode: deposit, deposit: { amount_sat: 1000 } }\n",
    )
    .unwrap();
    let report = doctor::run(&config).await;
    assert_eq!(report.exit_code(), 0, "\n{report}");
    assert_eq!(
        report.find(Level::Ok, "node.hold_invoice").len(),
        1,
        "\n{report}"
    );
    assert!(only(&report, Level::Skip, "node.inbound").contains("development node"));
}

#[test]
fn the_cli_prints_the_report_and_exits_with_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lightning-wall.yaml");
    std::fs::write(
        &config,
        "node: { backend: lnd, lnd: { rest_url: \"https://127.0.0.1:1\", tls_cert_file: tls.cert, macaroon: { file: missing.macaroon }, network: regtest } }\n\
         routes: [{ id: wall, match: {}, mode: deposit, deposit: { amount_sat: 1000 } }]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lightning-wall"))
        .args(["doctor", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL  secret"), "{stdout}");
    assert!(
        stdout.contains("fix: put the secret in the file"),
        "{stdout}"
    );
    assert!(stdout.contains("tls.cert"), "{stdout}");
    assert!(stdout.contains("exit 2"), "{stdout}");
}

#[tokio::test]
async fn the_cln_backend_is_checked_as_far_as_its_node_trait_goes() {
    use std::os::unix::fs::PermissionsExt;
    let fake = fake_cln::FakeCln::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = fake.write_credentials(dir.path()).unwrap();
    for key in [&c.node.client_key, &c.hold.client_key] {
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = dir.path().join("lightning-wall.yaml");
    std::fs::write(
        &config,
        format!(
            "data_dir: {data}
node:
  backend: cln
  cln:
    grpc: {{ url: {}, ca_cert_file: {}, client_cert_file: {}, client_key: {{ file: {} }} }}
    hold: {{ url: {}, ca_cert_file: {}, client_cert_file: {}, client_key: {{ file: {} }} }}
    network: regtest
wall: {{ site_name: Doctor Test Shop }}
routes:
  - {{ id: wall, match: {{}}, mode: deposit, deposit: {{ amount_sat: 1000 }} }}
",
            c.node_url,
            c.node.ca.display(),
            c.node.client_cert.display(),
            c.node.client_key.display(),
            c.hold_url,
            c.hold.ca.display(),
            c.hold.client_cert.display(),
            c.hold.client_key.display(),
            data = dir.path().join("data").display(),
        ),
    )
    .unwrap();
    let report = doctor::run(&config).await;
    assert_eq!(report.exit_code(), 0, "\n{report}");
    assert_eq!(report.find(Level::Ok, "secret").len(), 2, "\n{report}");
    assert_eq!(report.find(Level::Ok, "file").len(), 4, "\n{report}");
    assert_eq!(
        report.find(Level::Ok, "node.hold_invoice").len(),
        1,
        "\n{report}"
    );
    assert!(only(&report, Level::Skip, "node.inbound").contains("listpeerchannels"));
}
