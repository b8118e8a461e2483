//! The Envoy plugin configuration: deliberately tiny (where the sidecar is, how long to wait,
//! what to do before the policy is known). It must never hold key material or routes: Envoy's
//! admin `config_dump` shows it; those come from the sidecar's bootstrap call.

use core::time::Duration;

use serde::Deserialize;

use super::policy::FailureMode;

/// Validated plugin configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// Envoy cluster of the sidecar's internal listener.
    pub sidecar_cluster: String,
    /// `:authority` of call-outs to the sidecar.
    pub sidecar_authority: String,
    /// Timeout of each call-out.
    pub timeout: Duration,
    /// How often to sync with the sidecar (revocations, policy version, events).
    pub sync_period: Duration,
    /// What protected requests get while no policy is known yet (before the first bootstrap).
    pub failure_mode: FailureMode,
    /// `Retry-After` seconds on 503 answers.
    pub retry_after_s: u32,
    /// Bearer token for the sidecar's internal listener (`listeners.internal.token`).
    pub bearer_token: Option<String>,
    /// Envoy cluster of the sidecar's public listener (the one `/.well-known/lightning-wall/`
    /// is routed to). When set, a deposit credential with an empty proof is accepted once the
    /// deposit status endpoint confirms the deposit is held; when absent it gets 401.
    pub wall_cluster: Option<String>,
    /// Call-outs only from request callbacks and ticks (nginx's `ngx_wasm_module`, Kong): a
    /// call-out from a response callback traps there, and one from a tick's call-out answer
    /// crashes the worker. Then a verdict read from a response, and a sync's follow-up call,
    /// wait for the next tick (docs/filter.md "Hosts").
    pub request_callouts_only: bool,
    /// Answer 400 to a request carrying any client-supplied `x-lightning-wall-*` header instead
    /// of removing the header: where a header the filter removes still reaches the upstream
    /// (nginx's `ngx_wasm_module`, Kong), removal protects nothing (docs/filter.md "Hosts").
    pub refuse_own_headers: bool,
}

impl core::fmt::Debug for PluginConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PluginConfig")
            .field("sidecar_cluster", &self.sidecar_cluster)
            .field("sidecar_authority", &self.sidecar_authority)
            .field("timeout", &self.timeout)
            .field("sync_period", &self.sync_period)
            .field("failure_mode", &self.failure_mode)
            .field("retry_after_s", &self.retry_after_s)
            .field("request_callouts_only", &self.request_callouts_only)
            .field("refuse_own_headers", &self.refuse_own_headers)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A configuration that cannot be used; the message names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON, an unknown or missing field, or a wrong type (serde names the field).
    #[error("plugin configuration: {0}")]
    Syntax(String),
    /// A field's value is out of bounds.
    #[error("plugin configuration: {field}: {problem}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong and what is allowed.
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    sidecar_cluster: String,
    #[serde(default)]
    sidecar_authority: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    sync_period_ms: Option<u64>,
    #[serde(default)]
    failure_mode: Option<String>,
    #[serde(default)]
    retry_after_s: Option<u32>,
    #[serde(default)]
    bearer_token: Option<String>,
    #[serde(default)]
    wall_cluster: Option<String>,
    #[serde(default)]
    request_callouts_only: Option<bool>,
    #[serde(default)]
    refuse_own_headers: Option<bool>,
}

fn invalid(field: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        problem: problem.into(),
    }
}

fn in_range(field: &'static str, v: u64, lo: u64, hi: u64) -> Result<u64, ConfigError> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(invalid(
            field,
            format!("must be between {lo} and {hi} (got {v})"),
        ))
    }
}

/// Header values we put in call-outs must not break the header map.
fn is_header_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..0x7f).contains(&b))
}

