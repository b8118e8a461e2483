//! Query-string conditions end to end (docs/configuration.md "Query conditions"): the real
//! `.wasm` in the host, the sidecar with the dev node. The harness's `checkout` route is a pay
//! route for `/shop/…?wc-ajax=checkout` only; the rest of the site is behind the `wall`
//! deposit. The attacker holds a deposit (refundable) and wants the checkout without paying
//! its price: every way of spelling the query must meet the checkout's own wall.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lightning_wall::node::InvoiceState;
use lightning_wall_e2e::testing::Request;
use lightning_wall_e2e::{Wall, status};

/// Spellings of `?wc-ajax=checkout` an application reads as the checkout (or might).
const RESPELLED: &[&str] = &[
    "/shop/?wc-ajax=checkout",
    "/shop/?a=1&&wc-ajax=checkout&",
    "/shop/?wc-ajax=update_order_review&wc-ajax=checkout",
    "/shop/?wc-ajax=checkout&wc-ajax=update_order_review",
    "/shop/?WC-AJAX=CheckOut",
    "/shop/?%77c%2Dajax=%63heckout",
    "/shop/?wc_ajax=checkout",
    "/shop/?wc-ajax=checkout%20",
    "/shop/?wc-ajax=check%3Cb%3Eout",
    "/shop/?x=1;wc-ajax=checkout",
];

#[test]
fn a_query_matched_pay_route_cannot_be_reached_by_respelling_the_query() {
    let mut wall = Wall::start(1);
    let (deposit, held) = wall.held_deposit("/shop/");
    let deposit_hash = held["payment_hash"].as_str().unwrap().to_owned();
    let with_deposit = |path: &str| {
        Request::get(path)
            .header("accept", "application/json")
            .header("authorization", format!("L402 {deposit}"))
    };
    // The rest of the shop, other `wc-ajax` actions included, is the deposit's.
    for path in [
        "/shop/cart",
        "/shop/?wc-ajax=add_to_cart",
        "/shop/?wc-ajax=",
    ] {
        let ex = wall.send(&with_deposit(path));
        assert_eq!(status(&ex), Some(200), "{path}");
    }
    for path in RESPELLED {
        let ex = wall.send(&with_deposit(path));
        assert_eq!(status(&ex), Some(401), "{path} was served on the deposit");
        assert!(ex.upstream_request.is_none(), "{path} reached the shop");
        let challenge = wall.challenge(path);
        assert_eq!(challenge["route_id"], "checkout", "{path}: {challenge}");
        assert_eq!(challenge["amount_sat"], 7, "{path}");
    }
    // Padding cannot push the key out of sight: past the bounds every condition holds.
    let padded = format!("/shop/?{}wc-ajax=checkout", "utm=x&".repeat(80));
    assert_eq!(wall.challenge(&padded)["route_id"], "checkout");

    // The money: the deposit is held, nothing of it taken; the checkout serves once its own
    // invoice is settled.
    assert_eq!(wall.node_state(&deposit_hash), InvoiceState::Accepted);
    let challenge = wall.challenge(RESPELLED[0]);
    let paid = wall.dev_pay(challenge["invoice"].as_str().unwrap());
    assert_eq!(paid["status"], "settled");
    assert_eq!(
        wall.node_state(challenge["payment_hash"].as_str().unwrap()),
        InvoiceState::Settled
    );
    let credential = format!(
        "L402 {}:{}",
        challenge["macaroon"].as_str().unwrap(),
        paid["preimage"].as_str().unwrap()
    );
    let ex =
        wall.send(&Request::get("/shop/?WC-AJAX=checkout").header("authorization", &credential));
    assert_eq!(status(&ex), Some(200));
    assert!(ex.upstream_request.is_some());
}
