//! The dashboard's browser session: after the operator typed the admin token into the login
//! form, the browser keeps a cookie that proves it did — an HMAC of the issue time keyed by the
//! admin token, never the token itself (so the cookie never leaks the token, and rotating the
//! token ends every session). HttpOnly (no script reads it), SameSite=Strict (no other site's
//! page sends it), Path=/admin. Pure: no I/O, the clock is a parameter.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ids::Timestamp;

pub const COOKIE: &str = "lw_admin_session";
/// A session lasts a working day; then the token is asked for again.
pub const LIFETIME_S: u64 = 12 * 3600;
/// Clock skew tolerated between replicas sharing the token (a cookie issued by one, read by
/// another).
const SKEW_S: u64 = 60;
const LABEL: &[u8] = b"lightning-wall admin dashboard session v1|";

fn mac(token: &[u8], issued_at: u64) -> Option<Hmac<Sha256>> {
    // HMAC accepts keys of any length (RFC 2104: longer ones are hashed first), so this is
    // always `Some`; no panic path all the same.
    let mut mac = Hmac::<Sha256>::new_from_slice(token).ok()?;
    mac.update(LABEL);
    mac.update(issued_at.to_string().as_bytes());
    Some(mac)
}

/// The cookie value for a session starting `now`.
pub fn issue(token: &[u8], now: Timestamp) -> Option<String> {
    let tag = mac(token, now.0)?.finalize().into_bytes();
    Some(format!("{}.{}", now.0, hex::encode(tag)))
}

/// Whether `value` is a session this token issued, not expired (compared in constant time).
pub fn valid(token: &[u8], value: &str, now: Timestamp) -> bool {
    let Some((issued, tag)) = value.split_once('.') else {
        return false;
    };
    let Ok(issued_at) = issued.parse::<u64>() else {
        return false;
    };
    if issued_at > now.0.saturating_add(SKEW_S) || now.0 >= issued_at.saturating_add(LIFETIME_S) {
        return false;
    }
    let mut bytes = [0u8; 32];
    if hex::decode_to_slice(tag, &mut bytes).is_err() {
        return false;
    }
    mac(token, issued_at).is_some_and(|m| m.verify_slice(&bytes).is_ok())
}

/// The session cookie's value in a `Cookie` header, if any.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(value: &str) -> String {
    format!("{COOKIE}={value}; Path=/admin; Max-Age={LIFETIME_S}; HttpOnly; SameSite=Strict")
}

/// `Set-Cookie` that ends the session.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp(1_800_000_000);

    #[test]
    fn a_session_is_valid_for_its_token_until_it_expires() {
        let cookie = issue(b"admin-token", T).unwrap();
        assert!(valid(b"admin-token", &cookie, T));
        assert!(valid(
            b"admin-token",
            &cookie,
            Timestamp(T.0 + LIFETIME_S - 1)
        ));
        assert!(!valid(b"admin-token", &cookie, Timestamp(T.0 + LIFETIME_S)));
        assert!(
            !valid(b"another-token", &cookie, T),
            "a rotated token ends it"
        );
    }

    #[test]
    fn the_cookie_does_not_contain_the_token() {
        let cookie = issue(b"admin-token", T).unwrap();
        assert!(!cookie.contains("admin-token"));
        assert!(!cookie.contains(&hex::encode(b"admin-token")));
    }

    #[test]
    fn a_forged_or_moved_session_is_refused() {
        let cookie = issue(b"admin-token", T).unwrap();
        let (_, tag) = cookie.split_once('.').unwrap();
        // The issue time moved forward to live longer: the tag no longer matches.
        assert!(!valid(
            b"admin-token",
            &format!("{}.{tag}", T.0 + 100),
            Timestamp(T.0 + 100)
        ));
        // Issued in the future beyond the skew.
        let later = issue(b"admin-token", Timestamp(T.0 + 3600)).unwrap();
        assert!(!valid(b"admin-token", &later, T));
        for garbage in ["", ".", "x.y", "1800000000", "1800000000.zz", "-1.00"] {
            assert!(!valid(b"admin-token", garbage, T), "{garbage:?}");
        }
    }

    #[test]
    fn the_session_is_found_among_other_cookies() {
        assert_eq!(
            from_cookie_header("a=1; lw_admin_session=123.abc; b=2"),
            Some("123.abc")
        );
        assert_eq!(from_cookie_header("lw_admin_session_x=1"), None);
        assert_eq!(from_cookie_header(""), None);
    }
}
