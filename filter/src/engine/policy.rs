//! The policy and key material the sidecar serves at bootstrap (`GET /v1/bootstrap`,
//! docs/internal-api.md), parsed and validated into what the engine uses. A bad answer is
//! refused as a whole (the previous policy stays): it must never half-apply.

use lightning_wall_contract::bootstrap::{self, Bootstrap};
use lightning_wall_contract::store_id::StoreId;
pub use lightning_wall_contract::{FailureMode, RouteMode};

use super::query::Condition;
use super::routes::{DepositRules, PathMatch, Rate, Route};

/// Most query conditions one route may have (the sidecar validates the same bound).
pub const MAX_QUERY_CONDITIONS: usize = 8;

/// The token mode a route requires (`None` for free routes).
pub fn token_mode(mode: RouteMode) -> Option<l402::Mode> {
    match mode {
        RouteMode::Free => None,
        RouteMode::Pay => Some(l402::Mode::Pay),
        RouteMode::Deposit => Some(l402::Mode::Deposit),
    }
}

/// Everything the filter needs to decide alone.
pub struct Policy {
    /// Opaque version; a different one in a sync answer means "bootstrap again".
    pub version: String,
    /// Service name in the tokens' `services` caveat.
    pub service: String,
    /// Challenge minting per client network (IPv4 /`ipv4_prefix_len`, IPv6 /64), enforced by
    /// the filter before calling the sidecar.
    pub challenge_mint_rate: Rate,
    /// Challenge minting per IPv6 /48 (a /64 rotation inside one site).
    pub challenge_mint_rate_ipv6_48: Rate,
    /// IPv4 prefix length the mint pre-limit counts per (24..=32).
    pub ipv4_prefix_len: u8,
    /// Routes in config order.
    pub routes: Vec<Route>,
    /// Master keys that may have signed a live token.
    pub keys: l402::KeyRing,
    /// The longest a token of this policy lives (token lifetime or deposit session cap).
    pub max_token_lifetime_s: u64,
    /// What the pages for browsers say (pages.rs).
    pub wall: Wall,
    /// The store the sidecar keeps its deposits in; `None` from older sidecars.
    pub store_id: Option<StoreId>,
}

/// The site's name, the pages' language and every text, as the sidecar resolved them from its
/// `wall:` configuration (defaults included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wall {
    /// The site's name; `None`: the pages use the request's host.
    pub site_name: Option<String>,
    /// `<html lang>`.
    pub lang: String,
    /// Key -> text (super::wall_text).
    pub text: super::wall_text::Texts,
}

impl Default for Wall {
    fn default() -> Self {
        Wall {
            site_name: None,
            lang: "en".into(),
            text: super::wall_text::defaults().clone(),
        }
    }
}

impl core::fmt::Debug for Policy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // KeyRing's Debug lists key ids only; keep it that way here too.
        f.debug_struct("Policy")
            .field("version", &self.version)
            .field("routes", &self.routes.len())
            .finish_non_exhaustive()
    }
}

/// Why a bootstrap answer was refused. Never contains key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not the documented JSON.
    #[error("bootstrap answer is not the documented JSON: {0}")]
    Json(String),
    /// A route's regex does not compile here.
    #[error("policy.routes[{index}].match.path.regex does not compile")]
    BadRegex {
        /// Route index.
        index: usize,
    },
    /// A field is out of bounds.
    #[error("{field}: {problem}")]
    Invalid {
        /// Where.
        field: String,
        /// What.
        problem: &'static str,
    },
    /// A key is not 64 hex characters or its id is not a valid key id.
    #[error("keys[{index}] is not a valid key")]
    BadKey {
        /// Key index.
        index: usize,
    },
}

/// The /48 mint rate when the sidecar does not send one: this many /64s of one site may mint
/// at full rate at once (docs/configuration.md, `limits.challenge_mint_rate_ipv6_48`).
pub const IPV6_48_MINT_MULTIPLE: u32 = 16;

