//! Bearer tokens (internal and admin listeners), compared in constant time. A handler states who
//! may call it by taking [`InternalCaller`] or [`AdminCaller`]: axum checks the token before the
//! handler runs, so no handler can forget to.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;
use crate::config::SecretBytes;

/// The request carries the internal token (the filter), or none is configured.
pub struct InternalCaller;

impl FromRequestParts<AppState> for InternalCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        check_bearer(&parts.headers, state.internal_token.as_deref())?;
        Ok(InternalCaller)
    }
}

/// The request carries the admin token (the operator).
pub struct AdminCaller;

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match state.admin_token.as_deref() {
            Some(token) => check_bearer(&parts.headers, Some(token))?,
            // Never open: no token configured means no admin API.
            None => {
                return Err(ApiError::unauthorized(
                    "the admin API has no token configured",
                ));
            }
        }
        Ok(AdminCaller)
    }
}

/// Checks `Authorization: Bearer <token>` when a token is configured.
pub fn check_bearer(headers: &HeaderMap, expected: Option<&SecretBytes>) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
    if token_matches(presented, expected) {
        Ok(())
    } else {
        Err(ApiError::unauthorized("wrong bearer token"))
    }
}

/// Whether `presented` is the token (a header's or the dashboard login form's).
pub fn token_matches(presented: &[u8], expected: &SecretBytes) -> bool {
    // Length is not secret (it is in the config); content is compared in constant time.
    presented.len() == expected.0.len() && bool::from(presented.ct_eq(&expected.0))
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
