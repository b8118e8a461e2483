//! Tests of credential parsing: the accepted spellings of the L402 header, cookie and gRPC forms,
//! their errors, and round-trip properties.
use super::*;
use crate::keys::RootKey;
use proptest::prelude::*;

fn mac() -> Macaroon {
    let mut m = Macaroon::new(&RootKey::from_bytes([1; 32]), b"identifier", None).unwrap();
    m.add_first_party_caveat(b"lw_mode=pay").unwrap();
    m
}

fn token(proof: &str) -> String {
    format!("{}:{proof}", mac().to_base64())
}

const PROOF: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn the_scheme_is_case_insensitive_and_both_names_are_accepted() {
    for scheme in ["L402", "l402", "LSAT", "lsat", "LsAt"] {
        let header = format!("{scheme} {}", token(PROOF));
        let c = Credential::parse_authorization(header.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(c.macaroon(), mac().encode());
        assert_eq!(c.proof().unwrap().expose_secret_hex(), PROOF);
    }
}

#[test]
fn other_schemes_are_not_ours() {
    for header in ["Bearer abc", "Basic dXNlcjpwYXNz", "L4022 x:y", "", "L402x"] {
        assert_eq!(
            Credential::parse_authorization(header.as_bytes()),
            Ok(None),
            "{header}"
        );
    }
}

#[test]
fn spaces_after_the_scheme_and_around_the_value_are_allowed() {
    let header = format!("  L402    {}  ", token(PROOF));
    assert!(
        Credential::parse_authorization(header.as_bytes())
            .unwrap()
            .is_some()
    );
}

#[test]
fn hex_in_either_case_and_base64_in_any_variant_parse_to_the_same_credential() {
    let std = mac().to_base64();
    let url = std.replace('+', "-").replace('/', "_");
    let reference = Credential::parse_token(token(PROOF).as_bytes()).unwrap();
    for b64 in [
        std.clone(),
        std.trim_end_matches('=').to_owned(),
        url.clone(),
        url.trim_end_matches('=').to_owned(),
    ] {
        for proof in [PROOF.to_owned(), PROOF.to_uppercase()] {
            let c = Credential::parse_token(format!("{b64}:{proof}").as_bytes()).unwrap();
            assert_eq!(c, reference);
        }
    }
}

#[test]
fn an_empty_proof_is_a_receipt_pending_credential() {
    let c = Credential::parse_token(token("").as_bytes()).unwrap();
    assert!(c.proof().is_none());
    assert_eq!(c.to_token_string(), token(""));
}

#[test]
fn several_macaroons_are_parsed_in_order() {
    let other = Macaroon::new(&RootKey::from_bytes([2; 32]), b"other", None).unwrap();
    let text = format!("{},{}:{PROOF}", mac().to_base64(), other.to_base64());
    let c = Credential::parse_token(text.as_bytes()).unwrap();
    assert_eq!(c.macaroon_count(), 2);
    assert_eq!(c.macaroons().nth(1).unwrap(), other.encode());
    assert_eq!(c.to_token_string(), text);
    let five = vec![mac().to_base64(); 5].join(",") + ":";
    assert_eq!(
        Credential::parse_token(five.as_bytes()),
        Err(CredentialError::TooManyMacaroons)
    );
}

#[test]
fn malformed_credentials_get_their_own_error() {
    let b64 = mac().to_base64();
    let cases: Vec<(String, CredentialError)> = vec![
        ("L402".into(), CredentialError::MissingToken),
        ("L402   ".into(), CredentialError::MissingToken),
        (format!("L402 {b64}"), CredentialError::MissingSeparator),
        (
            format!("L402 {b64}:{PROOF}:"),
            CredentialError::ExtraSeparator,
        ),
        (format!("L402 {b64}:{PROOF}0"), CredentialError::BadProof),
        (
            format!("L402 {b64}:{}", &PROOF[..62]),
            CredentialError::BadProof,
        ),
        (
            format!("L402 {b64}:{}g", &PROOF[..63]),
            CredentialError::BadProof,
        ),
        (
            format!("L402 :{PROOF}"),
            CredentialError::BadBase64 { index: 0 },
        ),
        (
            format!("L402 {b64},:{PROOF}"),
            CredentialError::BadBase64 { index: 1 },
        ),
        (
            format!("L402 {b64}!:{PROOF}"),
            CredentialError::BadBase64 { index: 0 },
        ),
        (
            format!("L402 {b64} :{PROOF}"),
            CredentialError::BadCharacter { at: b64.len() },
        ),
        (
            format!("L402 {b64}\u{1}:{PROOF}"),
            CredentialError::BadCharacter { at: b64.len() },
        ),
        (
            format!("L402 {b64}é:{PROOF}"),
            CredentialError::BadCharacter { at: b64.len() },
        ),
        (
            "L402 ".to_owned() + &"A".repeat(MAX_CREDENTIAL_LEN),
            CredentialError::TooLong,
        ),
        (
            format!("L402 {}:", "A".repeat(6000)),
            CredentialError::TokenTooLong { len: 6001 },
        ),
        (
            format!("L402 {}:", "A".repeat(MAX_TOKEN_LEN)),
            CredentialError::TokenTooLong {
                len: MAX_TOKEN_LEN + 1,
            },
        ),
    ];
    for (header, want) in cases {
        assert_eq!(
            Credential::parse_authorization(header.as_bytes()),
            Err(want),
            "{header:.80}"
        );
    }
}

#[test]
fn conflicting_authorization_values_are_rejected_and_duplicates_are_not() {
    let a = format!("L402 {}", token(PROOF));
    let b = format!("LSAT {}", token(&PROOF.to_uppercase()));
    let c = format!("L402 {}", token(""));
    let ok = Credential::from_authorization_values([a.as_bytes(), b"Basic x", b.as_bytes()]);
    assert!(ok.unwrap().is_some());
    assert_eq!(
        Credential::from_authorization_values([a.as_bytes(), c.as_bytes()]),
        Err(CredentialError::Conflicting)
    );
    assert_eq!(
        Credential::from_authorization_values([b"Basic x".as_slice()]),
        Ok(None)
    );
}

#[test]
fn the_wall_cookie_is_found_among_other_cookies() {
    let value = token(PROOF);
    let reference = Credential::parse_token(value.as_bytes()).unwrap();
    for header in [
        format!("{COOKIE_NAME}={value}"),
        format!("a=b; {COOKIE_NAME}={value}; c=d"),
        format!("a=b;{COOKIE_NAME}=\"{value}\""),
        format!("lightning-wall-x=1; {COOKIE_NAME} = {value} "),
    ] {
        let c = Credential::from_cookie_headers([header.as_bytes()]).unwrap();
        assert_eq!(c, Some(reference.clone()), "{header}");
    }
    let none = Credential::from_cookie_headers([b"a=b; other=c; x".as_slice()]);
    assert_eq!(none, Ok(None));
    let twice = format!("{COOKIE_NAME}={value}; {COOKIE_NAME}={}", token(""));
    assert_eq!(
        Credential::from_cookie_headers([twice.as_bytes()]),
        Err(CredentialError::Conflicting)
    );
    let same_twice = format!("{COOKIE_NAME}={value}");
    assert!(
        Credential::from_cookie_headers([same_twice.as_bytes(), same_twice.as_bytes()])
            .unwrap()
            .is_some()
    );
    assert_eq!(
        Credential::from_cookie_headers([format!("{COOKIE_NAME}=x").as_bytes()]),
        Err(CredentialError::MissingSeparator)
    );
}

#[test]
fn the_grpc_macaroon_header_carries_the_preimage_in_a_caveat() {
    let mut m = mac();
    m.add_first_party_caveat(format!("preimage={PROOF}").as_bytes())
        .unwrap();
    let header = format!(" {} ", hex::encode_upper(m.encode()));
    let c = Credential::from_macaroon_header(header.as_bytes()).unwrap();
    assert_eq!(c.macaroon(), m.encode());
    assert_eq!(c.proof().unwrap().expose_secret_hex(), PROOF);

    assert_eq!(
        Credential::from_macaroon_header(hex::encode(mac().encode()).as_bytes()),
        Err(CredentialError::PreimageCaveat)
    );
    let mut twice = m.clone();
    twice
        .add_first_party_caveat(format!("preimage={}", "00".repeat(32)).as_bytes())
        .unwrap();
    assert_eq!(
        Credential::from_macaroon_header(hex::encode(twice.encode()).as_bytes()),
        Err(CredentialError::PreimageCaveat)
    );
    let mut short = mac();
    short.add_first_party_caveat(b"preimage=abcd").unwrap();
    assert_eq!(
        Credential::from_macaroon_header(hex::encode(short.encode()).as_bytes()),
        Err(CredentialError::PreimageCaveat)
    );
    assert_eq!(
        Credential::from_macaroon_header(b"zz"),
        Err(CredentialError::BadHex)
    );
    assert!(matches!(
        Credential::from_macaroon_header(b"0102"),
        Err(CredentialError::Macaroon(_))
    ));
}

#[test]
fn debug_output_never_shows_the_credential() {
    let c = Credential::parse_token(token(PROOF).as_bytes()).unwrap();
    let s = format!("{c:?}");
    assert!(!s.contains("0123"), "{s}");
    assert!(!s.contains(&mac().to_base64()[..8]), "{s}");
}

#[test]
fn formatted_credentials_parse_back() {
    let text = format_credential(&mac(), Some(&[0xab; 32]));
    let c = Credential::parse_token(text.as_bytes()).unwrap();
    assert_eq!(c.proof().unwrap().expose_secret(), &[0xab; 32]);
    assert_eq!(c.to_token_string(), text);
    let header = c.to_authorization(Scheme::Lsat);
    assert_eq!(
        Credential::parse_authorization(header.as_bytes()).unwrap(),
        Some(c)
    );
}

proptest! {
    #[test]
    fn the_fast_path_agrees_with_the_full_grammar(
        b64 in "[A-Za-z0-9+/=_,: -]{0,40}", sep in ":{0,2}", proof in "[0-9a-fA-F:g ]{0,66}"
    ) {
        for text in [format!("{b64}{sep}{proof}"), format!("{}{sep}{proof}", mac().to_base64())] {
            let token = text.as_bytes();
            prop_assert_eq!(Credential::parse_token(token), Credential::parse_full(token), "{}", text);
        }
    }

    #[test]
    fn parsing_arbitrary_header_values_never_panics(value in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Credential::parse_authorization(&value);
        let _ = Credential::parse_token(&value);
        let _ = Credential::from_cookie_headers([value.as_slice()]);
        let _ = Credential::from_macaroon_header(&value);
    }

    #[test]
    fn parsing_near_valid_header_values_never_panics(
        scheme in "(L402|lsat|LSAT|Bearer)", sp in " {0,3}",
        b64 in "[A-Za-z0-9+/=_,-]{0,60}", sep in ":{0,2}", proof in "[0-9a-fA-F:g]{0,66}"
    ) {
        let value = format!("{scheme}{sp}{b64}{sep}{proof}");
        if let Ok(Some(c)) = Credential::parse_authorization(value.as_bytes()) {
            // Whatever parsed re-serialises to something that parses to the same value.
            let again = Credential::parse_authorization(c.to_authorization(Scheme::L402).as_bytes());
            prop_assert_eq!(again, Ok(Some(c)));
        }
    }

    #[test]
    fn credentials_round_trip(macs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..100), 1..=4), proof in proptest::option::of(any::<[u8; 32]>())) {
        let text = macs.iter().map(|m| encoding::encode_base64(m)).collect::<Vec<_>>().join(",")
            + ":" + &proof.map(hex::encode).unwrap_or_default();
        let c = Credential::parse_token(text.as_bytes()).unwrap();
        prop_assert_eq!(c.macaroons().map(<[u8]>::to_vec).collect::<Vec<_>>(), macs);
        prop_assert_eq!(c.proof().map(|p| *p.expose_secret()), proof);
        prop_assert_eq!(c.to_token_string(), text);
    }
}
