//! Rules of the per-request decision, on tokens minted with the real key ring.
use super::*;
use crate::engine::held::{cache_held, confirm_url};
use crate::engine::host::memory::MemoryHost;
use crate::engine::policy::RouteMode;
use crate::engine::policy::tests::bootstrap_json;
use l402::{KeyRing, Mode, Preimage, TokenId, TokenSpec};
use lightning_wall_contract::store_id::StoreId;

const NOW: u64 = 1_800_000_000;

fn policy() -> Policy {
    Policy::from_bootstrap(bootstrap_json().as_bytes()).unwrap()
}

fn config(mode: &str) -> PluginConfig {
    PluginConfig::parse(format!(r#"{{"sidecar_cluster":"lw","failure_mode":"{mode}"}}"#).as_bytes())
        .unwrap()
}

fn ring() -> KeyRing {
    KeyRing::from_keys([("k1", [0x42; 32])]).unwrap()
}

/// A credential string `mac:proof` for a token with id `[id; 32]`.
pub(crate) fn credential(mode: Mode, route: &str, id: u8, valid_until: u64) -> String {
    credential_for(mode, route, &[], id, valid_until)
}

/// The same, bound to `methods`.
pub(crate) fn credential_for(
    mode: Mode,
    route: &str,
    methods: &[&str],
    id: u8,
    valid_until: u64,
) -> String {
    let ring = ring();
    let preimage = Preimage::from_bytes([id; 32]);
    let mac = ring
        .mint(
            "k1",
            &TokenSpec {
                service: "lightning-wall",
                mode,
                route,
                methods,
                valid_until,
                payment_hash: preimage.payment_hash(),
                token_id: TokenId([id; 32]),
            },
        )
        .unwrap();
    match mode {
        Mode::Pay => l402::format_credential(&mac, Some(preimage.expose_secret())),
        Mode::Deposit => {
            let (_, receipt) = l402::deposit_receipt_for(&ring, &mac.encode()).unwrap();
            l402::format_credential(&mac, Some(receipt.expose_secret()))
        }
    }
}

fn facts<'a>(method: &'a str, path: &'a str, auth: Option<&'a str>) -> RequestFacts<'a> {
    RequestFacts {
        method,
        path,
        authority: "site.example",
        authorization: auth.map(str::as_bytes).into_iter().collect(),
        ..RequestFacts::default()
    }
}

/// A request on a worker that has loaded its revocation snapshot, as every worker has before it
/// serves credentials (the gate before that has its own tests).
fn run(h: &MemoryHost, o: &mut WorkerState, f: &RequestFacts<'_>) -> Decision {
    if !o.revocations.ready() {
        o.revocations
            .load_snapshot(crate::engine::sync::tests::snapshot_body(0, &[]))
            .unwrap();
    }
    decide(Some(&policy()), &config("closed"), f, h, o)
}

fn status(d: &Decision) -> Option<(u32, Option<&str>)> {
    match d {
        Decision::Reply(r) => Some((r.status, r.reason())),
        _ => None,
    }
}

fn hex(id: u8) -> String {
    format!("{id:02x}").repeat(32)
}

#[test]
fn free_routes_unmatched_paths_and_wall_endpoints_pass() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    assert_eq!(
        run(&h, &mut o, &facts("GET", "/healthz", None)),
        Decision::Pass
    );
    assert_eq!(
        run(
            &h,
            &mut o,
            &facts("GET", "/.well-known/lightning-wall/deposit", None)
        ),
        Decision::Pass
    );
}

#[test]
fn before_bootstrap_protected_requests_follow_the_plugin_failure_mode() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let f = facts("GET", "/v1/x", None);
    let closed = decide(None, &config("closed"), &f, &h, &mut o);
    assert_eq!(status(&closed), Some((503, Some("unavailable"))));
    assert_eq!(
        decide(None, &config("open"), &f, &h, &mut o),
        Decision::Pass
    );
}

#[test]
fn no_credential_means_a_challenge_for_the_matched_route() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let Decision::Challenge(c) = run(&h, &mut o, &facts("GET", "/v1/x", None)) else {
        panic!()
    };
    assert_eq!(c.route_id, "api");
    assert_eq!(c.failure_mode, FailureMode::Open);
}

