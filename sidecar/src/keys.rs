//! The master key ring: from `keys.master` (a file or an environment variable), else generated
//! once — into `<data_dir>/keys` (mode 0600) for SQLite, or into the shared PostgreSQL store so
//! replicas agree. Key bytes are never logged, printed or put in an error message.

use std::io::Write;
use std::path::{Path, PathBuf};

use l402::{KeyId, KeyRing, MasterKey};
use rand::TryRngCore;

use crate::config::{Config, SecretError, StoreLocation};
use crate::ids::Timestamp;
use crate::store::{Store, StoreError};

/// The id of the key generated on first run.
pub const FIRST_KEY_ID: &str = "k1";

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("keys.master: {0}")]
    Secret(#[from] SecretError),
    /// Names the line, never its content.
    #[error("{origin} line {line}: {problem} (expected <id>:<64 hex characters>)")]
    Malformed {
        origin: String,
        line: usize,
        problem: &'static str,
    },
    #[error("{origin}: no key (expected <id>:<64 hex characters> lines)")]
    Empty { origin: String },
    #[error("{origin}: key id {id:?} appears twice")]
    Duplicate { origin: String, id: String },
    #[error("keys.active_key_id: no key {0:?} in the key ring")]
    UnknownActive(String),
    #[error("{path}: readable by group or others (mode {mode:o}); run chmod 600 {path}")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the operating system's random number generator failed")]
    Random,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The ring and the key new tokens are minted under.
#[derive(Clone, Debug)]
pub struct Keys {
    pub ring: KeyRing,
    pub active: String,
}

/// Parses `<id>:<hex>` lines; `#` comments and blank lines are skipped.
pub fn parse_key_lines(text: &str, origin: &str) -> Result<Vec<(String, [u8; 32])>, KeysError> {
    let mut keys: Vec<(String, [u8; 32])> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let malformed = |problem| KeysError::Malformed {
            origin: origin.to_owned(),
            line: n + 1,
            problem,
        };
        let (id, hex_key) = line.split_once(':').ok_or_else(|| malformed("no ':'"))?;
        let id = id.trim();
        KeyId::new(id).map_err(|_| malformed("invalid key id"))?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(hex_key.trim(), &mut key)
            .map_err(|_| malformed("the key is not 64 hex characters"))?;
        if keys.iter().any(|(existing, _)| existing == id) {
            return Err(KeysError::Duplicate {
                origin: origin.to_owned(),
                id: id.to_owned(),
            });
        }
        keys.push((id.to_owned(), key));
    }
    if keys.is_empty() {
        return Err(KeysError::Empty {
            origin: origin.to_owned(),
        });
    }
    Ok(keys)
}

fn random_key() -> Result<[u8; 32], KeysError> {
    let mut key = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut key)
        .map_err(|_| KeysError::Random)?;
    Ok(key)
}

/// Reads `<data_dir>/keys`, creating it with one fresh key (0600, never overwritten) if absent.
pub fn load_or_create_key_file(path: &Path) -> Result<Vec<(String, [u8; 32])>, KeysError> {
    let io = |source| KeysError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let key = random_key()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        let text = format!(
            "# lightning-wall master keys: <id>:<hex>. Keep secret; add a line to rotate.\n{FIRST_KEY_ID}:{}\n",
            hex::encode(key)
        );
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        tracing::info!(path = %path.display(), "generated a master key");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeysError::TooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    parse_key_lines(&text, &path.display().to_string())
}

/// The key ring for `config`, creating the first key when none is configured.
pub async fn load(config: &Config, store: &Store) -> Result<Keys, KeysError> {
    let keys = match &config.keys.master {
        Some(secret) => {
            let text = secret.read_text()?;
            let origin = match (&secret.file, &secret.env) {
                (Some(path), _) => path.display().to_string(),
                (_, Some(name)) => format!("environment variable {name}"),
                _ => "keys.master".to_owned(),
            };
            parse_key_lines(&String::from_utf8_lossy(&text.0), &origin)?
        }
        None => match config.store_location() {
            StoreLocation::Sqlite(_) => load_or_create_key_file(&config.data_dir.join("keys"))?,
            StoreLocation::Postgres(_) => {
                if store.master_keys().await?.is_empty() {
                    store
                        .add_master_key_if_absent(FIRST_KEY_ID, &random_key()?, Timestamp::now())
                        .await?;
                }
                store.master_keys().await?
            }
        },
    };
    build(keys, config.keys.active_key_id.as_deref())
}

pub fn build(keys: Vec<(String, [u8; 32])>, active: Option<&str>) -> Result<Keys, KeysError> {
    let mut ring = KeyRing::new();
    for (id, key) in &keys {
        let key_id = KeyId::new(id).map_err(|_| KeysError::Malformed {
            origin: "key ring".into(),
            line: 0,
            problem: "invalid key id",
        })?;
        ring.insert(key_id, MasterKey::from_bytes(*key))
            .map_err(|_| KeysError::Duplicate {
                origin: "key ring".into(),
                id: id.clone(),
            })?;
    }
    let active = match active {
        Some(id) if ring.get(id).is_some() => id.to_owned(),
        Some(id) => return Err(KeysError::UnknownActive(id.to_owned())),
        None => keys
            .last()
            .map(|(id, _)| id.clone())
            .ok_or(KeysError::Empty {
                origin: "key ring".into(),
            })?,
    };
    Ok(Keys { ring, active })
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn a_key_file_is_created_once_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        let first = load_or_create_key_file(&path).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].0, FIRST_KEY_ID);
        let again = load_or_create_key_file(&path).unwrap();
        assert_eq!(first, again, "never regenerated");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = load_or_create_key_file(&path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn rotation_makes_the_last_key_active_and_keeps_the_old_ones() {
        let text = format!("# comment\nk1:{K1}\n\nk2:{}\n", "22".repeat(32));
        let keys = build(parse_key_lines(&text, "test").unwrap(), None).unwrap();
        assert_eq!(keys.active, "k2");
        assert!(keys.ring.get("k1").is_some());
        let pinned = build(parse_key_lines(&text, "test").unwrap(), Some("k1")).unwrap();
        assert_eq!(pinned.active, "k1");
        assert!(build(parse_key_lines(&text, "t").unwrap(), Some("k9")).is_err());
    }

    #[test]
    fn malformed_key_lines_name_the_line_but_never_the_secret() {
        let secret = "ab".repeat(31); // 62 hex chars: one byte short
        let err = parse_key_lines(&format!("k1:{K1}\nk2:{secret}\n"), "keys.txt")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("keys.txt line 2: the key is not 64 hex"),
            "{err}"
        );
        assert!(!err.contains(&secret));
        assert!(!err.contains(K1));
        let dup = parse_key_lines(&format!("k1:{K1}\nk1:{K1}\n"), "f").unwrap_err();
        assert!(matches!(dup, KeysError::Duplicate { .. }));
        assert!(matches!(
            parse_key_lines("# only\n", "f"),
            Err(KeysError::Empty { .. })
        ));
    }

    #[test]
    fn the_key_ring_debug_shows_ids_only() {
        let keys = build(vec![("k1".into(), [0x42; 32])], None).unwrap();
        let debug = format!("{keys:?}");
        assert!(debug.contains("k1"));
        assert!(!debug.contains(&"42".repeat(8)), "{debug}");
    }
}
