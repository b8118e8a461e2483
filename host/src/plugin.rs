//! What Envoy's `envoy.filters.http.wasm` config says about a plugin: its names, configuration
//! bytes and failure policy. Plain data.

use crate::abi::LogLevel;

/// Envoy's `failure_policy`: what a request sees once the plugin's VM has failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// FAIL_CLOSED (Envoy's default): every request gets a 503.
    #[default]
    FailClosed,
    /// FAIL_OPEN: requests pass as if the filter were not there.
    FailOpen,
}

impl std::str::FromStr for FailurePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fail-closed" | "FAIL_CLOSED" => Ok(FailurePolicy::FailClosed),
            "fail-open" | "FAIL_OPEN" => Ok(FailurePolicy::FailOpen),
            other => Err(format!(
                "unknown failure policy {other:?} (fail-closed|fail-open)"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct PluginConfig {
    /// `config.name` (property `plugin_name`).
    pub name: String,
    /// `config.root_id` (property `plugin_root_id`).
    pub root_id: String,
    /// `vm_config.vm_id` (property `plugin_vm_id`); shared data and queues are keyed by it.
    pub vm_id: String,
    /// `config.configuration`, read by the guest in `on_configure`.
    pub configuration: Vec<u8>,
    /// `vm_config.configuration`, read by the guest in `on_vm_start`.
    pub vm_configuration: Vec<u8>,
    pub failure_policy: FailurePolicy,
    /// What `proxy_get_log_level` reports (Envoy's `wasm` logger level).
    pub log_level: LogLevel,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            name: "lightning_wall".into(),
            root_id: "lightning_wall".into(),
            vm_id: "lightning_wall".into(),
            configuration: Vec::new(),
            vm_configuration: Vec::new(),
            failure_policy: FailurePolicy::FailClosed,
            log_level: LogLevel::Info,
        }
    }
}