#[test]
fn a_paid_credential_is_allowed_with_no_call_out_under_either_scheme() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let cred = credential(Mode::Pay, "api", 1, NOW + 60);
    for scheme in ["L402", "LSAT"] {
        let auth = format!("{scheme} {cred}");
        let Decision::Allow(g) = run(&h, &mut o, &facts("GET", "/v1/x?q=1", Some(&auth))) else {
            panic!()
        };
        assert_eq!(g.token_hex, hex(1));
        assert_eq!(g.mode, RouteMode::Pay);
    }
    assert_eq!(h.metric(Metric::Allowed), 2);
    assert!(o.outbox.is_empty(), "pay tokens produce no events");
}

#[test]
fn a_wrong_preimage_is_refused_with_a_machine_readable_reason() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let cred = credential(Mode::Pay, "api", 1, NOW + 60);
    let (mac, _) = cred.split_once(':').unwrap();
    let auth = format!("L402 {mac}:{}", "00".repeat(32));
    let d = run(&h, &mut o, &facts("GET", "/v1/x", Some(&auth)));
    assert_eq!(status(&d), Some((401, Some("bad_proof"))));
    let d = run(&h, &mut o, &facts("GET", "/v1/x", Some("L402 garbage")));
    assert_eq!(status(&d), Some((401, Some("malformed"))));
    assert_eq!(h.metric(Metric::Denied("bad_proof")), 1);
}

#[test]
fn a_token_for_another_route_is_refused_and_an_expired_one_is_challenged_again() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let other = format!("L402 {}", credential(Mode::Pay, "other", 1, NOW + 60));
    let d = run(&h, &mut o, &facts("GET", "/v1/x", Some(&other)));
    assert_eq!(status(&d), Some((401, Some("wrong_route"))));
    let expired = format!("L402 {}", credential(Mode::Pay, "api", 1, NOW));
    assert!(matches!(
        run(&h, &mut o, &facts("GET", "/v1/x", Some(&expired))),
        Decision::Challenge(_)
    ));
}

#[test]
fn a_deposit_receipt_in_the_cookie_is_allowed_and_its_activity_reported() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let cookie = format!(
        "a=b; lightning-wall={}",
        credential(Mode::Deposit, "wall", 2, NOW + 60)
    );
    let mut f = facts("GET", "/page", None);
    f.cookies = vec![cookie.as_bytes()];
    let Decision::Allow(g) = run(&h, &mut o, &f) else {
        panic!()
    };
    assert_eq!(g.mode, RouteMode::Deposit);
    assert!(!o.outbox.is_empty());
}

#[test]
fn a_garbage_cookie_gets_a_fresh_challenge_not_a_lockout() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let mut f = facts("GET", "/page", None);
    f.cookies = vec![b"lightning-wall=%%%:zz"];
    assert!(matches!(run(&h, &mut o, &f), Decision::Challenge(_)));
}

#[test]
fn a_revoked_token_is_challenged_again_even_with_a_valid_proof() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let auth = format!("L402 {}", credential(Mode::Deposit, "wall", 3, NOW + 60));
    assert!(matches!(
        run(&h, &mut o, &facts("GET", "/", Some(&auth))),
        Decision::Allow(_)
    ));
    o.revocations.revoke(&h, [3; 32], NOW + 60);
    assert!(matches!(
        run(&h, &mut o, &facts("GET", "/", Some(&auth))),
        Decision::Challenge(_)
    ));
}

#[test]
fn a_deposit_credential_without_proof_waits_for_the_sidecar_then_is_cached() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let full = credential(Mode::Deposit, "wall", 4, NOW + 60);
    let (mac, _) = full.split_once(':').unwrap();
    let auth = format!("L402 {mac}:");
    let Decision::ConfirmHeld(p) = run(&h, &mut o, &facts("GET", "/", Some(&auth))) else {
        panic!()
    };
    assert_eq!(p.credential, full, "the filter derives the receipt itself");
    assert_eq!(p.grant.token_hex, hex(4));
    cache_held(&h, &p.grant);
    assert!(matches!(
        run(&h, &mut o, &facts("GET", "/", Some(&auth))),
        Decision::Allow(_)
    ));
    // Revoked (refunded) since: a fresh challenge, whatever the cache says.
    o.revocations.revoke(&h, [4; 32], NOW + 60);
    assert!(matches!(
        run(&h, &mut o, &facts("GET", "/", Some(&auth))),
        Decision::Challenge(_)
    ));
}

