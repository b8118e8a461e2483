//! The verifier end to end: minted tokens, proofs, request binding, and every way a holder might
//! try to widen a token by attenuating it.

// Helpers outside `#[test]` fns are test code too (clippy.toml allows these only inside them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use l402::{
    Credential, Identifier, KeyRing, Macaroon, Mode, PaymentHash, Preimage, Proof, RequestContext,
    RootKey, TokenId, TokenSpec, VerifyError, deposit_receipt_for, format_credential, verify,
    verify_authorization,
};
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000;
const EXPIRY: u64 = NOW + 600;

fn ring() -> KeyRing {
    KeyRing::from_keys([("old", [0x11; 32]), ("cur", [0x22; 32])]).unwrap()
}

fn preimage() -> Preimage {
    Preimage::from_bytes([0x77; 32])
}

fn spec(mode: Mode) -> TokenSpec<'static> {
    TokenSpec {
        service: "wall",
        mode,
        route: "docs",
        methods: &["GET", "HEAD"],
        valid_until: EXPIRY,
        payment_hash: preimage().payment_hash(),
        token_id: TokenId([0x33; 32]),
    }
}

fn ctx(mode: Mode) -> RequestContext<'static> {
    RequestContext {
        service: "wall",
        now_unix: NOW,
        route: "docs",
        method: "GET",
        mode,
        capability: None,
    }
}

fn receipt_of(ring: &KeyRing, mac: &Macaroon) -> [u8; 32] {
    let id = Identifier::decode(mac.identifier()).unwrap();
    *ring
        .get("cur")
        .unwrap()
        .deposit_receipt(&id)
        .expose_secret()
}

fn check(
    ring: &KeyRing,
    mac: &Macaroon,
    proof: Option<[u8; 32]>,
    ctx: &RequestContext<'_>,
) -> Result<l402::VerifiedToken, VerifyError> {
    let header = format!("L402 {}", format_credential(mac, proof.as_ref()));
    let credential = Credential::parse_authorization(header.as_bytes())
        .unwrap()
        .unwrap();
    verify(ring, &credential, ctx)
}

fn reason(r: Result<l402::VerifiedToken, VerifyError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.reason(),
    }
}

#[test]
fn a_paid_token_with_its_preimage_grants_access() {
    let ring = ring();
    let mac = ring.mint("cur", &spec(Mode::Pay)).unwrap();
    let token = check(&ring, &mac, Some([0x77; 32]), &ctx(Mode::Pay)).unwrap();
    assert_eq!(token.token_id, TokenId([0x33; 32]));
    assert_eq!(token.token_id.to_hex(), "33".repeat(32));
    assert_eq!(token.payment_hash, preimage().payment_hash());
    assert_eq!(token.mode, Mode::Pay);
    assert_eq!(token.route, "docs");
    assert_eq!(token.valid_until, EXPIRY);
}

#[test]
fn a_wrong_preimage_is_a_bad_proof() {
    let ring = ring();
    let mac = ring.mint("cur", &spec(Mode::Pay)).unwrap();
    assert_eq!(
        reason(check(&ring, &mac, Some([0x78; 32]), &ctx(Mode::Pay))),
        "bad_proof"
    );
}

#[test]
fn a_held_deposit_token_with_its_receipt_grants_access() {
    let ring = ring();
    let mac = ring.mint("cur", &spec(Mode::Deposit)).unwrap();
    let receipt = receipt_of(&ring, &mac);
    let token = check(&ring, &mac, Some(receipt), &ctx(Mode::Deposit)).unwrap();
    assert_eq!(token.mode, Mode::Deposit);
}

