//! Bearer tokens (internal and admin listeners), compared in constant time, and the client
//! network prefix used for per-client limits (IPv4 /24, IPv6 /48: one subscriber's range).

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

#[cfg(test)]
mod tests {
    use super::*;

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
