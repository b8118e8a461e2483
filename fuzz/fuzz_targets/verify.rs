//! The whole verify path. Input byte 0 picks the mode; the rest is used twice: as an
//! `Authorization` value (arbitrary credentials must not panic), and as caveats (one per line)
//! a holder appends to a valid token: whatever still verifies must not have been widened.
#![no_main]

use l402::{
    Credential, KeyRing, Mode, Preimage, RequestContext, TokenId, TokenSpec, format_credential,
    verify, verify_authorization,
};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_800_000_000;
const EXPIRY: u64 = NOW + 600;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mode = if selector & 1 == 0 {
        Mode::Pay
    } else {
        Mode::Deposit
    };
    let Ok(ring) = KeyRing::from_keys([("k1", [0x11; 32]), ("k2", [0x22; 32])]) else {
        return;
    };
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
    let Ok(mut mac) = ring.mint("k2", &spec) else {
        return;
    };
    for caveat in rest.split(|&b| b == b'\n') {
        if mac.add_first_party_caveat(caveat).is_err() {
            return;
        }
    }
    let proof = match mode {
        Mode::Pay => *preimage.expose_secret(),
        Mode::Deposit => {
            let Ok(id) = l402::Identifier::decode(mac.identifier()) else {
                return;
            };
            let Some(entry) = ring.get("k2") else { return };
            *entry.deposit_receipt(&id).expose_secret()
        }
    };
    let Ok(credential) = Credential::parse_token(format_credential(&mac, Some(&proof)).as_bytes())
    else {
        panic!("a minted credential must parse");
    };
    if let Ok(token) = verify(&ring, &credential, &ctx) {
        assert_eq!(token.mode, mode);
        assert_eq!(token.route, "docs");
        assert!(token.valid_until <= EXPIRY);
        assert!(ctx.now_unix < token.valid_until);
        assert_eq!(ctx.method, "GET");
    }
});
