//! The filter in another proxy-wasm host than Envoy (issue #17): one test per behaviour of
//! nginx's `ngx_wasm_module` (and crates.io `proxy-wasm-host`) that a filter can notice, each
//! switched on alone in the project's host so the test names what breaks; then all of them at
//! once. The real `.wasm`, the real sidecar with the dev node. docs/filter.md "Hosts".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use lightning_wall::node::InvoiceState;
use lightning_wall_e2e::testing::Request;
use lightning_wall_e2e::{Wall, header, status};
use lightning_wall_host::callout::{self, CallResponse};
use lightning_wall_host::semantics::PROXY_WASM_HOST_MAX_KEYS;
use lightning_wall_host::{CalloutPhases, HeaderMap, HostSemantics, Message};

fn envoy_with(f: impl FnOnce(&mut HostSemantics)) -> HostSemantics {
    let mut s = HostSemantics::envoy();
    f(&mut s);
    s
}

/// A paid pay-mode credential (`L402 <macaroon>:<preimage>`) for `/v1/…`.
fn paid_credential(wall: &mut Wall) -> (String, serde_json::Value) {
    let challenge = wall.challenge("/v1/data");
    let paid = wall.dev_pay(challenge["invoice"].as_str().unwrap());
    assert_eq!(paid["status"], "settled");
    let credential = format!(
        "L402 {}:{}",
        challenge["macaroon"].as_str().unwrap(),
        paid["preimage"].as_str().unwrap()
    );
    (credential, challenge)
}

fn response(status: &str, extra: &[(&str, &str)]) -> Message {
    let mut headers = HeaderMap::from_pairs([(":status", status)]);
    for (k, v) in extra {
        headers.add(k.as_bytes(), v.as_bytes());
    }
    Message {
        headers,
        body: b"ok".to_vec(),
        trailers: HeaderMap::new(),
    }
}

#[test]
fn no_call_out_from_on_configure_the_first_tick_bootstraps() {
    // ngx_wasm_module traps on a call-out from on_configure, and that kills the worker.
    let semantics = envoy_with(|s| s.callouts = CalloutPhases::RequestTickAndResponse);
    let mut wall = Wall::start_in(1, semantics);
    assert!(!wall.host.vm(0).is_failed(), "{:?}", wall.host.logs());
    let challenge = wall.challenge("/v1/data");
    assert_eq!(challenge["mode"], "pay");
}

#[test]
fn a_verdict_from_the_response_waits_for_the_tick_where_response_call_outs_trap() {
    let semantics = envoy_with(|s| s.callouts = CalloutPhases::RequestTickAndResponse);
    let mut wall = Wall::start_in(1, semantics);
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap();
    let auth = format!("L402 {credential}");
    let ex = wall.send_with(
        &Request::get("/comment").header("authorization", &auth),
        |_| response("200", &[("x-lightning-wall-verdict", "forfeit")]),
    );
    assert!(!ex.failed, "the VM trapped: {:?}", wall.host.logs());
    assert_eq!(status(&ex), Some(200));
    assert_eq!(header(&ex, "x-lightning-wall-verdict"), None);
    // Revoked at once on this proxy: the bot cannot leave with it.
    let ex = wall.send(&Request::get("/home").header("authorization", &auth));
    assert_eq!(status(&ex), Some(402));
    wall.tick_until_node_state(hash, InvoiceState::Settled);
}

#[test]
fn cas_zero_only_creates_the_sidecar_still_comes_back_up() {
    // ngx_wasm_module: a write with CAS 0 over an existing key is CasMismatch. The sidecar's
    // health flag is written once "down", then must still turn "up" again.
    let semantics = envoy_with(|s| s.cas_zero_only_creates = true);
    let mut wall = Wall::start_in(1, semantics);
    wall.stop_sidecar();
    wall.tick(); // the sync gets no answer: down
    let ex = wall.send(&Request::get("/v1/data").header("accept", "application/json"));
    assert_eq!(
        status(&ex),
        Some(503),
        "down: no call-out, the route's failure mode"
    );
    wall.start_sidecar();
    wall.tick(); // the sync is answered: up
    let challenge = wall.challenge("/v1/data");
    assert_eq!(
        challenge["mode"], "pay",
        "the sidecar is back: challenges again"
    );
}

