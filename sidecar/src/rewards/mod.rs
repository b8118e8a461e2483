//! Satoshi rewards: the upstream credits a visitor's token (`x-lightning-wall-reward` through the
//! filter), the visitor withdraws the balance over LNURL-withdraw (LUD-03) and the node pays.
//! `ledger` holds the pure rules (limits, bounds, fees), `claim` the pure checks of a submitted
//! invoice, `lnurl` the LNURL encoding, `payouts` the only code that asks the node to pay. Money
//! leaves only after the amount was reserved in the store with the payment hash, so an unknown
//! outcome is tracked and never paid twice.

pub mod claim;
pub mod ledger;
pub mod lnurl;
pub mod payouts;

pub use ledger::{Limits, Refusal, RewardId};
