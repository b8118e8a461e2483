//! `lightning-wall.yaml`: the operator's single source of truth (node, store, keys, listeners,
//! routes, limits). Parsing is strict (unknown fields are errors, so a typo never silently
//! disables a protection) and validation reports every problem with its field path and the fix.
//! Secrets are never read inline from this file: only through `file:` or `env:` references.

mod data;
mod deposits;
mod duration;
mod limits;
mod listeners;
mod node;
pub mod reload;
mod rewards;
mod routes;
mod secret;
mod validate;
mod wall;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use data::*;
pub use deposits::*;
pub use limits::*;
pub use listeners::*;
pub use node::*;
pub use rewards::*;
pub use routes::*;
pub use secret::{SecretBytes, SecretError, SecretRef};
pub use wall::WallConfig;

/// One problem in the configuration: where it is and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Field path, e.g. `routes[2].deposit.amount_sat`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The YAML did not match the schema (unknown field, wrong type, bad duration…).
    #[error("{0}")]
    Parse(ConfigIssue),
    /// The YAML parsed but some values are not acceptable; every issue is listed.
    #[error("{} problem(s) in the configuration:\n{}", .0.len(), list(.0))]
    Invalid(Vec<ConfigIssue>),
}

fn list(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("  - {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// Every issue, whatever the stage that found it.
    pub fn issues(&self) -> Vec<ConfigIssue> {
        match self {
            ConfigError::Read { path, source } => vec![ConfigIssue {
                path: String::new(),
                message: format!("reading {}: {source}", path.display()),
            }],
            ConfigError::Parse(issue) => vec![issue.clone()],
            ConfigError::Invalid(issues) => issues.clone(),
        }
    }
}

/// The whole file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where generated keys, the SQLite database and the dev node's key live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    pub node: NodeConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub keys: KeysConfig,
    #[serde(default)]
    pub listeners: ListenersConfig,
    #[serde(default)]
    pub deposits: DepositsConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Satoshi rewards granted by the upstream and claimed by LNURL-withdraw (docs/rewards.md).
    #[serde(default)]
    pub rewards: RewardsConfig,
    /// What the visitor reads: site name, language, texts (docs/configuration.md "wall").
    #[serde(default)]
    pub wall: WallConfig,
    /// The file this config was loaded from ([`Config::load`]): the sidecar reloads it on
    /// change (`crate::reload`). Not part of the file.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// Shadow mode for every pay and deposit route (docs/configuration.md "shadow").
    #[serde(default)]
    pub shadow: bool,
}

impl Config {
    /// Whether `route` runs in shadow mode: its own flag or the whole config's (a free route
    /// never: it has nothing to watch).
    pub fn route_in_shadow(&self, route: &RouteConfig) -> bool {
        (self.shadow || route.shadow) && route.mode != Mode::Free
    }

    /// The ids of the routes in shadow mode, in config order.
    pub fn shadow_routes(&self) -> Vec<String> {
        self.routes
            .iter()
            .filter(|r| self.route_in_shadow(r))
            .map(|r| r.id.clone())
            .collect()
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

impl Config {
    /// Parses YAML text; does not validate values (see [`Config::validate`]).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let inner = e.into_inner().to_string();
            // serde_yaml_ng already prefixes some messages with the path.
            let message = inner
                .strip_prefix(&format!("{path}: "))
                .map_or(inner.clone(), str::to_owned);
            ConfigError::Parse(ConfigIssue { path, message })
        })
    }

    /// Reads, parses and validates a file. Relative `data_dir` is taken from the config file's
    /// directory, so the same file works from any working directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::from_text(&text, path.parent())?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// What [`Config::load`] does once the file is read (and what the fuzz target drives):
    /// parse, take relative paths from `dir` (the file's directory), validate.
    pub fn from_text(text: &str, dir: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = Config::parse(text)?;
        if let Some(dir) = dir {
            config.resolve_relative_paths(dir);
        }
        config.validate()?;
        Ok(config)
    }

    /// Relative paths in the file (data dir, secret files, lnd's cert) are relative to the
    /// file's directory, so the config works from any working directory.
    fn resolve_relative_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        let fix_secret = |s: &mut SecretRef| {
            if let Some(p) = s.file.as_mut()
                && p.is_relative()
            {
                *p = dir.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        if let Some(lnd) = self.node.lnd.as_mut() {
            if let Some(cert) = lnd.tls_cert_file.as_mut() {
                fix(cert);
            }
            if let Some(ca) = lnd.tls_ca.as_mut()
                && ca != "system"
                && Path::new(ca.as_str()).is_relative()
            {
                *ca = dir.join(ca.as_str()).to_string_lossy().into_owned();
            }
            fix_secret(&mut lnd.macaroon);
        }
        if let Some(nwc) = self.node.nwc.as_mut() {
            fix_secret(&mut nwc.connection);
        }
        if let Some(cln) = self.node.cln.as_mut() {
            for grpc in [&mut cln.grpc, &mut cln.hold] {
                fix(&mut grpc.ca_cert_file);
                fix(&mut grpc.client_cert_file);
                fix_secret(&mut grpc.client_key);
            }
        }
        if let Some(password) = self.store.password.as_mut() {
            fix_secret(password);
        }
        if let Some(master) = self.keys.master.as_mut() {
            fix_secret(master);
        }
        if let Some(token) = self.listeners.internal.token.as_mut() {
            fix_secret(token);
        }
        if let Some(admin) = self.listeners.admin.as_mut() {
            fix_secret(&mut admin.token);
        }
    }

    /// Every semantic problem at once; `Ok` means the sidecar can start with this file (secrets
    /// are resolved later, when used).
    /// Valid settings that leave a hole or can cost an honest visitor (see `validate.rs`).
    pub fn warnings(&self) -> Vec<ConfigIssue> {
        validate::warnings(self)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let issues = validate::validate(self);
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(issues))
        }
    }

    pub fn store_location(&self) -> StoreLocation {
        match &self.store.url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                StoreLocation::Postgres(url.clone())
            }
            Some(url) => {
                let path = PathBuf::from(url.trim_start_matches("sqlite:"));
                if path.is_relative() {
                    StoreLocation::Sqlite(self.data_dir.join(path))
                } else {
                    StoreLocation::Sqlite(path)
                }
            }
            None => StoreLocation::Sqlite(self.data_dir.join("lightning-wall.db")),
        }
    }

    pub fn route(&self, id: &str) -> Option<&RouteConfig> {
        self.routes.iter().find(|r| r.id == id)
    }
}

#[cfg(test)]
pub(crate) mod tests;
