//! Tests of the macaroon codec: the pymacaroons reference vectors, every malformed input with its
//! reason, the bounds, and round-trip properties.
use super::*;
use crate::identifier::Identifier;
use crate::keys::{PaymentHash, Preimage, TokenId};
use proptest::prelude::*;

/// docs/wire-format.md "Test vector (checked against pymacaroons)".
fn vector_identifier() -> [u8; 66] {
    let hash = Preimage::from_bytes([1; 32]).payment_hash();
    Identifier::new(hash, TokenId([2; 32])).encode()
}

#[test]
fn reference_vector_without_caveats_matches_signature_and_encoding() {
    let root = RootKey::from_bytes([0; 32]);
    let mac = Macaroon::new(&root, &vector_identifier(), Some("lsat")).unwrap();
    assert_eq!(
        hex::encode(mac.signature()),
        "bd46bcafdf21897e5c6cfb6100bb3978bbce19e4615274ebb1f00bca0950ce92"
    );
    let url_safe = "AgEEbHNhdAJCAAByzW6EIsQH-20JhpDxEwt97X7C9_Xh0wvZ1SHwFTY3kwICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAAAGIL1GvK_fIYl-XGz7YQC7OXi7zhnkYVJ067HwC8oJUM6S";
    let decoded = Macaroon::from_base64(url_safe).unwrap();
    assert_eq!(decoded, mac);
    assert!(decoded.verify_signature(&root));
    // Our emitted form is the same bytes in standard padded base64.
    assert_eq!(
        mac.to_base64().replace('+', "-").replace('/', "_"),
        url_safe
    );
}

#[test]
fn reference_vector_with_caveats_matches_signature() {
    let root = RootKey::from_bytes([0; 32]);
    let mut mac = Macaroon::new(&root, &vector_identifier(), Some("lsat")).unwrap();
    for c in [
        "services=svc:0",
        "svc_capabilities=",
        "svc_valid_until=1700000000",
    ] {
        mac.add_first_party_caveat(c.as_bytes()).unwrap();
    }
    assert_eq!(
        hex::encode(mac.signature()),
        "bb62385ee071a7eabf2c9eaefe4be8e0ee4011d59aaf5aa958eff925aa27cf7e"
    );
    let bytes = mac.encode();
    let view = MacaroonRef::decode(&bytes).unwrap();
    assert!(view.verify_signature(&root));
    assert!(!view.verify_signature(&RootKey::from_bytes([1; 32])));
    assert_eq!(view.caveat_count(), 3);
    assert_eq!(
        view.caveats().nth(2),
        Some(&b"svc_valid_until=1700000000"[..])
    );
}

fn sample() -> Macaroon {
    let root = RootKey::from_bytes([9; 32]);
    let ident = Identifier::new(PaymentHash([3; 32]), TokenId([4; 32])).encode();
    let mut mac = Macaroon::new(&root, &ident, Some("lightning-wall")).unwrap();
    mac.add_first_party_caveat(b"services=svc:0").unwrap();
    mac
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = sample().encode();
    let len = bytes.len();
    bytes.push(0);
    assert_eq!(
        MacaroonRef::decode(&bytes).unwrap_err(),
        MacaroonError::TrailingBytes { at: len, count: 1 }
    );
}

#[test]
fn third_party_caveats_are_decoded_and_rejected() {
    // Header, then a caveat with identifier and verification id, as go-macaroon writes a
    // third-party caveat (location field first when present).
    let mac = sample();
    let mut bytes = vec![2];
    put_field(&mut bytes, TAG_IDENTIFIER, mac.identifier());
    bytes.push(EOS);
    put_field(&mut bytes, TAG_IDENTIFIER, b"third party caveat id");
    put_field(&mut bytes, TAG_VID, &[7; 48]);
    bytes.push(EOS);
    bytes.push(EOS);
    put_field(&mut bytes, TAG_SIGNATURE, &[0; 32]);
    assert_eq!(
        MacaroonRef::decode(&bytes).unwrap_err(),
        MacaroonError::ThirdPartyCaveat { index: 0 }
    );
    let mut with_location = vec![2];
    put_field(&mut with_location, TAG_IDENTIFIER, mac.identifier());
    with_location.push(EOS);
    put_field(&mut with_location, TAG_LOCATION, b"https://auth.example");
    put_field(&mut with_location, TAG_IDENTIFIER, b"cav");
    put_field(&mut with_location, TAG_VID, &[7; 48]);
    with_location.extend([EOS, EOS]);
    put_field(&mut with_location, TAG_SIGNATURE, &[0; 32]);
    assert_eq!(
        MacaroonRef::decode(&with_location).unwrap_err(),
        MacaroonError::ThirdPartyCaveat { index: 0 }
    );
}

