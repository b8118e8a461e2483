//! The request phase's decision: route, credential, verification (no call-out), revocation, and
//! the deposit rules (trap paths, per-token rate limits; the response phase's error storms and
//! upstream verdicts are in response.rs). Pure apart from the [`Host`] trait. A request a third party could have caused is refused, never
//! served and never fined; every request that is served counts fully, whatever headers it
//! carries (docs/filter.md "Provenance").

use l402::{Credential, RequestContext, VerifyError};
use lightning_wall_contract::events::{Trigger, UsageKind, Verdict};
use lightning_wall_contract::paths::WALL_PREFIX;

use super::config::PluginConfig;
use super::facts::RequestFacts;
use super::grant::{Grant, PendingGrant};
use super::held::held_cached;
use super::host::{Host, Level, Metric};
use super::limits::{self, Count};
use super::policy::{FailureMode, Policy};
use super::provenance::{Provenance, outside_link_refused, provenance, third_party_refused};
use super::query::Query;
use super::reply::{Page, Reply};
use super::revocations::TokenId;
use super::routes::{self, Route};
use super::shadow;
use super::verified::{Source, Verified};
use super::worker::WorkerState;

/// A challenge to mint through the sidecar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeNeeded {
    /// Route id.
    pub route_id: String,
    /// The route's failure mode if the sidecar cannot mint.
    pub failure_mode: FailureMode,
}

/// What to do with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Forward without protection (free route, no route, wall endpoint, fail-open).
    Pass,
    /// Forward with the token's headers.
    Allow(Grant),
    /// Mint a challenge (one call-out) and answer 402.
    Challenge(ChallengeNeeded),
    /// Answer locally.
    Reply(Reply),
    /// A deposit or pay credential with an empty proof: ask the sidecar whether the deposit is
    /// held or the invoice settled (one call-out, then cached), then [`admit`] it.
    ConfirmHeld(PendingGrant),
}

/// Revokes a token on every worker (here at once) and queues the verdict for the sidecar.
pub(super) fn settle(
    host: &dyn Host,
    w: &mut WorkerState,
    grant: &Grant,
    verdict: Verdict,
    trigger: Trigger,
) {
    let until = grant
        .valid_until
        .unwrap_or_else(|| host.now_unix().saturating_add(w.revocations.horizon_s()));
    w.revocations.revoke(host, grant.token_id, until);
    w.outbox.verdict(&grant.token_hex, verdict, trigger);
}

/// Revokes a deposit token here and now and tells the sidecar to settle it.
pub fn forfeit(host: &dyn Host, w: &mut WorkerState, grant: &Grant, trigger: Trigger) {
    settle(host, w, grant, Verdict::Forfeit, trigger);
    let token_hex = &grant.token_hex;
    host.count(Metric::Forfeits);
    host.log(
        Level::Info,
        format_args!("lightning-wall: deposit of token {token_hex} forfeited ({trigger:?})"),
    );
}

fn refuse(host: &dyn Host, reply: Reply) -> Decision {
    if let Some(reason) = reply.reason() {
        host.count(Metric::Denied(static_reason(reason)));
    }
    Decision::Reply(reply)
}

/// A refusal on `route`: on a shadow route, the request passes and the refusal is only counted.
fn refuse_on(route: &Route, host: &dyn Host, reply: Reply) -> Decision {
    if route.shadow {
        shadow::would_deny(host, static_reason(reply.reason().unwrap_or("other")));
        return Decision::Pass;
    }
    refuse(host, reply)
}

/// Metric names must be `'static`; reasons we emit are from a fixed set.
pub(super) fn static_reason(reason: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "malformed",
        "conflicting_credentials",
        "unknown_version",
        "missing_caveat",
        "unknown_key",
        "bad_signature",
        "malformed_caveat",
        "widened_caveat",
        "wrong_service",
        "expired",
        "wrong_mode",
        "wrong_route",
        "wrong_method",
        "missing_capability",
        "proof_missing",
        "bad_proof",
        "forfeited",
        "cross_site_refused",
        "outside_link",
        "deposit_ended",
        "rate_limited",
        "unavailable",
        "deposit_not_held",
    ];
    KNOWN
        .iter()
        .find(|k| **k == reason)
        .copied()
        .unwrap_or("other")
}

/// A 402 for `route`; on a shadow route, a pass that counts the challenge it would have been.
fn challenge(route: &Route, host: &dyn Host, w: &mut WorkerState) -> Decision {
    if route.shadow {
        shadow::would_challenge(host, w, route);
        return Decision::Pass;
    }
    Decision::Challenge(ChallengeNeeded {
        route_id: route.id.clone(),
        failure_mode: route.failure_mode,
    })
}