#[test]
fn a_pay_credential_without_proof_waits_for_the_sidecar_with_the_pay_receipt() {
    // Wallets that never show the preimage: the sidecar is asked whether the invoice settled;
    // the credential handed back carries the pay receipt, never the preimage.
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let full = credential(Mode::Pay, "api", 4, NOW + 60);
    let (mac, preimage) = full.split_once(':').unwrap();
    let auth = format!("L402 {mac}:");
    let Decision::ConfirmHeld(p) = run(&h, &mut o, &facts("GET", "/v1/x", Some(&auth))) else {
        panic!()
    };
    let parsed = l402::Credential::parse_token(full.as_bytes()).unwrap();
    let (_, receipt) = l402::pay_receipt_for(&ring(), parsed.macaroon()).unwrap();
    let macaroon = l402::Macaroon::decode(parsed.macaroon()).unwrap();
    let expected = l402::format_credential(&macaroon, Some(receipt.expose_secret()));
    assert_eq!(p.credential, expected);
    assert_ne!(p.credential, full);
    assert!(!p.credential.ends_with(preimage));
    assert_eq!(p.grant.mode, RouteMode::Pay);
    assert_eq!(
        confirm_url(p.grant.mode),
        "/.well-known/lightning-wall/payment"
    );
    // The receipt is a proof on its own from then on.
    let d = run(
        &h,
        &mut o,
        &facts("GET", "/v1/x", Some(&format!("L402 {}", p.credential))),
    );
    assert!(matches!(d, Decision::Allow(_)), "{d:?}");
}

#[test]
fn a_trap_path_forfeits_the_deposit_at_once() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let auth = format!("L402 {}", credential(Mode::Deposit, "wall", 5, NOW + 60));
    let d = run(&h, &mut o, &facts("GET", "/trap?x", Some(&auth)));
    assert_eq!(status(&d), Some((403, Some("forfeited"))));
    assert!(o.revocations.contains(&[5; 32]));
    assert_eq!(h.metric(Metric::Forfeits), 1);
    assert!(o.outbox.flush().is_some(), "the verdict leaves at once");
    // The very next request with the same credential is no longer served.
    assert!(matches!(
        run(&h, &mut o, &facts("GET", "/", Some(&auth))),
        Decision::Challenge(_)
    ));
}

/// Cookie header carrying a credential, as a browser sends it.
fn cookie(credential: &str) -> String {
    format!("theme=dark; lightning-wall={credential}")
}

fn cookie_facts<'a>(path: &'a str, cookie: &'a str, site: Option<&'a str>) -> RequestFacts<'a> {
    RequestFacts {
        cookies: vec![cookie.as_bytes()],
        sec_fetch_site: site.map(str::as_bytes),
        ..facts("GET", path, None)
    }
}

#[test]
fn forged_provenance_headers_never_lower_the_price_of_an_authorization_credential() {
    // A page on another site cannot make a browser attach `Authorization: L402`, so these
    // headers on such a request are a forger's: the request is served and fined as any other.
    for (id, forge) in [
        (61u8, ("sec-fetch-site", "cross-site")),
        (62, ("sec-fetch-site", "same-site")),
        (63, ("origin", "null")),
        (64, ("referer", "https://evil.example/page")),
    ] {
        let h = MemoryHost::at(NOW);
        let mut o = WorkerState::default();
        let auth = format!("L402 {}", credential(Mode::Deposit, "wall", id, NOW + 60));
        let mut f = facts("GET", "/trap", Some(&auth));
        match forge {
            ("sec-fetch-site", v) => f.sec_fetch_site = Some(v.as_bytes()),
            ("origin", v) => f.origin = Some(v.as_bytes()),
            (_, v) => f.referer = Some(v.as_bytes()),
        }
        let d = run(&h, &mut o, &f);
        assert_eq!(status(&d), Some((403, Some("forfeited"))), "{forge:?}");
        assert!(o.revocations.contains(&[id; 32]), "{forge:?}");
        assert!(o.outbox.flush().is_some(), "the verdict leaves at once");
    }
}

