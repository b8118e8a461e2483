//! The operator dashboard on the admin listener: held deposits, budget in use, money, refunds
//! and forfeits by day and trigger, and a visitor's deposit found by the reference on their wall
//! page. HTML for a browser (signed in with the admin token through a form that sets a session
//! cookie, `session`), the same data as JSON for scripts (bearer token). Read-only: it never
//! changes a deposit, so a stolen session cookie cannot move money.

pub mod page;
pub mod session;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::admin::deposit_json;
use super::auth::{AdminCaller, token_matches};
use super::error::ApiError;
use crate::deposit::reference;
use crate::doctor::rules::Demand;
use crate::ids::Timestamp;
use crate::store::{Store, StoreError};
use page::{Lookup, Overview};

const CSS: &str = include_str!("dashboard/dashboard.css");

/// Same-origin style and forms only: no script at all, nothing may frame the page.
const CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// Deposits a reference may match before the answer is "ambiguous" (and listed).
const MAX_MATCHES: u32 = 10;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/dashboard", get(dashboard))
        .route("/admin/dashboard.css", get(css))
        .route("/admin/login", post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/v1/dashboard", get(dashboard_json))
        .route("/admin/v1/lookup", get(lookup_json))
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// The sign-in page (also what any dashboard page answers without a session).
pub fn login_page(status: StatusCode, problem: Option<&str>) -> Response {
    html(status, page::login(problem))
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        CSS,
    )
        .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<AppState>,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Some(expected) = state.admin_token.as_deref() else {
        return login_page(
            StatusCode::UNAUTHORIZED,
            Some("The admin API has no token configured (listeners.admin.token)."),
        );
    };
    let Ok(Form(form)) = form else {
        return login_page(StatusCode::BAD_REQUEST, Some("Type the admin token."));
    };
    // The file may end with a newline the operator copied along.
    if !token_matches(form.token.trim().as_bytes(), expected) {
        return login_page(
            StatusCode::UNAUTHORIZED,
            Some("That is not the admin token."),
        );
    }
    let Some(cookie) = session::issue(&expected.0, Timestamp::now()) else {
        return login_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some("Could not start a session."),
        );
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_static("/admin/dashboard"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&session::set_cookie(&cookie)) {
        headers.insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout() -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_static("/admin/dashboard"),
    );
    if let Ok(value) = HeaderValue::from_str(&session::clear_cookie()) {
        headers.insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupQuery {
    #[serde(rename = "ref")]
    reference: Option<String>,
}

/// Finds the deposits a reference can stand for (the parsing and its limits: deposit/reference.rs).
async fn find(store: &Store, text: &str) -> Result<Lookup, StoreError> {
    let text = text.trim().to_owned();
    let range = match reference::parse(&text) {
        Ok(range) => range,
        Err(e) => {
            return Ok(Lookup::Bad {
                text,
                reason: e.to_string(),
            });
        }
    };
    let mut matches = store
        .deposits_in_reference_range(&range.low, &range.high, MAX_MATCHES)
        .await?;
    Ok(match matches.len() {
        0 => Lookup::NotFound { text },
        1 => {
            let deposit = matches.remove(0);
            let audit = store
                .audit_records(Some(&deposit.deposit.payment_hash), 20)
                .await?;
            Lookup::Found {
                deposit: Box::new(deposit),
                audit,
            }
        }
        _ => Lookup::Ambiguous { text, matches },
    })
}

async fn overview(state: &AppState, reference: Option<&str>) -> Result<Overview, ApiError> {
    let now = Timestamp::now();
    let since = Timestamp(now.0.saturating_sub(page::HISTORY_DAYS * 86_400));
    let lookup = match reference.filter(|r| !r.trim().is_empty()) {
        Some(text) => Some(find(&state.store, text).await?),
        None => None,
    };
    Ok(Overview {
        now,
        draining_since: state.store.drain_started().await?,
        money: state.store.money_summary().await?,
        demand: Demand::of(&state.config()),
        outcomes: state.store.outcomes_by_day(since).await?,
        shadow_routes: state.config().shadow_routes(),
        shadow: state.store.shadow_findings(shadow_since(now)).await?,
        lookup,
    })
}

/// The first day of the dashboard's shadow window: today and the days before it.
fn shadow_since(now: Timestamp) -> Timestamp {
    Timestamp((now.0 / 86_400).saturating_sub(page::HISTORY_DAYS - 1) * 86_400)
}

async fn dashboard(
    State(state): State<AppState>,
    _: DashboardViewer,
    query: Result<Query<LookupQuery>, QueryRejection>,
) -> Response {
    let reference = query.ok().and_then(|Query(q)| q.reference);
    match overview(&state, reference.as_deref()).await {
        Ok(o) => html(StatusCode::OK, page::overview(&o)),
        Err(e) => e.into_response(),
    }
}

async fn dashboard_json(
    State(state): State<AppState>,
    _: AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let o = overview(&state, None).await?;
    let m = &o.money;
    Ok(Json(json!({
        "now": o.now.0,
        "draining_since": o.draining_since.map(|t| t.0),
        "held": {"count": m.held_count, "amount_sat": m.held_msat / 1000},
        "awaiting_payment": m.awaiting_payment_count,
        "pending_node_actions": m.pending_actions,
        "budget": {
            "max_held_deposits": o.demand.max_held_deposits,
            "largest_deposit_sat": o.demand.largest_deposit_sat,
        },
        "forfeited_sat": m.forfeited_msat / 1000,
        "rewards_paid": {"count": m.rewards_paid_count, "amount_sat": m.rewards_paid_msat / 1000},
        "outcomes": o.outcomes.iter().map(|d| json!({
            "day": d.day.0,
            "outcome": d.outcome.as_str(),
            "trigger": d.trigger.as_str(),
            "count": d.count,
            "amount_sat": d.amount_msat / 1000,
        })).collect::<Vec<_>>(),
        "shadow_routes": o.shadow_routes,
        "shadow": o.shadow.iter().map(super::admin::shadow_json).collect::<Vec<_>>(),
    })))
}

async fn lookup_json(
    State(state): State<AppState>,
    _: AdminCaller,
    query: Result<Query<LookupQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("bad_query", format!("query: {e}")))?;
    let text = q
        .reference
        .ok_or_else(|| ApiError::bad_request("bad_reference", "give ?ref=<reference>"))?;
    Ok(match find(&state.store, &text).await? {
        Lookup::Bad { reason, .. } => {
            ApiError::bad_request("bad_reference", reason).into_response()
        }
        Lookup::NotFound { .. } => {
            ApiError::not_found("reference_not_found", "no deposit has this reference")
                .into_response()
        }
        Lookup::Found { deposit, audit } => {
            let mut body = deposit_json(&deposit);
            body["audit"] = json!(
                audit
                    .iter()
                    .map(super::admin::audit_json)
                    .collect::<Vec<_>>()
            );
            Json(body).into_response()
        }
        Lookup::Ambiguous { matches, .. } => (
            StatusCode::CONFLICT,
            Json(json!({
                "error": {
                    "code": "reference_ambiguous",
                    "message": format!(
                        "{} deposits start with this reference; give more characters",
                        matches.len()
                    ),
                },
                "matches": matches.iter().map(deposit_json).collect::<Vec<_>>(),
            })),
        )
            .into_response(),
    })
}

/// The operator's browser on the dashboard: the admin bearer token, or the session cookie the
/// login form set (session.rs). Only the read-only dashboard pages take it; every
/// API call that changes something needs the bearer token itself. Refused: the login page.
pub struct DashboardViewer;

impl FromRequestParts<AppState> for DashboardViewer {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, axum::response::Response> {
        let Some(token) = state.admin_token.as_deref() else {
            return Err(login_page(
                axum::http::StatusCode::UNAUTHORIZED,
                Some("The admin API has no token configured (listeners.admin.token)."),
            ));
        };
        if parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            return match super::auth::check_bearer(&parts.headers, Some(token)) {
                Ok(()) => Ok(DashboardViewer),
                Err(e) => Err(axum::response::IntoResponse::into_response(e)),
            };
        }
        let session = parts
            .headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(session::from_cookie_header);
        match session {
            Some(value) if session::valid(&token.0, value, crate::ids::Timestamp::now()) => {
                Ok(DashboardViewer)
            }
            _ => Err(login_page(axum::http::StatusCode::UNAUTHORIZED, None)),
        }
    }
}
