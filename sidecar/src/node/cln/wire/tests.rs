use bitcoin::hashes::sha256;
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};

use super::*;

/// A real signed regtest BOLT11 for `hash`, created at `created_at` (Unix seconds).
fn bolt11(hash: [u8; 32], amount_msat: u64, created_at: u64, expiry_secs: u64) -> String {
    let key = SecretKey::from_slice(&[7; 32]).unwrap();
    InvoiceBuilder::new(Currency::Regtest)
        .description("test".to_owned())
        .payment_hash(sha256::Hash::from_byte_array(hash))
        .payment_secret(PaymentSecret([9; 32]))
        .duration_since_epoch(Duration::from_secs(created_at))
        .min_final_cltv_expiry_delta(144)
        .expiry_time(Duration::from_secs(expiry_secs))
        .amount_milli_satoshis(amount_msat)
        .build_signed(|m| Secp256k1::new().sign_ecdsa_recoverable(m, &key))
        .unwrap()
        .to_string()
}

fn htlc(state: hold::InvoiceState, msat: u64, cltv_expiry: u64) -> hold::Htlc {
    hold::Htlc {
        state: state.into(),
        msat,
        cltv_expiry: Some(cltv_expiry),
        ..Default::default()
    }
}

fn hold_invoice(state: hold::InvoiceState, htlcs: Vec<hold::Htlc>) -> hold::Invoice {
    hold::Invoice {
        payment_hash: vec![3; 32],
        invoice: bolt11([3; 32], 10_000, 1_700_000_000, 600),
        state: state.into(),
        created_at: 1_700_000_001,
        htlcs,
        ..Default::default()
    }
}

#[test]
fn the_plugins_states_are_lnds() {
    use hold::InvoiceState as H;
    assert_eq!(hold_state(H::Unpaid.into()).unwrap(), InvoiceState::Open);
    assert_eq!(
        hold_state(H::Accepted.into()).unwrap(),
        InvoiceState::Accepted
    );
    assert_eq!(hold_state(H::Paid.into()).unwrap(), InvoiceState::Settled);
    assert_eq!(
        hold_state(H::Cancelled.into()).unwrap(),
        InvoiceState::Canceled
    );
    assert!(matches!(hold_state(7), Err(NodeError::Rejected(_))));
}

#[test]
fn a_held_invoice_counts_only_its_accepted_htlcs_and_reports_the_lowest_expiry() {
    use hold::InvoiceState as H;
    let invoice = hold_invoice(
        H::Accepted,
        vec![
            htlc(H::Accepted, 6_000, 260),
            htlc(H::Accepted, 4_000, 250),
            // Rejected (e.g. an MPP part that timed out): neither paid nor held.
            htlc(H::Cancelled, 9_000, 200),
        ],
    );
    let status = hold_invoice_status(&invoice).unwrap();
    assert_eq!(status.payment_hash, PaymentHash([3; 32]));
    assert_eq!(status.state, InvoiceState::Accepted);
    assert_eq!(status.amount_msat, 10_000);
    assert_eq!(status.amount_paid_msat, 10_000);
    assert_eq!(status.htlc_expiry_height, Some(250));
    assert_eq!(status.created_at, 1_700_000_000);
    assert_eq!(status.expiry, Duration::from_secs(600));
}

#[test]
fn only_an_accepted_invoice_has_an_htlc_expiry() {
    use hold::InvoiceState as H;
    let settled = hold_invoice(H::Paid, vec![htlc(H::Paid, 10_000, 250)]);
    let status = hold_invoice_status(&settled).unwrap();
    assert_eq!(status.amount_paid_msat, 10_000);
    assert_eq!(status.htlc_expiry_height, None);
}

#[test]
fn an_open_hold_invoice_expires_at_its_bolt11_expiry_and_nothing_else_does() {
    use hold::InvoiceState as H;
    let open = hold_invoice_status(&hold_invoice(H::Unpaid, vec![])).unwrap();
    assert!(!hold_invoice_expired(
        &open,
        Duration::from_secs(1_700_000_599)
    ));
    assert!(hold_invoice_expired(
        &open,
        Duration::from_secs(1_700_000_600)
    ));
    let held = hold_invoice_status(&hold_invoice(
        H::Accepted,
        vec![htlc(H::Accepted, 10_000, 250)],
    ))
    .unwrap();
    assert!(!hold_invoice_expired(
        &held,
        Duration::from_secs(1_800_000_000)
    ));
}

#[test]
fn a_malformed_hash_or_bolt11_is_refused() {
    let mut invoice = hold_invoice(hold::InvoiceState::Unpaid, vec![]);
    invoice.payment_hash = vec![3; 31];
    assert!(matches!(
        hold_invoice_status(&invoice),
        Err(NodeError::Rejected(_))
    ));
    let mut invoice = hold_invoice(hold::InvoiceState::Unpaid, vec![]);
    invoice.invoice = "lnbcrt1garbage".to_owned();
    assert!(matches!(
        hold_invoice_status(&invoice),
        Err(NodeError::Rejected(_))
    ));
}

