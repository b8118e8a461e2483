//! The store suite: every test runs on SQLite and on PostgreSQL (a fresh schema per test at
//! `LW_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`). PostgreSQL being
//! down fails the tests: a skipped half of the suite would prove nothing.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::deposit::machine::{Event, Outcome, step};
use crate::deposit::{Deposit, DepositState, DepositTiming, NodeAction, Trigger};
use crate::ids::{PaymentHash, Preimage};
use crate::ids::{Timestamp, TokenId};

pub(crate) mod fixtures {
    use super::*;

    pub async fn sqlite() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("lw.db")).await.unwrap();
        (store, dir)
    }

    pub fn postgres_url() -> String {
        std::env::var("LW_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    /// A new schema, so parallel tests and earlier runs never see each other's rows.
    pub async fn postgres_schema() -> String {
        let schema = format!("lw_test_{}", hex::encode(rand::random::<[u8; 8]>()));
        let admin = sqlx::PgPool::connect(&postgres_url())
            .await
            .expect("PostgreSQL must be running at LW_TEST_POSTGRES_URL for the store suite");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        schema
    }

    /// Removes a test schema (tests that panic leave theirs behind for inspection).
    pub async fn drop_postgres_schema(schema: &str) {
        let admin = sqlx::PgPool::connect(&postgres_url()).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
    }

    pub async fn postgres_in(schema: &str) -> Store {
        let options = postgres_url()
            .parse::<sqlx::postgres::PgConnectOptions>()
            .unwrap()
            .options([("search_path", schema)]);
        Store::open_postgres_with(options).await.unwrap()
    }

    pub fn deposit(n: u8, prefix: &str) -> (Deposit, Preimage) {
        let preimage = Preimage([n; 32]);
        let hash = {
            use sha2::Digest;
            PaymentHash(sha2::Sha256::digest(preimage.0).into())
        };
        let d = Deposit {
            payment_hash: hash,
            token_id: TokenId([n.wrapping_add(100); 32]),
            route_id: "articles".into(),
            client_prefix: prefix.into(),
            amount_msat: 1_000_000,
            state: DepositState::AwaitingPayment,
            created_at: Timestamp(1_000 + u64::from(n)),
            invoice_expires_at: Timestamp(1_600),
            timing: DepositTiming {
                idle_timeout: Duration::from_secs(300),
                session_cap: Duration::from_secs(3600),
                safety_margin_blocks: 6,
                assumed_block_interval: Duration::from_secs(300),
            },
            hold: None,
            resolution: None,
            pending: None,
        };
        (d, preimage)
    }

    pub fn accepted() -> Event {
        Event::NodeAccepted {
            amount_paid_msat: 1_000_000,
            htlc_expiry_height: Some(1_144),
            block_height: 1_000,
            hold_expiry_delta: 18,
        }
    }
}

use fixtures::{accepted, deposit};

/// Declares `$name` as a test on both backends.
macro_rules! on_both_stores {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let (store, _dir) = super::fixtures::sqlite().await;
                super::$name(store).await;
            }
            #[tokio::test]
            async fn postgres() {
                let schema = super::fixtures::postgres_schema().await;
                let store = super::fixtures::postgres_in(&schema).await;
                super::$name(store.clone()).await;
                store.close().await;
                super::fixtures::drop_postgres_schema(&schema).await;
            }
        }
    };
}

async fn apply_event(store: &Store, hash: &PaymentHash, event: Event, now: u64) -> StoredDeposit {
    let current = store.deposit(hash).await.unwrap().unwrap();
    let t = step(&current.deposit, event, Timestamp(now)).unwrap();
    let outcome = store
        .apply(current.version, &t, Timestamp(now))
        .await
        .unwrap();
    assert!(matches!(outcome, ApplyOutcome::Applied { .. }));
    store.deposit(hash).await.unwrap().unwrap()
}

on_both_stores!(a_deposit_and_its_preimage_read_back_exactly);
async fn a_deposit_and_its_preimage_read_back_exactly(store: Store) {
    let (d, preimage) = deposit(1, "203.0.113.0/24");
    store.insert_deposit(&d, &preimage).await.unwrap();
    let stored = store.deposit(&d.payment_hash).await.unwrap().unwrap();
    assert_eq!(stored.deposit, d);
    assert_eq!(stored.payment_request, None);
    assert_eq!(stored.version, 1);
    assert_eq!(
        store.preimage(&d.payment_hash).await.unwrap(),
        Some(preimage)
    );
    store
        .set_payment_request(&d.payment_hash, "lnbcrt1…")
        .await
        .unwrap();
    let by_token = store.deposit_by_token(&d.token_id).await.unwrap().unwrap();
    assert_eq!(by_token.payment_request.as_deref(), Some("lnbcrt1…"));
    // Held, with every hold field, survives the round trip too.
    let held = apply_event(&store, &d.payment_hash, accepted(), 1_010).await;
    assert_eq!(held.deposit.state, DepositState::Held);
    assert_eq!(
        held.deposit,
        step(&d, accepted(), Timestamp(1_010)).unwrap().next
    );
    assert_eq!(held.version, 2);
}