#[test]
fn a_paid_token_with_its_pay_receipt_grants_access_and_no_other_receipt_does() {
    // Wallets that never show the preimage: the sidecar hands out the pay receipt once the
    // node reports the invoice settled. It is a pay proof only; the deposit receipt of the same
    // identifier is not, and the pay receipt opens no deposit.
    let ring = ring();
    let mac = ring.mint("cur", &spec(Mode::Pay)).unwrap();
    let id = Identifier::decode(mac.identifier()).unwrap();
    let pay = *ring.get("cur").unwrap().pay_receipt(&id).expose_secret();
    let token = check(&ring, &mac, Some(pay), &ctx(Mode::Pay)).unwrap();
    assert_eq!(token.mode, Mode::Pay);
    assert_eq!(
        reason(check(
            &ring,
            &mac,
            Some(receipt_of(&ring, &mac)),
            &ctx(Mode::Pay)
        )),
        "bad_proof"
    );
    let other_key = *ring.get("old").unwrap().pay_receipt(&id).expose_secret();
    assert_eq!(
        reason(check(&ring, &mac, Some(other_key), &ctx(Mode::Pay))),
        "bad_proof"
    );
    let deposit = ring.mint("cur", &spec(Mode::Deposit)).unwrap();
    let id = Identifier::decode(deposit.identifier()).unwrap();
    let pay = *ring.get("cur").unwrap().pay_receipt(&id).expose_secret();
    assert_eq!(
        reason(check(&ring, &deposit, Some(pay), &ctx(Mode::Deposit))),
        "bad_proof"
    );
}

#[test]
fn the_preimage_of_a_forfeited_deposit_is_not_a_proof() {
    // Settling a forfeited deposit reveals the preimage to the visitor's wallet; it must not
    // open a deposit route (nor turn the token into a pay token).
    let ring = ring();
    let mac = ring.mint("cur", &spec(Mode::Deposit)).unwrap();
    assert_eq!(
        reason(check(&ring, &mac, Some([0x77; 32]), &ctx(Mode::Deposit))),
        "bad_proof"
    );
    assert_eq!(
        reason(check(&ring, &mac, Some([0x77; 32]), &ctx(Mode::Pay))),
        "wrong_mode"
    );
}

#[test]
fn a_receipt_from_another_token_is_a_bad_proof() {
    let ring = ring();
    let mac = ring.mint("cur", &spec(Mode::Deposit)).unwrap();
    let other = ring
        .mint(
            "cur",
            &TokenSpec {
                token_id: TokenId([0x34; 32]),
                ..spec(Mode::Deposit)
            },
        )
        .unwrap();
    let receipt = receipt_of(&ring, &other);
    assert_eq!(
        reason(check(&ring, &mac, Some(receipt), &ctx(Mode::Deposit))),
        "bad_proof"
    );
}

#[test]
fn a_deposit_credential_without_receipt_reports_its_token() {
    let ring = ring();
    let mac = ring.mint("cur", &spec(Mode::Deposit)).unwrap();
    match check(&ring, &mac, None, &ctx(Mode::Deposit)) {
        Err(VerifyError::ProofMissing {
            token_id,
            payment_hash,
            mode,
        }) => {
            assert_eq!(token_id, TokenId([0x33; 32]));
            assert_eq!(payment_hash, preimage().payment_hash());
            assert_eq!(mode, Mode::Deposit);
        }
        other => panic!("expected ProofMissing, got {other:?}"),
    }
}

#[test]
fn the_token_is_bound_to_its_route_method_service_and_mode() {
    let ring = ring();
    let mac = ring.mint("cur", &spec(Mode::Pay)).unwrap();
    let p = Some([0x77; 32]);
    assert_eq!(
        reason(check(
            &ring,
            &mac,
            p,
            &RequestContext {
                route: "api",
                ..ctx(Mode::Pay)
            }
        )),
        "wrong_route"
    );
    assert_eq!(
        reason(check(
            &ring,
            &mac,
            p,
            &RequestContext {
                method: "POST",
                ..ctx(Mode::Pay)
            }
        )),
        "wrong_method"
    );
    assert_eq!(
        reason(check(
            &ring,
            &mac,
            p,
            &RequestContext {
                method: "HEAD",
                ..ctx(Mode::Pay)
            }
        )),
        "ok"
    );
    assert_eq!(
        reason(check(
            &ring,
            &mac,
            p,
            &RequestContext {
                service: "other",
                ..ctx(Mode::Pay)
            }
        )),
        "wrong_service"
    );
    assert_eq!(
        reason(check(&ring, &mac, p, &ctx(Mode::Deposit))),
        "wrong_mode"
    );
}