#[test]
fn cln_invoice_statuses_map_expired_to_canceled() {
    use cln::listinvoices_invoices::ListinvoicesInvoicesStatus as S;
    let invoice = |status: S| cln::ListinvoicesInvoices {
        payment_hash: vec![4; 32],
        status: status.into(),
        bolt11: Some(bolt11([4; 32], 2_000, 1_700_000_000, 600)),
        amount_msat: Some(cln::Amount { msat: 2_000 }),
        amount_received_msat: (status == S::Paid).then_some(cln::Amount { msat: 2_000 }),
        ..Default::default()
    };
    let open = cln_invoice_status(&invoice(S::Unpaid)).unwrap();
    assert_eq!(open.state, InvoiceState::Open);
    assert_eq!(open.amount_paid_msat, 0);
    let paid = cln_invoice_status(&invoice(S::Paid)).unwrap();
    assert_eq!(paid.state, InvoiceState::Settled);
    assert_eq!(paid.amount_paid_msat, 2_000);
    assert_eq!(paid.created_at, 1_700_000_000);
    assert_eq!(
        cln_invoice_status(&invoice(S::Expired)).unwrap().state,
        InvoiceState::Canceled
    );
}

#[test]
fn transport_failures_are_unavailable_and_refusals_rejected() {
    assert!(matches!(
        status_error("hold", &tonic::Status::unavailable("connection refused")),
        NodeError::Unavailable(_)
    ));
    assert!(matches!(
        status_error("hold", &tonic::Status::unknown("transport error")),
        NodeError::Unavailable(_)
    ));
    let refused = status_error(
        "hold",
        &tonic::Status::internal("could not settle invoice: no HTLCs to settle"),
    );
    assert!(matches!(&refused, NodeError::Rejected(m) if m.contains("no HTLCs to settle")));
}

#[test]
fn a_duplicate_hash_is_recognised_on_sqlite_and_postgres() {
    assert!(is_duplicate_hash(&tonic::Status::internal(
        "could not save invoice: UNIQUE constraint failed: invoices.payment_hash"
    )));
    assert!(is_duplicate_hash(&tonic::Status::internal(
        "could not save invoice: duplicate key value violates unique constraint \"invoices_payment_hash_key\""
    )));
    assert!(!is_duplicate_hash(&tonic::Status::internal(
        "could not encode invoice: bad"
    )));
}

#[test]
fn listpays_complete_wins_then_pending_then_failed() {
    use cln::listpays_pays::ListpaysPaysStatus as S;
    let pay = |status: S| cln::ListpaysPays {
        payment_hash: vec![5; 32],
        status: status.into(),
        preimage: (status == S::Complete).then(|| vec![6; 32]),
        amount_msat: Some(cln::Amount { msat: 1_000 }),
        amount_sent_msat: Some(cln::Amount { msat: 1_003 }),
        ..Default::default()
    };
    assert_eq!(pays_outcome(&[]), None);
    assert!(matches!(
        pays_outcome(&[pay(S::Failed)]),
        Some(PaymentOutcome::Failed { .. })
    ));
    assert_eq!(
        pays_outcome(&[pay(S::Failed), pay(S::Pending)]),
        Some(PaymentOutcome::InFlight)
    );
    assert_eq!(
        pays_outcome(&[pay(S::Failed), pay(S::Pending), pay(S::Complete)]),
        Some(PaymentOutcome::Succeeded {
            preimage_hex: hex::encode([6; 32]),
            fee_msat: 3
        })
    );
}

#[test]
fn cln_calls_mainnet_bitcoin() {
    assert_eq!(network_name("bitcoin"), "mainnet");
    assert_eq!(network_name("regtest"), "regtest");
    assert_eq!(network_name("testnet4"), "testnet4");
}

#[test]
fn the_hash_of_an_invoice_to_pay_is_read_from_it() {
    let invoice = bolt11([8; 32], 1_000, 1_700_000_000, 600);
    assert_eq!(
        bolt11_hash(&format!(" {invoice}\n")).unwrap(),
        PaymentHash([8; 32])
    );
    assert!(bolt11_hash("not an invoice").is_err());
}

