//! The filter's view of the config: routes and their policies in a stable JSON shape, and a
//! version (hash of that shape and of the key ring) so the filter notices a change on its next
//! sync — a rotated key included, or tokens minted under it would fail as `unknown_key`.

use lightning_wall_contract::bootstrap::{
    self, Bootstrap, DepositRules, ErrorStorm, Key, Match, QueryParam, Rate, Route,
};
use lightning_wall_contract::store_id::StoreId;
use lightning_wall_contract::{FailureMode as WireFailureMode, RouteMode};
use sha2::{Digest, Sha256};

use crate::config::{Config, FailureMode, Mode, PathMatch};
use crate::keys::Keys;

/// The policy as the filter receives it (`lightning_wall_contract::bootstrap`), built once.
#[derive(Clone, Debug)]
pub struct FilterPolicy {
    policy: bootstrap::Policy,
}

/// The `services=` name in every token.
pub const SERVICE: &str = "lightning-wall";

impl From<Mode> for RouteMode {
    fn from(mode: Mode) -> RouteMode {
        match mode {
            Mode::Free => RouteMode::Free,
            Mode::Pay => RouteMode::Pay,
            Mode::Deposit => RouteMode::Deposit,
        }
    }
}

impl From<FailureMode> for WireFailureMode {
    fn from(mode: FailureMode) -> WireFailureMode {
        match mode {
            FailureMode::Closed => WireFailureMode::Closed,
            FailureMode::Open => WireFailureMode::Open,
        }
    }
}

impl From<&PathMatch> for bootstrap::PathMatch {
    fn from(path: &PathMatch) -> bootstrap::PathMatch {
        match path {
            PathMatch::Exact(p) => bootstrap::PathMatch::Exact(p.clone()),
            PathMatch::Prefix(p) => bootstrap::PathMatch::Prefix(p.clone()),
            PathMatch::Regex(r) => bootstrap::PathMatch::Regex(r.clone()),
        }
    }
}

/// A config rate on the wire.
pub fn wire_rate(r: crate::config::Rate) -> Rate {
    Rate {
        requests: r.requests,
        per_s: r.per.as_secs(),
    }
}

impl FilterPolicy {
    pub fn of(config: &Config, keys: &Keys) -> FilterPolicy {
        let routes: Vec<Route> = config
            .routes
            .iter()
            .map(|r| Route {
                id: r.id.clone(),
                matcher: Match {
                    host: r.matcher.host.clone(),
                    path: r.matcher.path.as_ref().map(Into::into),
                    methods: r.matcher.methods.clone(),
                    query: r
                        .matcher
                        .query
                        .iter()
                        .map(|(key, want)| QueryParam {
                            key: key.clone(),
                            value: want.value().map(str::to_owned),
                        })
                        .collect(),
                },
                mode: r.mode.into(),
                failure_mode: r.failure_mode.into(),
                amount_sat: r.amount_sat(),
                token_lifetime_s: r.token_lifetime.as_secs(),
                deposit: r.deposit.as_ref().map(|d| DepositRules {
                    idle_timeout_s: d.idle_timeout.as_secs(),
                    session_cap_s: d.session_cap.as_secs(),
                    rate_limit: d.rate_limit.map(wire_rate),
                    trap_paths: d.trap_paths.clone(),
                    error_storm: d.error_storm.map(|e| ErrorStorm {
                        errors: e.errors,
                        within_s: e.within.as_secs(),
                    }),
                }),
                shadow: config.route_in_shadow(r),
            })
            .collect();
        let mint = wire_rate(config.limits.challenge_mint_rate);
        let mint_48 = wire_rate(config.limits.mint_rate_ipv6_48());
        let prefix_len = config.limits.ipv4_prefix_len;
        let wall = bootstrap::Wall {
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
            policy: bootstrap::Policy {
                version,
                service: SERVICE.into(),
                routes,
                challenge_mint_rate: mint,
                challenge_mint_rate_ipv6_48: Some(mint_48),
                ipv4_prefix_len: Some(u64::from(prefix_len)),
                wall: Some(wall),
            },
        }
    }

