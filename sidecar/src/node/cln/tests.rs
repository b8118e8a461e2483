//! The backend's quiet-stream timing: an OPEN invoice is looked up again just after its expiry.
use super::*;

fn status(state: InvoiceState, created_at: u64, expiry_secs: u64) -> InvoiceStatus {
    InvoiceStatus {
        payment_hash: PaymentHash([1; 32]),
        state,
        amount_msat: 1_000,
        amount_paid_msat: 0,
        htlc_expiry_height: None,
        created_at,
        expiry: Duration::from_secs(expiry_secs),
    }
}

#[test]
fn an_open_invoice_is_rechecked_just_after_its_expiry() {
    let open = status(InvoiceState::Open, 1_000, 600);
    let recheck = Duration::from_secs(30);
    assert_eq!(
        quiet_period(&open, Duration::from_secs(1_590), recheck),
        Duration::from_millis(10_100)
    );
    assert_eq!(
        quiet_period(&open, Duration::from_secs(1_000), recheck),
        recheck
    );
    assert_eq!(
        quiet_period(&open, Duration::from_secs(2_000), recheck),
        Duration::from_millis(100)
    );
    let held = status(InvoiceState::Accepted, 1_000, 600);
    assert_eq!(
        quiet_period(&held, Duration::from_secs(1_599), recheck),
        recheck
    );
}
