//! What the configured macaroon may do on this lnd, checked without spending a permission: the
//! macaroon's own permissions are read from its identifier (byte 3, macaroon-bakery's Version3,
//! then the protobuf `lnrpc.MacaroonId {nonce, storageId, ops}`, as `lncli printmacaroon` reads
//! it), and the permission each RPC needs comes from the node itself (`GET
//! /v1/macaroon/permissions`, ListPermissions, `info:read`), so the answer follows the node's
//! version. lnd also accepts `uri:<full method>` for a single RPC (`macaroons/service.go`,
//! `CheckMacAuth`). Never logs or returns the macaroon.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde::Deserialize;

use super::{LndConnectError, LndNode};
use crate::node::NodeError;

/// The lnd RPCs the sidecar calls, by what they are for. `Rewards` calls are needed only with
/// `rewards.enabled`; `Doctor` calls only by `lightning-wall doctor`.
pub const SIDECAR_RPCS: &[(&str, Need)] = &[
    ("/lnrpc.Lightning/GetInfo", Need::Always),
    ("/lnrpc.Lightning/AddInvoice", Need::Always),
    ("/invoicesrpc.Invoices/AddHoldInvoice", Need::Always),
    ("/invoicesrpc.Invoices/SettleInvoice", Need::Always),
    ("/invoicesrpc.Invoices/CancelInvoice", Need::Always),
    ("/invoicesrpc.Invoices/LookupInvoiceV2", Need::Always),
    ("/invoicesrpc.Invoices/SubscribeSingleInvoice", Need::Always),
    ("/routerrpc.Router/SendPaymentV2", Need::Rewards),
    ("/routerrpc.Router/TrackPaymentV2", Need::Rewards),
    ("/lnrpc.Lightning/ListChannels", Need::Doctor),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    Always,
    Rewards,
    Doctor,
}

/// `entity:action` strings, as `lncli bakemacaroon` takes them.
pub type Permissions = BTreeSet<String>;

/// `lnrpc.MacaroonId`.
#[derive(Clone, PartialEq, prost::Message)]
struct MacaroonId {
    #[prost(bytes = "vec", tag = "1")]
    nonce: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    storage_id: Vec<u8>,
    #[prost(message, repeated, tag = "3")]
    ops: Vec<Op>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Op {
    #[prost(string, tag = "1")]
    entity: String,
    #[prost(string, repeated, tag = "2")]
    actions: Vec<String>,
}

/// The permissions an lnd macaroon grants, from its identifier; `None` when the bytes are not an
/// lnd macaroon (not V2, or an identifier lnd would refuse).
pub fn granted(macaroon: &[u8]) -> Option<Permissions> {
    let macaroon = l402::Macaroon::decode(macaroon).ok()?;
    let (&version, proto) = macaroon.identifier().split_first()?;
    if version != 3 {
        return None;
    }
    let id: MacaroonId = prost::Message::decode(proto).ok()?;
    Some(
        id.ops
            .iter()
            .flat_map(|op| op.actions.iter().map(move |a| format!("{}:{a}", op.entity)))
            .collect(),
    )
}

/// Whether `granted` allows `method`, which needs all of `needed`.
pub fn allows(granted: &Permissions, method: &str, needed: &Permissions) -> bool {
    needed.is_subset(granted) || granted.contains(&format!("uri:{method}"))
}

#[derive(Deserialize)]
struct ListPermissions {
    #[serde(default)]
    method_permissions: BTreeMap<String, PermissionList>,
}

#[derive(Deserialize)]
struct PermissionList {
    #[serde(default)]
    permissions: Vec<Permission>,
}

#[derive(Deserialize)]
struct Permission {
    entity: String,
    action: String,
}

impl LndNode {
    /// Each RPC's required permissions on this node (ListPermissions; needs `info:read`).
    pub async fn method_permissions(&self) -> Result<BTreeMap<String, Permissions>, NodeError> {
        let list: ListPermissions = self
            .call::<_, ()>(Method::GET, "/v1/macaroon/permissions", None)
            .await?;
        Ok(list
            .method_permissions
            .into_iter()
            .map(|(method, list)| {
                let needed = list
                    .permissions
                    .into_iter()
                    .map(|p| format!("{}:{}", p.entity, p.action))
                    .collect();
                (method, needed)
            })
            .collect())
    }

    /// The permissions of the macaroon this client sends (`None`: not an lnd macaroon).
    pub fn macaroon_permissions(&self) -> Result<Option<Permissions>, LndConnectError> {
        Ok(granted(&self.inner.config.macaroon.load()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> Permissions {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_method_is_allowed_by_its_permissions_or_its_uri() {
        let granted = set(&["invoices:read", "uri:/lnrpc.Lightning/ListChannels"]);
        assert!(allows(&granted, "/x/Lookup", &set(&["invoices:read"])));
        assert!(!allows(&granted, "/x/Hodl", &set(&["invoices:write"])));
        assert!(allows(
            &granted,
            "/lnrpc.Lightning/ListChannels",
            &set(&["offchain:read"])
        ));
    }

    #[test]
    fn granted_reads_an_lnd_identifier_and_refuses_anything_else() {
        let id = MacaroonId {
            nonce: vec![1; 16],
            storage_id: b"0".to_vec(),
            ops: vec![
                Op {
                    entity: "info".into(),
                    actions: vec!["read".into()],
                },
                Op {
                    entity: "invoices".into(),
                    actions: vec!["read".into(), "write".into()],
                },
            ],
        };
        let mut identifier = vec![3];
        identifier.extend(prost::Message::encode_to_vec(&id));
        let root = l402::RootKey::from_bytes([5; 32]);
        let mac = l402::Macaroon::new(&root, &identifier, Some("lnd"))
            .unwrap()
            .encode();
        assert_eq!(
            granted(&mac),
            Some(set(&["info:read", "invoices:read", "invoices:write"]))
        );
        identifier[0] = 2;
        let old = l402::Macaroon::new(&root, &identifier, None)
            .unwrap()
            .encode();
        assert_eq!(granted(&old), None);
        assert_eq!(granted(b"not a macaroon"), None);
    }
}
