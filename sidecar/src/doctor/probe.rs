//! The I/O half of `doctor`: loads the file, reads each secret (reporting only whether it could,
//! never what it holds), talks to the node and the store, and hands the facts to `rules.rs`.

use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::rules::{self, Demand};
use super::{Finding, Level, Report};
use crate::config::{Config, NodeBackend, SecretRef, StoreLocation};
use crate::ids::PaymentHash;
use crate::node::lnd::{LndConnectError, LndNode, LndTrust};
use crate::node::{InvoiceRequest, InvoiceState, Node};
use crate::serve;
use crate::store::DepositFilter;

/// Recent deposits looked at for the client-address check.
const RECENT_DEPOSITS: u32 = 200;

/// Runs every check on the configuration at `path`.
pub async fn run(path: &Path) -> Report {
    let mut report = Report::default();
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            for issue in e.issues() {
                report.push(Finding::new(
                    Level::Fail,
                    "config",
                    issue.to_string(),
                    "correct the field as the message says (docs/configuration.md), then run \
                     doctor again",
                ));
            }
            return report;
        }
    };
    report.push(Finding::ok(
        "config",
        format!(
            "{}: valid ({} route(s), node {:?}, store {:?})",
            path.display(),
            config.routes.len(),
            config.node.backend,
            config.store_location()
        ),
    ));
    for warning in config.warnings() {
        report.push(Finding::new(
            Level::Warn,
            "config",
            warning.to_string(),
            "see docs/configuration.md for the field",
        ));
    }
    secrets(&config, &mut report);
    if report.worst() == Level::Fail {
        report.push(Finding::new(
            Level::Skip,
            "node",
            "not contacted: fix the secrets first",
            "",
        ));
    } else {
        node(&config, &mut report).await;
    }
    client_addresses(&config, &mut report).await;
    report
}

/// Every secret and certificate file the configuration names.
fn secrets(config: &Config, report: &mut Report) {
    let mut secrets: Vec<(String, &SecretRef)> = Vec::new();
    let mut files: Vec<(String, &Path)> = Vec::new();
    if let Some(lnd) = &config.node.lnd {
        secrets.push(("node.lnd.macaroon".into(), &lnd.macaroon));
        if let Some(cert) = &lnd.tls_cert_file {
            files.push(("node.lnd.tls_cert_file".into(), cert.as_path()));
        }
    }
    if let Some(cln) = &config.node.cln {
        for (name, grpc) in [("grpc", &cln.grpc), ("hold", &cln.hold)] {
            secrets.push((format!("node.cln.{name}.client_key"), &grpc.client_key));
            files.push((
                format!("node.cln.{name}.ca_cert_file"),
                grpc.ca_cert_file.as_path(),
            ));
            files.push((
                format!("node.cln.{name}.client_cert_file"),
                grpc.client_cert_file.as_path(),
            ));
        }
    }
    let ca_bundle = config.node.lnd.as_ref().and_then(|lnd| match lnd.trust() {
        LndTrust::Ca(roots) => Some(roots.bundle_path()),
        LndTrust::Pin(_) => None,
    });
    match &ca_bundle {
        Some(Ok(path)) => files.push(("node.lnd.tls_ca".into(), path.as_path())),
        Some(Err(e)) => report.push(Finding::new(
            Level::Fail,
            "file",
            format!("node.lnd.tls_ca: {e}"),
            "",
        )),
        None => {}
    }
    if let Some(password) = &config.store.password {
        secrets.push(("store.password".into(), password));
    }
    if let Some(master) = &config.keys.master {
        secrets.push(("keys.master".into(), master));
    }
    if let Some(token) = &config.listeners.internal.token {
        secrets.push(("listeners.internal.token".into(), token));
    }
    if let Some(admin) = &config.listeners.admin {
        secrets.push(("listeners.admin.token".into(), &admin.token));
    }
    for (field, secret) in secrets {
        report.push(secret_finding(&field, secret));
    }
    for (field, path) in files {
        report.push(match std::fs::read(path) {
            Ok(_) => Finding::ok("file", format!("{field}: {} is readable", path.display())),
            Err(e) => Finding::new(
                Level::Fail,
                "file",
                format!("{field}: {}: {e}", path.display()),
                format!("copy the file to {} or correct {field}", path.display()),
            ),
        });
    }
}