#[test]
fn a_key_aliasing_by_crc32_cannot_make_the_wall_refuse_visitors() {
    // ngx_wasm_module matches keys by CRC32 alone. Another filter's key with the CRC32 of
    // `lw.sidecar` (forged: "breaker.state.@tWB]Tui") holding "down" must not read as ours.
    let semantics = envoy_with(|s| s.keys_by_crc32 = true);
    let mut wall = Wall::start_in(1, semantics);
    wall.host.set_shared_data("breaker.state.@tWB]Tui", b"down");
    assert_eq!(
        wall.host.shared_data("lw.sidecar").as_deref(),
        Some(&b"down"[..]),
        "the two keys share one value in this host"
    );
    let challenge = wall.challenge("/v1/data");
    assert_eq!(challenge["mode"], "pay");
}

#[test]
fn header_names_in_the_clients_case_are_found() {
    // nginx hands the full map over as sent: `Authorization`, `Cookie`, `Host`.
    let semantics = envoy_with(|s| s.header_names_as_sent = true);
    let mut wall = Wall::start_in(1, semantics);
    let (credential, challenge) = paid_credential(&mut wall);
    let ex = wall.send(
        &Request::get("/v1/data")
            .header("authorization", &credential)
            .header("x-lightning-wall-token", "forged"),
    );
    assert_eq!(status(&ex), Some(200), "{:?}", ex.response);
    let up = ex.upstream_request.unwrap();
    assert_eq!(
        up.headers.get_all("x-lightning-wall-token"),
        vec![challenge["token_id"].as_str().unwrap().as_bytes()],
        "the client's X-Lightning-Wall-Token is stripped whatever its case"
    );
}

#[test]
fn the_clients_host_is_read_from_host_when_authority_is_the_servers() {
    // nginx: `:authority` is server_name:port; a route for another host than the client's
    // must not match on it, and one for the client's host must.
    let semantics = envoy_with(|s| s.server_authority = Some("wall.internal:8080".into()));
    let mut wall = Wall::start_in(1, semantics);
    let ex = wall.send(
        &Request::get("/v1/data")
            .header("accept", "application/json")
            .header(":authority", "shop.example"),
    );
    assert_eq!(status(&ex), Some(402));
    // The visitor's host reaches the sidecar's route matching through the filter: a route
    // bound to a host (the deposit wall's cookie path) is tested in
    // tests/tests/security.rs; here the filter must simply not see `wall.internal`.
    let logs = wall.host.logs();
    assert!(
        logs.iter().all(|l| !l.message.contains("wall.internal")),
        "{logs:?}"
    );
}

#[test]
fn a_bare_ipv6_source_address_is_the_whole_address() {
    // nginx reports `2001:db8::1:5`, no brackets, no port: not `2001:db8::1` port 5. Two
    // addresses of one /64 share the mint pre-limit, another /64 does not.
    let semantics = envoy_with(|s| s.bare_source_address = true);
    let mut wall = Wall::start_in(1, semantics);
    let from = |a: &str| -> SocketAddr { format!("[{a}]:40000").parse().unwrap() };
    let ex = wall.send(
        &Request::get("/v1/data")
            .header("accept", "application/json")
            .from(from("2001:db8::1:5")),
    );
    assert_eq!(status(&ex), Some(402));
    let ex = wall.send(
        &Request::get("/v1/data")
            .header("accept", "application/json")
            .from(from("2001:db8:0:1::5")),
    );
    assert_eq!(status(&ex), Some(402));
}

