//! Live reload of the config file: the config in force ([`Live`]), swapped whole when the file
//! changes or on SIGHUP ([`watch`]). The file is polled (its content hash, every
//! [`POLL_EVERY`]) rather than watched with inotify: Kubernetes updates a mounted ConfigMap by
//! swapping a symlink, which a watch on the file never sees. A new file is read and validated
//! in full; it is applied only when every change is in a reloadable section
//! (`config::reload`), and then atomically: one request sees the old config or the new one,
//! never half of each. The filter's policy version is a hash of the policy, so a change
//! reaches every filter on its next sync. Money state is not touched by a reload.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use lightning_wall_contract::wall_text::Texts;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::api::policy::FilterPolicy;
use crate::config::reload::{Change, compare};
use crate::config::{Config, ConfigError};
use crate::ids::Timestamp;
use crate::keys::Keys;
use crate::metrics::Metrics;

/// How often the file is checked for a change.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// One config in force.
#[derive(Debug)]
pub struct Loaded {
    pub config: Arc<Config>,
    /// What the filters get (`GET /v1/bootstrap`), built from `config`.
    pub policy: Arc<FilterPolicy>,
    /// The wall's texts, the operator's over the defaults, merged once (`config.wall.texts()`
    /// copies every default: 8 % of a deposit challenge's CPU when done per invoice memo).
    pub texts: Texts,
    /// 1 for the config the sidecar started with, one more per applied reload.
    pub generation: u64,
    pub loaded_at: Timestamp,
    /// SHA-256 of the file as read, hex; `None` when the config did not come from a file.
    pub file_sha256: Option<String>,
}

impl Loaded {
    /// `config` in force from now, with what is derived from it: the filter policy and the
    /// merged texts.
    fn new(
        config: Arc<Config>,
        keys: &Keys,
        generation: u64,
        file_sha256: Option<String>,
    ) -> Loaded {
        Loaded {
            policy: Arc::new(FilterPolicy::of(&config, keys)),
            texts: config.wall.texts(),
            config,
            generation,
            loaded_at: Timestamp::now(),
            file_sha256,
        }
    }
}

/// What a reload attempt did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The file holds what is in force (maybe reformatted).
    Unchanged,
    /// Applied: these sections changed.
    Applied(Vec<&'static str>),
    /// Refused; the old config stays. The reason names the file's problem or the sections
    /// that need a restart.
    Refused(String),
}

/// The config in force, and where it came from.
pub struct Live {
    current: RwLock<Arc<Loaded>>,
    keys: Arc<Keys>,
    metrics: Arc<Metrics>,
    /// The last reload refused, for the admin API.
    last_refusal: Mutex<Option<(Timestamp, String)>>,
    /// The hash of the content last tried, applied or not: a refused file is reported once,
    /// not every poll.
    last_seen: Mutex<Option<String>>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Live {
    /// The config the sidecar starts with.
    pub fn new(config: Arc<Config>, keys: Arc<Keys>, metrics: Arc<Metrics>) -> Live {
        let file_sha256 = config
            .source
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| sha256_hex(&b));
        let loaded = Loaded::new(config, &keys, 1, file_sha256.clone());
        metrics.config_loaded(loaded.generation, loaded.loaded_at);
        Live {
            current: RwLock::new(Arc::new(loaded)),
            keys,
            metrics,
            last_refusal: Mutex::new(None),
            last_seen: Mutex::new(file_sha256),
        }
    }

