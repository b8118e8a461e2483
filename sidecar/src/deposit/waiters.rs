//! Long-poll waiters on deposit status (`GET …/deposit?wait=N`): how many may wait (per deposit
//! token and in total) and how they are woken. The lifecycle's change broadcast is relayed by one
//! task to the waiters of that payment hash only, so a payment wakes its own waiters at once
//! and nobody else. The change carries the committed deposit (and whether its token is
//! revoked), which the relay leaves with the waiters ([`WaitTicket::change`]), so a woken
//! waiter answers without reading the store: 1,000 waiters woken by a burst of payments made
//! 2,000 reads through the public half of the pool (bench/RESULTS.md "Long-poll wake-up").
//! Changes made by another replica (replicas sharing PostgreSQL) are found by one re-check
//! task ([`Waiters::recheck`]) that asks the store, every few seconds, which of the waited-on
//! deposits are no longer awaiting payment, in one query per [`RECHECK_CHUNK`] hashes, and
//! wakes only those (their waiters then read their deposit): the store's load is O(1) per
//! interval, not O(waiters) (10,000 waiters each re-reading every 5 s starved the pool in the
//! soak, docs/reliability.md).
//!
//! Never unbounded: a waiter holds a [`WaitTicket`]; dropping it (answer sent, client gone)
//! frees its place, so the registry holds at most `max_total` entries. Nor one provider's:
//! the deposits minted for one provider network (IPv6 /32, IPv4 /16, the mint budget share's
//! network, mint_limit.rs) hold at most `max_per_network` places, so 2,500 unpaid macaroons
//! from one provider's rotating addresses cannot take every place (the soak's finding,
//! bench/RESULTS.md "Soak with release binaries").

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

use crate::deposit::lifecycle::Changed;
use crate::ids::PaymentHash;
use crate::mint_limit::MintNetwork;
use crate::store::StoreError;

/// Payment hashes per re-check query (well under SQLite's 32,766 bound parameters).
pub const RECHECK_CHUNK: usize = 500;

/// Why a waiter was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WaitRefused {
    #[error("this deposit already has {0} status requests waiting")]
    PerToken(usize),
    #[error("deposits of this provider network already have {0} status requests waiting")]
    Network(usize),
    #[error("{0} status requests are already waiting on this replica")]
    Total(usize),
}

struct Slot {
    waiters: usize,
    notify: Arc<Notify>,
    /// The newest change the lifecycle reported since the first of these waiters came.
    latest: Option<Changed>,
}

#[derive(Default)]
struct Registry {
    total: usize,
    by_hash: HashMap<PaymentHash, Slot>,
    /// Places taken per provider network (entries with none are removed).
    by_network: HashMap<MintNetwork, usize>,
}

/// The waiters of this replica.
pub struct Waiters {
    max_total: usize,
    max_per_token: usize,
    max_per_network: usize,
    registry: Mutex<Registry>,
}

/// A place among the waiters; frees it on drop.
pub struct WaitTicket {
    waiters: Arc<Waiters>,
    hash: PaymentHash,
    network: MintNetwork,
    notify: Arc<Notify>,
}

impl WaitTicket {
    /// Notified when the lifecycle reports a change of this deposit (or lost track of changes).
    pub fn notify(&self) -> &Notify {
        &self.notify
    }

    /// The newest committed change of this deposit that this replica's lifecycle reported while
    /// someone waited on it; `None` if none (a wake without one, from the re-check or a lagging
    /// relay, means: read the store).
    pub fn change(&self) -> Option<Changed> {
        self.waiters
            .lock()
            .by_hash
            .get(&self.hash)
            .and_then(|slot| slot.latest.clone())
    }
}

impl Drop for WaitTicket {
    fn drop(&mut self) {
        let mut r = self.waiters.lock();
        r.total = r.total.saturating_sub(1);
        if let Some(slot) = r.by_hash.get_mut(&self.hash) {
            slot.waiters = slot.waiters.saturating_sub(1);
            if slot.waiters == 0 {
                r.by_hash.remove(&self.hash);
            }
        }
        if let Some(n) = r.by_network.get_mut(&self.network) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                r.by_network.remove(&self.network);
            }
        }
    }
}

