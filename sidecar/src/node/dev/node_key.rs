//! The dev node's secp256k1 identity key and the BOLT11 invoices it signs (regtest, `lnbcrt`).
//! The key lives in the data dir (mode 0600, created on first run); it must never be logged, and
//! `Debug` shows only the public key.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use lightning_invoice::{Bolt11Invoice, Currency, InvoiceBuilder, PaymentSecret};

use crate::ids::PaymentHash;

/// Name of the key file inside the dev node's data dir.
pub const KEY_FILE: &str = "dev-node.key";

#[derive(Debug, thiserror::Error)]
pub enum NodeKeyError {
    #[error("reading the dev node key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the dev node key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the dev node key {path} is not 64 hex characters of a valid secp256k1 key")]
    Malformed { path: PathBuf },
}

pub struct NodeKey {
    secret: SecretKey,
    public: PublicKey,
    secp: Secp256k1<All>,
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey(pubkey {})", self.public)
    }
}

impl NodeKey {
    /// Loads `<data_dir>/dev-node.key`, or creates it (mode 0600) from the OS RNG on first run.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, NodeKeyError> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(text.trim()).ok_or(NodeKeyError::Malformed { path }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(&path),
            Err(source) => Err(NodeKeyError::Read { path, source }),
        }
    }

    fn parse(hex_text: &str) -> Option<Self> {
        let bytes = hex::decode(hex_text).ok()?;
        SecretKey::from_slice(&bytes).ok().map(Self::from_secret)
    }

    fn create(path: &Path) -> Result<Self, NodeKeyError> {
        let secret = loop {
            // A uniformly random 32-byte string is a valid key except with negligible
            // probability (zero or >= the curve order); draw again in that case.
            if let Ok(key) = SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break key;
            }
        };
        let write_err = |source| NodeKeyError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(write_err)?;
        file.write_all(hex::encode(secret.secret_bytes()).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(write_err)?;
        Ok(Self::from_secret(secret))
    }

    fn from_secret(secret: SecretKey) -> Self {
        let secp = Secp256k1::new();
        let public = secret.public_key(&secp);
        Self {
            secret,
            public,
            secp,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// A signed regtest BOLT11 invoice for `payment_hash`.
    pub fn sign_invoice(&self, spec: &InvoiceSpec<'_>) -> Result<String, String> {
        let hash = sha256::Hash::from_byte_array(spec.payment_hash.0);
        let builder = InvoiceBuilder::new(Currency::Regtest)
            .description(spec.memo.to_owned())
            .payment_hash(hash)
            .payment_secret(PaymentSecret(rand::random()))
            .duration_since_epoch(spec.created_at)
            .min_final_cltv_expiry_delta(u64::from(spec.cltv_expiry))
            .expiry_time(spec.expiry);
        let builder = if spec.amount_msat > 0 {
            builder.amount_milli_satoshis(spec.amount_msat)
        } else {
            builder
        };
        builder
            .build_signed(|message| self.secp.sign_ecdsa_recoverable(message, &self.secret))
            .map(|invoice| invoice.to_string())
            .map_err(|e| format!("cannot build the BOLT11 invoice: {e}"))
    }

    /// True when `invoice` carries a valid signature by this node (a payer's check that the
    /// invoice is ours, not an invoice of another node with a colliding hash).
    pub fn signed(&self, invoice: &Bolt11Invoice) -> bool {
        invoice.recover_payee_pub_key() == self.public && invoice.check_signature().is_ok()
    }
}

/// What goes into a dev invoice.
pub struct InvoiceSpec<'a> {
    pub payment_hash: PaymentHash,
    pub amount_msat: u64,
    pub memo: &'a str,
    pub created_at: Duration,
    pub expiry: Duration,
    pub cltv_expiry: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_with_mode_0600_and_reloaded_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let first = NodeKey::load_or_create(dir.path()).unwrap();
        let second = NodeKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.public_key(), second.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{first:?}").contains(&hex::encode(first.secret.secret_bytes())));
    }

    #[test]
    fn a_corrupt_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "not hex").unwrap();
        assert!(matches!(
            NodeKey::load_or_create(dir.path()),
            Err(NodeKeyError::Malformed { .. })
        ));
    }

    #[test]
    fn signed_invoices_decode_as_regtest_with_our_signature_and_fields() {
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::load_or_create(dir.path()).unwrap();
        let bolt11 = key
            .sign_invoice(&InvoiceSpec {
                payment_hash: PaymentHash([3; 32]),
                amount_msat: 21_000,
                memo: "deposit",
                created_at: Duration::from_secs(1_700_000_000),
                expiry: Duration::from_secs(600),
                cltv_expiry: 144,
            })
            .unwrap();
        assert!(bolt11.starts_with("lnbcrt210n1"), "{bolt11}");
        let invoice: Bolt11Invoice = bolt11.parse().unwrap();
        assert!(key.signed(&invoice));
        assert_eq!(invoice.payment_hash().to_byte_array(), [3; 32]);
        assert_eq!(invoice.amount_milli_satoshis(), Some(21_000));
        assert_eq!(invoice.min_final_cltv_expiry_delta(), 144);
        assert_eq!(invoice.expiry_time(), Duration::from_secs(600));
        let other = NodeKey::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(!other.signed(&invoice));
    }
}
