//! One request's course through the engine, host callback by host callback: its headers decided
//! (decision.rs), the call-out it may wait on and the answer to it (callout.rs), its response
//! phase (response.rs). Each returns a [`Step`] that the adapter carries out; the adapter
//! decides nothing. Local replies leave here rendered (a page for a browser that navigates).

use std::borrow::Cow;

use lightning_wall_contract::challenge::ChallengeRequest;
use lightning_wall_contract::headers as header;

use super::callout::{AfterVerdict, CallAnswer, CallOut};
use super::challenge::{self, Outcome};
use super::client_addr;
use super::decision::{self, ChallengeNeeded, Decision};
use super::facts::RequestFacts;
use super::grant::{Grant, PendingGrant};
use super::headers::Wanted;
use super::health;
use super::held;
use super::host::{Host, Level, Metric};
use super::mint_limit::mint_limited;
use super::pages::{self, Browser};
use super::policy::{FailureMode, RouteMode};
use super::reply::Reply;
use super::response::{self, UpstreamHeaders, UpstreamReward, UpstreamVerdict};
use super::worker::Worker;

/// `Retry-After` of a 503 before the configuration says otherwise.
const DEFAULT_RETRY_AFTER_S: u32 = 5;

/// What the adapter does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Let the request (or the response) continue, with these request headers set (values
    /// borrowed where they are constant: an allocation less on every paid request).
    Forward(Vec<(&'static str, Cow<'static, str>)>),
    /// Answer locally.
    Reply(Reply),
    /// Dispatch this call-out and wait; its answer goes to [`RequestState::on_answer`].
    CallOut(CallOut),
}

/// What the engine keeps about one request between its host callbacks.
#[derive(Debug, Default)]
pub struct RequestState {
    /// The grant of an allowed request, for its response phase.
    grant: Option<Grant>,
    /// Set when a browser navigates: local replies become pages (pages.rs).
    browser: Option<Browser>,
    /// The full credential to return to a client that presented an empty proof.
    credential_out: Option<String>,
    /// The upstream's response began while this request was still undecided: none of it may
    /// reach the client, and no reply is sent any more ([`RequestState::withhold`]).
    withheld: bool,
}

fn utf8(value: Option<&[u8]>) -> Cow<'_, str> {
    String::from_utf8_lossy(value.unwrap_or_default())
}

/// Whether `name` is one of the wall's own `x-lightning-wall-*` headers. Without case: nginx
/// hands the map over as the client spelled it.
fn is_own(name: &str) -> bool {
    name.get(..header::OWN_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(header::OWN_PREFIX))
}

/// The request's `x-lightning-wall-*` headers, to remove before it goes anywhere (only the
/// wall sets them upstream), or the refusal on a host that would forward a removed header
/// anyway (`refuse_own_headers`).
pub fn own_headers<'h>(
    headers: &'h [(String, Vec<u8>)],
    w: &Worker,
    host: &dyn Host,
) -> Result<Vec<&'h str>, Reply> {
    let own: Vec<&str> = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| is_own(name))
        .collect();
    if !own.is_empty() && w.config.as_ref().is_some_and(|c| c.refuse_own_headers) {
        host.count(Metric::Denied("own_header"));
        return Err(Reply::error(
            400,
            "own_header",
            "x-lightning-wall-* request headers are set by the wall only",
        ));
    }
    Ok(own)
}

impl RequestState {
    /// Decides a request on its headers (the whole map, names in any case).
    pub fn on_request_headers(
        &mut self,
        headers: &[(String, Vec<u8>)],
        w: &mut Worker,
        host: &dyn Host,
    ) -> Step {
        let h = Wanted::read(headers);
        let method = utf8(h.method);
        let path = utf8(h.path);
        // The client's host: Envoy has it in `:authority` (HTTP/1.1's Host becomes it); nginx
        // puts its own `server_name:port` there and leaves the client's in `host`.
        let authority = utf8(h.host.or(h.authority));
        let facts = RequestFacts {
            method: &method,
            path: &path,
            authority: &authority,
            authorization: h.authorization,
            cookies: h.cookies,
            sec_fetch_site: h.sec_fetch_site,
            sec_fetch_mode: h.sec_fetch_mode,
            origin: h.origin,
            referer: h.referer,
        };
        self.browser = Browser::of(h.accept, &method, &path, &authority);
        let Some(config) = w.config.as_ref() else {
            return self.unavailable(FailureMode::Closed, w, host);
        };
        match decision::decide(w.policy.as_ref(), config, &facts, host, &mut w.state) {
            Decision::Pass => Step::Forward(Vec::new()),
            Decision::Allow(grant) => self.allow(grant),
            Decision::Reply(reply) => self.reply_after_verdicts(reply, w),
            Decision::ConfirmHeld(pending) => self.confirm(pending, w, host),
            Decision::Challenge(needed) => self.challenge(needed, w, host),
        }
    }