impl PluginConfig {
    /// Parses and validates the JSON plugin configuration.
    pub fn parse(bytes: &[u8]) -> Result<PluginConfig, ConfigError> {
        let raw: RawConfig =
            serde_json::from_slice(bytes).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        if !is_header_safe(&raw.sidecar_cluster) {
            return Err(invalid(
                "sidecar_cluster",
                "must be a non-empty cluster name without spaces",
            ));
        }
        let sidecar_authority = raw
            .sidecar_authority
            .unwrap_or_else(|| "lightning-wall-sidecar".to_owned());
        if !is_header_safe(&sidecar_authority) {
            return Err(invalid(
                "sidecar_authority",
                "must be a non-empty host[:port] without spaces",
            ));
        }
        let timeout_ms = in_range("timeout_ms", raw.timeout_ms.unwrap_or(1000), 10, 60_000)?;
        let sync_ms = in_range(
            "sync_period_ms",
            raw.sync_period_ms.unwrap_or(1000),
            100,
            60_000,
        )?;
        let retry_after_s = in_range(
            "retry_after_s",
            u64::from(raw.retry_after_s.unwrap_or(5)),
            1,
            3600,
        )?;
        if let Some(t) = &raw.bearer_token
            && !is_header_safe(t)
        {
            return Err(invalid(
                "bearer_token",
                "must be non-empty visible ASCII (no spaces or control characters)",
            ));
        }
        if let Some(c) = &raw.wall_cluster
            && !is_header_safe(c)
        {
            return Err(invalid(
                "wall_cluster",
                "must be a non-empty cluster name without spaces",
            ));
        }
        let failure_mode = match raw.failure_mode.as_deref() {
            None | Some("closed") => FailureMode::Closed,
            Some("open") => FailureMode::Open,
            Some(_) => return Err(invalid("failure_mode", "must be \"closed\" or \"open\"")),
        };
        Ok(PluginConfig {
            sidecar_cluster: raw.sidecar_cluster,
            sidecar_authority,
            timeout: Duration::from_millis(timeout_ms),
            sync_period: Duration::from_millis(sync_ms),
            failure_mode,
            retry_after_s: u32::try_from(retry_after_s).unwrap_or(5),
            bearer_token: raw.bearer_token,
            wall_cluster: raw.wall_cluster,
            request_callouts_only: raw.request_callouts_only.unwrap_or(false),
            refuse_own_headers: raw.refuse_own_headers.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_config_gets_safe_defaults() {
        let c = PluginConfig::parse(br#"{"sidecar_cluster": "lw"}"#).unwrap();
        assert_eq!(c.sidecar_cluster, "lw");
        assert_eq!(c.timeout, Duration::from_secs(1));
        assert_eq!(c.sync_period, Duration::from_secs(1));
        assert_eq!(c.failure_mode, FailureMode::Closed);
        assert_eq!(c.retry_after_s, 5);
        assert!(!c.request_callouts_only);
        assert!(!c.refuse_own_headers);
        let c = PluginConfig::parse(br#"{"sidecar_cluster": "lw", "refuse_own_headers": true}"#)
            .unwrap();
        assert!(c.refuse_own_headers);
    }

    #[test]
    fn every_bad_field_is_named_in_the_error() {
        let cases: &[(&str, &str)] = &[
            (r#"{}"#, "sidecar_cluster"),
            (r#"{"sidecar_cluster": ""}"#, "sidecar_cluster"),
            (r#"{"sidecar_cluster": "a b"}"#, "sidecar_cluster"),
            (r#"{"sidecar_cluster": "x", "timeout_ms": 0}"#, "timeout_ms"),
            (
                r#"{"sidecar_cluster": "x", "sync_period_ms": 5}"#,
                "sync_period_ms",
            ),
            (
                r#"{"sidecar_cluster": "x", "failure_mode": "maybe"}"#,
                "failure_mode",
            ),
            (
                r#"{"sidecar_cluster": "x", "bearer_token": "a\nb"}"#,
                "bearer_token",
            ),
            (
                r#"{"sidecar_cluster": "x", "retry_after_s": 0}"#,
                "retry_after_s",
            ),
            (
                r#"{"sidecar_cluster": "x", "sidecar_authority": ""}"#,
                "sidecar_authority",
            ),
            (
                r#"{"sidecar_cluster": "x", "master_key": "00"}"#,
                "master_key",
            ),
        ];
        for (json, field) in cases {
            let err = PluginConfig::parse(json.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{json}: {err}");
        }
        assert!(PluginConfig::parse(b"not json").is_err());
    }

    #[test]
    fn the_bearer_token_never_shows_in_debug() {
        let c =
            PluginConfig::parse(br#"{"sidecar_cluster": "x", "bearer_token": "s3cret"}"#).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
