//! FakeNwc as a process, for clients in other languages (the @getalby/sdk check in
//! tests/nwc-client/). Prints one JSON line `{"relay": …, "connection": …, "wallet_pubkey": …}`,
//! then reads commands on stdin, one per line, answering one line each:
//! `pay <bolt11>` (a remote payer pays a hold invoice: held, then notified) → `ok` or `error …`;
//! `state <payment hash hex>` → `pending`/`accepted`/`settled`/`canceled`/`unknown`;
//! `blocks <n>` → `ok`. It exits when stdin closes.

use fake_nwc::{FakeNwc, HoldState};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), String> {
    let fake = FakeNwc::start().await?;
    println!(
        "{}",
        serde_json::json!({
            "relay": fake.relay_url(),
            "connection": fake.connection_string(),
            "wallet_pubkey": fake.wallet_pubkey(),
        })
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let (command, argument) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
        let answer = match command {
            "pay" => match fake.pay_request(argument).await {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("error {e}"),
            },
            "state" => {
                let mut hash = [0u8; 32];
                match hex::decode_to_slice(argument, &mut hash) {
                    Err(_) => "error not a payment hash".to_owned(),
                    Ok(()) => match fake.invoice_state(&hash) {
                        None => "unknown".to_owned(),
                        Some(HoldState::Pending) => "pending".to_owned(),
                        Some(HoldState::Accepted { .. }) => "accepted".to_owned(),
                        Some(HoldState::Settled) => "settled".to_owned(),
                        Some(HoldState::Canceled) => "canceled".to_owned(),
                    },
                }
            }
            "blocks" => match argument.parse() {
                Ok(n) => {
                    fake.advance_blocks(n);
                    "ok".to_owned()
                }
                Err(_) => "error not a number".to_owned(),
            },
            other => format!("error unknown command {other:?}"),
        };
        println!("{answer}");
    }
    Ok(())
}