fn rate(field: String, r: bootstrap::Rate) -> Result<Rate, PolicyError> {
    if r.per_s == 0 {
        return Err(PolicyError::Invalid {
            field,
            problem: "per_s must be at least 1",
        });
    }
    Ok(Rate {
        requests: r.requests,
        per_s: r.per_s,
    })
}

fn decode_key(hex_key: &str) -> Option<[u8; 32]> {
    let bytes = hex_key.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        let hi = (*hi as char).to_digit(16)?;
        let lo = (*lo as char).to_digit(16)?;
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// Largest regex program we compile: keeps a hostile or careless pattern from eating the VM.
const REGEX_SIZE_LIMIT: usize = 1 << 16;

impl Policy {
    /// Whether a deposit token was minted in another store than the sidecar's (contract
    /// `store_id`): its deposit is unknown there, so it may have been refunded, and the
    /// credential must not be honoured (docs/filter.md "A replaced store"). Never, when the
    /// sidecar does not name its store (older sidecars).
    pub fn minted_elsewhere(&self, token_id: &[u8; 32]) -> bool {
        self.store_id.is_some_and(|s| !s.minted(token_id))
    }

    /// Parses a bootstrap answer body.
    pub fn from_bootstrap(body: &[u8]) -> Result<Policy, PolicyError> {
        let raw: Bootstrap =
            serde_json::from_slice(body).map_err(|e| PolicyError::Json(e.to_string()))?;
        let mut routes = Vec::with_capacity(raw.policy.routes.len());
        let max_token_lifetime_s = raw
            .policy
            .routes
            .iter()
            .map(|r| {
                let cap = r.deposit.as_ref().map_or(0, |d| d.session_cap_s);
                r.token_lifetime_s.max(cap)
            })
            .max()
            .unwrap_or(0);
        for (index, r) in raw.policy.routes.into_iter().enumerate() {
            let path = match r.matcher.path {
                None => PathMatch::Any,
                Some(bootstrap::PathMatch::Exact(p)) => PathMatch::Exact(p),
                Some(bootstrap::PathMatch::Prefix(p)) => PathMatch::Prefix(p),
                Some(bootstrap::PathMatch::Regex(re)) => PathMatch::Regex(
                    regex_lite::RegexBuilder::new(&re)
                        .size_limit(REGEX_SIZE_LIMIT)
                        .build()
                        .map_err(|_| PolicyError::BadRegex { index })?,
                ),
            };
            if r.matcher.query.len() > MAX_QUERY_CONDITIONS {
                return Err(PolicyError::Invalid {
                    field: format!("policy.routes[{index}].match.query"),
                    problem: "more conditions than a route may have",
                });
            }
            let query = r
                .matcher
                .query
                .iter()
                .map(|q| Condition::new(&q.key, q.value.as_deref()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| PolicyError::Invalid {
                    field: format!("policy.routes[{index}].match.query"),
                    problem: "a key without letters or digits, or a value that is not 1-128 of A-Z a-z 0-9 . _ ~ -",
                })?;
            let deposit = match (r.mode, r.deposit) {
                (RouteMode::Deposit, Some(d)) => Some(DepositRules {
                    idle_timeout_s: d.idle_timeout_s,
                    session_cap_s: d.session_cap_s,
                    rate_limit: d
                        .rate_limit
                        .map(|x| rate(format!("policy.routes[{index}].deposit.rate_limit"), x))
                        .transpose()?,
                    trap_paths: d.trap_paths,
                    error_storm: d
                        .error_storm
                        .map(|e| {
                            rate(
                                format!("policy.routes[{index}].deposit.error_storm"),
                                bootstrap::Rate {
                                    requests: e.errors,
                                    per_s: e.within_s,
                                },
                            )
                        })
                        .transpose()?,
                }),
                (RouteMode::Deposit, None) => {
                    return Err(PolicyError::Invalid {
                        field: format!("policy.routes[{index}].deposit"),
                        problem: "a deposit route needs its deposit rules",
                    });
                }
                (_, _) => None,
            };
            routes.push(Route {
                // A free route has nothing to watch.
                shadow: r.shadow && r.mode != RouteMode::Free,
                id: r.id,
                host: r.matcher.host.map(|h| h.to_ascii_lowercase()),
                path,
                methods: r.matcher.methods,
                query,
                mode: r.mode,
                failure_mode: r.failure_mode,
                amount_sat: r.amount_sat,
                deposit,
            });
        }
        let mut keys = l402::KeyRing::new();
        for (index, k) in raw.keys.iter().enumerate() {
            let master = decode_key(&k.master_key).ok_or(PolicyError::BadKey { index })?;
            let id = l402::KeyId::new(&k.id).map_err(|_| PolicyError::BadKey { index })?;
            keys.insert(id, l402::MasterKey::from_bytes(master))
                .map_err(|_| PolicyError::BadKey { index })?;
        }
        let challenge_mint_rate = rate(
            "policy.challenge_mint_rate".into(),
            raw.policy.challenge_mint_rate,
        )?;
        let challenge_mint_rate_ipv6_48 = match raw.policy.challenge_mint_rate_ipv6_48 {
            Some(r) => rate("policy.challenge_mint_rate_ipv6_48".into(), r)?,
            None => Rate {
                requests: challenge_mint_rate
                    .requests
                    .saturating_mul(IPV6_48_MINT_MULTIPLE),
                per_s: challenge_mint_rate.per_s,
            },
        };
        // u64 like every other number of the policy: one integer decoder in the .wasm.
        let ipv4_prefix_len = raw.policy.ipv4_prefix_len.unwrap_or(32);
        let Some(ipv4_prefix_len) = u8::try_from(ipv4_prefix_len)
            .ok()
            .filter(|l| (24..=32).contains(l))
        else {
            return Err(PolicyError::Invalid {
                field: "policy.ipv4_prefix_len".into(),
                problem: "must be between 24 and 32",
            });
        };
        let store_id = match raw.store_id.as_deref() {
            None => None,
            Some(hex) => Some(StoreId::from_hex(hex).ok_or(PolicyError::Invalid {
                field: "store_id".into(),
                problem: "must be 16 hex characters",
            })?),
        };
        Ok(Policy {
            store_id,
            version: raw.policy.version,
            service: raw.policy.service,
            challenge_mint_rate,
            challenge_mint_rate_ipv6_48,
            ipv4_prefix_len,
            routes,
            keys,
            max_token_lifetime_s,
            // Texts a sidecar does not send (older than the key) keep their defaults.
            wall: raw.policy.wall.map_or_else(Wall::default, |w| Wall {
                site_name: w.site_name,
                lang: w.lang,
                text: super::wall_text::merged(&w.text),
            }),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const MASTER_HEX: &str =
        "4242424242424242424242424242424242424242424242424242424242424242";

    pub(crate) fn bootstrap_json() -> String {
        format!(
            r#"{{
  "policy": {{
    "version": "v1", "service": "lightning-wall",
    "challenge_mint_rate": {{"requests": 3, "per_s": 60}},
    "routes": [
      {{"id": "health", "match": {{"host": null, "path": {{"exact": "/healthz"}}, "methods": []}},
        "mode": "free", "failure_mode": "closed", "amount_sat": 0, "token_lifetime_s": 3600}},
      {{"id": "api", "match": {{"host": null, "path": {{"prefix": "/v1/"}}, "methods": ["GET"]}},
        "mode": "pay", "failure_mode": "open", "amount_sat": 21, "token_lifetime_s": 3600}},
      {{"id": "wall", "match": {{"host": null, "path": {{"prefix": "/"}}, "methods": []}},
        "mode": "deposit", "failure_mode": "closed", "amount_sat": 1000, "token_lifetime_s": 3600,
        "deposit": {{"idle_timeout_s": 300, "session_cap_s": 3600,
          "rate_limit": {{"requests": 5, "per_s": 60}}, "trap_paths": ["/trap"],
          "error_storm": {{"errors": 3, "within_s": 60}}}}}}
    ]
  }},
  "keys": [{{"id": "k1", "master_key": "{MASTER_HEX}"}}],
  "active_key_id": "k1",
  "revocation_seq": 0
}}"#
        )
    }

    #[test]
    fn the_documented_bootstrap_answer_parses() {
        let p = Policy::from_bootstrap(bootstrap_json().as_bytes()).unwrap();
        assert_eq!(p.version, "v1");
        assert_eq!(p.routes.len(), 3);
        assert_eq!(p.keys.len(), 1);
        let wall = p.routes.get(2).unwrap();
        assert!(wall.is_trap("/trap"));
        assert_eq!(
            wall.deposit.as_ref().unwrap().error_storm.unwrap().requests,
            3
        );
    }

    #[test]
    fn a_policy_without_the_per_prefix_mint_fields_gets_their_defaults() {
        let p = Policy::from_bootstrap(bootstrap_json().as_bytes()).unwrap();
        assert_eq!(p.ipv4_prefix_len, 32);
        assert_eq!(
            p.challenge_mint_rate_ipv6_48,
            Rate {
                requests: 3 * IPV6_48_MINT_MULTIPLE,
                per_s: 60
            }
        );
        let with = bootstrap_json().replace(
            r#""challenge_mint_rate": {"requests": 3, "per_s": 60},"#,
            r#""challenge_mint_rate": {"requests": 3, "per_s": 60}, "ipv4_prefix_len": 24,
               "challenge_mint_rate_ipv6_48": {"requests": 7, "per_s": 30},"#,
        );
        let p = Policy::from_bootstrap(with.as_bytes()).unwrap();
        assert_eq!(p.ipv4_prefix_len, 24);
        assert_eq!(
            p.challenge_mint_rate_ipv6_48,
            Rate {
                requests: 7,
                per_s: 30
            }
        );
        for bad in [r#""ipv4_prefix_len": 23,"#, r#""ipv4_prefix_len": 33,"#] {
            let bad = bootstrap_json().replace(
                r#""challenge_mint_rate": {"requests": 3, "per_s": 60},"#,
                &format!(r#""challenge_mint_rate": {{"requests": 3, "per_s": 60}}, {bad}"#),
            );
            assert!(
                matches!(Policy::from_bootstrap(bad.as_bytes()), Err(PolicyError::Invalid { field, .. }) if field == "policy.ipv4_prefix_len"),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_bad_answer_is_refused_whole_and_never_echoes_key_material() {
        let bad_key = bootstrap_json().replace(MASTER_HEX, &"zz".repeat(32));
        let err = Policy::from_bootstrap(bad_key.as_bytes()).unwrap_err();
        assert_eq!(err, PolicyError::BadKey { index: 0 });
        let bad_re = bootstrap_json().replace(r#"{"exact": "/healthz"}"#, r#"{"regex": "("}"#);
        assert_eq!(
            Policy::from_bootstrap(bad_re.as_bytes()).unwrap_err(),
            PolicyError::BadRegex { index: 0 }
        );
        let zero = bootstrap_json().replace(r#""per_s": 60}}, "trap"#, r#""per_s": 0}}, "trap"#);
        let zero = zero.replace(r#""per_s": 60}, "trap"#, r#""per_s": 0}, "trap"#);
        assert!(matches!(
            Policy::from_bootstrap(zero.as_bytes()),
            Err(PolicyError::Invalid { .. })
        ));
        for garbage in [&b""[..], b"{}", b"[]", b"null", b"{\"policy\": 1}"] {
            let err = Policy::from_bootstrap(garbage).unwrap_err().to_string();
            assert!(!err.contains(MASTER_HEX));
        }
    }
}
