//! `listeners:` — the internal (filter), public (wall) and admin addresses and their tokens.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::SecretRef;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenersConfig {
    /// For the filter only (mint, bootstrap, sync, events). Loopback unless a token is set.
    #[serde(default = "default_internal")]
    pub internal: InternalListener,
    /// Wall endpoints under `/.well-known/lightning-wall/`, routed by Envoy.
    #[serde(default = "default_public")]
    pub public: Listener,
    /// Operator API; disabled when absent. Always requires a bearer token.
    #[serde(default)]
    pub admin: Option<AdminListener>,
}

impl Default for ListenersConfig {
    fn default() -> Self {
        ListenersConfig {
            internal: default_internal(),
            public: default_public(),
            admin: None,
        }
    }
}

fn default_internal() -> InternalListener {
    InternalListener {
        bind: SocketAddr::from(([127, 0, 0, 1], 8081)),
        token: None,
    }
}

fn default_public() -> Listener {
    Listener {
        bind: SocketAddr::from(([127, 0, 0, 1], 8082)),
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub bind: SocketAddr,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InternalListener {
    pub bind: SocketAddr,
    /// Bearer token the filter must send; required when `bind` is not loopback.
    #[serde(default)]
    pub token: Option<SecretRef>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminListener {
    pub bind: SocketAddr,
    pub token: SecretRef,
}
