//! `store:` and `keys:` — where the durable state and the master keys live.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::SecretRef;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite:<path>` (default `sqlite:<data_dir>/lightning-wall.db`) or
    /// `postgres://user@host:port/db` (no password here: use `password`).
    #[serde(default)]
    pub url: Option<String>,
    /// The PostgreSQL password, from a file or an environment variable.
    #[serde(default)]
    pub password: Option<SecretRef>,
}

/// Where the store is, once defaults are applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// Master keys as `<id>:<64 hex>` lines (id: `[A-Za-z0-9._-]{1,32}`). Absent: generated on
    /// first run into `<data_dir>/keys` (mode 0600), or into the shared PostgreSQL store.
    #[serde(default)]
    pub master: Option<SecretRef>,
    /// Key id used for new tokens; default the last key listed (the newest).
    #[serde(default)]
    pub active_key_id: Option<String>,
}
