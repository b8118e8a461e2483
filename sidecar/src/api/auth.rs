//! Bearer tokens (internal and admin listeners), compared in constant time, and the client
//! network prefix used for per-client limits (IPv4 /24, IPv6 /48: one subscriber's range).

use std::net::IpAddr;

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::SecretBytes;

/// Checks `Authorization: Bearer <token>` when a token is configured.
pub fn check_bearer(headers: &HeaderMap, expected: Option<&SecretBytes>) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
    // Length is not secret (it is in the config); content is compared in constant time.
    if presented.len() == expected.0.len() && bool::from(presented.ct_eq(&expected.0)) {
        Ok(())
    } else {
        Err(ApiError::unauthorized("wrong bearer token"))
    }
}

/// `203.0.113.0/24` or `2001:db8:1::/48`. IPv4-mapped IPv6 addresses count as IPv4.
pub fn client_prefix(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{net}/48")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_group_a_subscriber_network() {
        assert_eq!(
            client_prefix("203.0.113.77".parse().unwrap()),
            "203.0.113.0/24"
        );
        assert_eq!(
            client_prefix("2001:db8:1:2:3::9".parse().unwrap()),
            "2001:db8:1::/48"
        );
        assert_eq!(
            client_prefix("::ffff:198.51.100.7".parse().unwrap()),
            "198.51.100.0/24"
        );
    }

    #[test]
    fn a_bearer_token_must_match_exactly() {
        let expected = SecretBytes(b"s3cret".to_vec());
        let mut headers = HeaderMap::new();
        assert!(check_bearer(&headers, Some(&expected)).is_err());
        headers.insert("authorization", "Bearer s3cre".parse().unwrap());
        assert!(check_bearer(&headers, Some(&expected)).is_err());
        headers.insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(check_bearer(&headers, Some(&expected)).is_ok());
        assert!(check_bearer(&HeaderMap::new(), None).is_ok());
    }
}
