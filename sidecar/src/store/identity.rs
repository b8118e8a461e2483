//! The store's identity (docs/filter.md "A replaced store"): a random id drawn the first time a
//! sidecar opens the store, kept in it, and written into every token id minted here. Kept in
//! memory too (minting must not pay a query for it); every read refreshes that copy, so a
//! replica learns of another's [`Store::replace_store_id`] at its next filter sync.

use std::sync::{Arc, RwLock};

use lightning_wall_contract::store_id::StoreId;
use rand::TryRngCore;

use super::{Store, StoreError, dispatch};
use crate::ids::Timestamp;

/// The in-memory copy; `None` only between opening the pool and the first read.
#[derive(Clone, Debug, Default)]
pub(super) struct CachedId(Arc<RwLock<Option<StoreId>>>);

impl CachedId {
    fn set(&self, id: StoreId) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(id);
    }

    fn get(&self) -> Option<StoreId> {
        *self.0.read().unwrap_or_else(|e| e.into_inner())
    }
}

fn random_id() -> Result<StoreId, StoreError> {
    let mut id = [0u8; 8];
    rand::rngs::OsRng
        .try_fill_bytes(&mut id)
        .map_err(|_| StoreError::Random)?;
    Ok(StoreId(id))
}

impl Store {
    /// The store's id, drawn and stored on first use (replicas racing agree on the first
    /// insert). Refreshes the in-memory copy.
    pub async fn store_id(&self) -> Result<StoreId, StoreError> {
        if let Some(id) = self.read_store_id().await? {
            return Ok(id);
        }
        let fresh = random_id()?;
        let now = i64::try_from(Timestamp::now().0).unwrap_or(i64::MAX);
        dispatch!(self, p => sqlx::query(
            "INSERT INTO store_identity (singleton, id, created_at) VALUES (1, $1, $2) \
             ON CONFLICT (singleton) DO NOTHING")
            .bind(fresh.0.to_vec())
            .bind(now)
            .execute(p)
            .await
            .map(|_| ()))?;
        self.read_store_id().await?.ok_or(StoreError::Corrupt {
            table: "store_identity",
            problem: "no row after inserting one".into(),
        })
    }

    async fn read_store_id(&self) -> Result<Option<StoreId>, StoreError> {
        let bytes: Option<Vec<u8>> = dispatch!(self, p => sqlx::query_scalar(
            "SELECT id FROM store_identity WHERE singleton = 1")
            .fetch_optional(p)
            .await?);
        let Some(bytes) = bytes else { return Ok(None) };
        let id = <[u8; 8]>::try_from(bytes.as_slice())
            .map(StoreId)
            .map_err(|_| StoreError::Corrupt {
                table: "store_identity",
                problem: format!("id is {} bytes, not 8", bytes.len()),
            })?;
        self.identity.set(id);
        Ok(Some(id))
    }

    /// The id as last read (no query): what new token ids carry.
    pub fn cached_store_id(&self) -> Result<StoreId, StoreError> {
        self.identity.get().ok_or(StoreError::Corrupt {
            table: "store_identity",
            problem: "not read yet".into(),
        })
    }

    /// Gives the store a new id if it still has `old` (replicas noticing at once replace it
    /// once), and returns the id it has now. Every token minted under `old` is refused by the
    /// filters from their next bootstrap on.
    pub async fn replace_store_id(&self, old: StoreId) -> Result<StoreId, StoreError> {
        let fresh = random_id()?;
        dispatch!(self, p => sqlx::query(
            "UPDATE store_identity SET id = $1 WHERE singleton = 1 AND id = $2")
            .bind(fresh.0.to_vec())
            .bind(old.0.to_vec())
            .execute(p)
            .await
            .map(|_| ()))?;
        self.store_id().await
    }
}