#[test]
fn a_removed_request_header_is_kept_from_the_upstream_by_refusing_the_request() {
    // nginx 1.27.4: a header the filter removed still reaches proxy_pass, and proxy_set_header
    // cannot drop it (observed), nor can nginx.conf match a header name by prefix: the filter
    // is told (`refuse_own_headers`, set for these semantics as in nginx/nginx.conf) and
    // answers 400 to any client-supplied x-lightning-wall-* header, whatever its spelling.
    let semantics = envoy_with(|s| {
        s.removed_request_headers_reach_upstream = true;
        s.header_names_as_sent = true;
    });
    let mut wall = Wall::start_in(1, semantics);
    let (credential, challenge) = paid_credential(&mut wall);
    for name in [
        "X-Lightning-Wall-Token",
        "x-lightning-wall-mode",
        "X-LIGHTNING-WALL-VERDICT",
        "x-lightning-wall-reward-id",
        "x-lightning-wall-anything-new",
    ] {
        let ex = wall.send(&Request::get("/healthz").header(name, "forged"));
        assert_eq!(status(&ex), Some(400), "{name}");
        assert!(ex.upstream_request.is_none(), "{name} reached the upstream");
        let ex = wall.send(
            &Request::get("/v1/data")
                .header("authorization", &credential)
                .header(name, "forged"),
        );
        assert_eq!(status(&ex), Some(400), "{name} with a credential");
        assert!(ex.upstream_request.is_none(), "{name} reached the upstream");
    }
    // Without them, the filter's own value reaches the upstream where it grants access.
    let ex = wall.send(&Request::get("/v1/data").header("authorization", &credential));
    let up = ex.upstream_request.unwrap();
    assert_eq!(
        up.headers.get_all("x-lightning-wall-token"),
        vec![challenge["token_id"].as_str().unwrap().as_bytes()]
    );
}

#[test]
fn a_module_without_the_imports_nginx_lacks_starts_there() {
    // proxy_get_log_level (another signature) and proxy_get_header_map_size (absent): a module
    // importing either does not link in nginx. proxy_get_status, proxy_done, proxy_close_stream,
    // proxy_resolve_shared_queue trap when called: the flows above ran without calling them.
    let semantics = envoy_with(|s| s.missing_imports = true);
    let mut wall = Wall::start_in(2, semantics);
    let (credential, _) = paid_credential(&mut wall);
    for _ in 0..2 {
        let ex = wall.send(&Request::get("/v1/data").header("authorization", &credential));
        assert_eq!(status(&ex), Some(200));
    }
    let imports = lightning_wall_e2e::filter_runtime().imports();
    for missing in ["env::proxy_get_log_level", "env::proxy_get_header_map_size"] {
        assert!(!imports.iter().any(|i| i == missing), "imports {missing}");
    }
    assert!(!wall.host.vm(0).is_failed() && !wall.host.vm(1).is_failed());
}

#[test]
fn a_hundred_thousand_client_addresses_in_a_store_that_refuses_new_keys() {
    // crates.io proxy-wasm-host: past 4,096 keys a new key is refused (InternalFailure), which
    // SDK 0.2.5's set_shared_data turns into a panic. Challenges from 100,000 addresses write
    // mint windows into up to 8,192 slots: the filter must keep serving.
    let semantics = envoy_with(|s| s.shared_data_max_keys = Some(PROXY_WASM_HOST_MAX_KEYS));
    let mut wall = Wall::start_in(1, semantics);
    // The first challenge is minted by the sidecar, the others get a copy of its answer
    // (minting 100,000 invoices would measure the dev node, not the filter); everything else
    // goes to the sidecar.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = callout::http_client();
    let base = format!("http://{}", wall.internal_addr());
    let minted: Mutex<Option<CallResponse>> = Mutex::new(None);
    let mut replica = wall.replica(
        1,
        Some(Arc::new(move |req: &callout::CallRequest| {
            let challenge = req.path() == "/v1/challenge";
            if challenge && let Some(copy) = minted.lock().unwrap().clone() {
                return copy;
            }
            let resp = rt.block_on(callout::send_http(&client, &base, req));
            if challenge {
                *minted.lock().unwrap() = Some(resp.clone());
            }
            resp
        })),
    );
    replica.tick_all();
    let mut answered = 0;
    for i in 0..100_000u32 {
        // Each in its own /24 (the default ipv4_prefix_len): 100,000 distinct mint windows.
        let ip = std::net::Ipv4Addr::from(0x0b00_0001 + (i << 8));
        let ex = replica.send(
            &Request::get("/v1/data")
                .header("accept", "application/json")
                .from(SocketAddr::from((ip, 40000))),
            |_| panic!("a challenge never reaches the upstream"),
        );
        assert!(
            !ex.failed,
            "request {i}: the VM failed: {:?}",
            replica.logs()
        );
        if status(&ex).is_some() {
            answered += 1;
        }
    }
    assert_eq!(answered, 100_000);
    assert!(!replica.vm(0).is_failed());
    assert_eq!(replica.shared_data_keys().len(), PROXY_WASM_HOST_MAX_KEYS);
    // Still serving: a paid credential gets in.
    let (credential, _) = paid_credential(&mut wall);
    let ex = replica.send(
        &Request::get("/v1/data").header("authorization", &credential),
        |_| response("200", &[]),
    );
    assert_eq!(status(&ex), Some(200));
}