#[test]
fn a_token_is_valid_until_its_expiry_second_exclusive() {
    let ring = ring();
    let mac = ring.mint("cur", &spec(Mode::Pay)).unwrap();
    let p = Some([0x77; 32]);
    assert_eq!(
        reason(check(
            &ring,
            &mac,
            p,
            &RequestContext {
                now_unix: EXPIRY - 1,
                ..ctx(Mode::Pay)
            }
        )),
        "ok"
    );
    assert_eq!(
        check(
            &ring,
            &mac,
            p,
            &RequestContext {
                now_unix: EXPIRY,
                ..ctx(Mode::Pay)
            }
        ),
        Err(VerifyError::Expired {
            valid_until: EXPIRY
        })
    );
}

#[test]
fn tokens_under_a_rotated_out_key_still_verify_while_the_key_is_in_the_ring() {
    let ring = ring();
    let mac = ring.mint("old", &spec(Mode::Pay)).unwrap();
    assert_eq!(
        reason(check(&ring, &mac, Some([0x77; 32]), &ctx(Mode::Pay))),
        "ok"
    );
    let newer = KeyRing::from_keys([("cur", [0x22; 32])]).unwrap();
    assert_eq!(
        reason(check(&newer, &mac, Some([0x77; 32]), &ctx(Mode::Pay))),
        "unknown_key"
    );
}

#[test]
fn a_token_signed_with_a_guessed_root_key_is_rejected() {
    let ring = ring();
    let id = Identifier::new(preimage().payment_hash(), TokenId([1; 32])).encode();
    let mut forged = Macaroon::new(&RootKey::from_bytes([0x22; 32]), &id, None).unwrap();
    for c in [
        "services=wall:0",
        "wall_valid_until=9999999999",
        "lw_mode=pay",
        "lw_route=docs",
        "lw_key=cur",
    ] {
        forged.add_first_party_caveat(c.as_bytes()).unwrap();
    }
    assert_eq!(
        reason(check(&ring, &forged, Some([0x77; 32]), &ctx(Mode::Pay))),
        "bad_signature"
    );
}

#[test]
fn any_changed_byte_in_identifier_or_caveats_breaks_the_signature() {
    let ring = ring();
    let mac = ring.mint("cur", &spec(Mode::Pay)).unwrap();
    let bytes = mac.encode();
    let needle = b"lw_route=docs";
    let route_at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    // Flip a byte inside the route caveat ("docs" -> "dods") and inside the token id.
    let at = route_at + "lw_route=do".len();
    for pos in [at, 40] {
        let mut tampered = bytes.clone();
        tampered[pos] ^= 0x07;
        let m = Macaroon::decode(&tampered).unwrap();
        let r = check(&ring, &m, Some([0x77; 32]), &ctx(Mode::Pay));
        assert_eq!(reason(r), "bad_signature", "byte {pos}");
    }
}

#[test]
fn tokens_missing_a_binding_caveat_are_refused() {
    let ring = ring();
    let id = Identifier::new(preimage().payment_hash(), TokenId([1; 32])).encode();
    let root = ring.get("cur").unwrap().root_key(&id);
    let all = [
        "services=wall:0",
        "wall_valid_until=9999999999",
        "lw_mode=pay",
        "lw_route=docs",
        "lw_key=cur",
    ];
    for skip in 0..all.len() {
        let mut mac = Macaroon::new(&root, &id, None).unwrap();
        for (i, c) in all.iter().enumerate() {
            if i != skip {
                mac.add_first_party_caveat(c.as_bytes()).unwrap();
            }
        }
        assert_eq!(
            reason(check(&ring, &mac, Some([0x77; 32]), &ctx(Mode::Pay))),
            "missing_caveat",
            "without {}",
            all[skip]
        );
    }
}

#[test]
fn unknown_identifier_versions_are_refused_after_decoding() {
    let ring = ring();
    let mut id = Identifier::new(preimage().payment_hash(), TokenId([1; 32])).encode();
    id[1] = 1;
    let root = ring.get("cur").unwrap().root_key(&id);
    let mut mac = Macaroon::new(&root, &id, None).unwrap();
    mac.add_first_party_caveat(b"lw_key=cur").unwrap();
    assert_eq!(
        reason(check(&ring, &mac, Some([0x77; 32]), &ctx(Mode::Pay))),
        "unknown_version"
    );
}

