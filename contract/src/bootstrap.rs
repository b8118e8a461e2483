//! `GET /v1/bootstrap`: the routes and their rules, the mint limits and the key ring, which the
//! filter needs to decide alone. The only message that carries key material: [`Key`]'s `Debug`
//! shows the id only.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

/// The whole answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bootstrap {
    pub policy: Policy,
    /// Every master key that may have signed a live token.
    pub keys: Vec<Key>,
    /// The key new tokens are minted under.
    pub active_key_id: String,
    /// The revocation sequence number when this answer was made.
    pub revocation_seq: u64,
    /// The store's identity, 16 hex ([`crate::store_id`]): deposit tokens minted in another
    /// store are refused, and a filter that sees it change loads the revocation snapshot again.
    /// Absent from older sidecars (nothing is checked then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
}

/// A master key of the ring.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub id: String,
    /// 64 hex characters. Secret.
    pub master_key: String,
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The filter's view of the config. The sidecar versions it by hashing the serialized routes
/// and limits in this field order, so reordering fields changes the version once (every filter
/// then bootstraps again), nothing worse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Opaque; a different one in a sync answer means "bootstrap again".
    pub version: String,
    /// The `services=` name in every token.
    pub service: String,
    /// In config order; the first match wins.
    pub routes: Vec<Route>,
    /// Challenge minting per IPv4 /`ipv4_prefix_len` and per IPv6 /64.
    pub challenge_mint_rate: Rate,
    /// Per IPv6 /48. Absent from sidecars older than the per-prefix limits.
    #[serde(default)]
    pub challenge_mint_rate_ipv6_48: Option<Rate>,
    /// 24..=32. Absent from older sidecars (which counted per address: 32). A `u64` like every
    /// other number here: one integer decoder in the `.wasm`.
    #[serde(default)]
    pub ipv4_prefix_len: Option<u64>,
    /// What the filter's pages say. Absent from older sidecars: the English defaults, no site
    /// name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall: Option<Wall>,
}

/// The site's name, the pages' language and every text, as the sidecar resolved them from its
/// `wall:` configuration (defaults included; keys: `wall_text.en.json` in this crate).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wall {
    /// `None`: the pages use the request's host.
    pub site_name: Option<String>,
    /// `<html lang>`.
    pub lang: String,
    /// Key -> text.
    pub text: BTreeMap<String, String>,
}

/// One route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub id: String,
    #[serde(rename = "match")]
    pub matcher: Match,
    pub mode: RouteMode,
    pub failure_mode: FailureMode,
    /// The price (pay) or the deposit: what the filter's pages for browsers name (a forfeit's
    /// amount); the challenge answer carries its own.
    pub amount_sat: u64,
    pub token_lifetime_s: u64,
    /// Deposit routes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposit: Option<DepositRules>,
    /// Shadow mode (the route's own `shadow` or the config's): the filter challenges, charges,
    /// forfeits and refuses nothing here and reports what it would have done
    /// ([`crate::events::Event::Shadow`]). Sent only when true, so a policy without shadow
    /// keeps its version. An older filter ignores it and enforces: turn shadow on only once
    /// the filter is upgraded (docs/deployment.md "Upgrade order").
    #[serde(default, skip_serializing_if = "is_false")]
    pub shadow: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What a route matches; every part must.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    /// Exact host, `null` = any.
    pub host: Option<String>,
    /// `null` = any path.
    pub path: Option<PathMatch>,
    /// Upper case; empty = any method.
    pub methods: Vec<String>,
    /// Query-string conditions, all of which must hold (docs/configuration.md "Query
    /// conditions"); empty = any query. Left out when empty, so a policy without any keeps its
    /// version; absent from older sidecars.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<QueryParam>,
}

/// One query-string condition: the key with this value, or present with any value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryParam {
    pub key: String,
    /// `None`: the key present, any value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `{"exact": "/p"}`, `{"prefix": "/p/"}` or `{"regex": "^/p$"}` (Rust `regex-lite` syntax).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
    Regex(String),
}