#[test]
fn a_cookie_request_another_page_could_have_caused_is_refused_and_costs_nothing() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let jar = cookie(&credential(Mode::Deposit, "wall", 6, NOW + 60));
    // A sibling subdomain (same-site: the Strict cookie is sent), a forger (cross-site: no
    // browser sends it), anything unknown: refused, on the trap and elsewhere, any number of
    // times (the rate limit is 5 per 60 s).
    for _ in 0..10 {
        for site in ["same-site", "cross-site", "bogus"] {
            for path in ["/trap", "/"] {
                let d = run(&h, &mut o, &cookie_facts(path, &jar, Some(site)));
                assert_eq!(
                    status(&d),
                    Some((403, Some("cross_site_refused"))),
                    "{site}"
                );
            }
        }
    }
    assert!(!o.revocations.contains(&[6; 32]));
    assert!(o.outbox.is_empty(), "nothing counted, nothing fined");
    // None of them used up the visitor's own budget: 5 same-origin requests are served.
    for _ in 0..5 {
        let d = run(&h, &mut o, &cookie_facts("/", &jar, Some("same-origin")));
        assert!(matches!(d, Decision::Allow(_)), "{d:?}");
    }
    // A top-level navigation gets a page whose link continues same-origin.
    let mut f = cookie_facts("/members", &jar, Some("same-site"));
    f.sec_fetch_mode = Some(b"navigate");
    let Decision::Reply(reply) = run(&h, &mut o, &f) else {
        panic!("refused")
    };
    assert_eq!(reply.status, 403);
    let page = String::from_utf8(reply.body).unwrap();
    assert!(page.contains("<a href=\"\">"), "{page}");
    assert!(!o.revocations.contains(&[6; 32]));
    // But a navigation another page sent to a trap offers no way on to it: following such a
    // link would be a same-origin request to the trap, a forfeit another page led to.
    let mut f = cookie_facts("/trap", &jar, Some("same-site"));
    f.sec_fetch_mode = Some(b"navigate");
    let Decision::Reply(reply) = run(&h, &mut o, &f) else {
        panic!("refused")
    };
    assert_eq!(
        (reply.status, reply.reason()),
        (403, Some("cross_site_refused"))
    );
    let page = String::from_utf8(reply.body).unwrap();
    assert!(!page.contains("href=\"\""), "{page}");
    assert!(page.contains("href=\"/\""), "{page}");
    assert!(!o.revocations.contains(&[6; 32]));
}

#[test]
fn a_trap_link_opened_from_outside_explains_itself_and_other_links_are_served() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let jar = cookie(&credential(Mode::Deposit, "wall", 16, NOW + 60));
    let Decision::Reply(reply) = run(&h, &mut o, &cookie_facts("/trap", &jar, Some("none"))) else {
        panic!("the trap is not served")
    };
    assert_eq!((reply.status, reply.reason()), (403, Some("outside_link")));
    assert!(
        String::from_utf8(reply.body)
            .unwrap()
            .contains("href=\"/\"")
    );
    assert!(!o.revocations.contains(&[16; 32]));
    assert!(o.outbox.is_empty());
    // A bookmark or a link from a mail to any other page: served, and counted.
    let d = run(&h, &mut o, &cookie_facts("/members", &jar, Some("none")));
    assert!(matches!(d, Decision::Allow(_)), "{d:?}");
    assert!(!o.outbox.is_empty(), "activity reported");
    // The same trap reached from the site itself forfeits.
    let d = run(
        &h,
        &mut o,
        &cookie_facts("/trap", &jar, Some("same-origin")),
    );
    assert_eq!(status(&d), Some((403, Some("forfeited"))));
}

