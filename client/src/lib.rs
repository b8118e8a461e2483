//! A client for sites behind lightning-wall (docs/programs.md "Rust"): requests go out through
//! [`WallClient`], a 402 is answered by paying through your [`Wallet`], a deposit is polled on
//! its status URL until the node holds it, and the request is sent again with the credential.
//! [`WallClient::leave`] refunds held deposits in one call. It never pays without asking the
//! wallet, and never puts a credential in a URL.
//!
//! ```no_run
//! # async fn run() -> Result<(), lightning_wall_client::Error> {
//! use lightning_wall_client::{Challenge, Preimage, Wallet, WalletError, WallClient};
//!
//! struct MyWallet;
//! impl Wallet for MyWallet {
//!     async fn pay(&self, invoice: &str, _c: &Challenge) -> Result<Option<Preimage>, WalletError> {
//!         let _ = invoice; // pay it with your node or wallet
//!         Ok(None) // a hold invoice (deposit) yields no preimage; a custodial wallet neither
//!     }
//! }
//!
//! let wall = WallClient::new(MyWallet);
//! let page = wall.get("https://example.com/members/").await?;
//! wall.leave().await?;
//! # let _ = page; Ok(()) }
//! ```

mod challenge;
mod client;

pub use challenge::{Challenge, Mode, parse_challenge};
pub use client::{Error, Preimage, WallClient, Wallet, WalletError};
