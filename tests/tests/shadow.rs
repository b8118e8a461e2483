//! Shadow mode end to end (issue #19 item 4): the real `.wasm` in the host, the sidecar with the
//! dev node. With the config in shadow nothing is challenged or charged — an unpaid request
//! reaches the upstream, a held deposit survives a trap path (the invoice stays ACCEPTED on the
//! node, then a leave refunds it) — and every would-be decision is counted in the filter's
//! metrics, the sidecar's findings (admin API, dashboard) and its Prometheus text. Back to
//! enforcing, the same unpaid request gets its 402.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lightning_wall::node::InvoiceState;
use lightning_wall_e2e::testing::Request;
use lightning_wall_e2e::{Wall, status};
use lightning_wall_host::shared::MetricValue;
use lightning_wall_host::{HeaderMap, Message};
use serde_json::Value;

/// Restarts the sidecar on the edited config and lets the filter pick up the new policy.
fn restart_with(wall: &mut Wall, edit: impl FnOnce(String) -> String) {
    wall.stop_sidecar();
    wall.edit_config(edit);
    wall.start_sidecar();
    // A sync sees the new policy version; the bootstrap it triggers installs it.
    for _ in 0..3 {
        wall.tick();
    }
}

fn counter(wall: &Wall, name: &str) -> u64 {
    match wall.host.metric(name) {
        Some(MetricValue::Counter(n)) => n,
        None => 0,
        other => panic!("{name}: {other:?}"),
    }
}

fn findings(wall: &Wall) -> Value {
    let (admin, token) = wall.admin();
    let (code, body) = wall.get_json(
        &format!("{admin}/admin/v1/shadow?days=7"),
        Some(&format!("Bearer {token}")),
    );
    assert_eq!(code, 200, "{body}");
    body
}

fn count_of(body: &Value, route: &str, finding: &str, trigger: Option<&str>) -> u64 {
    body["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["route_id"] == route && f["finding"] == finding && f["trigger"].as_str() == trigger
        })
        .map(|f| f["count"].as_u64().unwrap())
        .sum()
}

#[test]
fn a_shadow_policy_charges_nothing_counts_everything_and_enforcing_again_challenges() {
    let mut wall = Wall::start(1);
    // A visitor pays a deposit while the site still enforces.
    let (credential, challenge) = wall.held_deposit("/page");
    let hash = challenge["payment_hash"].as_str().unwrap().to_owned();
    assert_eq!(wall.node_state(&hash), InvoiceState::Accepted);

    restart_with(&mut wall, |yaml| format!("shadow: true\n{yaml}"));

    // Unpaid requests on the deposit wall and the pay API reach the upstream.
    for path in ["/page", "/other", "/v1/data"] {
        let ex = wall.send(&Request::get(path).header("accept", "application/json"));
        assert_eq!(status(&ex), Some(200), "{path}");
        assert!(ex.upstream_request.is_some(), "{path}");
    }
    // The deposit's owner requests a trap path: served, and the deposit stays held.
    let auth = format!("L402 {credential}");
    let ex = wall.send(&Request::get("/wp-login.php").header("authorization", &auth));
    assert_eq!(status(&ex), Some(200));
    let up = ex.upstream_request.unwrap();
    assert_eq!(up.headers.get("x-lightning-wall-mode"), Some("deposit"));
    // An upstream forfeit verdict is only counted too.
    let ex = wall.send_with(
        &Request::get("/page").header("authorization", &auth),
        |_| Message {
            headers: HeaderMap::from_pairs([
                (":status", "200"),
                ("x-lightning-wall-verdict", "forfeit"),
            ]),
            body: b"ok".to_vec(),
            trailers: HeaderMap::new(),
        },
    );
    assert_eq!(status(&ex), Some(200));
    for _ in 0..3 {
        wall.tick();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        wall.node_state(&hash),
        InvoiceState::Accepted,
        "never settled"
    );
    // The credential still opens the site: nothing was revoked.
    let ex = wall.send(&Request::get("/page").header("authorization", &auth));
    assert_eq!(status(&ex), Some(200));

    // The filter's metrics.
    assert_eq!(counter(&wall, "lightning_wall.shadow.would_challenge"), 3);
    assert_eq!(
        counter(&wall, "lightning_wall.shadow.would_forfeit.trap_path"),
        1
    );
    assert_eq!(
        counter(&wall, "lightning_wall.shadow.would_forfeit.upstream"),
        1
    );
    assert_eq!(
        counter(&wall, "lightning_wall.challenges"),
        1,
        "the enforcing one only"
    );
    assert_eq!(counter(&wall, "lightning_wall.forfeits"), 0);

    // The sidecar's findings: admin API, Prometheus, dashboard.
    let body = findings(&wall);
    assert_eq!(
        body["shadow_routes"],
        serde_json::json!(["api", "open-api", "checkout", "wall"])
    );
    assert_eq!(
        count_of(&body, "wall", "would_challenge", None),
        2,
        "{body}"
    );
    assert_eq!(count_of(&body, "api", "would_challenge", None), 1, "{body}");
    assert_eq!(
        count_of(&body, "wall", "would_forfeit", Some("trap_path")),
        1,
        "{body}"
    );
    assert_eq!(
        count_of(&body, "wall", "would_forfeit", Some("upstream")),
        1,
        "{body}"
    );
    let metrics = wall.sidecar_metrics();
    assert!(
        metrics.contains(
            r#"lightning_wall_shadow_findings_total{route="wall",finding="would_forfeit",trigger="trap_path"} 1"#
        ),
        "{metrics}"
    );
    let (admin, token) = wall.admin();
    let page = wall.block_on(async {
        reqwest::Client::new()
            .get(format!("{admin}/admin/dashboard"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(page.contains("Shadow findings"), "{page}");
    assert!(
        page.contains("<td>wall</td><td>forfeited a deposit</td><td>trap_path</td><td>1</td>"),
        "{page}"
    );

    // The visitor leaves: refunded, as if shadow had never been on.
    wall.leave(&credential);
    wall.wait_node_state(&hash, InvoiceState::Canceled);

    // Enforcing again: the same unpaid request is challenged.
    restart_with(&mut wall, |yaml| yaml.replacen("shadow: true\n", "", 1));
    let ex = wall.send(&Request::get("/page").header("accept", "application/json"));
    assert_eq!(status(&ex), Some(402));
    assert!(
        findings(&wall)["shadow_routes"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