    /// A response began while this request waited on a call-out of its request phase (a
    /// challenge, a deposit check, a verdict that precedes a reply): the host forwarded a
    /// request the filter had paused. ngx_wasm_module 3bed2783 does so in nginx's rewrite phase
    /// (its default) on a keep-alive connection, and then skips the response-headers callback;
    /// only `proxy_wasm_request_headers_in_access on` makes the pause hold (docs/filter.md
    /// "Hosts"). The upstream was reached, but the walled page must not be delivered: from now
    /// on the response is withheld and no reply or resume is sent. The first time it returns the
    /// 503 that replaces the response where the host still asks for its headers. Logged once
    /// per worker.
    pub fn withhold(&mut self, w: Option<&mut Worker>, host: &dyn Host) -> Option<Reply> {
        if self.withheld {
            return None;
        }
        self.withheld = true;
        host.count(Metric::Denied("undecided"));
        // A busy worker (never in a single-threaded VM) logs rather than stays silent.
        let first = w.as_ref().is_none_or(|w| !w.warned_undecided);
        let retry = w.map_or(DEFAULT_RETRY_AFTER_S, |w| {
            w.warned_undecided = true;
            w.config
                .as_ref()
                .map_or(DEFAULT_RETRY_AFTER_S, |c| c.retry_after_s)
        });
        if first {
            host.log(
                Level::Error,
                format_args!(
                    "lightning-wall: the host forwarded a request the filter had paused; its response is withheld. In nginx set `proxy_wasm_request_headers_in_access on;` (docs/deployment.md \"nginx\")"
                ),
            );
        }
        Some(Reply::unavailable(retry))
    }

    /// True once the response is withheld ([`RequestState::withhold`]).
    pub fn withheld(&self) -> bool {
        self.withheld
    }

    /// The worker could not be reached (it is in use: never, in a single-threaded VM).
    pub fn worker_busy(&self, host: &dyn Host) -> Step {
        host.count(Metric::Denied("unavailable"));
        let reply = Reply::unavailable(DEFAULT_RETRY_AFTER_S);
        Step::Reply(pages::for_browser(reply, None, self.browser.as_ref()))
    }

    /// The answer to `call`.
    pub fn on_answer(
        &mut self,
        call: CallOut,
        answer: &CallAnswer<'_>,
        w: &mut Worker,
        host: &dyn Host,
    ) -> Step {
        match call {
            CallOut::Challenge { failure_mode, .. } => {
                self.on_challenge_answer(failure_mode, answer, w, host)
            }
            CallOut::Confirm { pending, .. } => self.on_confirm_answer(pending, answer, w, host),
            CallOut::Verdicts { flush, then } => {
                w.state.outbox.flushed(flush, answer.status, host);
                after_verdicts(then)
            }
        }
    }

    /// The adapter could not dispatch `call` (unknown cluster…): as if the sidecar were down,
    /// and verdicts are queued again for the tick.
    pub fn not_sent(&mut self, call: CallOut, w: &mut Worker, host: &dyn Host) -> Step {
        match call {
            CallOut::Challenge { failure_mode, .. } => self.unavailable(failure_mode, w, host),
            CallOut::Confirm { pending, .. } => {
                let failure_mode = route_failure_mode(w, &pending.grant);
                self.unavailable(failure_mode, w, host)
            }
            CallOut::Verdicts { flush, then } => {
                w.state.outbox.flushed(flush, None, host);
                after_verdicts(then)
            }
        }
    }

    /// The response headers to add: the full credential for a client that presented an empty
    /// proof, once, and never cached on the way.
    pub fn credential_headers(&mut self) -> Vec<(&'static str, String)> {
        match self.credential_out.take() {
            Some(credential) => vec![
                (header::CREDENTIAL, credential),
                ("cache-control", "no-store".into()),
            ],
            None => Vec::new(),
        }
    }