/// What a route asks of visitors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteMode {
    /// No credential needed.
    Free,
    /// L402: the preimage (or the sidecar's pay receipt) proves payment.
    Pay,
    /// A held hold invoice; the deposit receipt proves it.
    Deposit,
}

impl RouteMode {
    /// As on the wire (and sent upstream in `x-lightning-wall-mode`).
    pub fn as_str(self) -> &'static str {
        match self {
            RouteMode::Free => "free",
            RouteMode::Pay => "pay",
            RouteMode::Deposit => "deposit",
        }
    }
}

/// What happens to protected requests when the sidecar cannot be asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// 503 with `Retry-After`.
    #[default]
    Closed,
    /// Let the request through unprotected.
    Open,
}

/// `requests` per `per_s` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    pub requests: u32,
    pub per_s: u64,
}

/// A deposit route's rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositRules {
    pub idle_timeout_s: u64,
    pub session_cap_s: u64,
    /// Requests per token; `null` = off.
    pub rate_limit: Option<Rate>,
    /// Secret: never in the terms or the manifest.
    pub trap_paths: Vec<String>,
    /// Upstream error answers per token; `null` = off.
    pub error_storm: Option<ErrorStorm>,
}

/// `errors` upstream 4xx answers within `within_s` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorStorm {
    pub errors: u32,
    pub within_s: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sidecar's answer as sent (sidecars before the contract crate sent the same keys
    /// sorted; a JSON reader does not care).
    const SAMPLE: &str = r#"{"policy":{"version":"3f9a0c1d2e4b5a69","service":"lightning-wall","routes":[{"id":"wall","match":{"host":null,"path":{"prefix":"/"},"methods":[]},"mode":"deposit","failure_mode":"closed","amount_sat":1000,"token_lifetime_s":3600,"deposit":{"idle_timeout_s":300,"session_cap_s":3600,"rate_limit":{"requests":120,"per_s":60},"trap_paths":["/wp-login.php"],"error_storm":{"errors":30,"within_s":60}}},{"id":"health","match":{"host":"example.com","path":{"exact":"/healthz"},"methods":["GET"]},"mode":"free","failure_mode":"open","amount_sat":0,"token_lifetime_s":3600},{"id":"api","match":{"host":null,"path":{"regex":"^/v1/"},"methods":[]},"mode":"pay","failure_mode":"closed","amount_sat":21,"token_lifetime_s":600}],"challenge_mint_rate":{"requests":10,"per_s":60},"challenge_mint_rate_ipv6_48":{"requests":160,"per_s":60},"ipv4_prefix_len":32},"keys":[{"id":"k1","master_key":"4242424242424242424242424242424242424242424242424242424242424242"}],"active_key_id":"k1","revocation_seq":42,"store_id":"0123456789abcdef"}"#;

    fn sample() -> Bootstrap {
        let route = |id: &str, path, mode, failure_mode, amount_sat, token_lifetime_s| Route {
            id: String::from(id),
            matcher: Match {
                host: None,
                path: Some(path),
                methods: Vec::new(),
                query: Vec::new(),
            },
            mode,
            failure_mode,
            amount_sat,
            token_lifetime_s,
            deposit: None,
            shadow: false,
        };
        let mut wall = route(
            "wall",
            PathMatch::Prefix("/".into()),
            RouteMode::Deposit,
            FailureMode::Closed,
            1000,
            3600,
        );
        wall.deposit = Some(DepositRules {
            idle_timeout_s: 300,
            session_cap_s: 3600,
            rate_limit: Some(Rate {
                requests: 120,
                per_s: 60,
            }),
            trap_paths: alloc::vec!["/wp-login.php".into()],
            error_storm: Some(ErrorStorm {
                errors: 30,
                within_s: 60,
            }),
        });
        let mut health = route(
            "health",
            PathMatch::Exact("/healthz".into()),
            RouteMode::Free,
            FailureMode::Open,
            0,
            3600,
        );
        health.matcher.host = Some("example.com".into());
        health.matcher.methods = alloc::vec!["GET".into()];
        let api = route(
            "api",
            PathMatch::Regex("^/v1/".into()),
            RouteMode::Pay,
            FailureMode::Closed,
            21,
            600,
        );
        Bootstrap {
            policy: Policy {
                version: "3f9a0c1d2e4b5a69".into(),
                service: "lightning-wall".into(),
                routes: alloc::vec![wall, health, api],
                challenge_mint_rate: Rate {
                    requests: 10,
                    per_s: 60,
                },
                challenge_mint_rate_ipv6_48: Some(Rate {
                    requests: 160,
                    per_s: 60,
                }),
                ipv4_prefix_len: Some(32),
                wall: None,
            },
            keys: alloc::vec![Key {
                id: "k1".into(),
                master_key: "42".repeat(32),
            }],
            active_key_id: "k1".into(),
            revocation_seq: 42,
            store_id: Some("0123456789abcdef".into()),
        }
    }

    #[test]
    fn the_documented_answer_parses_and_round_trips() {
        let parsed: Bootstrap = serde_json::from_str(SAMPLE).unwrap();
        assert_eq!(parsed, sample());
        let again: Bootstrap =
            serde_json::from_slice(&serde_json::to_vec(&sample()).unwrap()).unwrap();
        assert_eq!(again, sample());
        assert_eq!(serde_json::to_string(&sample()).unwrap(), SAMPLE);
        // As sidecars before this crate sent it: every object's keys sorted.
        let sorted = serde_json::to_string(&serde_json::to_value(sample()).unwrap()).unwrap();
        assert_eq!(
            serde_json::from_str::<Bootstrap>(&sorted).unwrap(),
            sample()
        );
    }

    #[test]
    fn an_older_sidecars_policy_without_the_per_prefix_fields_parses() {
        let old = SAMPLE
            .replace(
                r#","challenge_mint_rate_ipv6_48":{"requests":160,"per_s":60}"#,
                "",
            )
            .replace(r#","ipv4_prefix_len":32"#, "");
        let parsed: Bootstrap = serde_json::from_str(&old).unwrap();
        assert_eq!(parsed.policy.challenge_mint_rate_ipv6_48, None);
        assert_eq!(parsed.policy.ipv4_prefix_len, None);
    }

    #[test]
    fn an_older_sidecars_answer_without_a_store_id_parses_and_is_sent_without_one() {
        let old = SAMPLE.replace(r#","store_id":"0123456789abcdef""#, "");
        let parsed: Bootstrap = serde_json::from_str(&old).unwrap();
        assert_eq!(parsed.store_id, None);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), old);
    }

    #[test]
    fn query_conditions_are_sent_only_when_a_route_has_them() {
        let mut with = sample();
        with.policy.routes[2].matcher.query = alloc::vec![
            QueryParam {
                key: "wc-ajax".into(),
                value: Some("checkout".into()),
            },
            QueryParam {
                key: "preview".into(),
                value: None,
            },
        ];
        let sent = serde_json::to_string(&with).unwrap();
        assert!(
            sent.contains(
                r#""methods":[],"query":[{"key":"wc-ajax","value":"checkout"},{"key":"preview"}]}"#
            ),
            "{sent}"
        );
        assert_eq!(serde_json::from_str::<Bootstrap>(&sent).unwrap(), with);
        // Without any, the answer is byte for byte what it was (the policy version holds).
        assert!(!serde_json::to_string(&sample()).unwrap().contains("query"));
    }

    #[test]
    fn a_shadow_route_says_so_and_other_routes_are_sent_as_before() {
        let mut b = sample();
        b.policy.routes[2].shadow = true;
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json.matches(r#""shadow":true"#).count(), 1, "{json}");
        assert!(!json.contains(r#""shadow":false"#), "{json}");
        assert_eq!(serde_json::from_str::<Bootstrap>(&json).unwrap(), b);
    }

    #[test]
    fn a_keys_debug_never_shows_the_key() {
        let shown = alloc::format!("{:?}", sample());
        assert!(shown.contains("k1"));
        assert!(!shown.contains("4242"), "{shown}");
    }
}
