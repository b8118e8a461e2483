//! References to secrets kept outside the config file: `{file: path}` or `{env: NAME}`. The
//! config never holds a secret value itself (it ends up in repos, tickets and `config_dump`s),
//! and resolved values are only ever held in [`SecretBytes`], whose `Debug` is redacted.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub env: Option<String>,
}

/// A resolved secret. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(pub Vec<u8>);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading secret file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("environment variable {name} is not set")]
    EnvMissing { name: String },
    #[error("a secret reference needs exactly one of `file` or `env`")]
    Ambiguous,
    #[error("secret from {origin} is empty")]
    Empty { origin: String },
}

impl SecretRef {
    /// Problem with the reference's shape, if any (checked during validation).
    pub fn shape_issue(&self) -> Option<&'static str> {
        match (&self.file, &self.env) {
            (Some(_), Some(_)) => Some("set only one of `file` or `env`"),
            (None, None) => Some("set `file: <path>` or `env: <VARIABLE>`"),
            (None, Some(name)) if name.trim().is_empty() => Some("`env` must name a variable"),
            _ => None,
        }
    }

    /// Reads the secret's raw bytes (file content as is; env value as UTF-8).
    pub fn read_bytes(&self) -> Result<SecretBytes, SecretError> {
        let (bytes, origin) = match (&self.file, &self.env) {
            (Some(path), None) => (
                std::fs::read(path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?,
                format!("file {}", path.display()),
            ),
            (None, Some(name)) => (
                std::env::var(name)
                    .map_err(|_| SecretError::EnvMissing { name: name.clone() })?
                    .into_bytes(),
                format!("environment variable {name}"),
            ),
            _ => return Err(SecretError::Ambiguous),
        };
        if bytes.is_empty() {
            return Err(SecretError::Empty { origin });
        }
        Ok(SecretBytes(bytes))
    }

    /// Reads a text secret and trims surrounding whitespace (a trailing newline from `echo`).
    pub fn read_text(&self) -> Result<SecretBytes, SecretError> {
        let raw = self.read_bytes()?;
        let text = String::from_utf8_lossy(&raw.0).trim().as_bytes().to_vec();
        if text.is_empty() {
            return Err(SecretError::Empty {
                origin: "a trimmed secret".into(),
            });
        }
        Ok(SecretBytes(text))
    }
}