/// Whether a secret can be read (and, for a file, that only its owner can read it). The value
/// is never part of the finding.
fn secret_finding(field: &str, secret: &SecretRef) -> Finding {
    let origin = match (&secret.file, &secret.env) {
        (Some(path), _) => format!("file {}", path.display()),
        (None, Some(name)) => format!("environment variable {name}"),
        (None, None) => "nowhere".to_owned(),
    };
    match secret.read_bytes() {
        Err(e) => Finding::new(
            Level::Fail,
            "secret",
            format!("{field}: {e}"),
            format!(
                "put the secret in the {origin}, readable by the sidecar's user only \
                 (chmod 600), or correct {field}"
            ),
        ),
        Ok(_) => match secret.file.as_deref().map(group_or_world_readable) {
            Some(Some(mode)) => Finding::new(
                Level::Warn,
                "secret",
                format!("{field}: {origin} is readable by other users (mode {mode:o})"),
                format!(
                    "chmod 600 {}",
                    secret.file.as_deref().unwrap_or(Path::new("")).display()
                ),
            ),
            _ => Finding::ok("secret", format!("{field}: {origin} is readable")),
        },
    }
}

#[cfg(unix)]
fn group_or_world_readable(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn group_or_world_readable(_: &Path) -> Option<u32> {
    None
}

async fn node(config: &Config, report: &mut Report) {
    match config.node.backend {
        NodeBackend::Lnd => lnd(config, report).await,
        NodeBackend::Dev | NodeBackend::Cln | NodeBackend::Nwc => {
            let node = match serve::open_node(config).await {
                Ok((node, _)) => node,
                Err(e) => {
                    report.push(Finding::new(
                        Level::Fail,
                        "node.connect",
                        format!("{e:#}"),
                        "check node.* against docs/node-backends.md",
                    ));
                    return;
                }
            };
            report.push(Finding::ok(
                "node.connect",
                format!("{:?} node reached", config.node.backend),
            ));
            node_basics(node.as_ref(), config, report).await;
            let why = match config.node.backend {
                NodeBackend::Dev => "development node: no channels and no real money".to_owned(),
                NodeBackend::Nwc => "Nostr Wallet Connect: NIP-47 has no channel listing; check \
                     the wallet's receivable amount and its node's max_accepted_htlcs against \
                     limits.max_held_deposits × the deposit"
                    .to_owned(),
                _ => "Core Lightning: the backend has no channel listing; check \
                     `lightning-cli listpeerchannels` (receivable_msat and max_accepted_htlcs per \
                     channel) against limits.max_held_deposits × the deposit"
                    .to_owned(),
            };
            report.push(Finding::new(Level::Skip, "node.inbound", why, ""));
        }
    }
}

async fn lnd(config: &Config, report: &mut Report) {
    let Some(lnd) = &config.node.lnd else { return };
    let node = match serve::lnd_client_config(lnd) {
        Ok(client) => LndNode::connect(client).await,
        Err(e) => {
            report.push(Finding::new(
                Level::Fail,
                "node.connect",
                format!("{e:#}"),
                "",
            ));
            return;
        }
    };
    let node = match node {
        Ok(node) => node,
        Err(e) => {
            let fix = connect_fix(&e);
            report.push(Finding::new(
                Level::Fail,
                "node.connect",
                e.to_string(),
                fix,
            ));
            return;
        }
    };
    report.push(Finding::ok(
        "node.connect",
        format!("lnd at {} on {}", lnd.rest_url, lnd.network),
    ));
    match (node.macaroon_permissions(), node.method_permissions().await) {
        (Ok(granted), Ok(required)) => report.extend(rules::macaroon(
            granted.as_ref(),
            &required,
            config.rewards.enabled,
        )),
        (Err(e), _) => report.push(Finding::new(
            Level::Fail,
            "node.lnd.macaroon",
            e.to_string(),
            "",
        )),
        (_, Err(e)) => report.push(Finding::new(
            Level::Warn,
            "node.lnd.macaroon",
            format!("lnd did not list its RPCs' permissions: {e}"),
            "",
        )),
    }
    node_basics(&node, config, report).await;
    match node.inbound_room().await {
        Ok(rooms) => report.extend(rules::capacity(&rooms, Demand::of(config))),
        Err(e) => report.push(Finding::new(
            Level::Skip,
            "node.inbound",
            format!("channels not listed ({e}): liquidity and HTLC slots not checked"),
            "",
        )),
    }
}

fn connect_fix(e: &LndConnectError) -> String {
    let text = e.to_string();
    match e {
        LndConnectError::Cert(_) | LndConnectError::CaTrust(_) => {
            "point node.lnd.tls_cert_file at lnd's tls.cert, or node.lnd.tls_ca at the CA that \
             signed lnd's certificate (docs/node-backends.md \"TLS\")"
                .into()
        }
        LndConnectError::Macaroon { .. } | LndConnectError::EmptyMacaroon => {
            format!(
                "point node.lnd.macaroon at the baked macaroon: {}",
                rules::MACAROON_RECIPE
            )
        }
        LndConnectError::NetworkMismatch { .. } => String::new(),
        _ if text.contains("permission denied") => format!(
            "the macaroon lacks info:read; bake one: {}",
            rules::MACAROON_RECIPE
        ),
        _ if text.contains("certificate") || text.contains("tls") => {
            "lnd presented a certificate the sidecar does not trust: copy lnd's current tls.cert \
             (node.lnd.tls_cert_file), or trust its CA with node.lnd.tls_ca, and check that the \
             certificate names the host of rest_url (docs/node-backends.md \"TLS\")"
                .into()
        }
        _ => "check node.lnd.rest_url (lnd's restlisten, 8080 by default) and that lnd is \
              running, unlocked and reachable from here"
            .into(),
    }
}

/// Sync state and a 1-sat hold invoice created and cancelled: what every backend can do.
async fn node_basics(node: &dyn Node, config: &Config, report: &mut Report) {
    match node.info().await {
        Ok(info) if info.synced_to_chain => report.push(Finding::ok(
            "node.sync",
            format!("synced to chain at height {}", info.block_height),
        )),
        Ok(info) => report.push(Finding::new(
            Level::Warn,
            "node.sync",
            format!("not synced to chain (height {})", info.block_height),
            "wait for the node to sync: deposit deadlines are computed from its block height",
        )),
        Err(e) => report.push(Finding::new(Level::Fail, "node.sync", e.to_string(), "")),
    }
    report.push(test_hold_invoice(node, config).await);
}

async fn test_hold_invoice(node: &dyn Node, config: &Config) -> Finding {
    const CHECK: &str = "node.hold_invoice";
    let preimage: [u8; 32] = rand::random();
    let hash = PaymentHash(Sha256::digest(preimage).into());
    let request = InvoiceRequest {
        amount_msat: 1_000,
        memo: "lightning-wall doctor: test invoice, cancelled at once".to_owned(),
        expiry: Duration::from_secs(60),
        cltv_expiry: Some(config.deposits.cltv_expiry),
    };
    if let Err(e) = node.create_hold_invoice(&hash, &request).await {
        return Finding::new(
            Level::Fail,
            CHECK,
            format!("creating a 1-sat hold invoice failed: {e}"),
            "the node must offer hold invoices (lnd: the invoicesrpc sub-server, invoices:write) \
             and accept deposits.cltv_expiry",
        );
    }
    let hash_hex = hex::encode(hash.0);
    if let Err(e) = node.cancel(&hash).await {
        return Finding::new(
            Level::Fail,
            CHECK,
            format!("the test invoice {hash_hex} was created but not cancelled: {e}"),
            format!("cancel it by hand (lncli cancelinvoice {hash_hex}); nobody has paid it"),
        );
    }
    match node.lookup(&hash).await {
        Ok(status) if status.state == InvoiceState::Canceled => Finding::ok(
            CHECK,
            format!("a 1-sat hold invoice was created and cancelled ({hash_hex})"),
        ),
        Ok(status) => Finding::new(
            Level::Fail,
            CHECK,
            format!(
                "the test invoice {hash_hex} is {} after its cancel",
                status.state.as_lnd_str()
            ),
            "",
        ),
        Err(e) => Finding::new(
            Level::Fail,
            CHECK,
            format!("looking up the test invoice {hash_hex}: {e}"),
            "",
        ),
    }
}

async fn client_addresses(config: &Config, report: &mut Report) {
    if let StoreLocation::Sqlite(path) = config.store_location()
        && !path.exists()
    {
        report.push(Finding::new(
            Level::Skip,
            "visitors.addresses",
            format!(
                "no store at {} yet: no deposits to look at (run doctor again after some traffic)",
                path.display()
            ),
            "",
        ));
        return;
    }
    let store = match serve::open_store(config).await {
        Ok(store) => store,
        Err(e) => {
            report.push(Finding::new(
                Level::Fail,
                "store",
                format!("{e:#}"),
                "check store.url and store.password (docs/configuration.md)",
            ));
            return;
        }
    };
    let filter = DepositFilter {
        state: None,
        route_id: None,
        limit: RECENT_DEPOSITS,
    };
    match store.list_deposits(&filter).await {
        Ok(recent) => {
            let prefixes: Vec<String> = recent
                .into_iter()
                .map(|d| d.deposit.client_prefix)
                .collect();
            report.push(rules::client_addresses(&prefixes));
        }
        Err(e) => report.push(Finding::new(
            Level::Fail,
            "store",
            format!("listing recent deposits: {e}"),
            "",
        )),
    }
    store.close().await;
}
