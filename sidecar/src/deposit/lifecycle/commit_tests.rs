//! The durability rule on PostgreSQL, where new deposits are written in batches by several
//! writer tasks, outside an explicit transaction: a deposit's invoice leaves `open_deposit` only
//! after the commit that holds its preimage. A commit held back (a deferred constraint trigger
//! that waits, at commit time, for a lock another session holds) must hold back every invoice
//! in it; any path that answered a caller once its row was sent, written or batched, rather
//! than committed, would hand the invoice out here.

use std::time::Duration;

use sqlx::{Connection, Row};

use super::tests::{new_deposit, settings};
use super::*;
use crate::store::tests::fixtures;
use crate::testing::{Call, PATIENCE, RecordingNode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_no_deposit_invoice_is_handed_out_before_its_commit() {
    let schema = fixtures::postgres_schema().await;
    let url = fixtures::postgres_url();
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("SET search_path TO {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let node = RecordingNode::new();
    let lifecycle = Lifecycle::new(
        fixtures::postgres_in(&schema).await,
        Arc::new(node.clone()),
        settings("a"),
        Arc::new(Metrics::new()),
    );
    // Advisory locks are per database: a key of this test's own, so parallel tests never meet.
    let key: i64 = rand::random::<i64>() & 0x7fff_ffff_ffff;
    sqlx::query(&format!(
        "CREATE FUNCTION wait_at_commit() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_advisory_xact_lock({key}); RETURN NULL; END $$"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query(
        "CREATE CONSTRAINT TRIGGER wait_at_commit AFTER INSERT ON deposits \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wait_at_commit()",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut admin)
        .await
        .unwrap();

    // Concurrent mints from several networks, so that batches of more than one row form.
    let mut mints = tokio::task::JoinSet::new();
    for n in 0..12 {
        let lifecycle = lifecycle.clone();
        mints.spawn(async move {
            lifecycle
                .open_deposit(new_deposit(&format!("198.51.100.{n}/32")), Timestamp::now())
                .await
        });
    }
    // Every invoice exists on the node, and none has left: their commits wait for the lock.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        mints.try_join_next().is_none(),
        "an invoice was handed out while the commit holding its preimage had not happened"
    );
    let asked = node
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::CreateHold(_)))
        .count();
    assert_eq!(asked, 12, "every invoice exists on the node");
    let visible: i64 = sqlx::query("SELECT COUNT(*) FROM deposits")
        .fetch_one(&mut admin)
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible, 0, "nothing is committed yet");

    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut admin)
        .await
        .unwrap();
    let mut opened = Vec::new();
    while let Some(mint) = tokio::time::timeout(PATIENCE, mints.join_next())
        .await
        .expect("the mints finish once their commit is allowed")
    {
        opened.push(mint.unwrap().unwrap());
    }
    assert_eq!(opened.len(), 12);
    // What was handed out is what is committed, read from another session.
    for o in &opened {
        let row =
            sqlx::query("SELECT preimage, payment_request FROM deposits WHERE payment_hash = $1")
                .bind(o.deposit.payment_hash.0.as_slice())
                .fetch_one(&mut admin)
                .await
                .unwrap();
        let preimage: Vec<u8> = row.get(0);
        let preimage = crate::ids::Preimage(preimage.try_into().unwrap());
        assert_eq!(preimage.payment_hash(), o.deposit.payment_hash);
        assert_eq!(
            row.get::<Option<String>, _>(1).as_deref(),
            Some(o.payment_request.as_str())
        );
    }
    admin.close().await.unwrap();
    fixtures::drop_postgres_schema(&schema).await;
}
