//! lnd's channels as the wall needs them (`GET /v1/channels`, ListChannels, `offchain:read`): how
//! much more the peers can pay this node, and how many more HTLCs they may add. Used by `doctor`
//! to compare the limits with what the node can hold; never on the request path.

use reqwest::Method;
use serde::Deserialize;

use super::LndNode;
use super::wire::int64;
use crate::node::NodeError;

/// One channel's room for incoming payments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundRoom {
    pub active: bool,
    /// The peer's balance (`remote_balance`): in-flight HTLCs are already taken out.
    pub remote_balance_sat: u64,
    /// What the peer must keep in the channel (`remote_constraints.chan_reserve_sat`).
    pub remote_reserve_sat: u64,
    /// Most the peer may have in flight towards this node at once
    /// (`remote_constraints.max_pending_amt_msat`).
    pub max_in_flight_msat: u64,
    /// HTLCs the peer may offer at once (`remote_constraints.max_accepted_htlcs`): lnd checks
    /// the peer's updates against the peer's channel config (`lnwallet/channel.go`,
    /// `validateCommitmentSanity`); 483 at most (BOLT 2).
    pub max_incoming_htlcs: u32,
    /// Incoming HTLCs pending now (`pending_htlcs[]` with `incoming: true`).
    pub incoming_htlcs: u32,
}

#[derive(Deserialize)]
struct ListChannels {
    #[serde(default)]
    channels: Vec<Channel>,
}

#[derive(Deserialize)]
struct Channel {
    #[serde(default)]
    active: bool,
    #[serde(default, deserialize_with = "int64")]
    remote_balance: u64,
    #[serde(default)]
    pending_htlcs: Vec<Htlc>,
    #[serde(default)]
    remote_constraints: Option<Constraints>,
}

#[derive(Deserialize)]
struct Htlc {
    #[serde(default)]
    incoming: bool,
}

#[derive(Deserialize)]
struct Constraints {
    #[serde(default, deserialize_with = "int64")]
    chan_reserve_sat: u64,
    #[serde(default, deserialize_with = "int64")]
    max_pending_amt_msat: u64,
    #[serde(default)]
    max_accepted_htlcs: u32,
}

impl LndNode {
    /// Every channel's room for incoming payments (ListChannels; needs `offchain:read`).
    pub async fn inbound_room(&self) -> Result<Vec<InboundRoom>, NodeError> {
        let list: ListChannels = self
            .call::<_, ()>(Method::GET, "/v1/channels", None)
            .await?;
        Ok(list
            .channels
            .into_iter()
            .map(|c| {
                let constraints = c.remote_constraints.unwrap_or(Constraints {
                    chan_reserve_sat: 0,
                    max_pending_amt_msat: 0,
                    max_accepted_htlcs: 0,
                });
                InboundRoom {
                    active: c.active,
                    remote_balance_sat: c.remote_balance,
                    remote_reserve_sat: constraints.chan_reserve_sat,
                    max_in_flight_msat: constraints.max_pending_amt_msat,
                    max_incoming_htlcs: constraints.max_accepted_htlcs,
                    incoming_htlcs: u32::try_from(
                        c.pending_htlcs.iter().filter(|h| h.incoming).count(),
                    )
                    .unwrap_or(u32::MAX),
                }
            })
            .collect())
    }
}