    /// The config in force now.
    pub fn current(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The last refused reload (when, why), if any since the last applied one.
    pub fn last_refusal(&self) -> Option<(Timestamp, String)> {
        self.last_refusal.lock().map_or(None, |r| r.clone())
    }

    /// The file the config came from.
    pub fn source(&self) -> Option<PathBuf> {
        self.current().config.source.clone()
    }

    /// Reads the file again when its content differs from the last one tried (`force`: in any
    /// case, as on SIGHUP), and applies it if it may be.
    pub fn reload(&self, force: bool) -> Outcome {
        let Some(path) = self.source() else {
            return Outcome::Unchanged;
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                // A ConfigMap symlink swap can leave the path missing for an instant: report
                // it, keep the old config, look again at the next poll.
                return self.refuse(None, format!("reading {}: {e}", path.display()));
            }
        };
        let hash = sha256_hex(&bytes);
        let seen = self.last_seen.lock().map_or(None, |s| s.clone());
        if !force && seen.as_deref() == Some(hash.as_str()) {
            return Outcome::Unchanged;
        }
        let new = match std::str::from_utf8(&bytes)
            .map_err(|_| "the file is not UTF-8".to_owned())
            .and_then(|text| {
                Config::from_text(text, path.parent()).map_err(|e| match e {
                    ConfigError::Invalid(_) => e.to_string(),
                    other => other
                        .issues()
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                })
            }) {
            Ok(mut c) => {
                c.source = Some(path.clone());
                c
            }
            Err(problem) => {
                return self.refuse(
                    Some(hash),
                    format!(
                        "{} is not valid, the old config stays: {problem}",
                        path.display()
                    ),
                );
            }
        };
        let old = self.current();
        match compare(&old.config, &new) {
            Change::Unchanged => {
                self.remember(hash);
                Outcome::Unchanged
            }
            Change::RestartNeeded(keys) => self.refuse(
                Some(hash),
                format!(
                    "{} changes {}, read only at start: restart needed; the old config stays \
                     (a reload applies only {})",
                    path.display(),
                    keys.join(", "),
                    crate::config::reload::RELOADABLE.join(" and ")
                ),
            ),
            Change::Apply(sections) => {
                let loaded = Arc::new(Loaded::new(
                    Arc::new(new),
                    &self.keys,
                    old.generation + 1,
                    Some(hash.clone()),
                ));
                for warning in loaded.config.warnings() {
                    tracing::warn!(%warning, "configuration (see `lightning-wall check-config`)");
                }
                match self.current.write() {
                    Ok(mut c) => *c = loaded.clone(),
                    Err(poisoned) => *poisoned.into_inner() = loaded.clone(),
                }
                self.remember(hash);
                if let Ok(mut r) = self.last_refusal.lock() {
                    *r = None;
                }
                self.metrics
                    .config_loaded(loaded.generation, loaded.loaded_at);
                self.metrics.config_reload("applied");
                tracing::info!(
                    file = %path.display(),
                    changed = ?sections,
                    generation = loaded.generation,
                    "configuration reloaded; filters pick up the new policy on their next sync"
                );
                Outcome::Applied(sections)
            }
        }
    }

    fn remember(&self, hash: String) {
        if let Ok(mut s) = self.last_seen.lock() {
            *s = Some(hash);
        }
    }

    fn refuse(&self, hash: Option<String>, reason: String) -> Outcome {
        if let Some(hash) = hash {
            self.remember(hash);
        }
        tracing::error!(%reason, "configuration reload refused");
        self.metrics.config_reload("refused");
        if let Ok(mut r) = self.last_refusal.lock() {
            *r = Some((Timestamp::now(), reason.clone()));
        }
        Outcome::Refused(reason)
    }
}