#[test]
fn without_fetch_metadata_foreign_or_opaque_origins_refuse_a_cookie() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let jar = cookie(&credential(Mode::Deposit, "wall", 17, NOW + 60));
    for (origin, referer) in [
        (Some("null"), None),
        (Some("https://evil.example"), None),
        (None, Some("https://evil.example/a")),
        (Some("https://site.example"), Some("garbage")),
    ] {
        let mut f = cookie_facts("/trap", &jar, None);
        f.origin = origin.map(str::as_bytes);
        f.referer = referer.map(str::as_bytes);
        let d = run(&h, &mut o, &f);
        assert_eq!(
            status(&d),
            Some((403, Some("cross_site_refused"))),
            "{origin:?} {referer:?}"
        );
    }
    assert!(!o.revocations.contains(&[17; 32]));
    // Our own origin (any case), or no evidence at all (an old browser): first party.
    let mut f = cookie_facts("/", &jar, None);
    f.origin = Some(b"https://site.example");
    f.referer = Some(b"https://SITE.example/a?b");
    assert!(matches!(run(&h, &mut o, &f), Decision::Allow(_)));
    assert_eq!(provenance(Source::Cookie, &f), Provenance::FirstParty);
    let d = run(&h, &mut o, &cookie_facts("/trap", &jar, None));
    assert_eq!(status(&d), Some((403, Some("forfeited"))));
}

#[test]
fn every_served_request_counts_toward_the_rate_limit_whatever_it_claims() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let auth = format!("L402 {}", credential(Mode::Deposit, "wall", 7, NOW + 60));
    let mut cross = facts("GET", "/", Some(&auth));
    cross.sec_fetch_site = Some(b"cross-site");
    // The limit is 5 per 60 s: claimed cross-site and plain requests share it.
    for i in 0..5 {
        let f = if i % 2 == 0 {
            &cross
        } else {
            &facts("GET", "/", Some(&auth))
        };
        assert!(matches!(run(&h, &mut o, f), Decision::Allow(_)));
    }
    let d = run(&h, &mut o, &cross);
    assert_eq!(status(&d), Some((429, Some("forfeited"))));
    assert!(o.revocations.contains(&[7; 32]));
}

#[test]
fn a_leave_for_a_token_revoked_here_is_refused_before_the_sidecar() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let cred = credential(Mode::Deposit, "wall", 18, NOW + 60);
    let auth = format!("L402 {cred}");
    let leave = "/.well-known/lightning-wall/leave";
    assert_eq!(
        run(&h, &mut o, &facts("POST", leave, Some(&auth))),
        Decision::Pass
    );
    // The trap forfeits (here, before the sidecar knows): leave no longer reaches it, by
    // header or by cookie, whatever else rides along; status and rewards still do.
    let d = run(&h, &mut o, &facts("POST", "/trap", Some(&auth)));
    assert_eq!(status(&d), Some((403, Some("forfeited"))));
    let d = run(&h, &mut o, &facts("POST", leave, Some(&auth)));
    assert_eq!(status(&d), Some((403, Some("deposit_ended"))));
    let jar = cookie(&cred);
    let d = run(
        &h,
        &mut o,
        &RequestFacts {
            method: "POST",
            ..cookie_facts(leave, &jar, Some("same-origin"))
        },
    );
    assert_eq!(status(&d), Some((403, Some("deposit_ended"))));
    // Another worker sees the revocation through shared data.
    let mut other = WorkerState::default();
    let d = run(&h, &mut other, &facts("POST", leave, Some(&auth)));
    assert_eq!(status(&d), Some((403, Some("deposit_ended"))));
    // Two different credentials: the sidecar might act on the other one, so neither passes.
    let fresh = format!("L402 {}", credential(Mode::Deposit, "wall", 19, NOW + 60));
    let mut f = facts("POST", leave, Some(&auth));
    f.authorization.push(fresh.as_bytes());
    assert_eq!(status(&run(&h, &mut o, &f)).map(|s| s.0), Some(401));
    for path in [
        "/.well-known/lightning-wall/deposit?wait=5",
        "/.well-known/lightning-wall/rewards",
    ] {
        assert_eq!(
            run(&h, &mut o, &facts("GET", path, Some(&auth))),
            Decision::Pass
        );
    }
}

