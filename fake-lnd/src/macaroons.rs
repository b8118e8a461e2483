//! lnd's macaroons as FakeLnd (test double) bakes and checks them: a V2 macaroon whose identifier
//! is the byte 3 (macaroon-bakery's Version3) followed by the protobuf `lnrpc.MacaroonId
//! {nonce, storageId, ops}`, signed with a root key (lnd `macaroons/service.go`, `CheckMacAuth`;
//! `lncli printmacaroon` decodes it the same way). A call is allowed when the macaroon's ops hold
//! the method's permission, or the special `uri:<full method>` (lnd's `PermissionEntityCustomURI`).
//! The method table is lnd's own (`rpcserver.go`, `invoicesrpc/invoices_server.go`,
//! `routerrpc/router_server.go`) for the calls FakeLnd serves; `ListPermissions` answers from it.

use l402::{Macaroon, RootKey};

/// macaroon-bakery's `Version3`, the first byte of every lnd macaroon identifier.
const ID_VERSION: u8 = 3;

/// lnd's `PermissionEntityCustomURI`.
const URI_ENTITY: &str = "uri";

/// `lnrpc.MacaroonId`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MacaroonId {
    #[prost(bytes = "vec", tag = "1")]
    pub nonce: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub storage_id: Vec<u8>,
    #[prost(message, repeated, tag = "3")]
    pub ops: Vec<Op>,
}

/// `lnrpc.Op`: one entity and its actions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Op {
    #[prost(string, tag = "1")]
    pub entity: String,
    #[prost(string, repeated, tag = "2")]
    pub actions: Vec<String>,
}

/// REST route -> (full gRPC method, entity, action), as lnd's permission maps say.
pub const METHODS: &[(&str, &str, &str, &str, &str)] = &[
    // (HTTP method, path prefix, full method, entity, action)
    (
        "GET",
        "/v1/getinfo",
        "/lnrpc.Lightning/GetInfo",
        "info",
        "read",
    ),
    (
        "GET",
        "/v1/balance/channels",
        "/lnrpc.Lightning/ChannelBalance",
        "offchain",
        "read",
    ),
    (
        "GET",
        "/v1/channels",
        "/lnrpc.Lightning/ListChannels",
        "offchain",
        "read",
    ),
    (
        "GET",
        "/v1/macaroon/permissions",
        "/lnrpc.Lightning/ListPermissions",
        "info",
        "read",
    ),
    (
        "POST",
        "/v1/invoices",
        "/lnrpc.Lightning/AddInvoice",
        "invoices",
        "write",
    ),
    (
        "GET",
        "/v1/invoices/subscribe",
        "/lnrpc.Lightning/SubscribeInvoices",
        "invoices",
        "read",
    ),
    (
        "GET",
        "/v1/invoice/",
        "/lnrpc.Lightning/LookupInvoice",
        "invoices",
        "read",
    ),
    (
        "POST",
        "/v2/invoices/hodl",
        "/invoicesrpc.Invoices/AddHoldInvoice",
        "invoices",
        "write",
    ),
    (
        "POST",
        "/v2/invoices/settle",
        "/invoicesrpc.Invoices/SettleInvoice",
        "invoices",
        "write",
    ),
    (
        "POST",
        "/v2/invoices/cancel",
        "/invoicesrpc.Invoices/CancelInvoice",
        "invoices",
        "write",
    ),
    (
        "GET",
        "/v2/invoices/lookup",
        "/invoicesrpc.Invoices/LookupInvoiceV2",
        "invoices",
        "write",
    ),
    (
        "GET",
        "/v2/invoices/subscribe/",
        "/invoicesrpc.Invoices/SubscribeSingleInvoice",
        "invoices",
        "read",
    ),
    (
        "POST",
        "/v2/router/send",
        "/routerrpc.Router/SendPaymentV2",
        "offchain",
        "write",
    ),
    (
        "GET",
        "/v2/router/track/",
        "/routerrpc.Router/TrackPaymentV2",
        "offchain",
        "read",
    ),
];

/// The permission a REST call needs: (full method, entity, action). `None` for an unknown route
/// (the router answers 404 for it anyway).
pub fn required(method: &str, path: &str) -> Option<(&'static str, &'static str, &'static str)> {
    METHODS
        .iter()
        .filter(|(m, prefix, ..)| {
            *m == method && (path == *prefix || (prefix.ends_with('/') && path.starts_with(prefix)))
        })
        .map(|&(_, _, full, entity, action)| (full, entity, action))
        .next()
}

/// Every permission lnd grants `admin.macaroon` for the calls FakeLnd serves.
pub fn admin_permissions() -> Vec<String> {
    let mut all: Vec<String> = METHODS
        .iter()
        .map(|(.., entity, action)| format!("{entity}:{action}"))
        .collect();
    all.sort();
    all.dedup();
    all
}

