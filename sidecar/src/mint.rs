//! Minting challenges: for an unpaid request to a pay or deposit route, an invoice on the node
//! (a deposit's stored durably first, by the lifecycle) and a macaroon bound to its payment hash.
//! Every mint costs the node an invoice, so it must never run before the per-network rate and
//! the global budget admitted it, and must never hand out a deposit invoice whose preimage is
//! not committed (the lifecycle's `open_deposit` returns only after that commit).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use lightning_wall_contract::challenge::ChallengeAnswer;
use lightning_wall_contract::wall_text::Texts;

use crate::api::policy::SERVICE;
use crate::config::Mode;
use crate::deposit::lifecycle::{Lifecycle, LifecycleError, NewDeposit};
use crate::ids::Timestamp;
use crate::ids::{PaymentHash, Preimage};
use crate::keys::Keys;
use crate::metrics::{ErrorLabel, Metrics, ModeLabel};
use crate::mint_limit::{MintLimiter, PerSecondBudget, client_prefix};
use crate::node::InvoiceRequest;
use crate::reload::Live;

/// Why nothing was minted. Nothing was handed out in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("no route with id {0:?}")]
    UnknownRoute(String),
    #[error("route {0:?} is free: nothing to pay")]
    RouteIsFree(String),
    /// The operator drains the wall (`admin drain`): nothing is minted until `admin undrain`.
    #[error("the wall is drained by its operator: no new deposits or invoices")]
    Draining,
    /// This client's network minted too many: retry after this many seconds.
    #[error("too many challenges for this client network")]
    RateLimited { retry_after_s: u32 },
    /// This replica's global budget per second is spent.
    #[error("too many challenges right now")]
    BudgetSpent { retry_after_s: u32 },
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("no randomness available")]
    Random,
    #[error("deposit route {0:?} without a deposit policy")]
    NoDepositPolicy(String),
    #[error("minting the macaroon: {0}")]
    Macaroon(String),
    /// The node's invoice could not be put in a challenge.
    #[error("the node's invoice: {0}")]
    Invoice(String),
}

/// Mints challenges for this replica; one per sidecar, shared by the handlers.
pub struct ChallengeMinter {
    lifecycle: Lifecycle,
    /// Routes and wall texts are read from the config in force at each mint (a reload may
    /// change them); the limits below are the start's.
    live: Arc<Live>,
    keys: Arc<Keys>,
    metrics: Arc<Metrics>,
    limiter: MintLimiter,
    budget: PerSecondBudget,
}

impl ChallengeMinter {
    pub fn new(
        lifecycle: Lifecycle,
        live: Arc<Live>,
        keys: Arc<Keys>,
        metrics: Arc<Metrics>,
    ) -> ChallengeMinter {
        let config = live.current().config.clone();
        ChallengeMinter {
            limiter: MintLimiter::new(&config.limits),
            budget: PerSecondBudget::new(config.limits.challenge_mint_budget_per_s, Instant::now()),
            lifecycle,
            live,
            keys,
            metrics,
        }
    }

    fn refuse(&self, kind: &'static str) {
        self.metrics
            .challenges_refused
            .get_or_create(&ErrorLabel { kind })
            .inc();
    }

