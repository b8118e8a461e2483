//! The terms a machine can read (public listener, no authentication): every priced route with
//! its mode, amount and token lifetime, and for deposits the exact terms a visitor agrees to by
//! paying — idle timeout, session cap, what forfeits, how to leave, how late a refund can come.
//! Also the same routes in the `/.well-known/l402-services` manifest format of the nginx L402
//! module (docs/programs.md cites its fields). Trap paths are secret by design: the terms say that
//! they exist, never which ones.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lightning_wall_contract::paths;
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use crate::config::{Config, Mode, PathMatch, RouteConfig};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(paths::TERMS, get(terms))
        .route(paths::L402_SERVICES, get(manifest))
}

/// Version of the terms document; bumped when a field changes meaning.
const TERMS_VERSION: u32 = 1;

#[derive(Serialize, Debug)]
pub struct Terms {
    pub version: u32,
    /// The `services=` name every token carries.
    pub service: &'static str,
    /// Where the wall's own endpoints are (same origin as the protected site).
    pub endpoints: Endpoints,
    pub routes: Vec<RouteTerms>,
}

#[derive(Serialize, Debug)]
pub struct Endpoints {
    pub terms: String,
    pub l402_services: String,
    pub deposit_status: String,
    pub leave: String,
}

#[derive(Serialize, Debug)]
pub struct RouteTerms {
    pub id: String,
    /// Host (null: any), path (`{"prefix": …}`, `{"exact": …}` or `{"regex": …}`, null: any)
    /// and methods (empty: any), as the filter matches them, first route first.
    #[serde(rename = "match")]
    pub matcher: MatchTerms,
    pub mode: Mode,
    pub amount_sat: u64,
    pub token_lifetime_s: u64,
    /// What goes into `Authorization` once paid.
    pub credential: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deposit: Option<DepositTerms>,
}

#[derive(Serialize, Debug)]
pub struct MatchTerms {
    pub host: Option<String>,
    pub path: Option<PathMatch>,
    /// The path match is not published because it could name a trap path (a regex on a route
    /// with trap paths, or a path inside one); `path` is then null.
    pub path_withheld: bool,
    pub methods: Vec<String>,
    /// Query conditions (`{"wc-ajax": "checkout"}`, `{"preview": {"present": true}}`), all of
    /// which must hold; left out when the route has none.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub query: std::collections::BTreeMap<String, crate::config::QueryValue>,
}

#[derive(Serialize, Debug)]
pub struct DepositTerms {
    /// A hold invoice: the payment stays pending in the payer's wallet and is cancelled (sats
    /// back) unless abuse forfeits it.
    pub refundable: bool,
    /// No request for this long: refunded.
    pub idle_timeout_s: u64,
    /// Held this long in total: refunded, whatever the activity.
    pub session_cap_s: u64,
    /// Without abuse, the deposit is refunded at the latest this long after it was held (the
    /// session cap; a crashed client gets it back sooner, at the idle timeout).
    pub refund_within_s: u64,
    pub forfeit_on: ForfeitTerms,
    /// `GET` with the macaroon (`Authorization: L402 <macaroon>:`) until `credential` appears.
    pub status_url: String,
    /// `POST` with the macaroon: refunded at once.
    pub leave_url: String,
}

/// The kinds of abuse that forfeit on this route.
#[derive(Serialize, Debug)]
pub struct ForfeitTerms {
    /// Some paths no honest visitor requests forfeit on one request; which ones is not said.
    pub trap_paths: bool,
    /// More requests than this per token forfeit (null: no limit).
    pub rate_limit: Option<lightning_wall_contract::bootstrap::Rate>,
    /// This many 4xx/5xx answers per token within the window forfeit (null: not checked).
    pub error_storm: Option<lightning_wall_contract::bootstrap::ErrorStorm>,
    /// The protected application may forfeit a deposit by its own verdict on a response.
    pub upstream_verdict: bool,
}