/// The bytes a credential came from when they alone decide it, with where they came from:
/// the one `Authorization` value, or, with none, the one `Cookie` header. Other shapes (several
/// values, another scheme beside a cookie) are verified in full every time.
fn cache_key<'a>(facts: &RequestFacts<'a>) -> Option<(Source, &'a [u8])> {
    match (facts.authorization.as_slice(), facts.cookies.as_slice()) {
        ([one], _) => Some((Source::Header, one)),
        ([], [one]) => Some((Source::Cookie, one)),
        _ => None,
    }
}

/// Whether the request may carry a credential: any `Authorization` value, or a cookie header
/// naming the `lightning-wall` cookie.
fn carries_credential(facts: &RequestFacts<'_>) -> bool {
    let name = l402::COOKIE_NAME.as_bytes();
    !facts.authorization.is_empty()
        || facts
            .cookies
            .iter()
            .any(|c| c.windows(name.len()).any(|w| w == name))
}

/// Decides a request. `policy` is `None` until the first bootstrap.
pub fn decide(
    policy: Option<&Policy>,
    config: &PluginConfig,
    facts: &RequestFacts<'_>,
    host: &dyn Host,
    w: &mut WorkerState,
) -> Decision {
    let path = routes::path_only(facts.path);
    if path.starts_with(WALL_PREFIX) {
        // The sidecar's public endpoints, routed by Envoy: they authenticate by themselves.
        return wall_endpoint(facts, path, host, w);
    }
    let Some(policy) = policy else {
        return match config.failure_mode {
            FailureMode::Open => Decision::Pass,
            FailureMode::Closed => refuse(host, Reply::unavailable(config.retry_after_s)),
        };
    };
    let query = Query::of(facts.path);
    let Some((index, route)) =
        routes::find(&policy.routes, facts.authority, path, facts.method, &query)
    else {
        return Decision::Pass;
    };
    let Some(token_mode) = super::policy::token_mode(route.mode) else {
        return Decision::Pass;
    };
    if !w.revocations.ready() && carries_credential(facts) {
        // A new worker whose revocation snapshot has not arrived yet cannot tell a revoked
        // token: deposit credentials wait (a refunded deposit must not keep access); pay
        // credentials follow the route's failure mode.
        if route.deposit.is_some() || route.failure_mode == FailureMode::Closed {
            return refuse_on(route, host, Reply::unavailable(config.retry_after_s));
        }
    }
    let now = host.now_unix();
    if route.deposit.is_some() {
        // Deposit tokens are what other workers forfeit or refund: see theirs at once. Pay
        // tokens are revoked only by the sidecar, which every worker's sync brings each tick.
        w.revocations.catch_up(host);
    }
    let key = cache_key(facts)
        .map(|(source, bytes)| (source, w.verified.presented(source, bytes, facts.method)));
    if let Some((source, k)) = &key
        && let Some(v) = w.verified.get(k, index, route.mode, now)
    {
        if ended(policy, route, w, &v.token_id) {
            return challenge(route, host, w);
        }
        let grant = Grant {
            token_id: v.token_id,
            token_hex: l402::TokenId(v.token_id).to_hex(),
            valid_until: Some(v.valid_until),
            mode: route.mode,
            route: index,
        };
        return admit_from(policy, route, grant, *source, facts, path, host, w);
    }
    let (credential, source) =
        match Credential::from_authorization_values(facts.authorization.iter().copied()) {
            Ok(Some(c)) => (c, Source::Header),
            Ok(None) => match Credential::from_cookie_headers(facts.cookies.iter().copied()) {
                Ok(Some(c)) => (c, Source::Cookie),
                // No cookie, or one we cannot read (stale, mangled by a proxy): a fresh challenge
                // lets a browser recover, where a 401 would lock it out.
                Ok(None) | Err(_) => return challenge(route, host, w),
            },
            Err(e) => {
                let e = VerifyError::from(e);
                return refuse_on(
                    route,
                    host,
                    Reply::error(401, e.reason(), "credential refused"),
                );
            }
        };
    let ctx = RequestContext {
        service: &policy.service,
        now_unix: now,
        route: &route.id,
        method: facts.method,
        mode: token_mode,
        capability: None,
    };
    let token = match l402::verify(&policy.keys, &credential, &ctx) {
        Ok(t) => t,
        Err(VerifyError::Expired { .. }) => return challenge(route, host, w),
        Err(_) if source == Source::Cookie => return challenge(route, host, w),
        // An empty proof: a deposit whose receipt the visitor does not hold yet, or a payment
        // by a wallet that never shows the preimage. Either way the sidecar is asked once.
        Err(VerifyError::ProofMissing { token_id, mode, .. }) => {
            if route.shadow {
                // Nothing to confirm where nothing is enforced: the request passes unproven.
                return refuse_on(route, host, Reply::error(401, "proof_missing", "no proof"));
            }
            if ended(policy, route, w, &token_id.0) {
                return challenge(route, host, w);
            }
            let receipt = match mode {
                l402::Mode::Deposit => {
                    l402::deposit_receipt_for(&policy.keys, credential.macaroon())
                        .map(|(_, r)| *r.expose_secret())
                }
                l402::Mode::Pay => l402::pay_receipt_for(&policy.keys, credential.macaroon())
                    .map(|(_, r)| *r.expose_secret()),
            };
            let Ok(receipt) = receipt else {
                return refuse(host, Reply::error(401, "malformed", "credential refused"));
            };
            let Ok(macaroon) = l402::Macaroon::decode(credential.macaroon()) else {
                return refuse(host, Reply::error(401, "malformed", "credential refused"));
            };
            let pending = PendingGrant {
                grant: Grant {
                    token_id: token_id.0,
                    token_hex: token_id.to_hex(),
                    valid_until: None,
                    mode: route.mode,
                    route: index,
                },
                // Only an `Authorization` header gets here (a cookie without proof is
                // challenged above): first party by construction.
                trap: route.is_trap(path),
                credential: l402::format_credential(&macaroon, Some(&receipt)),
            };
            if held_cached(host, &pending.grant) {
                return admit(Some(policy), pending.grant, pending.trap, host, w);
            }
            return Decision::ConfirmHeld(pending);
        }
        Err(e) => {
            return refuse_on(
                route,
                host,
                Reply::error(401, e.reason(), "credential refused"),
            );
        }
    };
    let verified = Verified {
        token_id: token.token_id.0,
        route: index,
        mode: route.mode,
        valid_until: token.valid_until,
    };
    // Only bytes that alone produced this credential: with a foreign `Authorization` scheme
    // beside the cookie, the key would be the header while the credential was the cookie.
    if let Some((from, k)) = key
        && from == source
    {
        w.verified.insert(&k, verified);
    }
    if ended(policy, route, w, &verified.token_id) {
        // Refunded, forfeited or revoked by an operator, or a deposit the store does not know: a
        // fresh 402 (a new deposit) is the way back in.
        return challenge(route, host, w);
    }
    let grant = Grant {
        token_id: verified.token_id,
        token_hex: token.token_id.to_hex(),
        valid_until: Some(verified.valid_until),
        mode: route.mode,
        route: index,
    };
    admit_from(policy, route, grant, source, facts, path, host, w)
}