on_both_stores!(a_leave_in_its_grace_is_stored_revoked_and_due_at_its_refund);
async fn a_leave_in_its_grace_is_stored_revoked_and_due_at_its_refund(store: Store) {
    let (d, preimage) = deposit(9, "203.0.113.0/24");
    store.insert_deposit(&d, &preimage).await.unwrap();
    apply_event(&store, &d.payment_hash, accepted(), 1_010).await;
    let grace = Event::LeaveRequested {
        grace: Duration::from_secs(1),
    };
    let leaving = apply_event(&store, &d.payment_hash, grace, 1_020).await;
    let l = leaving.deposit.hold.and_then(|h| h.leaving).unwrap();
    assert_eq!(
        (l.left_at, l.refund_at),
        (Timestamp(1_020), Timestamp(1_022))
    );
    // Revoked in the same transaction; the timer scan finds it at its refund time (a restart
    // in the middle of the grace loses nothing), not before.
    assert!(store.is_revoked(&d.token_id).await.unwrap());
    assert!(
        store
            .due_deposits(Timestamp(1_021), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store.due_deposits(Timestamp(1_022), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].deposit, leaving.deposit);
}

on_both_stores!(a_hash_or_token_is_never_stored_twice);
async fn a_hash_or_token_is_never_stored_twice(store: Store) {
    let (d, preimage) = deposit(2, "203.0.113.0/24");
    store.insert_deposit(&d, &preimage).await.unwrap();
    let err = store.insert_deposit(&d, &preimage).await.unwrap_err();
    assert!(matches!(err, StoreError::Duplicate), "{err:?}");
    let (mut other, p2) = deposit(3, "203.0.113.0/24");
    other.token_id = d.token_id;
    assert!(matches!(
        store.insert_deposit(&other, &p2).await,
        Err(StoreError::Duplicate)
    ));
}

on_both_stores!(an_applied_transition_says_whether_the_token_was_revoked_when_it_committed);
/// A long-poll answers from the lifecycle's change instead of reading the store (api/wall.rs), so
/// the transition itself must report a revocation made outside the lifecycle (the admin API
/// revokes an unpaid deposit's token): never reveal a revoked credential.
async fn an_applied_transition_says_whether_the_token_was_revoked_when_it_committed(store: Store) {
    let mut outcomes = Vec::new();
    for (n, revoke_first) in [(40u8, false), (41, true)] {
        let (d, preimage) = deposit(n, "203.0.113.0/24");
        store.insert_deposit(&d, &preimage).await.unwrap();
        if revoke_first {
            store
                .revoke(&d.token_id, "admin", Timestamp(1_005))
                .await
                .unwrap();
        }
        let read = store.deposit(&d.payment_hash).await.unwrap().unwrap();
        let held = step(&read.deposit, accepted(), Timestamp(1_010)).unwrap();
        outcomes.push(
            store
                .apply(read.version, &held, Timestamp(1_010))
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        outcomes,
        [
            ApplyOutcome::Applied {
                version: 2,
                token_revoked: false
            },
            ApplyOutcome::Applied {
                version: 2,
                token_revoked: true
            }
        ]
    );
}

on_both_stores!(a_transition_decided_on_a_stale_read_is_refused);
async fn a_transition_decided_on_a_stale_read_is_refused(store: Store) {
    let (d, preimage) = deposit(4, "203.0.113.0/24");
    store.insert_deposit(&d, &preimage).await.unwrap();
    let read = store.deposit(&d.payment_hash).await.unwrap().unwrap();
    let held = step(&read.deposit, accepted(), Timestamp(1_010)).unwrap();
    let expired = step(
        &read.deposit,
        Event::Tick { block_height: None },
        Timestamp(1_700),
    )
    .unwrap();
    assert_eq!(
        store
            .apply(read.version, &held, Timestamp(1_010))
            .await
            .unwrap(),
        ApplyOutcome::Applied {
            version: 2,
            token_revoked: false
        }
    );
    // The second writer decided on version 1: refused, nothing written.
    assert_eq!(
        store
            .apply(read.version, &expired, Timestamp(1_700))
            .await
            .unwrap(),
        ApplyOutcome::Stale
    );
    let now = store.deposit(&d.payment_hash).await.unwrap().unwrap();
    assert_eq!(now.deposit.state, DepositState::Held);
    assert!(
        store
            .audit_records(Some(&d.payment_hash), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

on_both_stores!(a_forfeit_writes_revocation_audit_and_pending_settle_together);
async fn a_forfeit_writes_revocation_audit_and_pending_settle_together(store: Store) {
    let (d, preimage) = deposit(5, "198.51.100.0/24");
    store.insert_deposit(&d, &preimage).await.unwrap();
    apply_event(&store, &d.payment_hash, accepted(), 1_010).await;
    let head = store.revocation_head().await.unwrap();
    let verdict = Event::Verdict {
        outcome: Outcome::Forfeit,
        trigger: Trigger::TrapPath,
    };
    let forfeited = apply_event(&store, &d.payment_hash, verdict, 1_020).await;
    assert_eq!(forfeited.deposit.pending, Some(NodeAction::Settle));
    let revs = store.revocations_since(head, 10).await.unwrap();
    assert_eq!(revs.len(), 1);
    assert_eq!(revs[0].token_id, d.token_id);
    assert_eq!(revs[0].reason, "trap_path");
    assert!(store.is_revoked(&d.token_id).await.unwrap());
    let audit = store
        .audit_records(Some(&d.payment_hash), 10)
        .await
        .unwrap();
    assert_eq!(
        audit,
        [AuditRecord {
            payment_hash: d.payment_hash,
            route_id: "articles".into(),
            client_prefix: "198.51.100.0/24".into(),
            outcome: DepositState::Forfeited,
            trigger: Trigger::TrapPath,
            amount_msat: 1_000_000,
            at: Timestamp(1_020),
        }]
    );
    assert_eq!(
        store
            .pending_deposits(Timestamp(1_021), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let done = apply_event(
        &store,
        &d.payment_hash,
        Event::ActionPerformed(NodeAction::Settle),
        1_022,
    )
    .await;
    assert_eq!(done.deposit.pending, None);
    assert!(
        store
            .pending_deposits(Timestamp(1_023), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

on_both_stores!(revocation_sequence_numbers_only_grow_and_revoking_twice_keeps_the_first);
async fn revocation_sequence_numbers_only_grow_and_revoking_twice_keeps_the_first(store: Store) {
    let a = store
        .revoke(&TokenId([1; 32]), "admin", Timestamp(5))
        .await
        .unwrap();
    let b = store
        .revoke(&TokenId([2; 32]), "admin", Timestamp(6))
        .await
        .unwrap();
    assert!(b > a);
    assert_eq!(
        store
            .revoke(&TokenId([1; 32]), "again", Timestamp(7))
            .await
            .unwrap(),
        a
    );
    let all = store.revocations_since(0, 100).await.unwrap();
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [a, b]);
    assert_eq!(store.revocations_since(a, 100).await.unwrap().len(), 1);
    assert_eq!(store.revocation_head().await.unwrap(), b);
}

/// Moves a revocation's log time back, as if it had been logged `secs` earlier by the store.
async fn backdate_revocation(store: &Store, token: &TokenId, secs: i64) {
    dispatch!(store, p => {
        sqlx::query("UPDATE revocations SET logged_at = logged_at - $1 WHERE token_id = $2")
            .bind(secs)
            .bind(token.0.to_vec())
            .execute(p)
            .await
            .unwrap()
            .rows_affected()
    });
}

on_both_stores!(compaction_drops_what_the_store_clock_says_expired_and_keeps_the_head);
async fn compaction_drops_what_the_store_clock_says_expired_and_keeps_the_head(store: Store) {
    let hour = Duration::from_secs(3600);
    let (old, fresh, newest, later) = (
        TokenId([1; 32]),
        TokenId([2; 32]),
        TokenId([3; 32]),
        TokenId([4; 32]),
    );
    store.revoke(&old, "admin", Timestamp(1_000)).await.unwrap();
    // The sidecar's clock had stepped back to 1970 when this one was revoked: its revoked_at
    // says "ancient", the store's clock says "just now", and the store's clock decides.
    store.revoke(&fresh, "admin", Timestamp(1)).await.unwrap();
    let head = store
        .revoke(&newest, "admin", Timestamp(1_000))
        .await
        .unwrap();
    backdate_revocation(&store, &old, 7200).await;
    backdate_revocation(&store, &newest, 7200).await;
    assert_eq!(store.compact_revocations(hour).await.unwrap(), 1);
    let left: Vec<TokenId> = store
        .revocations_since(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.token_id)
        .collect();
    assert_eq!(left, [fresh, newest], "expired and not the newest: gone");
    assert_eq!(
        store.revocation_head().await.unwrap(),
        head,
        "the head never goes back"
    );
    let next = store
        .revoke(&later, "admin", Timestamp(1_000))
        .await
        .unwrap();
    assert!(next > head);
    assert_eq!(store.compact_revocations(hour).await.unwrap(), 1);
    assert!(!store.is_revoked(&newest).await.unwrap());
    assert!(store.is_revoked(&fresh).await.unwrap());
    assert_eq!(store.compact_revocations(hour).await.unwrap(), 0);
}

on_both_stores!(a_snapshot_holds_every_live_revocation_as_sorted_prefixes_with_the_head);
async fn a_snapshot_holds_every_live_revocation_as_sorted_prefixes_with_the_head(store: Store) {
    let hour = Duration::from_secs(3600);
    let empty = store.revocation_snapshot(hour).await.unwrap();
    assert_eq!((empty.head, empty.prefixes.len()), (0, 0));
    let mut ids = Vec::new();
    for b in [9u8, 3, 200, 3] {
        let mut id = [b; 32];
        id[31] = ids.len() as u8; // two tokens share a prefix, not an id
        ids.push(TokenId(id));
    }
    let added = store
        .revoke_many(&ids, "admin", Timestamp(1_000))
        .await
        .unwrap();
    assert_eq!(added, 4);
    let expired = TokenId([7; 32]);
    store
        .revoke(&expired, "admin", Timestamp(1_000))
        .await
        .unwrap();
    backdate_revocation(&store, &expired, 7200).await;
    let head = store
        .revoke(&TokenId([5; 32]), "admin", Timestamp(1))
        .await
        .unwrap();
    let s = store.revocation_snapshot(hour).await.unwrap();
    assert_eq!(s.head, head);
    let many: Vec<TokenId> = (0..2500u32)
        .map(|i| {
            let mut id = [0x11; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            TokenId(id)
        })
        .collect();
    assert_eq!(
        store
            .revoke_many(&many, "bulk", Timestamp(1))
            .await
            .unwrap(),
        2500
    );
    let big = store.revocation_snapshot(hour).await.unwrap();
    assert_eq!(big.prefixes.len(), 2504, "several statements of 1000 rows");
    let p = |b: u8| u64::from_be_bytes([b; 8]);
    assert_eq!(s.prefixes, [p(3), p(5), p(9), p(200)]);
}

on_both_stores!(timers_and_live_counts_are_found_by_scans);
async fn timers_and_live_counts_are_found_by_scans(store: Store) {
    for n in 10..14 {
        let prefix = if n < 13 {
            "203.0.113.0/24"
        } else {
            "2001:db8:1::/48"
        };
        let (d, p) = deposit(n, prefix);
        store.insert_deposit(&d, &p).await.unwrap();
    }
    assert_eq!(
        store.live_deposit_counts("203.0.113.0/24").await.unwrap(),
        (4, 3)
    );
    assert_eq!(
        store.live_deposit_counts("192.0.2.0/24").await.unwrap(),
        (4, 0)
    );
    assert_eq!(
        store.prefix_deposit_counts("203.0.113.0/24").await.unwrap(),
        crate::store::LiveCounts { held: 0, unpaid: 3 }
    );
    assert!(
        store
            .due_deposits(Timestamp(1_599), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .due_deposits(Timestamp(1_600), 100)
            .await
            .unwrap()
            .len(),
        4
    );
    let (d, _) = deposit(10, "");
    let expired = apply_event(
        &store,
        &d.payment_hash,
        Event::Tick { block_height: None },
        1_600,
    )
    .await;
    assert_eq!(expired.deposit.state, DepositState::Expired);
    assert_eq!(
        store.live_deposit_counts("203.0.113.0/24").await.unwrap(),
        (3, 2)
    );
    assert_eq!(
        store
            .due_deposits(Timestamp(1_600), 100)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store.unfinished_deposits().await.unwrap().len(),
        4,
        "3 live + 1 pending cancel"
    );
    let counts = store.count_by_state().await.unwrap();
    assert!(counts.contains(&(DepositState::AwaitingPayment, 3)));
    assert!(counts.contains(&(DepositState::Expired, 1)));
}

on_both_stores!(only_one_replica_holds_the_lease_until_it_expires);
async fn only_one_replica_holds_the_lease_until_it_expires(store: Store) {
    let (d, p) = deposit(20, "203.0.113.0/24");
    store.insert_deposit(&d, &p).await.unwrap();
    let h = &d.payment_hash;
    let lease = Duration::from_secs(30);
    assert!(store.claim(h, "a", Timestamp(100), lease).await.unwrap());
    assert!(!store.claim(h, "b", Timestamp(110), lease).await.unwrap());
    assert!(
        store.claim(h, "a", Timestamp(110), lease).await.unwrap(),
        "renewal"
    );
    assert!(!store.claim(h, "b", Timestamp(140), lease).await.unwrap());
    assert!(
        store.claim(h, "b", Timestamp(141), lease).await.unwrap(),
        "expired lease"
    );
    store.release(h, "a").await.unwrap();
    assert!(
        !store.claim(h, "a", Timestamp(142), lease).await.unwrap(),
        "a no longer owns it"
    );
    store.release(h, "b").await.unwrap();
    assert!(store.claim(h, "a", Timestamp(143), lease).await.unwrap());
}

on_both_stores!(concurrent_claims_have_exactly_one_winner);
async fn concurrent_claims_have_exactly_one_winner(store: Store) {
    let store = Arc::new(store);
    for n in 30..35u8 {
        let (d, p) = deposit(n, "203.0.113.0/24");
        store.insert_deposit(&d, &p).await.unwrap();
        let mut tasks = Vec::new();
        for owner in 0..8 {
            let store = store.clone();
            let hash = d.payment_hash;
            tasks.push(tokio::spawn(async move {
                store
                    .claim(
                        &hash,
                        &format!("replica-{owner}"),
                        Timestamp(100),
                        Duration::from_secs(30),
                    )
                    .await
                    .unwrap()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1, "deposit {n}");
    }
}

on_both_stores!(master_keys_are_added_once_per_id);
async fn master_keys_are_added_once_per_id(store: Store) {
    store
        .add_master_key_if_absent("k1", &[1; 32], Timestamp(1))
        .await
        .unwrap();
    store
        .add_master_key_if_absent("k1", &[9; 32], Timestamp(2))
        .await
        .unwrap();
    store
        .add_master_key_if_absent("k2", &[2; 32], Timestamp(3))
        .await
        .unwrap();
    assert_eq!(
        store.master_keys().await.unwrap(),
        [("k1".to_string(), [1; 32]), ("k2".to_string(), [2; 32])]
    );
}

on_both_stores!(a_store_draws_its_id_once_and_replaces_it_only_from_the_id_it_has);
async fn a_store_draws_its_id_once_and_replaces_it_only_from_the_id_it_has(store: Store) {
    let id = store.store_id().await.unwrap();
    assert_eq!(store.store_id().await.unwrap(), id, "kept");
    assert_eq!(store.cached_store_id().unwrap(), id);
    // A replica that noticed late asks to replace an id the store no longer has: nothing.
    let new = store.replace_store_id(id).await.unwrap();
    assert_ne!(new, id);
    assert_eq!(store.replace_store_id(id).await.unwrap(), new);
    assert_eq!(store.store_id().await.unwrap(), new);
    assert_eq!(store.cached_store_id().unwrap(), new);
}

#[tokio::test]
async fn a_reopened_sqlite_store_keeps_its_id_and_a_new_one_draws_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lw.db");
    let first = Store::open_sqlite(&path).await.unwrap();
    let id = first.cached_store_id().unwrap();
    first.close().await;
    let again = Store::open_sqlite(&path).await.unwrap();
    assert_eq!(again.cached_store_id().unwrap(), id);
    let (other, _dir) = fixtures::sqlite().await;
    assert_ne!(other.cached_store_id().unwrap(), id);
}

#[tokio::test]
async fn a_replica_learns_the_id_another_replaced_at_its_next_read() {
    let schema = fixtures::postgres_schema().await;
    let a = fixtures::postgres_in(&schema).await;
    let b = fixtures::postgres_in(&schema).await;
    let id = a.cached_store_id().unwrap();
    assert_eq!(b.cached_store_id().unwrap(), id, "one store, one id");
    let new = a.replace_store_id(id).await.unwrap();
    assert_eq!(b.store_id().await.unwrap(), new);
    assert_eq!(b.cached_store_id().unwrap(), new);
    a.close().await;
    b.close().await;
    fixtures::drop_postgres_schema(&schema).await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_file_holding_preimages_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lw.db");
    let store = Store::open_sqlite(&path).await.unwrap();
    let (d, p) = deposit(50, "203.0.113.0/24");
    store.insert_deposit(&d, &p).await.unwrap();
    for file in ["lw.db", "lw.db-wal"] {
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{file}: {mode:o}");
    }
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode() {
    let (store, _dir) = fixtures::sqlite().await;
    let Pool::Sqlite(p) = &store.pool else {
        unreachable!()
    };
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(p)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn two_replicas_on_one_postgres_see_each_others_writes() {
    let schema = fixtures::postgres_schema().await;
    let a = fixtures::postgres_in(&schema).await;
    let b = fixtures::postgres_in(&schema).await;
    let (d, p) = deposit(40, "203.0.113.0/24");
    a.insert_deposit(&d, &p).await.unwrap();
    assert_eq!(b.preimage(&d.payment_hash).await.unwrap(), Some(p));
    let seq = b
        .revoke(&TokenId([7; 32]), "admin", Timestamp(1))
        .await
        .unwrap();
    assert_eq!(a.revocations_since(0, 10).await.unwrap()[0].seq, seq);
}

on_both_stores!(concurrent_inserts_are_each_committed_and_a_duplicate_fails_alone);
async fn concurrent_inserts_are_each_committed_and_a_duplicate_fails_alone(store: Store) {
    // Enough callers at once that the writer batches them (several rows per transaction).
    let mut tasks = Vec::new();
    for n in 0..200u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let (d, p) = deposit(n, "203.0.113.0/24");
            store.insert_deposit(&d, &p).await
        }));
    }
    // A second insert of deposit 7, racing the first inside the same batches.
    let dup = {
        let store = store.clone();
        tokio::spawn(async move {
            let (d, p) = deposit(7, "203.0.113.0/24");
            store.insert_deposit(&d, &p).await
        })
    };
    let mut duplicates = 0;
    for (n, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(()) => {}
            Err(StoreError::Duplicate) if n == 7 => duplicates += 1,
            Err(e) => panic!("insert {n}: {e}"),
        }
    }
    match dup.await.unwrap() {
        Ok(()) => {}
        Err(StoreError::Duplicate) => duplicates += 1,
        Err(e) => panic!("second insert of 7: {e}"),
    }
    assert_eq!(
        duplicates, 1,
        "exactly one of the two inserts of deposit 7 wins"
    );
    for n in 0..200u8 {
        let (d, p) = deposit(n, "203.0.113.0/24");
        let stored = store.deposit(&d.payment_hash).await.unwrap();
        assert_eq!(stored.map(|s| s.deposit), Some(d.clone()), "deposit {n}");
        assert_eq!(store.preimage(&d.payment_hash).await.unwrap(), Some(p));
    }
}

on_both_stores!(a_deposit_stored_with_its_invoice_reads_back_with_it);
async fn a_deposit_stored_with_its_invoice_reads_back_with_it(store: Store) {
    let (d, p) = deposit(1, "203.0.113.0/24");
    store
        .insert_deposit_with_invoice(&d, &p, Some("lnbcrt10u1…"))
        .await
        .unwrap();
    let stored = store.deposit(&d.payment_hash).await.unwrap().unwrap();
    assert_eq!(stored.payment_request.as_deref(), Some("lnbcrt10u1…"));
    assert_eq!(stored.deposit, d);
    assert_eq!(store.preimage(&d.payment_hash).await.unwrap(), Some(p));
}

/// A second connection to the SQLite file at `path`, for what the store's own must not see
/// coming (a trigger, a write lock held so that the store's writes queue into one batch).
async fn other_sqlite_connection(path: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::ConnectOptions;
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap()
}

/// Stores deposit `n` (of `route`) in a task of its own, so that it can queue behind a lock.
fn spawn_insert(
    store: &Store,
    n: u8,
    route: &'static str,
) -> tokio::task::JoinHandle<Result<(), StoreError>> {
    let store = store.clone();
    tokio::spawn(async move {
        let (mut d, p) = deposit(n, "203.0.113.0/24");
        d.route_id = route.into();
        store.insert_deposit(&d, &p).await
    })
}

/// SQLite only: a trigger that rejects one row, and a write lock held from a second connection
/// so that the rows queue into one batch behind it.
#[tokio::test]
async fn a_failed_group_commit_fails_every_caller_in_it_and_stores_none_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lw.db");
    let store = Store::open_sqlite(&path).await.unwrap();
    let mut other = other_sqlite_connection(&path).await;
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON deposits WHEN NEW.route_id = 'poison' \
         BEGIN SELECT RAISE(ABORT, 'poisoned row'); END",
    )
    .execute(&mut other)
    .await
    .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let insert = |n: u8, route: &'static str| spawn_insert(&store, n, route);
    // The first batch (this row alone) starts and waits for the lock...
    let first = insert(1, "articles");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...while these three queue and become the next batch, one of them poisoned.
    let rest = [
        insert(2, "articles"),
        insert(3, "poison"),
        insert(4, "articles"),
    ];
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();

    first.await.unwrap().unwrap();
    for t in rest {
        let err = t.await.unwrap().unwrap_err();
        assert!(
            matches!(err, StoreError::BatchFailed { rows: 3, .. }),
            "{err}"
        );
    }
    for (n, present) in [(1, true), (2, false), (3, false), (4, false)] {
        let (d, _) = deposit(n, "203.0.113.0/24");
        assert_eq!(
            store.deposit(&d.payment_hash).await.unwrap().is_some(),
            present,
            "deposit {n}"
        );
    }
    // The writer carries on after a failed batch.
    let (d, p) = deposit(5, "203.0.113.0/24");
    store.insert_deposit(&d, &p).await.unwrap();
}

/// SQLite only (PostgreSQL writes transitions at once): inserts and transitions queued behind a
/// held write lock go into one group commit, and each caller gets its own outcome whatever the
/// order they queued in — an applied transition, a new row, a stale transition, a duplicate.
#[tokio::test]
async fn inserts_and_transitions_in_one_group_commit_each_get_their_own_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lw.db");
    let store = Store::open_sqlite(&path).await.unwrap();
    let (a, a_preimage) = deposit(1, "203.0.113.0/24");
    let (c, c_preimage) = deposit(3, "203.0.113.0/24");
    store.insert_deposit(&a, &a_preimage).await.unwrap();
    store.insert_deposit(&c, &c_preimage).await.unwrap();
    let read_a = store.deposit(&a.payment_hash).await.unwrap().unwrap();
    let read_c = store.deposit(&c.payment_hash).await.unwrap().unwrap();
    let held_a = step(&read_a.deposit, accepted(), Timestamp(1_010)).unwrap();
    let held_c = step(&read_c.deposit, accepted(), Timestamp(1_010)).unwrap();

    let mut other = other_sqlite_connection(&path).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    // The first batch (one row) waits for the lock while the next four queue behind it.
    let first = spawn_insert(&store, 9, "articles");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let applied = {
        let store = store.clone();
        tokio::spawn(async move { store.apply(read_a.version, &held_a, Timestamp(1_010)).await })
    };
    let inserted = spawn_insert(&store, 2, "articles");
    let stale = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .apply(read_c.version + 7, &held_c, Timestamp(1_010))
                .await
        })
    };
    let duplicate = {
        let store = store.clone();
        tokio::spawn(async move { store.insert_deposit(&a, &a_preimage).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();

    first.await.unwrap().unwrap();
    assert_eq!(
        applied.await.unwrap().unwrap(),
        ApplyOutcome::Applied {
            version: 2,
            token_revoked: false
        }
    );
    inserted.await.unwrap().unwrap();
    assert_eq!(stale.await.unwrap().unwrap(), ApplyOutcome::Stale);
    assert!(matches!(
        duplicate.await.unwrap(),
        Err(StoreError::Duplicate)
    ));
}

on_both_stores!(paging_through_unfinished_deposits_sees_each_exactly_once);
async fn paging_through_unfinished_deposits_sees_each_exactly_once(store: Store) {
    for n in 0..25u8 {
        let (d, p) = deposit(n, "203.0.113.0/24");
        store.insert_deposit(&d, &p).await.unwrap();
    }
    // Two finished ones (expired with nothing pending) must not be listed.
    for n in [3u8, 11] {
        let (d, _) = deposit(n, "203.0.113.0/24");
        let expired = apply_event(&store, &d.payment_hash, Event::NodeCanceled, 2_000).await;
        assert!(expired.deposit.state.is_final() && expired.deposit.pending.is_none());
    }
    let mut seen = Vec::new();
    let mut pages = store.unfinished_pages(4);
    while let Some(page) = pages.next_page().await.unwrap() {
        assert!(!page.is_empty() && page.len() <= 4);
        seen.extend(page.into_iter().map(|s| s.deposit.payment_hash));
    }
    let mut expected: Vec<PaymentHash> = store
        .unfinished_deposits()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.deposit.payment_hash)
        .collect();
    expected.sort_by_key(|h| h.0);
    assert_eq!(expected.len(), 23);
    assert_eq!(seen, expected, "in hash order, each once");
}

on_both_stores!(usage_counts_sum_over_reporters_count_a_resent_report_once_and_expire);
async fn usage_counts_sum_over_reporters_count_a_resent_report_once_and_expire(store: Store) {
    use crate::usage::UsageKind;
    let report = |reporter: &str, kind, window_start, count| UsageReport {
        token_id: TokenId([7; 32]),
        kind,
        window_start,
        reporter: reporter.into(),
        count,
        expires_at: Timestamp(window_start + 120),
    };
    let now = Timestamp(1_000);
    let a = report("00000000000000aa", UsageKind::Requests, 960, 10);
    assert_eq!(
        store
            .record_usage(std::slice::from_ref(&a), now)
            .await
            .unwrap(),
        [10]
    );
    // Another instance's count adds; the same instance's later count replaces its earlier one.
    let b = report("00000000000000bb", UsageKind::Requests, 960, 7);
    let a_later = UsageReport {
        count: 12,
        ..a.clone()
    };
    assert_eq!(
        store.record_usage(&[b, a_later], now).await.unwrap(),
        [19, 19]
    );
    // A batch sent again (its answer was lost) or late, out of order: counted once, never less.
    assert_eq!(store.record_usage(&[a], now).await.unwrap(), [19]);
    // Errors and another window are counted apart.
    let e = report("00000000000000aa", UsageKind::Errors, 960, 2);
    let next = report("00000000000000aa", UsageKind::Requests, 1020, 1);
    assert_eq!(store.record_usage(&[e, next], now).await.unwrap(), [2, 1]);
    assert_eq!(store.usage_rows().await.unwrap(), 4);
    // Rows go once expired (window 960's at 1080): only window 1020's stays.
    let later = report("00000000000000aa", UsageKind::Requests, 1020, 3);
    assert_eq!(
        store
            .record_usage(&[later], Timestamp(1_081))
            .await
            .unwrap(),
        [3]
    );
    assert_eq!(store.usage_rows().await.unwrap(), 1);
}

mod rewards;
mod shadow;

on_both_stores!(the_waiters_recheck_finds_which_deposits_no_longer_await_payment);
async fn the_waiters_recheck_finds_which_deposits_no_longer_await_payment(store: Store) {
    let (paid, p1) = deposit(1, "203.0.113.0/24");
    let (unpaid, p2) = deposit(2, "203.0.113.0/24");
    store.insert_deposit(&paid, &p1).await.unwrap();
    store.insert_deposit(&unpaid, &p2).await.unwrap();
    apply_event(&store, &paid.payment_hash, accepted(), 1_010).await;
    let unknown = PaymentHash([9; 32]);
    let mut changed = store
        .no_longer_awaiting(&[unpaid.payment_hash, paid.payment_hash, unknown])
        .await
        .unwrap();
    changed.sort();
    let mut expected = vec![paid.payment_hash, unknown];
    expected.sort();
    assert_eq!(changed, expected, "paid and gone change; unpaid waits on");
    assert!(store.no_longer_awaiting(&[]).await.unwrap().is_empty());
    // A whole re-check chunk binds in one query on both backends.
    let many: Vec<PaymentHash> = (0..crate::deposit::waiters::RECHECK_CHUNK)
        .map(|i| PaymentHash([(i % 251) as u8; 32]))
        .chain([unpaid.payment_hash])
        .collect();
    let changed = store.no_longer_awaiting(&many).await.unwrap();
    assert_eq!(changed.len(), many.len() - 1);
}

/// Throughput of the mint path's store work alone (issue 14 item 8): per deposit, the
/// per-network count read and the durable insert (group commit), from 32 concurrent callers as
/// `scripts/bench-sidecar.sh` mints, without HTTP, node or signing. Run in release:
/// `cargo test --release -p lightning-wall --lib store_mint_path -- --ignored --nocapture
/// --test-threads 1`. Prints deposits/s; fails below the 3,000/s the whole sidecar must reach.
async fn store_mint_path_throughput(store: Store) {
    const CALLERS: u32 = 32;
    const PER_CALLER: u32 = 300;
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for caller in 0..CALLERS {
        let store = store.clone();
        tasks.spawn(async move {
            for i in 0..PER_CALLER {
                let n = caller * PER_CALLER + i;
                let (mut d, _) = deposit(0, &format!("2001:db8:{n:x}::/64"));
                let mut preimage = [0u8; 32];
                preimage[..4].copy_from_slice(&n.to_be_bytes());
                let preimage = Preimage(preimage);
                d.payment_hash = preimage.payment_hash();
                d.token_id = TokenId(d.payment_hash.0);
                store.prefix_deposit_counts(&d.client_prefix).await.unwrap();
                store
                    .insert_deposit_with_invoice(&d, &preimage, Some("lnbcrt1..."))
                    .await
                    .unwrap();
            }
        });
    }
    tasks.join_all().await;
    let per_second = f64::from(CALLERS * PER_CALLER) / started.elapsed().as_secs_f64();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "store mint path on {}: {per_second:.0} deposits/s (load average {})",
        store.backend(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(per_second >= 3_000.0, "{per_second:.0}/s");
}

mod store_mint_path {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a throughput measurement: run in release mode"]
    async fn sqlite() {
        let (store, _dir) = super::fixtures::sqlite().await;
        super::store_mint_path_throughput(store).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a throughput measurement: run in release mode"]
    async fn postgres() {
        let schema = super::fixtures::postgres_schema().await;
        let store = super::fixtures::postgres_in(&schema).await;
        super::store_mint_path_throughput(store.clone()).await;
        store.close().await;
        super::fixtures::drop_postgres_schema(&schema).await;
    }
}

on_both_stores!(the_drain_flag_is_shared_and_keeps_its_first_start);
async fn the_drain_flag_is_shared_and_keeps_its_first_start(store: Store) {
    assert_eq!(store.drain_started().await.unwrap(), None);
    assert_eq!(
        store.start_drain(Timestamp(5_000)).await.unwrap(),
        Timestamp(5_000)
    );
    // Draining again (a second operator, a retried CLI) keeps the first start.
    assert_eq!(
        store.start_drain(Timestamp(6_000)).await.unwrap(),
        Timestamp(5_000)
    );
    assert_eq!(store.drain_started().await.unwrap(), Some(Timestamp(5_000)));
    assert!(store.end_drain().await.unwrap());
    assert!(!store.end_drain().await.unwrap());
    assert_eq!(store.drain_started().await.unwrap(), None);
}

on_both_stores!(a_reference_range_finds_deposits_by_token_or_payment_hash_prefix);
async fn a_reference_range_finds_deposits_by_token_or_payment_hash_prefix(store: Store) {
    let (a, pa) = deposit(1, "203.0.113.0/24"); // token 65 65 65 …
    let (mut b, pb) = deposit(2, "203.0.113.0/24");
    b.token_id = TokenId({
        let mut t = [0x65; 32];
        t[31] = 0x00; // same first 10 hex characters as `a`, different id
        t
    });
    let (c, pc) = deposit(3, "198.51.100.0/24");
    for (d, p) in [(&a, &pa), (&b, &pb), (&c, &pc)] {
        store.insert_deposit(d, p).await.unwrap();
    }
    let find = |text: &str| {
        let range = crate::deposit::reference::parse(text).unwrap();
        let store = store.clone();
        async move {
            let mut found: Vec<_> = store
                .deposits_in_reference_range(&range.low, &range.high, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.deposit.payment_hash)
                .collect();
            found.sort_by_key(|h| h.0);
            found
        }
    };
    let mut ab = vec![a.payment_hash, b.payment_hash];
    ab.sort_by_key(|h| h.0);
    assert_eq!(find("6565656565").await, ab, "ambiguous: both");
    assert_eq!(find(&"65".repeat(32)).await, [a.payment_hash]);
    assert_eq!(
        find(&hex::encode(&c.token_id.0[..5])).await,
        [c.payment_hash]
    );
    assert_eq!(
        find(&hex::encode(&c.payment_hash.0[..6])).await,
        [c.payment_hash],
        "a payment hash prefix too"
    );
    assert!(find("0000000000").await.is_empty());
}

on_both_stores!(the_dashboard_sums_money_and_outcomes_by_day);
async fn the_dashboard_sums_money_and_outcomes_by_day(store: Store) {
    let day = 86_400u64;
    let (held, p1) = deposit(1, "203.0.113.0/24");
    let (forfeited, p2) = deposit(2, "203.0.113.0/24");
    let (refunded, p3) = deposit(3, "203.0.113.0/24");
    let (unpaid, p4) = deposit(4, "203.0.113.0/24");
    store.insert_deposit(&unpaid, &p4).await.unwrap();
    for (d, p) in [(&held, &p1), (&forfeited, &p2), (&refunded, &p3)] {
        store.insert_deposit(d, p).await.unwrap();
        apply_event(&store, &d.payment_hash, accepted(), 1_010).await;
    }
    let forfeit = Event::Verdict {
        outcome: Outcome::Forfeit,
        trigger: Trigger::TrapPath,
    };
    apply_event(&store, &forfeited.payment_hash, forfeit, 10 * day + 5).await;
    apply_event(&store, &refunded.payment_hash, Event::Drain, 11 * day + 7).await;
    let before = store.money_summary().await.unwrap();
    assert_eq!(before.held_count, 1);
    assert_eq!(before.held_msat, 1_000_000);
    assert_eq!(before.awaiting_payment_count, 1);
    assert_eq!(before.pending_actions, 2);
    assert_eq!(
        before.forfeited_msat, 0,
        "not collected until the node settled"
    );
    apply_event(
        &store,
        &forfeited.payment_hash,
        Event::ActionPerformed(NodeAction::Settle),
        10 * day + 6,
    )
    .await;
    let after = store.money_summary().await.unwrap();
    assert_eq!(after.forfeited_msat, 1_000_000);
    assert_eq!(after.pending_actions, 1);
    assert_eq!(after.rewards_paid_msat, 0);
    let days = store.outcomes_by_day(Timestamp(10 * day)).await.unwrap();
    assert_eq!(
        days,
        [
            OutcomeDay {
                day: Timestamp(11 * day),
                outcome: DepositState::Refunded,
                trigger: Trigger::Drain,
                count: 1,
                amount_msat: 1_000_000,
            },
            OutcomeDay {
                day: Timestamp(10 * day),
                outcome: DepositState::Forfeited,
                trigger: Trigger::TrapPath,
                count: 1,
                amount_msat: 1_000_000,
            },
        ]
    );
    assert!(
        store
            .outcomes_by_day(Timestamp(12 * day))
            .await
            .unwrap()
            .is_empty()
    );
}

on_both_stores!(concurrent_per_network_counts_each_answer_their_own_network);
async fn concurrent_per_network_counts_each_answer_their_own_network(store: Store) {
    // Network a: 3 unpaid and 1 held; b: 2 unpaid; c: nothing.
    let networks = ["198.51.100.0/24", "2001:db8:b::/48", "192.0.2.0/24"];
    for (n, network) in [(1, 0), (2, 0), (3, 0), (4, 0), (5, 1), (6, 1)] {
        let (d, p) = deposit(n, networks[network]);
        store.insert_deposit(&d, &p).await.unwrap();
    }
    let (paid, _) = deposit(4, networks[0]);
    apply_event(&store, &paid.payment_hash, accepted(), 1_010).await;
    let expected = [
        LiveCounts { held: 1, unpaid: 3 },
        LiveCounts { held: 0, unpaid: 2 },
        LiveCounts { held: 0, unpaid: 0 },
    ];
    // Many readers at once (on PostgreSQL they share batched reads), the same network
    // several times in one batch among them.
    let mut reads = tokio::task::JoinSet::new();
    for i in 0..90usize {
        let store = store.clone();
        let network = (i * 7 + i / 5) % 3;
        reads.spawn(async move {
            let counts = store.prefix_deposit_counts(networks[network]).await;
            (network, counts)
        });
    }
    while let Some(read) = reads.join_next().await {
        let (network, counts) = read.unwrap();
        assert_eq!(counts.unwrap(), expected[network], "network {network}");
    }
}