fn endpoints() -> Endpoints {
    Endpoints {
        terms: paths::TERMS.into(),
        l402_services: paths::L402_SERVICES.into(),
        deposit_status: paths::DEPOSIT_STATUS.into(),
        leave: paths::LEAVE.into(),
    }
}

/// The route's path match as it may be published: withheld when it could name a trap path (the
/// operator often lists a trap in the route's own regex, e.g. `^/(members/.*|wp-login\.php)$`).
fn published_path(r: &RouteConfig) -> Option<Option<&PathMatch>> {
    let traps = r.deposit.as_ref().map_or(&[][..], |d| &d.trap_paths[..]);
    match &r.matcher.path {
        _ if traps.is_empty() => Some(r.matcher.path.as_ref()),
        Some(PathMatch::Regex(_)) => None,
        Some(PathMatch::Exact(p) | PathMatch::Prefix(p))
            if traps.iter().any(|t| p.starts_with(t.as_str())) =>
        {
            None
        }
        path => Some(path.as_ref()),
    }
}

fn priced(config: &Config) -> impl Iterator<Item = &RouteConfig> {
    config.routes.iter().filter(|r| r.mode != Mode::Free)
}

impl Terms {
    pub fn of(config: &Config) -> Terms {
        let endpoints = endpoints();
        let routes = priced(config)
            .map(|r| RouteTerms {
                id: r.id.clone(),
                matcher: MatchTerms {
                    host: r.matcher.host.clone(),
                    path: published_path(r).flatten().cloned(),
                    path_withheld: published_path(r).is_none(),
                    methods: r.matcher.methods.clone(),
                    query: r.matcher.query.clone(),
                },
                mode: r.mode,
                amount_sat: r.amount_sat(),
                token_lifetime_s: r.token_lifetime.as_secs(),
                credential: match r.mode {
                    Mode::Deposit => "L402 <macaroon>:<receipt hex from status_url>",
                    _ => "L402 <macaroon>:<preimage hex>",
                },
                deposit: r.deposit.as_ref().map(|d| DepositTerms {
                    refundable: true,
                    idle_timeout_s: d.idle_timeout.as_secs(),
                    session_cap_s: d.session_cap.as_secs(),
                    refund_within_s: d.session_cap.as_secs(),
                    forfeit_on: ForfeitTerms {
                        trap_paths: !d.trap_paths.is_empty(),
                        rate_limit: d.rate_limit.map(super::policy::wire_rate),
                        error_storm: d.error_storm.map(|e| {
                            lightning_wall_contract::bootstrap::ErrorStorm {
                                errors: e.errors,
                                within_s: e.within.as_secs(),
                            }
                        }),
                        upstream_verdict: true,
                    },
                    status_url: endpoints.deposit_status.clone(),
                    leave_url: endpoints.leave.clone(),
                }),
            })
            .collect();
        Terms {
            version: TERMS_VERSION,
            service: super::policy::SERVICE,
            endpoints,
            routes,
        }
    }
}

/// The routes in the nginx L402 module's capability-manifest format (`version` "1", `routes[]`
/// with `path`, `price.amount_msat`, `macaroon_timeout_secs`; docs/programs.md). Its `path` is
/// an nginx location path: a prefix or exact path is written as is, a regex as `~ <regex>`. Fields
/// it does not have are added under `lightning_wall` so its readers can skip them.
pub fn l402_services(config: &Config) -> Value {
    let terms_url = endpoints().terms;
    let routes: Vec<Value> = priced(config)
        .map(|r| {
            let path = match published_path(r) {
                None => "(withheld: could name a trap path)".to_owned(),
                Some(None) => "/".to_owned(),
                Some(Some(PathMatch::Exact(p) | PathMatch::Prefix(p))) => p.clone(),
                Some(Some(PathMatch::Regex(p))) => format!("~ {p}"),
            };
            json!({
                "path": path,
                "price": {"type": "static", "amount_msat": r.amount_sat().saturating_mul(1000)},
                "macaroon_timeout_secs": r.token_lifetime.as_secs(),
                "lightning_wall": {"route_id": r.id, "mode": r.mode, "terms": terms_url},
            })
        })
        .collect();
    json!({
        "version": "1",
        "service": {},
        "payment_methods": [{"type": "lightning"}],
        "routes": routes,
    })
}