/// Whether a verified token no longer opens `route`: revoked, or (deposit routes) minted in
/// another store than the sidecar's, whose deposit may have been refunded there
/// (docs/filter.md "A replaced store"). Pay tokens stay good across stores: they were paid.
fn ended(policy: &Policy, route: &Route, w: &WorkerState, token_id: &TokenId) -> bool {
    w.revocations.contains(token_id)
        || (route.deposit.is_some() && policy.minted_elsewhere(token_id))
}

/// Applies the provenance rule to a deposit route's request before [`admit`] counts it: a
/// request a third party could have caused is refused here, before anything is counted.
#[allow(clippy::too_many_arguments)]
fn admit_from(
    policy: &Policy,
    route: &Route,
    grant: Grant,
    source: Source,
    facts: &RequestFacts<'_>,
    path: &str,
    host: &dyn Host,
    w: &mut WorkerState,
) -> Decision {
    let trap = route.is_trap(path);
    if route.deposit.is_some() {
        match provenance(source, facts) {
            Provenance::FirstParty => {}
            Provenance::OutsideLink if !trap => {}
            Provenance::OutsideLink => return refuse_on(route, host, outside_link_refused()),
            Provenance::ThirdParty => {
                return refuse_on(route, host, third_party_refused(facts, trap));
            }
        }
    }
    admit(Some(policy), grant, trap, host, w)
}

/// Wall endpoints that act for a token with money at stake: leaving (a refund, and a fresh
/// LNURL for the rewards). A token this filter has revoked (a forfeit decided here, perhaps
/// not yet known to the sidecar) must not reach them: a forfeit is never outrun by a leave.
/// Status, the pages and the rewards balance (what the token was owed stays claimable) pass.
const TOKEN_ACTIONS: &[(&str, &str)] = &[("POST", "leave")];

