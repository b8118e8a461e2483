//! The filter's view of the config: routes and their policies in a stable JSON shape, and a
//! version (hash of that shape and of the key ring) so the filter notices a change on its next
//! sync — a rotated key included, or tokens minted under it would fail as `unknown_key`.

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{Config, FailureMode, Mode, PathMatch};
use crate::keys::Keys;

#[derive(Clone, Debug, Serialize)]
pub struct FilterPolicy {
    pub version: String,
    pub service: &'static str,
    pub routes: Vec<FilterRoute>,
    /// Per IPv4 /`ipv4_prefix_len` and per IPv6 /64.
    pub challenge_mint_rate: RateJson,
    /// Per IPv6 /48.
    pub challenge_mint_rate_ipv6_48: RateJson,
    pub ipv4_prefix_len: u8,
    /// What the filter's pages say (site name, language, every text resolved).
    pub wall: WallJson,
}

#[derive(Clone, Debug, Serialize)]
pub struct WallJson {
    pub site_name: Option<String>,
    pub lang: String,
    pub text: crate::config::wall_text::Texts,
}

#[derive(Clone, Debug, Serialize)]
pub struct FilterRoute {
    pub id: String,
    #[serde(rename = "match")]
    pub matcher: MatchJson,
    pub mode: Mode,
    pub failure_mode: FailureMode,
    pub amount_sat: u64,
    pub token_lifetime_s: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deposit: Option<DepositJson>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MatchJson {
    pub host: Option<String>,
    /// `{"exact": "/p"}`, `{"prefix": "/p/"}`, `{"regex": "^/p$"}` or null (any path).
    pub path: Option<PathMatch>,
    pub methods: Vec<String>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct RateJson {
    pub requests: u32,
    pub per_s: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DepositJson {
    pub idle_timeout_s: u64,
    pub session_cap_s: u64,
    pub rate_limit: Option<RateJson>,
    pub trap_paths: Vec<String>,
    pub error_storm: Option<ErrorStormJson>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct ErrorStormJson {
    pub errors: u32,
    pub within_s: u64,
}

/// The `services=` name in every token.
pub const SERVICE: &str = "lightning-wall";

impl FilterPolicy {
    pub fn of(config: &Config, keys: &Keys) -> FilterPolicy {
        let rate = |r: crate::config::Rate| RateJson {
            requests: r.requests,
            per_s: r.per.as_secs(),
        };
        let routes: Vec<FilterRoute> = config
            .routes
            .iter()
            .map(|r| FilterRoute {
                id: r.id.clone(),
                matcher: MatchJson {
                    host: r.matcher.host.clone(),
                    path: r.matcher.path.clone(),
                    methods: r.matcher.methods.clone(),
                },
                mode: r.mode,
                failure_mode: r.failure_mode,
                amount_sat: r.amount_sat(),
                token_lifetime_s: r.token_lifetime.as_secs(),
                deposit: r.deposit.as_ref().map(|d| DepositJson {
                    idle_timeout_s: d.idle_timeout.as_secs(),
                    session_cap_s: d.session_cap.as_secs(),
                    rate_limit: d.rate_limit.map(rate),
                    trap_paths: d.trap_paths.clone(),
                    error_storm: d.error_storm.map(|e| ErrorStormJson {
                        errors: e.errors,
                        within_s: e.within.as_secs(),
                    }),
                }),
            })
            .collect();
        let mint = rate(config.limits.challenge_mint_rate);
        let mint_48 = rate(config.limits.mint_rate_ipv6_48());
        let prefix_len = config.limits.ipv4_prefix_len;
        let wall = WallJson {
            site_name: config.wall.site_name.clone(),
            lang: config.wall.lang.clone(),
            text: config.wall.texts(),
        };
        let canonical =
            serde_json::to_vec(&(&routes, mint, mint_48, prefix_len, &wall)).unwrap_or_default();
        let mut hasher = Sha256::new();
        hasher.update(&canonical);
        // The key material itself goes into the hash (a replaced key under an old id must reach
        // the filter too); 8 bytes of SHA-256 over 256-bit random keys reveal nothing usable.
        hasher.update(b"\0keys\0");
        for entry in keys.ring.entries() {
            hasher.update(entry.id().as_str().as_bytes());
            hasher.update(b"\0");
            hasher.update(entry.master().expose_secret_hex().as_bytes());
            hasher.update(b"\0");
        }
        hasher.update(keys.active.as_bytes());
        let version = hex::encode(&hasher.finalize()[..8]);
        FilterPolicy {
            version,
            service: SERVICE,
            routes,
            challenge_mint_rate: mint,
            challenge_mint_rate_ipv6_48: mint_48,
            ipv4_prefix_len: prefix_len,
            wall,
        }
    }

    /// The body of `GET /v1/bootstrap` (docs/internal-api.md): this policy with the key ring.
    /// Key material leaves the sidecar only through this, on the internal listener.
    pub fn bootstrap_body(&self, keys: &Keys, revocation_seq: u64) -> Value {
        let ring: Vec<Value> = keys
            .ring
            .entries()
            .map(|e| json!({"id": e.id().as_str(), "master_key": e.master().expose_secret_hex()}))
            .collect();
        json!({
            "policy": self,
            "keys": ring,
            "active_key_id": keys.active,
            "revocation_seq": revocation_seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::build;

    fn config() -> Config {
        Config::parse(
            "node: { backend: dev }\nroutes:\n  - id: api\n    match: { path: { prefix: /api/ } }\n    mode: pay\n    pay: { amount_sat: 10 }\n",
        )
        .unwrap()
    }

    #[test]
    fn the_policy_version_changes_when_a_key_is_added_or_replaced() {
        let config = config();
        let one = build(vec![("k1".into(), [1; 32])], None).unwrap();
        let same = build(vec![("k1".into(), [1; 32])], None).unwrap();
        let rotated = build(vec![("k1".into(), [1; 32]), ("k2".into(), [2; 32])], None).unwrap();
        let replaced = build(vec![("k1".into(), [3; 32])], None).unwrap();
        let v = |keys: &Keys| FilterPolicy::of(&config, keys).version;
        assert_eq!(v(&one), v(&same));
        assert_ne!(v(&one), v(&rotated));
        assert_ne!(v(&one), v(&replaced));
    }

    #[test]
    fn the_policy_carries_the_per_network_mint_limits_and_versions_them() {
        let keys = build(vec![("k1".into(), [1; 32])], None).unwrap();
        let mut config = config();
        let policy = FilterPolicy::of(&config, &keys);
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(json["ipv4_prefix_len"], 32);
        assert_eq!(
            json["challenge_mint_rate_ipv6_48"],
            json!({"requests": 160, "per_s": 60})
        );
        config.limits.ipv4_prefix_len = 24;
        assert_ne!(FilterPolicy::of(&config, &keys).version, policy.version);
    }

    #[test]
    fn the_policy_carries_the_resolved_wall_texts_and_a_reworded_text_changes_its_version() {
        let keys = build(vec![("k1".into(), [1; 32])], None).unwrap();
        let mut config = config();
        let policy = FilterPolicy::of(&config, &keys);
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(json["wall"]["lang"], "en");
        assert_eq!(json["wall"]["site_name"], Value::Null);
        assert_eq!(json["wall"]["text"]["deposit_title"], "Refundable deposit");
        config.wall.site_name = Some("Shop".into());
        config
            .wall
            .text
            .insert("deposit_title".into(), "Kaution".into());
        let reworded = FilterPolicy::of(&config, &keys);
        assert_ne!(reworded.version, policy.version);
        let json = serde_json::to_value(&reworded).unwrap();
        assert_eq!(json["wall"]["site_name"], "Shop");
        assert_eq!(json["wall"]["text"]["deposit_title"], "Kaution");
        assert_eq!(
            json["wall"]["text"]["leave_link"],
            "Leave and get my deposit back"
        );
    }
}