fn cached_json(body: Value) -> Response {
    // Terms change only with the config: a short public cache spares the sidecar.
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        )],
        Json(body),
    )
        .into_response()
}

async fn terms(State(state): State<AppState>) -> Response {
    cached_json(serde_json::to_value(Terms::of(&state.config())).unwrap_or(Value::Null))
}

async fn manifest(State(state): State<AppState>) -> Response {
    cached_json(l402_services(&state.config()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            r#"
node: { backend: dev }
routes:
  - id: open
    match: { path: { exact: /free } }
    mode: free
  - id: api
    match: { path: { prefix: /v1/ }, methods: [GET] }
    mode: pay
    token_lifetime: 10m
    pay: { amount_sat: 21 }
  - id: wall
    match: { host: shop.example, path: { regex: "^/(s/[0-9]+|secret-trap-xyz)$" } }
    mode: deposit
    token_lifetime: 2h
    deposit:
      amount_sat: 1000
      idle_timeout: 5m
      session_cap: 1h
      trap_paths: [/secret-trap-xyz]
      rate_limit: { requests: 50, per: 10s }
      error_storm: { errors: 20, within: 1m }
"#,
        )
        .unwrap()
    }

    #[test]
    fn the_terms_list_every_priced_route_with_its_deposit_terms() {
        let terms = Terms::of(&config());
        assert_eq!(terms.routes.len(), 2, "free routes are not priced");
        let api = &terms.routes[0];
        assert_eq!(
            (
                api.id.as_str(),
                api.mode,
                api.amount_sat,
                api.token_lifetime_s
            ),
            ("api", Mode::Pay, 21, 600)
        );
        assert!(api.deposit.is_none());
        let wall = &terms.routes[1];
        assert_eq!((wall.mode, wall.amount_sat), (Mode::Deposit, 1000));
        let d = wall.deposit.as_ref().unwrap();
        assert_eq!((d.idle_timeout_s, d.session_cap_s), (300, 3600));
        assert_eq!(d.refund_within_s, 3600);
        assert!(d.forfeit_on.trap_paths && d.forfeit_on.upstream_verdict);
        assert_eq!(
            d.forfeit_on.rate_limit.map(|r| (r.requests, r.per_s)),
            Some((50, 10))
        );
        assert_eq!(
            d.forfeit_on.error_storm.map(|e| (e.errors, e.within_s)),
            Some((20, 60))
        );
        assert!(wall.matcher.path.is_none() && wall.matcher.path_withheld);
        assert!(!api.matcher.path_withheld);
        assert_eq!(d.status_url, "/.well-known/lightning-wall/deposit");
        assert_eq!(d.leave_url, "/.well-known/lightning-wall/leave");
    }

    #[test]
    fn the_terms_say_that_trap_paths_exist_never_which() {
        let config = config();
        let text = serde_json::to_string(&Terms::of(&config)).unwrap();
        assert!(text.contains(r#""trap_paths":true"#), "{text}");
        assert!(!text.contains("secret-trap-xyz"), "{text}");
        let manifest = l402_services(&config).to_string();
        assert!(!manifest.contains("secret-trap-xyz"), "{manifest}");
    }

    #[test]
    fn the_l402_services_manifest_uses_the_nginx_module_fields() {
        let m = l402_services(&config());
        assert_eq!(m["version"], "1");
        let routes = m["routes"].as_array().unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0]["path"], "/v1/");
        assert_eq!(routes[0]["price"]["type"], "static");
        assert_eq!(routes[0]["price"]["amount_msat"], 21_000);
        assert_eq!(routes[0]["macaroon_timeout_secs"], 600);
        assert_eq!(routes[1]["path"], "(withheld: could name a trap path)");
        assert_eq!(routes[1]["lightning_wall"]["mode"], "deposit");
    }
}