#[test]
fn a_cached_credential_still_answers_to_expiry_method_and_revocation() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let auth = format!(
        "L402 {}",
        credential_for(Mode::Deposit, "wall", &["GET"], 11, NOW + 60)
    );
    for _ in 0..2 {
        assert!(matches!(
            run(&h, &mut o, &facts("GET", "/page", Some(&auth))),
            Decision::Allow(_)
        ));
    }
    assert_eq!(
        o.verified.len(),
        1,
        "verified once, then served from the cache"
    );
    let d = run(&h, &mut o, &facts("POST", "/page", Some(&auth)));
    assert_eq!(status(&d), Some((401, Some("wrong_method"))));
    h.now.set(NOW + 60);
    assert!(matches!(
        run(&h, &mut o, &facts("GET", "/page", Some(&auth))),
        Decision::Challenge(_)
    ));
    h.now.set(NOW);
    o.revocations.revoke(&h, [11; 32], NOW + 60);
    assert!(matches!(
        run(&h, &mut o, &facts("GET", "/page", Some(&auth))),
        Decision::Challenge(_)
    ));
}

#[test]
fn a_new_policy_voids_the_cache_so_a_removed_key_stops_verifying() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let auth = format!("L402 {}", credential(Mode::Pay, "api", 12, NOW + 60));
    assert!(matches!(
        run(&h, &mut o, &facts("GET", "/v1/x", Some(&auth))),
        Decision::Allow(_)
    ));
    let rotated = Policy::from_bootstrap(
        bootstrap_json()
            .replace(r#""id":"k1""#, r#""id":"k2""#)
            .replace(r#""id": "k1""#, r#""id": "k2""#)
            .as_bytes(),
    )
    .unwrap();
    assert!(rotated.keys.get("k1").is_none());
    o.installed(&rotated);
    let d = decide(
        Some(&rotated),
        &config("closed"),
        &facts("GET", "/v1/x", Some(&auth)),
        &h,
        &mut o,
    );
    assert_eq!(status(&d), Some((401, Some("unknown_key"))));
}

#[test]
fn counters_and_the_held_cache_use_a_bounded_set_of_keys() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    for id in 20..60u8 {
        let auth = format!("L402 {}", credential(Mode::Deposit, "wall", id, NOW + 60));
        assert!(matches!(
            run(&h, &mut o, &facts("GET", "/", Some(&auth))),
            Decision::Allow(_)
        ));
    }
    // Besides the counter slots, only the instance's random key (its id in usage reports).
    assert!(h.keys().iter().all(|k| {
        let slot = k.rsplit('.').next().unwrap();
        k == "lw.ipkey"
            || k.starts_with("lw.rl.") && slot.parse::<u64>().unwrap() < limits::REQUESTS.slots
    }));
}

#[test]
fn a_cookie_beside_another_authorization_scheme_is_not_cached_under_that_header() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let cookie = format!(
        "lightning-wall={}",
        credential(Mode::Deposit, "wall", 13, NOW + 60)
    );
    let mut f = facts("GET", "/page", Some("Basic dXNlcjpwYXNz"));
    f.cookies = vec![cookie.as_bytes()];
    assert!(matches!(run(&h, &mut o, &f), Decision::Allow(_)));
    // The same Basic header without the cookie must not be let through.
    assert!(matches!(
        run(
            &h,
            &mut o,
            &facts("GET", "/page", Some("Basic dXNlcjpwYXNz"))
        ),
        Decision::Challenge(_)
    ));
    assert!(o.verified.is_empty());
}