#[test]
fn malformed_headers_are_rejected_with_their_reason() {
    assert_eq!(MacaroonRef::decode(&[]).unwrap_err(), MacaroonError::Empty);
    assert_eq!(
        MacaroonRef::decode(b"0012location x").unwrap_err(),
        MacaroonError::UnsupportedFormat { version: b'0' }
    );
    assert_eq!(
        MacaroonRef::decode(&vec![2; MAX_MACAROON_LEN + 1]).unwrap_err(),
        MacaroonError::TooLarge {
            len: MAX_MACAROON_LEN + 1
        }
    );
    // Identifier before location: tags must increase.
    let mut bytes = vec![2];
    put_field(&mut bytes, TAG_IDENTIFIER, b"id");
    put_field(&mut bytes, TAG_LOCATION, b"loc");
    assert_eq!(
        MacaroonRef::decode(&bytes).unwrap_err(),
        MacaroonError::UnexpectedField { tag: 1, at: 5 }
    );
    // No identifier.
    let mut bytes = vec![2];
    put_field(&mut bytes, TAG_LOCATION, b"loc");
    bytes.push(EOS);
    assert_eq!(
        MacaroonRef::decode(&bytes).unwrap_err(),
        MacaroonError::MissingIdentifier
    );
    // Non-minimal varint (0x82 0x00 == 2).
    let bytes = [2, TAG_IDENTIFIER, 0x82, 0x00, b'i', b'd'];
    assert_eq!(
        MacaroonRef::decode(&bytes).unwrap_err(),
        MacaroonError::BadVarint { at: 2 }
    );
    // Length beyond the input.
    let bytes = [2, TAG_IDENTIFIER, 0x7f, b'i'];
    assert!(matches!(
        MacaroonRef::decode(&bytes).unwrap_err(),
        MacaroonError::Truncated { .. }
    ));
}

#[test]
fn signature_must_be_exactly_32_bytes() {
    let mac = sample();
    let mut bytes = mac.encode();
    let sig_len_at = bytes.len() - 33;
    bytes[sig_len_at] = 31;
    bytes.pop();
    assert_eq!(
        MacaroonRef::decode(&bytes).unwrap_err(),
        MacaroonError::BadSignatureField
    );
}

#[test]
fn caveat_count_and_sizes_are_bounded() {
    let mut mac = sample();
    for _ in 1..MAX_CAVEATS {
        mac.add_first_party_caveat(b"x=y").unwrap();
    }
    assert_eq!(
        mac.add_first_party_caveat(b"x=y"),
        Err(MacaroonError::TooManyCaveats)
    );
    assert!(matches!(
        sample().add_first_party_caveat(&[b'a'; MAX_CAVEAT_LEN + 1]),
        Err(MacaroonError::CaveatLength { .. })
    ));
    assert!(matches!(
        sample().add_first_party_caveat(b""),
        Err(MacaroonError::CaveatLength { .. })
    ));
    // A hand-built 65-caveat macaroon is refused by the decoder too.
    let mut bytes = vec![2];
    put_field(&mut bytes, TAG_IDENTIFIER, b"id");
    bytes.push(EOS);
    for _ in 0..=MAX_CAVEATS {
        put_field(&mut bytes, TAG_IDENTIFIER, b"x=y");
        bytes.push(EOS);
    }
    bytes.push(EOS);
    put_field(&mut bytes, TAG_SIGNATURE, &[0; 32]);
    assert_eq!(
        MacaroonRef::decode(&bytes).unwrap_err(),
        MacaroonError::TooManyCaveats
    );
}

#[test]
fn attenuation_by_the_holder_keeps_the_signature_valid() {
    let root = RootKey::from_bytes([9; 32]);
    let mut mac = sample();
    mac.add_first_party_caveat(b"svc_valid_until=5").unwrap();
    let decoded = Macaroon::decode(&mac.encode()).unwrap();
    assert!(decoded.verify_signature(&root));
    // Dropping a caveat (the only way to widen) breaks the chain.
    let mut stripped = Macaroon::new(&root, decoded.identifier(), None).unwrap();
    stripped.signature = *decoded.signature();
    stripped.caveats = vec![b"services=svc:0".to_vec()];
    assert!(!stripped.verify_signature(&root));
}

fn arb_macaroon() -> impl Strategy<Value = Macaroon> {
    (
        proptest::option::of("[ -~]{0,40}"),
        proptest::collection::vec(any::<u8>(), 1..100),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..200), 0..10),
        any::<[u8; 32]>(),
    )
        .prop_map(|(location, identifier, caveats, root)| {
            let root = RootKey::from_bytes(root);
            let mut mac = Macaroon::new(&root, &identifier, location.as_deref()).unwrap();
            for c in caveats {
                mac.add_first_party_caveat(&c).unwrap();
            }
            mac
        })
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(mac in arb_macaroon()) {
        let bytes = mac.encode();
        prop_assert_eq!(bytes.len(), mac.encoded_len());
        let decoded = Macaroon::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &mac);
        prop_assert_eq!(Macaroon::from_base64(&mac.to_base64()).unwrap(), mac);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics_and_accepted_bytes_reencode_exactly(
        bytes in proptest::collection::vec(any::<u8>(), 0..300)
    ) {
        if let Ok(m) = Macaroon::decode(&bytes) {
            prop_assert_eq!(m.encode(), bytes);
        }
    }

    #[test]
    fn mutating_an_encoded_macaroon_never_panics(mac in arb_macaroon(), pos in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = mac.encode();
        let i = pos % bytes.len();
        bytes[i] = byte;
        if let Ok(m) = Macaroon::decode(&bytes) {
            prop_assert_eq!(m.encode(), bytes);
        }
    }
}