/// Bakes a macaroon with `permissions` (`entity:action`, as `lncli bakemacaroon` takes them).
pub fn bake(root: &[u8; 32], permissions: &[&str]) -> Vec<u8> {
    let mut ops: Vec<Op> = Vec::new();
    for permission in permissions {
        let (entity, action) = permission
            .split_once(':')
            .expect("permissions are entity:action");
        match ops.iter_mut().find(|op| op.entity == entity) {
            Some(op) => op.actions.push(action.to_owned()),
            None => ops.push(Op {
                entity: entity.to_owned(),
                actions: vec![action.to_owned()],
            }),
        }
    }
    let id = MacaroonId {
        nonce: rand::random::<[u8; 16]>().to_vec(),
        storage_id: b"0".to_vec(),
        ops,
    };
    let mut identifier = vec![ID_VERSION];
    identifier.extend(prost::Message::encode_to_vec(&id));
    Macaroon::new(&RootKey::from_bytes(*root), &identifier, Some("lnd"))
        .expect("a small identifier fits a macaroon")
        .encode()
}

/// Why lnd refuses a macaroon; the texts are lnd's.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a V2 macaroon, or an identifier lnd cannot read (`ErrInvalidID` and friends).
    Invalid(&'static str),
    /// Not signed with this node's root key.
    Signature,
    /// Signed, but without the method's permission.
    PermissionDenied,
}

impl Refusal {
    pub fn message(&self) -> &'static str {
        match self {
            Self::Invalid(message) => message,
            Self::Signature => "verification failed: signature mismatch after caveat verification",
            Self::PermissionDenied => "permission denied",
        }
    }
}

/// lnd's `CheckMacAuth` for one call (first-party caveats are not supported: FakeLnd bakes none
/// and refuses a macaroon that has some, rather than ignoring a restriction).
pub fn check(root: &[u8; 32], presented: &[u8], needed: (&str, &str, &str)) -> Result<(), Refusal> {
    let macaroon = Macaroon::decode(presented).map_err(|_| {
        // go-macaroon's UnmarshalBinary, for bytes that are neither V2 nor V1.
        Refusal::Invalid("cannot determine data format of binary-encoded macaroon")
    })?;
    if !macaroon.verify_signature(&RootKey::from_bytes(*root)) {
        return Err(Refusal::Signature);
    }
    if macaroon.caveats().next().is_some() {
        return Err(Refusal::Invalid(
            "fake-lnd: caveats on an lnd macaroon are not supported by this test double",
        ));
    }
    let ops = decode_ops(macaroon.identifier()).ok_or(Refusal::Invalid("invalid macaroon ID"))?;
    let (full_method, entity, action) = needed;
    let allowed = ops.iter().any(|op| {
        (op.entity == entity && op.actions.iter().any(|a| a == action))
            || (op.entity == URI_ENTITY && op.actions.iter().any(|a| a == full_method))
    });
    if allowed {
        Ok(())
    } else {
        Err(Refusal::PermissionDenied)
    }
}

fn decode_ops(identifier: &[u8]) -> Option<Vec<Op>> {
    let (&version, proto) = identifier.split_first()?;
    if version != ID_VERSION {
        return None;
    }
    let id: MacaroonId = prost::Message::decode(proto).ok()?;
    Some(id.ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_baked_macaroon_allows_its_permissions_and_nothing_else() {
        let root = [7u8; 32];
        let mac = bake(&root, &["invoices:read", "invoices:write", "info:read"]);
        let hodl = required("POST", "/v2/invoices/hodl").unwrap();
        let channels = required("GET", "/v1/channels").unwrap();
        assert_eq!(check(&root, &mac, hodl), Ok(()));
        assert_eq!(check(&root, &mac, channels), Err(Refusal::PermissionDenied));
        assert_eq!(check(&[8u8; 32], &mac, hodl), Err(Refusal::Signature));
        let uri = bake(&root, &["uri:/lnrpc.Lightning/ListChannels"]);
        assert_eq!(check(&root, &uri, channels), Ok(()));
        assert_eq!(check(&root, &uri, hodl), Err(Refusal::PermissionDenied));
    }

    #[test]
    fn routes_map_to_lnds_permissions() {
        assert_eq!(
            required("GET", "/v2/invoices/subscribe/abc="),
            Some((
                "/invoicesrpc.Invoices/SubscribeSingleInvoice",
                "invoices",
                "read"
            ))
        );
        assert_eq!(
            required("GET", "/v2/invoices/lookup"),
            Some(("/invoicesrpc.Invoices/LookupInvoiceV2", "invoices", "write"))
        );
        assert_eq!(required("GET", "/v1/invoices"), None);
    }
}