/// A private, usable channel as listpeerchannels reports it: our own fees at the top level,
/// the peer's in `updates.remote`.
fn channel(scid: &str) -> cln::ListpeerchannelsChannels {
    let update = |base: u64, ppm: u32, cltv: u32| cln::ListpeerchannelsChannelsUpdatesRemote {
        htlc_minimum_msat: Some(cln::Amount { msat: 1 }),
        htlc_maximum_msat: Some(cln::Amount { msat: 990_000_000 }),
        cltv_expiry_delta: cltv,
        fee_base_msat: Some(cln::Amount { msat: base }),
        fee_proportional_millionths: ppm,
    };
    cln::ListpeerchannelsChannels {
        peer_id: vec![2; 33],
        peer_connected: true,
        state: cln::ChannelState::ChanneldNormal.into(),
        short_channel_id: Some(scid.to_owned()),
        private: Some(true),
        receivable_msat: Some(cln::Amount { msat: 500_000 }),
        fee_base_msat: Some(cln::Amount { msat: 7 }),
        fee_proportional_millionths: Some(7),
        updates: Some(cln::ListpeerchannelsChannelsUpdates {
            local: Some(cln::ListpeerchannelsChannelsUpdatesLocal {
                cltv_expiry_delta: 6,
                fee_base_msat: Some(cln::Amount { msat: 7 }),
                fee_proportional_millionths: 7,
                ..Default::default()
            }),
            remote: Some(update(1_000, 100, 40)),
        }),
        ..Default::default()
    }
}

#[test]
fn a_private_channel_becomes_a_hint_with_the_peers_fees() {
    let hints = private_channels(&[channel("103x1x0")]);
    assert_eq!(
        hints,
        vec![PrivateChannel {
            peer_id: vec![2; 33],
            short_channel_id: "103x1x0".to_owned(),
            fee_base_msat: 1_000,
            fee_proportional_millionths: 100,
            cltv_expiry_delta: 40,
        }]
    );
    let hold = hold_routing_hints(&hints);
    assert_eq!(hold.len(), 1);
    assert_eq!(
        hold[0].hops,
        vec![hold::Hop {
            public_key: vec![2; 33],
            short_channel_id: 103 << 40 | 1 << 16,
            base_fee: 1_000,
            ppm_fee: 100,
            cltv_expiry_delta: 40,
        }]
    );
}

#[test]
fn channels_cln_would_not_hint_are_left_out() {
    let public = cln::ListpeerchannelsChannels {
        private: Some(false),
        ..channel("1x1x1")
    };
    let offline = cln::ListpeerchannelsChannels {
        peer_connected: false,
        ..channel("2x1x1")
    };
    let opening = cln::ListpeerchannelsChannels {
        state: cln::ChannelState::ChanneldAwaitingLockin.into(),
        ..channel("3x1x1")
    };
    let full = cln::ListpeerchannelsChannels {
        receivable_msat: Some(cln::Amount { msat: 0 }),
        ..channel("4x1x1")
    };
    let no_update = cln::ListpeerchannelsChannels {
        updates: None,
        ..channel("5x1x1")
    };
    let scid_alias_without_alias = cln::ListpeerchannelsChannels {
        channel_type: Some(cln::ListpeerchannelsChannelsChannelType {
            bits: vec![46],
            names: vec![cln::ChannelTypeName::ScidAliasEven.into()],
        }),
        ..channel("6x1x1")
    };
    let splicing = cln::ListpeerchannelsChannels {
        state: cln::ChannelState::ChanneldAwaitingSplice.into(),
        ..channel("7x1x1")
    };
    let hints = private_channels(&[
        public,
        offline,
        opening,
        full,
        no_update,
        scid_alias_without_alias,
        splicing,
    ]);
    let ids: Vec<_> = hints.iter().map(|h| h.short_channel_id.as_str()).collect();
    assert_eq!(ids, ["7x1x1"]);
}

#[test]
fn the_peers_alias_is_named_rather_than_the_real_id() {
    let aliased = cln::ListpeerchannelsChannels {
        alias: Some(cln::ListpeerchannelsChannelsAlias {
            local: Some("16000000x1x0".to_owned()),
            remote: Some("15000000x2x1".to_owned()),
        }),
        ..channel("103x1x0")
    };
    let not_yet_confirmed = cln::ListpeerchannelsChannels {
        short_channel_id: None,
        alias: Some(cln::ListpeerchannelsChannelsAlias {
            local: None,
            remote: Some("15000000x3x1".to_owned()),
        }),
        ..channel("x")
    };
    let ids: Vec<_> = private_channels(&[aliased, not_yet_confirmed])
        .into_iter()
        .map(|h| h.short_channel_id)
        .collect();
    assert_eq!(ids, ["15000000x2x1", "15000000x3x1"]);
}

#[test]
fn short_channel_ids_are_bolt7_numbers() {
    assert_eq!(scid_number("0x0x0"), Some(0));
    assert_eq!(scid_number("1x2x3"), Some(1 << 40 | 2 << 16 | 3));
    assert_eq!(scid_number("16777215x16777215x65535"), Some(u64::MAX));
    for bad in [
        "",
        "1x2",
        "1x2x3x4",
        "16777216x0x0",
        "0x0x65536",
        "ax1x1",
        "-1x1x1",
    ] {
        assert_eq!(scid_number(bad), None, "{bad}");
    }
}