impl Waiters {
    pub fn new(max_total: usize, max_per_token: usize, max_per_network: usize) -> Arc<Waiters> {
        Arc::new(Waiters {
            max_total,
            max_per_token,
            max_per_network,
            registry: Mutex::new(Registry::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        crate::mutex::lock(&self.registry)
    }

    /// A place to wait on `hash`'s deposit, minted for a client of provider network `network`
    /// (its [`crate::mint_limit::provider_network_of_prefix`]), or why not.
    pub fn enter(
        self: &Arc<Self>,
        hash: PaymentHash,
        network: MintNetwork,
    ) -> Result<WaitTicket, WaitRefused> {
        let mut r = self.lock();
        let on_token = r.by_hash.get(&hash).map_or(0, |s| s.waiters);
        if on_token >= self.max_per_token {
            return Err(WaitRefused::PerToken(on_token));
        }
        // A full house first: it is what every reader meets then, whatever its network.
        if r.total >= self.max_total {
            return Err(WaitRefused::Total(r.total));
        }
        let on_network = r.by_network.get(&network).copied().unwrap_or(0);
        if on_network >= self.max_per_network {
            return Err(WaitRefused::Network(on_network));
        }
        r.total += 1;
        *r.by_network.entry(network).or_insert(0) += 1;
        let slot = r.by_hash.entry(hash).or_insert_with(|| Slot {
            waiters: 0,
            notify: Arc::new(Notify::new()),
            latest: None,
        });
        slot.waiters += 1;
        let notify = slot.notify.clone();
        Ok(WaitTicket {
            waiters: self.clone(),
            hash,
            network,
            notify,
        })
    }

    /// Wakes the waiters of `hash` (those currently waiting; see [`WaitTicket::notify`]).
    pub fn wake(&self, hash: &PaymentHash) {
        if let Some(slot) = self.lock().by_hash.get(hash) {
            slot.notify.notify_waiters();
        }
    }

    /// Leaves the lifecycle's committed change with the waiters of its deposit (unless they hold
    /// a newer one: changes may arrive out of order) and wakes them.
    fn changed(&self, change: Changed) {
        let mut r = self.lock();
        if let Some(slot) = r.by_hash.get_mut(&change.deposit.payment_hash) {
            if slot
                .latest
                .as_ref()
                .is_none_or(|held| held.version < change.version)
            {
                slot.latest = Some(change);
            }
            slot.notify.notify_waiters();
        }
    }

    /// Wakes every waiter (they re-read the store): used when changes may have been missed.
    pub fn wake_all(&self) {
        for slot in self.lock().by_hash.values() {
            slot.notify.notify_waiters();
        }
    }

    /// The payment hashes someone waits on now.
    fn waited_on(&self) -> Vec<PaymentHash> {
        self.lock().by_hash.keys().copied().collect()
    }

    /// Every `every`, asks `no_longer_awaiting` (the store's
    /// [`crate::store::Store::no_longer_awaiting`]) which waited-on deposits changed, one call
    /// per [`RECHECK_CHUNK`] hashes, and wakes their waiters; they re-read their deposit. A
    /// failed query is logged and retried next interval (the waiters still time out on their
    /// own). Ends when the waiters are gone.
    pub fn recheck<F, Fut>(self: &Arc<Self>, every: Duration, no_longer_awaiting: F)
    where
        F: Fn(Vec<PaymentHash>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<PaymentHash>, StoreError>> + Send,
    {
        let waiters: Weak<Waiters> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate; nobody waited yet
            loop {
                tick.tick().await;
                let Some(hashes) = waiters.upgrade().map(|w| w.waited_on()) else {
                    return;
                };
                for chunk in hashes.chunks(RECHECK_CHUNK) {
                    match no_longer_awaiting(chunk.to_vec()).await {
                        Ok(changed) => {
                            let Some(w) = waiters.upgrade() else { return };
                            for hash in &changed {
                                w.wake(hash);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "long-poll re-check failed; retrying next interval");
                            break;
                        }
                    }
                }
            }
        });
    }

    /// Waiters now (all deposits).
    pub fn len(&self) -> usize {
        self.lock().total
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Relays the lifecycle's changes to the waiters until the lifecycle is gone. A lagging relay
    /// wakes everyone: they re-read the store, so nothing is missed.
    pub fn relay(self: Arc<Self>, mut changes: broadcast::Receiver<Changed>) {
        tokio::spawn(async move {
            loop {
                match changes.recv().await {
                    Ok(change) => self.changed(change),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.wake_all(),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn hash(b: u8) -> PaymentHash {
        PaymentHash([b; 32])
    }

    /// The soak's flooding provider (2001:db8::/32) and two other networks.
    const FLOOD: MintNetwork = MintNetwork::V6Provider(0x2001_0db8);
    const OTHER: MintNetwork = MintNetwork::V4Provider(0x7f00);
    const THIRD: MintNetwork = MintNetwork::V4Provider(0xc000);

    #[test]
    fn places_are_capped_per_token_and_in_total_and_freed_on_drop() {
        let w = Waiters::new(3, 2, 3);
        let a1 = w.enter(hash(1), OTHER).unwrap();
        let _a2 = w.enter(hash(1), OTHER).unwrap();
        assert_eq!(
            w.enter(hash(1), OTHER).err(),
            Some(WaitRefused::PerToken(2))
        );
        let _b = w.enter(hash(2), THIRD).unwrap();
        assert_eq!(w.enter(hash(3), FLOOD).err(), Some(WaitRefused::Total(3)));
        drop(a1);
        assert_eq!(w.len(), 2);
        let _c = w.enter(hash(3), FLOOD).unwrap();
        assert_eq!(w.len(), 3);
    }

    /// The soak's finding: 2,500 unpaid macaroons of one provider held every place, and a
    /// visitor from elsewhere who had just paid found none. With a share per provider network
    /// the flood stops at its share and the other network's deposit still waits.
    #[test]
    fn one_networks_deposits_take_only_their_share_and_another_network_still_waits() {
        let w = Waiters::new(10, 4, 3);
        let flood: Vec<_> = (0..3).map(|i| w.enter(hash(i), FLOOD).unwrap()).collect();
        assert_eq!(
            w.enter(hash(3), FLOOD).err(),
            Some(WaitRefused::Network(3)),
            "a fourth deposit of the same provider"
        );
        let visitor = w
            .enter(hash(100), OTHER)
            .expect("another network still waits");
        assert_eq!(w.len(), 4);
        drop(visitor);
        drop(flood);
        let _again = w
            .enter(hash(3), FLOOD)
            .expect("the places are freed on drop");
    }

    #[test]
    fn the_per_token_cap_holds_under_the_network_share() {
        let w = Waiters::new(10, 2, 5);
        let _a: Vec<_> = (0..2).map(|_| w.enter(hash(1), OTHER).unwrap()).collect();
        assert_eq!(
            w.enter(hash(1), OTHER).err(),
            Some(WaitRefused::PerToken(2))
        );
        let _b = w.enter(hash(2), OTHER).unwrap();
    }

    #[test]
    fn the_registry_is_empty_once_every_waiter_left() {
        let w = Waiters::new(100, 4, 100);
        let tickets: Vec<_> = (0..50)
            .map(|i| w.enter(hash(i), MintNetwork::V4Provider(i.into())).unwrap())
            .collect();
        assert_eq!(w.lock().by_hash.len(), 50);
        assert_eq!(w.lock().by_network.len(), 50);
        drop(tickets);
        assert!(w.is_empty());
        assert!(w.lock().by_hash.is_empty());
        assert!(w.lock().by_network.is_empty());
    }

    fn change(n: u8, version: i64) -> Changed {
        let (deposit, _) = crate::store::tests::fixtures::deposit(n, "192.0.2.0/24");
        Changed {
            deposit: Arc::new(deposit),
            version,
            token_revoked: false,
        }
    }

    #[tokio::test]
    async fn a_change_wakes_the_waiters_of_its_deposit_only_and_is_left_with_them() {
        let w = Waiters::new(10, 4, 10);
        let (tx, rx) = broadcast::channel(16);
        w.clone().relay(rx);
        let paid = change(1, 2);
        let mine = w.enter(paid.deposit.payment_hash, OTHER).unwrap();
        let other = w.enter(change(2, 1).deposit.payment_hash, OTHER).unwrap();
        let mine_woken = mine.notify().notified();
        let other_woken = other.notify().notified();
        tokio::pin!(mine_woken, other_woken);
        mine_woken.as_mut().enable();
        other_woken.as_mut().enable();
        tx.send(paid.clone()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), mine_woken)
            .await
            .expect("the paid deposit's waiter is woken");
        assert_eq!(mine.change(), Some(paid), "with the committed deposit");
        assert!(
            tokio::time::timeout(Duration::from_millis(100), other_woken)
                .await
                .is_err(),
            "another deposit's waiter sleeps on"
        );
        assert_eq!(other.change(), None);
    }

    #[test]
    fn an_older_change_arriving_late_does_not_replace_a_newer_one() {
        let w = Waiters::new(10, 4, 10);
        let ticket = w.enter(change(1, 1).deposit.payment_hash, OTHER).unwrap();
        w.changed(change(1, 3));
        w.changed(change(1, 2));
        assert_eq!(ticket.change().map(|c| c.version), Some(3));
        drop(ticket);
        let again = w.enter(change(1, 1).deposit.payment_hash, OTHER).unwrap();
        assert_eq!(
            again.change(),
            None,
            "a change is kept only while someone waits"
        );
    }

    /// The soak's finding: store reads must not grow with the number of waiters. 1,200
    /// waiters on 1,200 deposits cost ⌈1,200 / RECHECK_CHUNK⌉ = 3 queries per interval, and
    /// only the deposit another replica changed is woken.
    #[tokio::test(start_paused = true)]
    async fn the_recheck_costs_one_query_per_chunk_and_wakes_only_the_changed() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let w = Waiters::new(10_000, 4, 10_000);
        let tickets: Vec<_> = (0..1200u32)
            .map(|i| {
                let mut h = [0u8; 32];
                h[..4].copy_from_slice(&i.to_be_bytes());
                w.enter(PaymentHash(h), OTHER).unwrap()
            })
            .collect();
        let changed = tickets[7].hash;
        let queries = Arc::new(AtomicUsize::new(0));
        let counted = queries.clone();
        w.recheck(Duration::from_secs(5), move |chunk: Vec<PaymentHash>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { Ok(chunk.into_iter().filter(|h| *h == changed).collect()) }
        });
        {
            let woken = tickets[7].notify().notified();
            let other = tickets[8].notify().notified();
            tokio::pin!(woken, other);
            woken.as_mut().enable();
            other.as_mut().enable();
            tokio::time::sleep(Duration::from_millis(15_100)).await;
            assert_eq!(
                queries.load(Ordering::SeqCst),
                3 * 3,
                "3 intervals × 3 chunks"
            );
            tokio::time::timeout(Duration::from_millis(1), woken)
                .await
                .expect("the deposit changed elsewhere is woken");
            assert!(
                tokio::time::timeout(Duration::from_millis(1), other)
                    .await
                    .is_err(),
                "an unchanged deposit's waiter sleeps on"
            );
        }
        drop(tickets);
        drop(w);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            queries.load(Ordering::SeqCst),
            9,
            "the task ends with its waiters"
        );
    }
}
