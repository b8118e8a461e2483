//! Cross-check against pymacaroons 0.13.0 in both directions: their macaroons verify in our
//! verifier, ours verify in theirs. Runs `python3 scripts/pymacaroons_crosscheck.py`; fails
//! (never skips) when pymacaroons is missing, telling you to run `make test-deps`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use l402::{
    Credential, Identifier, KeyRing, Macaroon, MacaroonError, Mode, Preimage, RequestContext,
    TokenId, TokenSpec, VerifyError, format_credential, verify,
};
use serde_json::{Value, json};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pymacaroons_crosscheck.py")
}

fn python(request: Value) -> Value {
    let mut child = Command::new("python3")
        .arg(script())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed for the pymacaroons cross-check (run `make test-deps`)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() != Some(3),
        "pymacaroons is not installed: run `make test-deps` (pip install pymacaroons==0.13.0)\n{stderr}"
    );
    assert!(out.status.success(), "cross-check script failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

const NOW: u64 = 1_800_000_000;

fn ring() -> KeyRing {
    KeyRing::from_keys([("k1", [0x5a; 32])]).unwrap()
}

fn ctx(mode: Mode) -> RequestContext<'static> {
    RequestContext {
        service: "wall",
        now_unix: NOW,
        route: "api/v1",
        method: "GET",
        mode,
        capability: None,
    }
}

fn typical_caveats() -> Vec<String> {
    vec![
        "services=wall:0".into(),
        format!("wall_valid_until={}", NOW + 60),
        "lw_mode=pay".into(),
        "lw_route=api/v1".into(),
        "lw_methods=GET,HEAD".into(),
        "lw_key=k1".into(),
    ]
}

#[test]
fn a_macaroon_minted_by_pymacaroons_verifies_in_ours() {
    let ring = ring();
    let preimage = Preimage::from_bytes([0x0f; 32]);
    let identifier = Identifier::new(preimage.payment_hash(), TokenId([0xee; 32])).encode();
    let root = ring.get("k1").unwrap().root_key(&identifier);
    let theirs = python(json!({
        "op": "mint",
        "root_key": root.expose_secret_hex(),
        "identifier": hex::encode(identifier),
        "location": "lightning-wall",
        "caveats": typical_caveats(),
    }));
    let b64 = theirs["macaroon"].as_str().unwrap();
    // pymacaroons writes URL-safe base64 without padding: one of the four variants we accept.
    let header = format!("L402 {b64}:{}", preimage.expose_secret_hex());
    let credential = Credential::parse_authorization(header.as_bytes())
        .unwrap()
        .unwrap();
    let token = verify(&ring, &credential, &ctx(Mode::Pay)).unwrap();
    assert_eq!(token.token_id, TokenId([0xee; 32]));
    assert_eq!(token.route, "api/v1");

    // The same bytes re-encoded by us are bit-identical to theirs.
    let mac = Macaroon::from_base64(b64).unwrap();
    assert_eq!(Macaroon::decode(&mac.encode()).unwrap(), mac);
    assert_eq!(
        mac.to_base64()
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_"),
        b64
    );
}

#[test]
fn a_pymacaroons_macaroon_under_another_root_key_fails_our_signature_check() {
    let ring = ring();
    let preimage = Preimage::from_bytes([0x0f; 32]);
    let identifier = Identifier::new(preimage.payment_hash(), TokenId([0xee; 32])).encode();
    let theirs = python(json!({
        "op": "mint",
        "root_key": hex::encode([0x5a; 32]), // the master key itself, not the derived root key
        "identifier": hex::encode(identifier),
        "location": "lightning-wall",
        "caveats": typical_caveats(),
    }));
    let header = format!(
        "L402 {}:{}",
        theirs["macaroon"].as_str().unwrap(),
        preimage.expose_secret_hex()
    );
    let credential = Credential::parse_authorization(header.as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(
        verify(&ring, &credential, &ctx(Mode::Pay)),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn a_pymacaroons_third_party_caveat_is_decoded_and_rejected() {
    let theirs = python(json!({
        "op": "mint",
        "root_key": hex::encode([1; 32]),
        "identifier": hex::encode([0; 66]),
        "location": "lightning-wall",
        "caveats": ["services=wall:0"],
        "third_party": true,
    }));
    assert_eq!(
        Macaroon::from_base64(theirs["macaroon"].as_str().unwrap()),
        Err(MacaroonError::ThirdPartyCaveat { index: 1 })
    );
}

#[test]
fn a_macaroon_minted_by_us_verifies_in_pymacaroons() {
    let ring = ring();
    for (mode, methods) in [(Mode::Pay, &["GET", "HEAD"][..]), (Mode::Deposit, &[][..])] {
        let mut mac = ring
            .mint(
                "k1",
                &TokenSpec {
                    service: "wall",
                    mode,
                    route: "api/v1",
                    methods,
                    valid_until: NOW + 60,
                    payment_hash: Preimage::from_bytes([3; 32]).payment_hash(),
                    token_id: TokenId([4; 32]),
                },
            )
            .unwrap();
        // A holder's attenuation, too.
        mac.add_first_party_caveat(b"wall_valid_until=1800000030")
            .unwrap();
        let root = ring.get("k1").unwrap().root_key(mac.identifier());
        let theirs = python(json!({
            "op": "verify",
            "root_key": root.expose_secret_hex(),
            "macaroon": mac.to_base64(),
        }));
        assert_eq!(theirs["ok"], json!(true), "{theirs}");
        assert_eq!(theirs["identifier"], json!(hex::encode(mac.identifier())));
        assert_eq!(theirs["signature"], json!(hex::encode(mac.signature())));
        let caveats: Vec<String> = mac
            .caveats()
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        assert_eq!(theirs["caveats"], json!(caveats));

        // And pymacaroons refuses it under another key, so the check above can fail.
        let wrong = python(json!({
            "op": "verify",
            "root_key": hex::encode([0x5a; 32]),
            "macaroon": mac.to_base64(),
        }));
        assert_eq!(wrong["ok"], json!(false), "{wrong}");
    }
}

#[test]
fn the_credential_string_we_hand_out_carries_a_macaroon_pymacaroons_reads() {
    let ring = ring();
    let mac = ring
        .mint(
            "k1",
            &TokenSpec {
                service: "wall",
                mode: Mode::Deposit,
                route: "r",
                methods: &[],
                valid_until: NOW + 60,
                payment_hash: Preimage::from_bytes([3; 32]).payment_hash(),
                token_id: TokenId([4; 32]),
            },
        )
        .unwrap();
    let id = Identifier::decode(mac.identifier()).unwrap();
    let receipt = ring.get("k1").unwrap().deposit_receipt(&id);
    let credential = format_credential(&mac, Some(receipt.expose_secret()));
    let (b64, _) = credential.split_once(':').unwrap();
    let root = ring.get("k1").unwrap().root_key(mac.identifier());
    let theirs = python(json!({
        "op": "verify",
        "root_key": root.expose_secret_hex(),
        "macaroon": b64,
    }));
    assert_eq!(theirs["ok"], json!(true), "{theirs}");
}