    /// The version a sync answer carries (a different one tells the filter to bootstrap): of
    /// the config and keys, and of the store, so that a filter learns a replaced store's id.
    pub fn version(&self, store: StoreId) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.policy.version.as_bytes());
        hasher.update(b"\0store\0");
        hasher.update(store.0);
        hex::encode(&hasher.finalize()[..8])
    }

    /// The body of `GET /v1/bootstrap` (docs/internal-api.md): this policy with the key ring.
    /// Key material leaves the sidecar only through this, on the internal listener.
    pub fn bootstrap_body(&self, keys: &Keys, revocation_seq: u64, store: StoreId) -> Bootstrap {
        let mut policy = self.policy.clone();
        policy.version = self.version(store);
        Bootstrap {
            policy,
            keys: keys
                .ring
                .entries()
                .map(|e| Key {
                    id: e.id().as_str().into(),
                    master_key: e.master().expose_secret_hex(),
                })
                .collect(),
            active_key_id: keys.active.clone(),
            revocation_seq,
            store_id: Some(store.to_hex()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::keys::build;

    const S: StoreId = StoreId([7; 8]);

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
        let v = |keys: &Keys| FilterPolicy::of(&config, keys).version(S);
        assert_eq!(v(&one), v(&same));
        assert_ne!(v(&one), v(&rotated));
        assert_ne!(v(&one), v(&replaced));
    }

    #[test]
    fn the_policy_version_changes_with_the_store_and_the_bootstrap_names_it() {
        let keys = build(vec![("k1".into(), [1; 32])], None).unwrap();
        let policy = FilterPolicy::of(&config(), &keys);
        let other = StoreId([8; 8]);
        assert_ne!(policy.version(S), policy.version(other));
        let body = policy.bootstrap_body(&keys, 0, other);
        assert_eq!(body.store_id.as_deref(), Some("0808080808080808"));
        assert_eq!(body.policy.version, policy.version(other));
    }

    #[test]
    fn the_policy_carries_the_per_network_mint_limits_and_versions_them() {
        let keys = build(vec![("k1".into(), [1; 32])], None).unwrap();
        let mut config = config();
        let policy = FilterPolicy::of(&config, &keys);
        let json =
            serde_json::to_value(policy.bootstrap_body(&keys, 0, S)).unwrap()["policy"].take();
        assert_eq!(json["ipv4_prefix_len"], 32);
        assert_eq!(
            json["challenge_mint_rate_ipv6_48"],
            json!({"requests": 160, "per_s": 60})
        );
        config.limits.ipv4_prefix_len = 24;
        assert_ne!(
            FilterPolicy::of(&config, &keys).version(S),
            policy.version(S)
        );
    }

    #[test]
    fn shadow_reaches_the_filter_per_route_and_changes_the_version() {
        let keys = build(vec![("k1".into(), [1; 32])], None).unwrap();
        let mut config = config();
        let enforcing = FilterPolicy::of(&config, &keys);
        let routes = |p: &FilterPolicy| {
            serde_json::to_value(p.bootstrap_body(&keys, 0, S).policy).unwrap()["routes"].take()
        };
        assert_eq!(routes(&enforcing)[0].get("shadow"), None);
        // The whole config in shadow: every pay and deposit route says so.
        config.shadow = true;
        let whole = FilterPolicy::of(&config, &keys);
        assert_eq!(routes(&whole)[0]["shadow"], true);
        assert_ne!(whole.version(S), enforcing.version(S));
        // Or the route alone.
        config.shadow = false;
        config.routes[0].shadow = true;
        assert_eq!(routes(&FilterPolicy::of(&config, &keys))[0]["shadow"], true);
    }

    #[test]
    fn the_policy_carries_the_resolved_wall_texts_and_a_reworded_text_changes_its_version() {
        let keys = build(vec![("k1".into(), [1; 32])], None).unwrap();
        let mut config = config();
        let policy = FilterPolicy::of(&config, &keys);
        let json = serde_json::to_value(policy.bootstrap_body(&keys, 0, S).policy).unwrap();
        assert_eq!(json["wall"]["lang"], "en");
        assert_eq!(json["wall"]["site_name"], serde_json::Value::Null);
        assert_eq!(json["wall"]["text"]["deposit_title"], "Refundable deposit");
        config.wall.site_name = Some("Shop".into());
        config
            .wall
            .text
            .insert("deposit_title".into(), "Kaution".into());
        let reworded = FilterPolicy::of(&config, &keys);
        assert_ne!(reworded.version(S), policy.version(S));
        let json = serde_json::to_value(reworded.bootstrap_body(&keys, 0, S).policy).unwrap();
        assert_eq!(json["wall"]["site_name"], "Shop");
        assert_eq!(json["wall"]["text"]["deposit_title"], "Kaution");
        assert_eq!(
            json["wall"]["text"]["leave_link"],
            "Leave and get my deposit back"
        );
    }
}