fn wall_endpoint(
    facts: &RequestFacts<'_>,
    path: &str,
    host: &dyn Host,
    w: &mut WorkerState,
) -> Decision {
    let action = path.strip_prefix(WALL_PREFIX).unwrap_or_default();
    if !TOKEN_ACTIONS
        .iter()
        .any(|(m, p)| facts.method.eq_ignore_ascii_case(m) && action == *p)
    {
        return Decision::Pass;
    }
    // Which token the sidecar will act for: the `Authorization` credential, else the cookie
    // (as the sidecar reads them). Ambiguous credentials never pass: the sidecar might pick
    // another value than the one checked here.
    let credential =
        match Credential::from_authorization_values(facts.authorization.iter().copied()) {
            Ok(Some(c)) => Some(c),
            Ok(None) => match Credential::from_cookie_headers(facts.cookies.iter().copied()) {
                Ok(c) => c,
                Err(e) => {
                    let e = VerifyError::from(e);
                    return refuse(host, Reply::error(401, e.reason(), "credential refused"));
                }
            },
            Err(e) => {
                let e = VerifyError::from(e);
                return refuse(host, Reply::error(401, e.reason(), "credential refused"));
            }
        };
    let token_id = credential.as_ref().and_then(|c| {
        let mac = l402::MacaroonRef::decode(c.macaroon()).ok()?;
        l402::Identifier::decode(mac.identifier()).ok()
    });
    // Not ours to judge (no credential, garbage): the sidecar answers 401.
    let Some(identifier) = token_id else {
        return Decision::Pass;
    };
    w.revocations.catch_up(host);
    if w.revocations.contains(identifier.token_id.as_bytes()) {
        return refuse(
            host,
            Reply::error(
                403,
                "deposit_ended",
                "this deposit has ended (forfeited or refunded); its status says which",
            ),
        );
    }
    Decision::Pass
}

/// The answer to the request that forfeited `grant`'s deposit (a page for a browser).
fn forfeited(status: u32, grant: &Grant, trigger: Trigger) -> Reply {
    Reply::error(status, "forfeited", "deposit forfeited").with_page(Page::Forfeited {
        route: grant.route,
        token_hex: grant.token_hex.clone(),
        trigger,
    })
}

/// Applies the deposit rules (trap path, per-token rate limit) to a verified, unrevoked token
/// and reports activity; pay tokens are simply allowed. On a shadow route the rules only count
/// what they would have forfeited, and the request is allowed.
pub fn admit(
    policy: Option<&Policy>,
    grant: Grant,
    trap: bool,
    host: &dyn Host,
    w: &mut WorkerState,
) -> Decision {
    let route = policy.and_then(|p| p.routes.get(grant.route));
    if let Some((route, rules)) = route.and_then(|r| Some((r, r.deposit.as_ref()?))) {
        let now = host.now_unix();
        if trap {
            if route.shadow {
                shadow::would_forfeit(host, w, &route.id, Trigger::TrapPath);
            } else {
                forfeit(host, w, &grant, Trigger::TrapPath);
                return refuse(host, forfeited(403, &grant, Trigger::TrapPath));
            }
        }
        if let Some(rate) = rules.rate_limit {
            let owner = limits::token_owner(&grant.token_id);
            match limits::hit(host, limits::REQUESTS, owner, rate, now) {
                // Once per window: enforcing, the crossing request would have ended the deposit.
                Count::Exceeded(n) if route.shadow => {
                    if n == rate.requests.saturating_add(1) {
                        shadow::would_forfeit(host, w, &route.id, Trigger::RateLimit);
                    }
                }
                Count::Exceeded(_) => {
                    forfeit(host, w, &grant, Trigger::RateLimit);
                    return refuse(host, forfeited(429, &grant, Trigger::RateLimit));
                }
                // Shadow counts stay here: the sidecar's budgets over every instance's counts
                // would forfeit.
                Count::Within(_) if route.shadow => {}
                // This instance's count goes to the sidecar, which sums every instance's.
                Count::Within(n) => {
                    let start = limits::window_start(rate, now);
                    w.report_usage(host, &grant.token_hex, UsageKind::Requests, start, n);
                }
                Count::Unknown => {}
            }
        }
        w.outbox.activity(&grant.token_hex);
    }
    host.count(Metric::Allowed);
    Decision::Allow(grant)
}

#[cfg(test)]
#[path = "decision_tests.rs"]
pub(crate) mod tests;