fn attenuated(mode: Mode, extra: &str) -> (KeyRing, Macaroon) {
    let ring = ring();
    let mut mac = ring.mint("cur", &spec(mode)).unwrap();
    mac.add_first_party_caveat(extra.as_bytes()).unwrap();
    (ring, mac)
}

#[test]
fn attenuation_that_tries_to_widen_access_fails() {
    let later = format!("wall_valid_until={}", EXPIRY + 1);
    for (mode, extra, want) in [
        (Mode::Pay, later.as_str(), "widened_caveat"),
        (Mode::Pay, "services=wall:0,admin:0", "widened_caveat"),
        (Mode::Pay, "services=wall:1", "widened_caveat"),
        (Mode::Pay, "lw_route=admin", "widened_caveat"),
        (Mode::Pay, "lw_methods=GET,POST", "widened_caveat"),
        (Mode::Deposit, "lw_mode=pay", "widened_caveat"),
        (Mode::Pay, "lw_mode=deposit", "widened_caveat"),
        (Mode::Pay, "lw_key=old", "widened_caveat"),
        (Mode::Pay, "lw_route", "malformed_caveat"),
        (Mode::Pay, "lw_admin=true", "malformed_caveat"),
        (Mode::Pay, "wall_valid_until=never", "malformed_caveat"),
    ] {
        let (ring, mac) = attenuated(mode, extra);
        let proof = if mode == Mode::Pay {
            [0x77; 32]
        } else {
            receipt_of(&ring, &mac)
        };
        // Checked against the request the attenuation tries to reach, and the original one.
        let wide = RequestContext {
            route: "admin",
            method: "POST",
            now_unix: EXPIRY,
            service: "admin",
            ..ctx(Mode::Pay)
        };
        assert_ne!(
            reason(check(&ring, &mac, Some(proof), &wide)),
            "ok",
            "{extra}"
        );
        assert_eq!(
            reason(check(&ring, &mac, Some(proof), &ctx(mode))),
            want,
            "{extra}"
        );
    }
}

#[test]
fn attenuation_that_narrows_is_honoured() {
    let (ring, mac) = attenuated(Mode::Pay, &format!("wall_valid_until={}", NOW + 1));
    let p = Some([0x77; 32]);
    assert_eq!(reason(check(&ring, &mac, p, &ctx(Mode::Pay))), "ok");
    assert_eq!(
        reason(check(
            &ring,
            &mac,
            p,
            &RequestContext {
                now_unix: NOW + 1,
                ..ctx(Mode::Pay)
            }
        )),
        "expired"
    );
    let (ring, mac) = attenuated(Mode::Pay, "lw_methods=HEAD");
    assert_eq!(
        reason(check(&ring, &mac, p, &ctx(Mode::Pay))),
        "wrong_method"
    );
    let (ring, mac) = attenuated(Mode::Pay, "wall_capabilities=read");
    let needs_write = RequestContext {
        capability: Some("write"),
        ..ctx(Mode::Pay)
    };
    assert_eq!(
        reason(check(&ring, &mac, p, &needs_write)),
        "missing_capability"
    );
    assert_eq!(
        reason(check(
            &ring,
            &mac,
            p,
            &RequestContext {
                capability: Some("read"),
                ..ctx(Mode::Pay)
            }
        )),
        "ok"
    );
}

#[test]
fn caveats_for_other_services_and_unknown_conditions_are_skipped() {
    for extra in [
        "other_valid_until=1",
        "ip=10.0.0.1",
        "time-before 2020-01-01T00:00:00Z",
        "other_capabilities=x",
    ] {
        let (ring, mac) = attenuated(Mode::Pay, extra);
        assert_eq!(
            reason(check(&ring, &mac, Some([0x77; 32]), &ctx(Mode::Pay))),
            "ok",
            "{extra}"
        );
    }
}

