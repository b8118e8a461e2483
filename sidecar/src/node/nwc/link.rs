//! The encrypted request/response channel to the wallet service through its relays (NIP-47
//! "Request and Response Events"): kind 23194 requests signed with the connection's secret,
//! NIP-44 v2 encrypted, tagged `p` (the wallet), `encryption` and `expiration`; kind 23195
//! responses matched to their request by the `e` tag; kind 23197 notifications.
//!
//! It only accepts events signed by the configured wallet key and addressed to this client, and
//! never logs a plaintext (invoices and preimages travel in them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nostr_sdk::prelude::*;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use super::wire;
use crate::mutex::lock;
use crate::node::NodeError;

pub const KIND_INFO: u16 = 13194;
pub const KIND_REQUEST: u16 = 23194;
pub const KIND_RESPONSE: u16 = 23195;
pub const KIND_NOTIFICATION: u16 = 23197;

type Pending = HashMap<EventId, oneshot::Sender<wire::Response>>;

pub struct WalletLink {
    client: Client,
    keys: Keys,
    wallet: PublicKey,
    pending: Arc<Mutex<Pending>>,
    notifications: broadcast::Sender<wire::Notification>,
    listener: JoinHandle<()>,
}

impl Drop for WalletLink {
    fn drop(&mut self) {
        self.listener.abort();
        let client = self.client.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { client.shutdown().await });
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl WalletLink {
    /// Connects to every relay of the connection string and subscribes to the wallet's
    /// responses and notifications addressed to this client. Relays that cannot be reached now
    /// are retried in the background by nostr-sdk.
    pub async fn connect(
        secret: &[u8; 32],
        wallet: &[u8; 32],
        relays: &[String],
        timeout: Duration,
    ) -> Result<Self, NodeError> {
        let secret = SecretKey::from_slice(secret).map_err(|_| {
            NodeError::Rejected("the connection's secret is not a valid key".into())
        })?;
        let keys = Keys::new(secret);
        let wallet = PublicKey::from_slice(wallet).map_err(|_| {
            NodeError::Rejected("the connection's wallet public key is not a valid key".into())
        })?;
        let client = Client::new(keys.clone());
        for relay in relays {
            client
                .add_relay(relay.as_str())
                .await
                .map_err(|e| NodeError::Rejected(format!("relay {relay}: {e}")))?;
        }
        client.connect().await;
        client.wait_for_connection(timeout).await;
        let (notifications, _) = broadcast::channel(1024);
        let pending: Arc<Mutex<Pending>> = Arc::default();
        let listener = tokio::spawn(listen(
            client.notifications(),
            keys.clone(),
            wallet,
            pending.clone(),
            notifications.clone(),
        ));
        let filter = Filter::new()
            .kinds([Kind::Custom(KIND_RESPONSE), Kind::Custom(KIND_NOTIFICATION)])
            .author(wallet)
            .pubkey(keys.public_key())
            .since(Timestamp::from(unix_now().saturating_sub(60)));
        let subscribed = client
            .subscribe(filter, None)
            .await
            .map_err(|e| NodeError::Unavailable(format!("subscribing on the relays: {e}")))?;
        if subscribed.success.is_empty() {
            return Err(NodeError::Unavailable(
                "no relay of the connection string accepted the subscription".into(),
            ));
        }
        Ok(Self {
            client,
            keys,
            wallet,
            pending,
            notifications,
            listener,
        })
    }

    pub fn notifications(&self) -> broadcast::Receiver<wire::Notification> {
        self.notifications.subscribe()
    }

    /// The wallet's info event (kind 13194): the methods it offers, its encryption schemes and
    /// notification types, as `(content, tags)`.
    pub async fn info_event(&self, timeout: Duration) -> Result<Option<Event>, NodeError> {
        let filter = Filter::new()
            .kind(Kind::Custom(KIND_INFO))
            .author(self.wallet)
            .limit(1);
        let events = self
            .client
            .fetch_events(filter, timeout)
            .await
            .map_err(|e| {
                NodeError::Unavailable(format!("fetching the wallet's info event: {e}"))
            })?;
        Ok(events.into_iter().max_by_key(|e| e.created_at))
    }

    /// Sends one request and waits up to `timeout` for its response. The request carries an
    /// `expiration` at the same moment, so a wallet that receives it later ignores it (NIP-47)
    /// rather than acting on a request the sidecar has given up on.
    pub async fn call(
        &self,
        method: &str,
        params: serde_json::Value,
        timeout: Duration,
    ) -> Result<wire::Response, NodeError> {
        let plaintext = wire::request(method, params);
        let content = nip44::encrypt(
            self.keys.secret_key(),
            &self.wallet,
            plaintext,
            nip44::Version::V2,
        )
        .map_err(|e| NodeError::Rejected(format!("encrypting a {method} request: {e}")))?;
        let expiration = unix_now().saturating_add(timeout.as_secs().max(1));
        let event = EventBuilder::new(Kind::Custom(KIND_REQUEST), content)
            .tags([
                Tag::public_key(self.wallet),
                Tag::custom(TagKind::custom("encryption"), ["nip44_v2"]),
                Tag::expiration(Timestamp::from(expiration)),
            ])
            .sign_with_keys(&self.keys)
            .map_err(|e| NodeError::Rejected(format!("signing a {method} request: {e}")))?;
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(event.id, tx);
        let answer = async {
            let sent = self
                .client
                .send_event(&event)
                .await
                .map_err(|e| NodeError::Unavailable(format!("sending {method}: {e}")))?;
            if sent.success.is_empty() {
                return Err(NodeError::Unavailable(format!(
                    "no relay accepted the {method} request"
                )));
            }
            rx.await
                .map_err(|_| NodeError::Unavailable("the wallet link closed".into()))
        };
        let outcome = tokio::time::timeout(timeout, answer).await;
        lock(&self.pending).remove(&event.id);
        match outcome {
            Ok(answer) => answer,
            Err(_) => Err(NodeError::Unavailable(format!(
                "no answer from the wallet to {method} within {timeout:?}"
            ))),
        }
    }
}

/// Routes the relays' events: responses to their waiting request, notifications to the
/// broadcast. Anything not signed by the wallet, not addressed to us, or not decryptable with
/// NIP-44 is dropped (a relay or a third party can publish anything).
async fn listen(
    mut events: broadcast::Receiver<RelayPoolNotification>,
    keys: Keys,
    wallet: PublicKey,
    pending: Arc<Mutex<Pending>>,
    notifications: broadcast::Sender<wire::Notification>,
) {
    loop {
        let event = match events.recv().await {
            Ok(RelayPoolNotification::Event { event, .. }) => event,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                tracing::warn!(skipped, "nwc: relay events dropped while busy");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if event.pubkey != wallet
            || !event.tags.public_keys().any(|p| *p == keys.public_key())
            || event.verify().is_err()
        {
            continue;
        }
        let Ok(plaintext) = nip44::decrypt(keys.secret_key(), &wallet, &event.content) else {
            tracing::debug!(
                kind = event.kind.as_u16(),
                "nwc: an event from the wallet did not decrypt"
            );
            continue;
        };
        match event.kind.as_u16() {
            KIND_RESPONSE => {
                let Ok(response) = serde_json::from_str::<wire::Response>(&plaintext) else {
                    tracing::warn!("nwc: the wallet sent a response that is not NIP-47 JSON");
                    continue;
                };
                let waiter = event
                    .tags
                    .event_ids()
                    .find_map(|id| lock(&pending).remove(id));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(response);
                }
            }
            KIND_NOTIFICATION => {
                if let Ok(notification) = serde_json::from_str::<wire::Notification>(&plaintext) {
                    let _ = notifications.send(notification);
                }
            }
            _ => {}
        }
    }
}