    /// A challenge for `route_id`, asked for on behalf of the visitor at `client_ip`.
    pub async fn mint(
        &self,
        route_id: &str,
        client_ip: IpAddr,
    ) -> Result<ChallengeAnswer, MintError> {
        let loaded = self.live.current();
        let config = &loaded.config;
        let route = config
            .route(route_id)
            .ok_or_else(|| MintError::UnknownRoute(route_id.to_owned()))?;
        if route.mode == Mode::Free {
            return Err(MintError::RouteIsFree(route.id.clone()));
        }
        // Before any limit: a drained wall hands out nothing, pay invoices included (money
        // taken now could not be served or refunded by a wall being taken down).
        if self.lifecycle.draining().await?.is_some() {
            self.refuse("draining");
            return Err(MintError::Draining);
        }
        // Per network first: a client over its own limit must not spend everyone's budget.
        let started = Instant::now();
        if let Err(retry_after_s) = self.limiter.take(client_ip, started) {
            self.refuse("mint_rate");
            return Err(MintError::RateLimited { retry_after_s });
        }
        if let Err(retry_after_s) = self.budget.take(started) {
            self.refuse("mint_budget");
            return Err(MintError::BudgetSpent { retry_after_s });
        }
        let now = self.lifecycle.now();
        let amount_msat = route.amount_sat().saturating_mul(1000);
        let valid_until = now.plus(route.token_lifetime).0;
        let memo = memo(
            &loaded.texts,
            config.wall.memo_site(),
            route.mode,
            route.amount_sat(),
        );
        let (payment_hash, token_id, invoice, invoice_expires_at, mode) = match route.mode {
            Mode::Pay => {
                let invoice = self
                    .pay_invoice(amount_msat, memo, now)
                    .await
                    .inspect_err(|_| self.refuse("node"))?;
                (
                    invoice.payment_hash,
                    self.lifecycle.new_token_id()?,
                    invoice.payment_request,
                    invoice.expires_at,
                    l402::Mode::Pay,
                )
            }
            Mode::Deposit | Mode::Free => {
                let Some(policy) = &route.deposit else {
                    return Err(MintError::NoDepositPolicy(route.id.clone()));
                };
                let opened = self
                    .lifecycle
                    .open_deposit(
                        NewDeposit {
                            route_id: route.id.clone(),
                            client_prefix: client_prefix(client_ip),
                            amount_msat,
                            idle_timeout: policy.idle_timeout,
                            session_cap: policy.session_cap,
                            memo,
                        },
                        now,
                    )
                    .await
                    .inspect_err(|_| self.refuse("deposit"))?;
                (
                    opened.deposit.payment_hash,
                    opened.deposit.token_id,
                    opened.payment_request,
                    opened.expires_at,
                    l402::Mode::Deposit,
                )
            }
        };
        let methods: Vec<&str> = route.matcher.methods.iter().map(String::as_str).collect();
        let spec = l402::TokenSpec {
            service: SERVICE,
            mode,
            route: &route.id,
            methods: &methods,
            valid_until,
            payment_hash: l402::PaymentHash(payment_hash.0),
            token_id: l402::TokenId(token_id.0),
        };
        let macaroon = self
            .keys
            .ring
            .mint(&self.keys.active, &spec)
            .map_err(|e| MintError::Macaroon(e.to_string()))?;
        let challenge = l402::Challenge::new(&macaroon, &invoice)
            .map_err(|e| MintError::Invoice(e.to_string()))?;
        Ok(ChallengeAnswer {
            mode: route.mode.into(),
            route_id: route.id.clone(),
            macaroon: challenge.macaroon_base64().to_owned(),
            www_authenticate: challenge.header_values().into(),
            invoice,
            payment_hash: hex::encode(payment_hash.0),
            token_id: hex::encode(token_id.0),
            amount_sat: route.amount_sat(),
            invoice_expires_at: invoice_expires_at.0,
            valid_until,
        })
    }

    /// A normal invoice for a pay route. Nothing is stored: the preimage goes to the node,
    /// which reveals it to the payer.
    async fn pay_invoice(
        &self,
        amount_msat: u64,
        memo: String,
        now: Timestamp,
    ) -> Result<PayInvoice, MintError> {
        let preimage = Preimage(random32()?);
        let expiry = self.lifecycle.settings().invoice_expiry;
        let request = InvoiceRequest {
            amount_msat,
            memo,
            expiry,
            cltv_expiry: None,
        };
        let started = Instant::now();
        let created = self
            .lifecycle
            .node()
            .create_invoice(&preimage, &request)
            .await;
        self.metrics
            .observe_node_call("create_invoice", started.elapsed());
        let created = created
            .inspect_err(|_| self.metrics.error("node_create_invoice"))
            .map_err(LifecycleError::Node)?;
        self.metrics
            .challenges
            .get_or_create(&ModeLabel { mode: "pay" })
            .inc();
        Ok(PayInvoice {
            payment_hash: created.payment_hash,
            payment_request: created.payment_request,
            expires_at: now.plus(expiry),
        })
    }
}

/// A pay route's invoice: the visitor's wallet learns the preimage by paying.
struct PayInvoice {
    payment_hash: PaymentHash,
    payment_request: String,
    expires_at: Timestamp,
}

fn random32() -> Result<[u8; 32], MintError> {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| MintError::Random)?;
    Ok(bytes)
}

/// The invoice description the visitor's wallet shows: the site's name and, for a deposit,
/// that it is refundable (`wall.text.memo_deposit` / `memo_pay`). `texts` are the ones in
/// force, merged once per config (merging them per challenge was 8 % of a deposit
/// challenge's CPU: it copies every default text).
fn memo(texts: &Texts, site: &str, mode: Mode, amount_sat: u64) -> String {
    use lightning_wall_contract::wall_text::{fill, sats, text};
    let key = if mode == Mode::Pay {
        "memo_pay"
    } else {
        "memo_deposit"
    };
    fill(
        text(texts, key),
        &[("site", site), ("amount", &sats(amount_sat, texts))],
    )
}

#[cfg(test)]
mod memo_tests {
    use super::*;

    #[test]
    fn the_memo_names_the_site_and_says_refundable() {
        let mut wall = crate::config::WallConfig {
            site_name: Some("Example Shop".into()),
            ..Default::default()
        };
        assert_eq!(
            memo(&wall.texts(), wall.memo_site(), Mode::Deposit, 1000),
            "Example Shop: refundable deposit of 1,000 sats, returned when you leave"
        );
        assert_eq!(
            memo(&wall.texts(), wall.memo_site(), Mode::Pay, 10),
            "Example Shop: payment of 10 sats"
        );
        wall.site_name = None;
        wall.text.insert(
            "memo_deposit".into(),
            "{site}: Kaution ({amount}), erstattbar".into(),
        );
        assert_eq!(
            memo(&wall.texts(), wall.memo_site(), Mode::Deposit, 21000),
            "lightning-wall: Kaution (21,000 sats), erstattbar"
        );
    }
}