#[test]
fn several_authorization_values_must_agree() {
    let ring = ring();
    let mac = ring.mint("cur", &spec(Mode::Pay)).unwrap();
    let good = format!("L402 {}", format_credential(&mac, Some(&[0x77; 32])));
    let lsat = good.replacen("L402", "LSAT", 1);
    let other = format!("L402 {}", format_credential(&mac, Some(&[0x78; 32])));
    let ok = verify_authorization(&ring, [good.as_bytes(), lsat.as_bytes()], &ctx(Mode::Pay));
    assert!(ok.unwrap().is_some());
    let err = verify_authorization(&ring, [good.as_bytes(), other.as_bytes()], &ctx(Mode::Pay))
        .unwrap_err();
    assert_eq!(err.reason(), "conflicting_credentials");
    let none = verify_authorization(&ring, [b"Bearer x".as_slice()], &ctx(Mode::Pay));
    assert_eq!(none, Ok(None));
}

#[test]
fn the_receipt_is_revealed_only_for_a_genuine_deposit_macaroon() {
    let ring = ring();
    let deposit = ring.mint("cur", &spec(Mode::Deposit)).unwrap();
    let (id, receipt) = deposit_receipt_for(&ring, &deposit.encode()).unwrap();
    assert_eq!(id.token_id, TokenId([0x33; 32]));
    assert_eq!(receipt.expose_secret(), &receipt_of(&ring, &deposit));

    let pay = ring.mint("cur", &spec(Mode::Pay)).unwrap();
    assert_eq!(
        deposit_receipt_for(&ring, &pay.encode())
            .unwrap_err()
            .reason(),
        "wrong_mode"
    );
    let mut tampered = deposit.encode();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(
        deposit_receipt_for(&ring, &tampered).unwrap_err(),
        VerifyError::BadSignature
    );
    let (ring2, widened) = attenuated(Mode::Deposit, "lw_mode=pay");
    assert_eq!(
        deposit_receipt_for(&ring2, &widened.encode())
            .unwrap_err()
            .reason(),
        "widened_caveat"
    );
}

#[test]
fn aperture_grpc_clients_prove_payment_with_a_preimage_caveat() {
    let ring = ring();
    let mut mac = ring.mint("cur", &spec(Mode::Pay)).unwrap();
    mac.add_first_party_caveat(format!("preimage={}", "77".repeat(32)).as_bytes())
        .unwrap();
    let header = hex::encode(mac.encode());
    let credential = Credential::from_macaroon_header(header.as_bytes()).unwrap();
    assert!(verify(&ring, &credential, &ctx(Mode::Pay)).is_ok());

    let mut wrong = ring.mint("cur", &spec(Mode::Pay)).unwrap();
    wrong
        .add_first_party_caveat(format!("preimage={}", "78".repeat(32)).as_bytes())
        .unwrap();
    let credential = Credential::from_macaroon_header(hex::encode(wrong.encode()).as_bytes());
    let err = verify(&ring, &credential.unwrap(), &ctx(Mode::Pay)).unwrap_err();
    assert_eq!(err.reason(), "bad_proof");
}

#[test]
fn the_cookie_value_verifies_like_the_header() {
    let ring = ring();
    let mac = ring.mint("cur", &spec(Mode::Pay)).unwrap();
    let cookie = format_credential(&mac, Some(&[0x77; 32]));
    let credential = Credential::parse_token(cookie.as_bytes()).unwrap();
    assert!(verify(&ring, &credential, &ctx(Mode::Pay)).is_ok());
}

#[test]
fn a_credential_with_a_discharge_macaroon_is_refused() {
    let ring = ring();
    let mac = ring.mint("cur", &spec(Mode::Pay)).unwrap();
    let text = format!(
        "{},{}:{}",
        mac.to_base64(),
        mac.to_base64(),
        "77".repeat(32)
    );
    let credential = Credential::parse_token(text.as_bytes()).unwrap();
    let err = verify(&ring, &credential, &ctx(Mode::Pay)).unwrap_err();
    assert_eq!(err, VerifyError::SeveralMacaroons { count: 2 });
    assert_eq!(err.reason(), "malformed");
}

#[test]
fn errors_never_contain_the_credential() {
    let ring = ring();
    let mac = ring.mint("cur", &spec(Mode::Pay)).unwrap();
    let cred = format_credential(&mac, Some(&[0x78; 32]));
    let err = check(&ring, &mac, Some([0x78; 32]), &ctx(Mode::Pay)).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("7878"), "{shown}");
    assert!(!shown.contains(&cred[..20]), "{shown}");
    let _ = Proof::from_bytes([0; 32]);
    let _ = PaymentHash([0; 32]);
}