/// Reloads on SIGHUP and when the file's content changes, until `stopped`.
pub async fn watch(live: Arc<Live>, mut stopped: watch::Receiver<bool>) {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<Option<()>>();
        let force = tokio::select! {
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(POLL_EVERY) => false,
            _ = hangup => true,
        };
        let live = live.clone();
        // File reads and YAML parsing are blocking work.
        let _ = tokio::task::spawn_blocking(move || live.reload(force)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::tests::MINIMAL as BASE;

    struct Fixture {
        _dir: tempfile::TempDir,
        path: PathBuf,
        live: Live,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lightning-wall.yaml");
        std::fs::write(&path, BASE).unwrap();
        let config = Config::load(&path).unwrap();
        let keys = Arc::new(crate::keys::build(vec![("k1".into(), [1; 32])], None).unwrap());
        let live = Live::new(Arc::new(config), keys, Arc::new(Metrics::new()));
        Fixture {
            _dir: dir,
            path,
            live,
        }
    }

    #[test]
    fn a_route_switched_to_free_is_swapped_in_with_a_new_policy_version() {
        let f = fixture();
        let before = f.live.current();
        assert_eq!(f.live.reload(false), Outcome::Unchanged);
        std::fs::write(
            &f.path,
            BASE.replace(
                "mode: deposit\n    deposit: { amount_sat: 1000 }",
                "mode: free",
            ),
        )
        .unwrap();
        assert_eq!(f.live.reload(false), Outcome::Applied(vec!["routes"]));
        let after = f.live.current();
        assert_eq!(after.generation, 2);
        assert_eq!(
            after.config.route("wall").unwrap().mode,
            crate::config::Mode::Free
        );
        let store = lightning_wall_contract::store_id::StoreId([7; 8]);
        assert_ne!(after.policy.version(store), before.policy.version(store));
        assert_eq!(f.live.last_refusal(), None);
    }

    #[test]
    fn an_invalid_file_or_a_change_that_needs_a_restart_keeps_the_old_config_and_says_why() {
        let f = fixture();
        std::fs::write(&f.path, BASE.replace("1000", "0")).unwrap();
        let Outcome::Refused(why) = f.live.reload(false) else {
            panic!("applied")
        };
        assert!(
            why.contains("routes[0].deposit.amount_sat: must be between"),
            "{why}"
        );
        assert_eq!(f.live.current().generation, 1);
        assert_eq!(
            f.live.current().config.route("wall").unwrap().amount_sat(),
            1000
        );
        // The same bad file is reported once, not at every poll.
        assert_eq!(f.live.reload(false), Outcome::Unchanged);
        assert!(f.live.last_refusal().is_some());

        std::fs::write(
            &f.path,
            format!("{BASE}listeners: {{ public: {{ bind: \"127.0.0.1:9\" }} }}\n"),
        )
        .unwrap();
        let Outcome::Refused(why) = f.live.reload(false) else {
            panic!("applied")
        };
        assert!(why.contains("changes listeners"), "{why}");
        assert!(why.contains("restart needed"), "{why}");
        assert_eq!(f.live.current().generation, 1);

        // A half-written YAML file is refused the same way.
        std::fs::write(&f.path, "routes: [").unwrap();
        assert!(matches!(f.live.reload(false), Outcome::Refused(_)));
        assert_eq!(f.live.current().generation, 1);
    }

    #[test]
    fn sighup_reads_the_file_again_even_when_it_did_not_change() {
        let f = fixture();
        std::fs::write(&f.path, BASE.replace("1000", "0")).unwrap();
        assert!(matches!(f.live.reload(false), Outcome::Refused(_)));
        assert_eq!(f.live.reload(false), Outcome::Unchanged);
        assert!(matches!(f.live.reload(true), Outcome::Refused(_)));
    }

    #[test]
    fn a_reloaded_wall_text_is_in_force_for_the_next_invoice_memo() {
        let f = fixture();
        assert_eq!(
            f.live.current().texts["memo_pay"],
            "{site}: payment of {amount}"
        );
        std::fs::write(
            &f.path,
            format!("{BASE}wall: {{ text: {{ memo_pay: \"{{site}}: Zahlung {{amount}}\" }} }}\n"),
        )
        .unwrap();
        assert_eq!(f.live.reload(false), Outcome::Applied(vec!["wall"]));
        let texts = &f.live.current().texts;
        assert_eq!(texts["memo_pay"], "{site}: Zahlung {amount}");
        assert_eq!(texts["memo_deposit"], wall_text_default("memo_deposit"));
    }

    fn wall_text_default(key: &str) -> &'static str {
        &lightning_wall_contract::wall_text::defaults()[key]
    }
}