#[test]
fn before_its_revocation_snapshot_a_worker_refuses_deposit_credentials_with_a_503() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let auth = format!("L402 {}", credential(Mode::Deposit, "wall", 30, NOW + 60));
    let cookie = format!(
        "lightning-wall={}",
        credential(Mode::Deposit, "wall", 30, NOW + 60)
    );
    let mut by_cookie = facts("GET", "/page", None);
    by_cookie.cookies = vec![cookie.as_bytes()];
    for f in [facts("GET", "/page", Some(&auth)), by_cookie] {
        let d = decide(Some(&policy()), &config("open"), &f, &h, &mut o);
        assert_eq!(status(&d), Some((503, Some("unavailable"))));
    }
    // Without a credential nothing needs the revocation set: a challenge as usual.
    let mut no_credential = facts("GET", "/page", None);
    no_credential.cookies = vec![b"theme=dark".as_slice()];
    assert!(matches!(
        decide(
            Some(&policy()),
            &config("closed"),
            &no_credential,
            &h,
            &mut o
        ),
        Decision::Challenge(_)
    ));
    // Once loaded, the snapshot decides: this token was revoked before the worker started.
    o.revocations
        .load_snapshot(crate::engine::sync::tests::snapshot_body(
            9,
            &[u64::from_be_bytes([30; 8])],
        ))
        .unwrap();
    assert!(matches!(
        decide(
            Some(&policy()),
            &config("closed"),
            &facts("GET", "/page", Some(&auth)),
            &h,
            &mut o
        ),
        Decision::Challenge(_)
    ));
    let other = format!("L402 {}", credential(Mode::Deposit, "wall", 31, NOW + 60));
    assert!(matches!(
        decide(
            Some(&policy()),
            &config("closed"),
            &facts("GET", "/page", Some(&other)),
            &h,
            &mut o
        ),
        Decision::Allow(_)
    ));
}

#[test]
fn before_its_revocation_snapshot_pay_credentials_follow_the_route_failure_mode() {
    let h = MemoryHost::at(NOW);
    let auth = format!("L402 {}", credential(Mode::Pay, "api", 32, NOW + 60));
    let f = facts("GET", "/v1/x", Some(&auth));
    // The api route is fail-open: served on local verification alone.
    let mut o = WorkerState::default();
    assert!(matches!(
        decide(Some(&policy()), &config("closed"), &f, &h, &mut o),
        Decision::Allow(_)
    ));
    let closed = Policy::from_bootstrap(
        bootstrap_json()
            .replace(
                r#""mode": "pay", "failure_mode": "open""#,
                r#""mode": "pay", "failure_mode": "closed""#,
            )
            .as_bytes(),
    )
    .unwrap();
    let mut o = WorkerState::default();
    let d = decide(Some(&closed), &config("open"), &f, &h, &mut o);
    assert_eq!(status(&d), Some((503, Some("unavailable"))));
}

#[test]
fn a_deposit_token_of_another_store_is_challenged_and_a_pay_token_still_served() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    // Token ids here are `[id; 32]`: the store they name is `[id; 8]`.
    let mut p = policy();
    p.store_id = Some(StoreId([7; 8]));
    let mut run_in = |f: &RequestFacts<'_>| {
        if !o.revocations.ready() {
            o.revocations
                .load_snapshot(crate::engine::sync::tests::snapshot_body(0, &[]))
                .unwrap();
        }
        decide(Some(&p), &config("closed"), f, &h, &mut o)
    };
    let ours = format!("L402 {}", credential(Mode::Deposit, "wall", 7, NOW + 60));
    assert!(matches!(
        run_in(&facts("GET", "/page", Some(&ours))),
        Decision::Allow(_)
    ));
    let theirs = format!("L402 {}", credential(Mode::Deposit, "wall", 8, NOW + 60));
    for _ in 0..2 {
        // Verified in full, then from the verified-credential cache.
        let Decision::Challenge(c) = run_in(&facts("GET", "/page", Some(&theirs))) else {
            panic!("a deposit of another store was honoured")
        };
        assert_eq!(c.route_id, "wall");
    }
    // Its empty-proof form is not even asked about.
    let (mac, _) = theirs.rsplit_once(':').unwrap();
    let empty = format!("{mac}:");
    assert!(matches!(
        run_in(&facts("GET", "/page", Some(&empty))),
        Decision::Challenge(_)
    ));
    let paid = format!("L402 {}", credential(Mode::Pay, "api", 8, NOW + 60));
    assert!(matches!(
        run_in(&facts("GET", "/v1/x", Some(&paid))),
        Decision::Allow(_)
    ));
}

#[test]
fn a_sidecar_that_names_no_store_checks_none() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    assert_eq!(policy().store_id, None);
    let any = format!("L402 {}", credential(Mode::Deposit, "wall", 8, NOW + 60));
    assert!(matches!(
        run(&h, &mut o, &facts("GET", "/page", Some(&any))),
        Decision::Allow(_)
    ));
}