    /// The response phase: the upstream's verdict, error storms and rewards for this request's
    /// token. `status` reads the response's `:status` (only a deposit grant needs it).
    pub fn on_response_headers(
        &mut self,
        upstream: &UpstreamHeaders,
        status: impl FnOnce() -> Option<u16>,
        w: &mut Worker,
        host: &dyn Host,
    ) -> Step {
        // The verdict before the reward: a response that forfeits the deposit earns nothing
        // (the sidecar refuses rewards for a forfeited deposit, and sees the verdict first).
        if let Some(grant) = self.grant.as_ref() {
            // Only deposit grants look at the status (error storms): pay requests skip the read.
            let status = if grant.mode == RouteMode::Deposit {
                status()
            } else {
                None
            };
            let verdict = UpstreamVerdict::parse(upstream.verdict.as_deref());
            response::on_response(
                w.policy.as_ref(),
                grant,
                status,
                verdict,
                host,
                &mut w.state,
            );
        }
        let reward =
            UpstreamReward::parse(upstream.reward.as_deref(), upstream.reward_id.as_deref());
        if reward != UpstreamReward::Absent {
            response::on_reward(self.grant.as_ref(), &reward, host, &mut w.state.outbox);
        }
        // A verdict read from this response reaches the sidecar before the client sees the
        // response where the host allows a call-out here (Envoy); elsewhere the tick sends it.
        if w.config.as_ref().is_none_or(|c| c.request_callouts_only) {
            return Step::Forward(Vec::new());
        }
        match w.state.outbox.flush() {
            Some(flush) => Step::CallOut(CallOut::Verdicts {
                flush,
                then: AfterVerdict::ResumeResponse,
            }),
            None => Step::Forward(Vec::new()),
        }
    }

    /// Forwards with the token's headers and remembers the grant for the response phase.
    fn allow(&mut self, grant: Grant) -> Step {
        let headers = vec![
            (header::TOKEN, Cow::Owned(grant.token_hex.clone())),
            (header::MODE, Cow::Borrowed(grant.mode.as_str())),
        ];
        self.grant = Some(grant);
        Step::Forward(headers)
    }

    /// A local reply as this request's client sees it (a page for a browser that navigates).
    fn render(&self, reply: Reply, w: &Worker) -> Reply {
        pages::for_browser(reply, w.policy.as_ref(), self.browser.as_ref())
    }

    /// The sidecar cannot be asked: the failure mode decides.
    fn unavailable(&self, failure_mode: FailureMode, w: &Worker, host: &dyn Host) -> Step {
        match failure_mode {
            FailureMode::Open => Step::Forward(Vec::new()),
            FailureMode::Closed => {
                host.count(Metric::Denied("unavailable"));
                let retry = w
                    .config
                    .as_ref()
                    .map_or(DEFAULT_RETRY_AFTER_S, |c| c.retry_after_s);
                Step::Reply(self.render(Reply::unavailable(retry), w))
            }
        }
    }

    /// Answers locally, after the sidecar acknowledged any verdict this request decided.
    fn reply_after_verdicts(&self, reply: Reply, w: &mut Worker) -> Step {
        let reply = self.render(reply, w);
        match w.state.outbox.flush() {
            Some(flush) => Step::CallOut(CallOut::Verdicts {
                flush,
                then: AfterVerdict::Reply(reply),
            }),
            None => Step::Reply(reply),
        }
    }

    /// A challenge to mint: the `POST /v1/challenge` call-out, unless the sidecar is known to
    /// be down or the client's networks minted too many.
    fn challenge(&self, needed: ChallengeNeeded, w: &Worker, host: &dyn Host) -> Step {
        // The last sync failed: do not make every new visitor wait for a call-out timeout.
        let sidecar_down = w.sync.bootstrapped() && !w.sync.reachable;
        if sidecar_down || health::is_down(host) {
            return self.unavailable(needed.failure_mode, w, host);
        }
        let client = host.client_address();
        let ip = client.as_deref().and_then(client_addr::parse);
        if let Some(reply) = mint_limited(w.policy.as_ref(), ip, host) {
            return Step::Reply(self.render(reply, w));
        }
        // The sidecar counts the same networks; an unknown address is `0.0.0.0` there too.
        let client_ip = match (client.as_deref(), ip) {
            (Some(addr), Some(_)) => client_addr::bare(addr),
            _ => "0.0.0.0",
        };
        let body = serde_json::to_vec(&ChallengeRequest {
            route_id: needed.route_id,
            client_ip: client_ip.to_owned(),
        })
        .unwrap_or_default();
        Step::CallOut(CallOut::Challenge {
            body,
            failure_mode: needed.failure_mode,
        })
    }

