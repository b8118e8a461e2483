//! The `l402` crate's parsers and its whole verify path.

use l402::{
    Caveat, CaveatSet, Credential, KeyRing, Macaroon, MacaroonRef, Mode, Preimage, RequestContext,
    Scheme, TokenId, TokenSpec, format_credential, verify_authorization,
};

/// Caveat parser and attenuation fold on arbitrary bytes (one caveat per line): a caveat we
/// understand displays as text that parses back to it (not always byte-equal:
/// `wall_valid_until=09` is accepted, as Go's `strconv` does, and displays as `…=9`); a fold that
/// succeeds keeps the earliest expiry.
pub fn caveat_parse(data: &[u8]) {
    if let Ok(c) = Caveat::parse(data)
        && !matches!(c, Caveat::Unknown(_))
    {
        let text = c.to_string();
        assert_eq!(Caveat::parse(text.as_bytes()), Ok(c));
    }
    let caveats: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if let Ok(set) = CaveatSet::evaluate(caveats.iter().copied(), "wall") {
        // The folded expiry is the earliest one written for our service.
        let earliest = caveats
            .iter()
            .filter_map(|raw| match Caveat::parse(raw) {
                Ok(Caveat::ValidUntil {
                    service: "wall",
                    unix,
                }) => Some(unix),
                _ => None,
            })
            .min();
        assert_eq!(set.valid_until, earliest);
    }
}

/// `Authorization` / `Cookie` / gRPC `Macaroon` grammar and the challenge parser on arbitrary
/// bytes: whatever parses re-serialises to a value that parses to the same credential. Lines are
/// separate header values.
pub fn credential_header(data: &[u8]) {
    if let Ok(Some(c)) = Credential::parse_authorization(data) {
        let again = Credential::parse_authorization(c.to_authorization(Scheme::L402).as_bytes());
        assert_eq!(again, Ok(Some(c)));
    }
    if let Ok(c) = Credential::parse_token(data) {
        assert_eq!(
            Credential::parse_token(c.to_token_string().as_bytes()),
            Ok(c)
        );
    }
    let _ = Credential::from_authorization_values(data.split(|&b| b == b'\n'));
    let _ = Credential::from_cookie_headers(data.split(|&b| b == b'\n'));
    if let Ok(c) = Credential::from_macaroon_header(data) {
        assert!(c.proof().is_some());
    }
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = l402::parse_challenge(text);
        let _ = l402::inspect(text);
    }
}

/// Macaroon V2 decoder on arbitrary bytes: anything accepted re-encodes to exactly the input
/// (one encoding per macaroon) and round-trips through base64.
pub fn macaroon_decode(data: &[u8]) {
    if let Ok(view) = MacaroonRef::decode(data) {
        let owned = view.to_owned_macaroon();
        assert_eq!(owned.encode(), data);
        assert_eq!(owned.caveats().len(), view.caveat_count());
        assert_eq!(Macaroon::from_base64(&owned.to_base64()), Ok(owned));
    }
}

const NOW: u64 = 1_800_000_000;
const EXPIRY: u64 = NOW + 600;

/// The whole verify path. Byte 0 picks the mode; the rest is used twice: as an `Authorization`
/// value (arbitrary credentials must not panic), and as caveats (one per line) a holder appends
/// to a valid token: whatever still verifies must not have been widened.
pub fn verify(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mode = if selector & 1 == 0 {
        Mode::Pay
    } else {
        Mode::Deposit
    };
    let ring = KeyRing::from_keys([("k1", [0x11; 32]), ("k2", [0x22; 32])])
        .expect("two distinct valid key ids");
    let ctx = RequestContext {
        service: "wall",
        now_unix: NOW + u64::from(selector >> 4) * 100,
        route: "docs",
        method: if selector & 2 == 0 { "GET" } else { "POST" },
        mode,
        capability: if selector & 4 == 0 {
            None
        } else {
            Some("read")
        },
    };
    let _ = verify_authorization(&ring, [rest], &ctx);

    let preimage = Preimage::from_bytes([0x77; 32]);
    let spec = TokenSpec {
        service: "wall",
        mode,
        route: "docs",
        methods: &["GET"],
        valid_until: EXPIRY,
        payment_hash: preimage.payment_hash(),
        token_id: TokenId([0x33; 32]),
    };
    let mut mac = ring.mint("k2", &spec).expect("minting with a known key");
    for caveat in rest.split(|&b| b == b'\n') {
        if mac.add_first_party_caveat(caveat).is_err() {
            return;
        }
    }
    let proof = match mode {
        Mode::Pay => *preimage.expose_secret(),
        Mode::Deposit => {
            let id = l402::Identifier::decode(mac.identifier()).expect("a minted identifier");
            let entry = ring.get("k2").expect("k2 is in the ring");
            *entry.deposit_receipt(&id).expose_secret()
        }
    };
    let credential = Credential::parse_token(format_credential(&mac, Some(&proof)).as_bytes())
        .expect("a minted credential must parse");
    if let Ok(token) = l402::verify(&ring, &credential, &ctx) {
        assert_eq!(token.mode, mode);
        assert_eq!(token.route, "docs");
        assert!(token.valid_until <= EXPIRY);
        assert!(ctx.now_unix < token.valid_until);
        assert_eq!(ctx.method, "GET");
    }
}
