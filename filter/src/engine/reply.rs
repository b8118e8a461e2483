//! Local replies the filter sends instead of forwarding: 401 (with a machine-readable reason),
//! 403/429 (forfeits and refusals), 503 (sidecar unavailable). Bodies are the same JSON error
//! shape as the sidecar's (`{"error": {"code", "message"}}`); nothing secret goes in them. A
//! reply a visitor should understand carries its [`Page`]: a browser gets that page instead
//! (pages.rs).

use serde::Serialize;

use super::sync::Trigger;

/// Response header carrying the stable reason of a refusal.
pub use lightning_wall_contract::headers::REASON as REASON_HEADER;

/// A local reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u32,
    /// Headers (lowercase names).
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// What a browser is shown instead of this body, if anything.
    pub page: Option<Page>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

/// What a local reply means to a visitor, so a browser can be shown a page for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Page {
    /// The deposit of `token_hex` on route number `route` was just forfeited.
    Forfeited {
        /// Index of the route in the policy (its amount).
        route: usize,
        /// The token (its reference).
        token_hex: String,
        /// Why.
        trigger: Trigger,
    },
    /// Too many challenges from the visitor's network.
    RateLimited,
    /// The payment service cannot take deposits now.
    Unavailable,
}

impl Reply {
    /// A JSON error reply with `reason` in the body and the reason header.
    pub fn error(status: u32, reason: &str, message: &str) -> Reply {
        let body = serde_json::to_vec(&ErrorBody {
            error: ErrorDetail {
                code: reason,
                message,
            },
        })
        .unwrap_or_default();
        Reply {
            status,
            headers: vec![
                ("content-type", "application/json".into()),
                ("cache-control", "no-store".into()),
                (REASON_HEADER, reason.into()),
            ],
            body,
            page: None,
        }
    }

    /// A small HTML page for a browser (no script, no outside resources), with the reason
    /// header. `title` and `body_html` are fixed texts of the filter, never request data.
    pub fn page(status: u32, reason: &str, title: &'static str, body_html: &'static str) -> Reply {
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title></head><body><h1>{title}</h1>{body_html}</body></html>"
        );
        Reply {
            status,
            headers: vec![
                ("content-type", "text/html; charset=utf-8".into()),
                ("cache-control", "no-store".into()),
                (
                    "content-security-policy",
                    "default-src 'none'; frame-ancestors 'none'".into(),
                ),
                (REASON_HEADER, reason.into()),
            ],
            body: body.into_bytes(),
            page: None,
        }
    }

    /// Shows `page` to a browser instead of this reply's body.
    pub fn with_page(mut self, page: Page) -> Reply {
        self.page = Some(page);
        self
    }

    /// Adds `Retry-After`.
    pub fn retry_after(mut self, seconds: u64) -> Reply {
        self.headers.push(("retry-after", seconds.to_string()));
        self
    }

    /// 503: the sidecar cannot be asked and the route fails closed.
    pub fn unavailable(retry_after_s: u32) -> Reply {
        Reply::error(
            503,
            "unavailable",
            "the payment service is unavailable; retry later",
        )
        .retry_after(u64::from(retry_after_s))
        .with_page(Page::Unavailable)
    }

    /// The reply's reason header value, if any.
    pub fn reason(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| *k == REASON_HEADER)
            .map(|(_, v)| v.as_str())
    }
}