    /// The sidecar's answer to a challenge call-out.
    fn on_challenge_answer(
        &self,
        failure_mode: FailureMode,
        answer: &CallAnswer<'_>,
        w: &Worker,
        host: &dyn Host,
    ) -> Step {
        let status = answer.status;
        health::record_challenge(host, health::seen(status, answer.body));
        let retry_after_s = w
            .config
            .as_ref()
            .map_or(DEFAULT_RETRY_AFTER_S, |c| c.retry_after_s);
        let outcome = challenge::outcome(
            status,
            answer
                .retry_after
                .and_then(|r| core::str::from_utf8(r).ok()),
            answer.body,
            self.browser.as_ref().map(|b| (b, w.policy.as_ref())),
            failure_mode,
            retry_after_s,
        );
        let reply = match outcome {
            Outcome::Reply(reply) => reply,
            Outcome::Pass => return Step::Forward(Vec::new()),
        };
        match reply.status {
            402 => host.count(Metric::Challenges),
            503 => {
                host.count(Metric::Denied("unavailable"));
                host.log(
                    Level::Warn,
                    format_args!("lightning-wall: challenge failed (status {status:?})"),
                );
            }
            _ => host.count(Metric::Denied("rate_limited")),
        }
        Step::Reply(self.render(reply, w))
    }

    /// An empty-proof credential: asks the sidecar (wall cluster) whether its deposit is held or
    /// its invoice settled. Without a wall cluster there is no one to ask.
    fn confirm(&self, pending: PendingGrant, w: &Worker, host: &dyn Host) -> Step {
        if w.config.as_ref().is_none_or(|c| c.wall_cluster.is_none()) {
            host.count(Metric::Denied("proof_missing"));
            let reply = Reply::error(
                401,
                "proof_missing",
                "no proof yet: fetch the credential from the deposit or payment endpoint under /.well-known/lightning-wall/",
            );
            return Step::Reply(self.render(reply, w));
        }
        let macaroon = pending.credential.split(':').next().unwrap_or_default();
        let authorization = format!("L402 {macaroon}:");
        Step::CallOut(CallOut::Confirm {
            pending,
            authorization,
        })
    }

    /// The sidecar's answer to whether an empty-proof credential's deposit is held (or its
    /// invoice settled): held admits it under the deposit rules and hands the full credential
    /// back; not held is a 401; no answer follows the route's failure mode.
    fn on_confirm_answer(
        &mut self,
        pending: PendingGrant,
        answer: &CallAnswer<'_>,
        w: &mut Worker,
        host: &dyn Host,
    ) -> Step {
        let held = held::confirmed_from_status(pending.grant.mode, answer.status, answer.body);
        match held {
            Some(true) => {
                held::cache_held(host, &pending.grant);
                let admitted = decision::admit(
                    w.policy.as_ref(),
                    pending.grant,
                    pending.trap,
                    host,
                    &mut w.state,
                );
                match admitted {
                    Decision::Allow(grant) => {
                        self.credential_out = Some(pending.credential);
                        self.allow(grant)
                    }
                    Decision::Reply(reply) => self.reply_after_verdicts(reply, w),
                    _ => self.unavailable(FailureMode::Closed, w, host),
                }
            }
            Some(false) => {
                let (reason, message) = match pending.grant.mode {
                    RouteMode::Deposit | RouteMode::Free => (
                        "deposit_not_held",
                        "the deposit is not held: pay the invoice or request a new challenge",
                    ),
                    RouteMode::Pay => (
                        "not_paid",
                        "the invoice is not settled: pay it, or send the preimage",
                    ),
                };
                host.count(Metric::Denied(reason));
                Step::Reply(self.render(Reply::error(401, reason, message), w))
            }
            None => {
                let failure_mode = route_failure_mode(w, &pending.grant);
                self.unavailable(failure_mode, w, host)
            }
        }
    }
}

/// What follows the sidecar's answer to a request's verdicts.
fn after_verdicts(then: AfterVerdict) -> Step {
    match then {
        AfterVerdict::Reply(reply) => Step::Reply(reply),
        AfterVerdict::ResumeResponse => Step::Forward(Vec::new()),
    }
}

/// The failure mode of `grant`'s route (closed when the policy no longer has it).
fn route_failure_mode(w: &Worker, grant: &Grant) -> FailureMode {
    w.policy
        .as_ref()
        .and_then(|p| p.routes.get(grant.route))
        .map_or(FailureMode::Closed, |r| r.failure_mode)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