/// Caveats a holder might append, narrowing or widening, well-formed or not.
fn appended_caveat() -> impl Strategy<Value = String> {
    prop_oneof![
        (EXPIRY - 5..EXPIRY + 5).prop_map(|t| format!("wall_valid_until={t}")),
        Just("services=wall:0".to_owned()),
        Just("services=wall:0,admin:0".to_owned()),
        Just("services=wall:1".to_owned()),
        Just("lw_mode=pay".to_owned()),
        Just("lw_mode=deposit".to_owned()),
        Just("lw_route=docs".to_owned()),
        Just("lw_route=admin".to_owned()),
        Just("lw_methods=GET".to_owned()),
        Just("lw_methods=POST".to_owned()),
        Just("lw_methods=GET,HEAD,POST".to_owned()),
        Just("lw_key=cur".to_owned()),
        Just("lw_key=old".to_owned()),
        Just("wall_capabilities=read".to_owned()),
        Just("other_valid_until=1".to_owned()),
        "[a-z_]{1,12}=[a-z0-9]{0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn appended_caveats_never_widen_a_token(
        deposit in any::<bool>(),
        extra in proptest::collection::vec(appended_caveat(), 0..6),
        now_offset in 0u64..700,
        post in any::<bool>(),
        route_admin in any::<bool>(),
    ) {
        let mode = if deposit { Mode::Deposit } else { Mode::Pay };
        let ring = ring();
        let mut mac = ring.mint("cur", &spec(mode)).unwrap();
        for c in &extra {
            mac.add_first_party_caveat(c.as_bytes()).unwrap();
        }
        let proof = if deposit { receipt_of(&ring, &mac) } else { [0x77; 32] };
        let request = RequestContext {
            now_unix: NOW + now_offset,
            method: if post { "POST" } else { "GET" },
            route: if route_admin { "admin" } else { "docs" },
            ..ctx(mode)
        };
        if let Ok(token) = check(&ring, &mac, Some(proof), &request) {
            // Whatever still verifies is within what was minted.
            prop_assert_eq!(token.mode, mode);
            prop_assert_eq!(token.route.as_str(), "docs");
            prop_assert!(token.valid_until <= EXPIRY);
            prop_assert!(request.now_unix < EXPIRY);
            prop_assert_eq!(request.method, "GET");
        }
    }

    #[test]
    fn a_mutated_credential_never_panics_and_verifies_only_if_equivalent(pos in any::<usize>(), byte in 0x20u8..0x7f) {
        let ring = ring();
        let mac = ring.mint("cur", &spec(Mode::Pay)).unwrap();
        let header = format!("L402 {}", format_credential(&mac, Some(&[0x77; 32])));
        let mut mutated = header.clone().into_bytes();
        let i = pos % mutated.len();
        mutated[i] = byte;
        if let Ok(Some(token)) = verify_authorization(&ring, [mutated.as_slice()], &ctx(Mode::Pay)) {
            // Only spellings of the same credential may pass (hex case, base64 padding, scheme
            // case), or a changed location, which the signature does not cover.
            let parsed = Credential::parse_authorization(&mutated).unwrap().unwrap();
            let got = Macaroon::decode(parsed.macaroon()).unwrap();
            prop_assert_eq!(got.identifier(), mac.identifier());
            prop_assert_eq!(got.caveats().collect::<Vec<_>>(), mac.caveats().collect::<Vec<_>>());
            prop_assert_eq!(got.signature(), mac.signature());
            prop_assert_eq!(parsed.proof().unwrap().expose_secret(), &[0x77; 32]);
            prop_assert_eq!(token.token_id, TokenId([0x33; 32]));
        }
    }

    #[test]
    fn verifying_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let ring = ring();
        let _ = verify_authorization(&ring, [bytes.as_slice()], &ctx(Mode::Pay));
        let _ = Credential::parse_token(&bytes).map(|c| verify(&ring, &c, &ctx(Mode::Deposit)));
        if let Ok(m) = l402::MacaroonRef::decode(&bytes) {
            let _ = l402::verify_macaroon(&ring, &m, None, &ctx(Mode::Pay));
        }
    }
}
