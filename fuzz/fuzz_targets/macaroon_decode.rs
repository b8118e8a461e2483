//! Macaroon V2 decoder on arbitrary bytes: never panics; anything accepted re-encodes to exactly
//! the input (one encoding per macaroon) and round-trips through base64.
#![no_main]

use l402::{Macaroon, MacaroonRef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = MacaroonRef::decode(data) {
        let owned = view.to_owned_macaroon();
        assert_eq!(owned.encode(), data);
        assert_eq!(owned.caveats().len(), view.caveat_count());
        assert_eq!(Macaroon::from_base64(&owned.to_base64()), Ok(owned));
    }
});
