//! The one HTTP error type: a status and a stable, documented `code` (docs/internal-api.md), with
//! a message for humans. Messages never carry secrets, tokens or credentials.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::deposit::lifecycle::LifecycleError;
use crate::mint::MintError;
use crate::node::NodeError;
use crate::store::StoreError;

/// `Retry-After` of a mint refused during a drain: a drain lasts minutes (a node move), not
/// seconds.
pub const DRAIN_RETRY_AFTER_S: u32 = 300;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (503, 429).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        tracing::error!(error = %e, "store error");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the sidecar's database is unavailable",
        )
        .retry_after(5)
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> ApiError {
        match e {
            LifecycleError::Store(e) => e.into(),
            LifecycleError::Node(NodeError::Unavailable(reason)) => {
                tracing::warn!(%reason, "node unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "node_unavailable",
                    "the Lightning node is unavailable",
                )
                .retry_after(5)
            }
            LifecycleError::Node(e) => {
                tracing::error!(error = %e, "node refused a request");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "node_error",
                    "the Lightning node refused the request",
                )
            }
            LifecycleError::LimitReached { scope, .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "deposit_limit_reached",
                format!("too many open deposits {scope}; try again later"),
            )
            .retry_after(30),
            LifecycleError::NotFound => ApiError::not_found("deposit_not_found", "no such deposit"),
            LifecycleError::Random | LifecycleError::Contended => {
                tracing::error!(error = %e, "lifecycle error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "temporarily unable to serve; try again",
                )
                .retry_after(1)
            }
        }
    }
}

/// Parses a JSON body, refusing unknown fields (types use `deny_unknown_fields`).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("invalid JSON body: {e}")))
}

/// Turns a body extraction failure (too large, unreadable) into the JSON error form.
pub fn body_error(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is too large",
        )
    } else {
        ApiError::bad_request("unreadable_body", "the request body could not be read")
    }
}

impl From<MintError> for ApiError {
    fn from(e: MintError) -> ApiError {
        match e {
            MintError::UnknownRoute(_) => ApiError::not_found("unknown_route", e.to_string()),
            MintError::RouteIsFree(_) => {
                ApiError::new(StatusCode::CONFLICT, "route_is_free", e.to_string())
            }
            // 503 (not 429): the filter answers a fail-closed route with its own 503 and
            // Retry-After, and lets a fail-open route through, as for any sidecar refusal
            // (docs/operations.md "Drain").
            MintError::Draining => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                lightning_wall_contract::challenge::DRAINING,
                "the wall is drained by its operator; retry later",
            )
            .retry_after(DRAIN_RETRY_AFTER_S),
            MintError::RateLimited { retry_after_s } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "mint_rate_limited",
                "too many challenges for this client network; slow down",
            )
            .retry_after(retry_after_s),
            MintError::BudgetSpent { retry_after_s } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "mint_budget_spent",
                "too many challenges right now; retry shortly",
            )
            .retry_after(retry_after_s),
            MintError::Lifecycle(e) => e.into(),
            MintError::Random => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
            }
            MintError::NoDepositPolicy(_) | MintError::Macaroon(_) => {
                tracing::error!(error = %e, "minting failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
            MintError::Invoice(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "node_error", e.to_string())
            }
        }
    }
}
