//! `Authorization` / `Cookie` grammar on arbitrary bytes: never panics; whatever parses
//! re-serialises to a value that parses to the same credential. Lines are separate header values.
#![no_main]

use l402::{Credential, Scheme};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = l402::parse_challenge(text);
        let _ = l402::inspect(text);
    }
});