#[test]
fn a_request_forwarded_while_the_filter_waits_for_the_sidecar_never_gets_the_walled_page() {
    // nginx without `proxy_wasm_request_headers_in_access on`: on a keep-alive connection the
    // pause is not held, the request reaches the upstream while its challenge is being minted,
    // and the upstream's page answered first: 200 with the page, nothing paid (issue #17).
    let mut wall = Wall::start_in(1, HostSemantics::nginx());
    let (credential, _) = paid_credential(&mut wall);
    let mut rewrite_phase = HostSemantics::nginx();
    rewrite_phase.request_pause_not_held = true;
    let mut replica = wall.replica_in(1, None, rewrite_phase);
    // Bootstrap, then the revocation snapshot (credentials wait for it).
    replica.tick_all();
    replica.tick_all();
    const PAGE: &[u8] = b"members only: the walled page";
    let page = |_: &Message| Message {
        headers: HeaderMap::from_pairs([(":status", "200")]),
        body: PAGE.to_vec(),
        trailers: HeaderMap::new(),
    };
    let walled = |body: &[u8]| body.windows(PAGE.len()).any(|w| w == PAGE);
    // A pay route and a deposit route, without paying.
    for path in ["/v1/data", "/home"] {
        let ex = replica.send(
            &Request::get(path).header("accept", "application/json"),
            page,
        );
        assert!(!ex.failed, "{path}: the VM failed: {:?}", replica.logs());
        assert!(
            ex.upstream_request.is_some(),
            "{path}: the host forwards it undecided (what the switch reproduces)"
        );
        let resp = ex.response.expect("a response");
        assert!(
            !walled(&resp.body),
            "{path}: the walled page reached a client that never paid: {resp:?}"
        );
    }
    assert_eq!(
        replica
            .logs_containing("forwarded a request the filter had paused")
            .len(),
        1,
        "said once, with the fix: {:?}",
        replica.logs()
    );
    // An honest visitor is decided at once, without a pause: the whole page.
    let ex = replica.send(
        &Request::get("/v1/data").header("authorization", &credential),
        page,
    );
    assert_eq!(status(&ex), Some(200));
    assert!(walled(&ex.response.unwrap().body));
}

#[test]
fn every_flow_under_all_of_nginxs_semantics_at_once() {
    let mut wall = Wall::start_in(2, HostSemantics::nginx());
    // Pay.
    let (credential, _) = paid_credential(&mut wall);
    let ex = wall.send(&Request::get("/v1/data").header("authorization", &credential));
    assert_eq!(status(&ex), Some(200));
    // Deposit, then a trap forfeits it.
    let (credential, challenge) = wall.held_deposit("/home");
    let auth = format!("L402 {credential}");
    let ex = wall.send(&Request::get("/home").header("authorization", &auth));
    assert_eq!(status(&ex), Some(200));
    let ex = wall.send(&Request::get("/wp-login.php").header("authorization", &auth));
    assert_eq!(status(&ex), Some(403));
    wall.tick_until_node_state(
        challenge["payment_hash"].as_str().unwrap(),
        InvoiceState::Settled,
    );
}
