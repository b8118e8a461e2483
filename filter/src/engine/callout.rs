//! The call-outs a request waits on, as values (as the sync's calls are): minting a challenge
//! (`POST /v1/challenge`), confirming an empty-proof credential (the deposit or payment status
//! on the wall cluster), delivering the verdicts this request decided (`POST /v1/events`) before
//! its answer. The adapter dispatches [`CallOut::outgoing`], keeps the [`CallOut`] until the
//! answer, and hands both back to the request (request.rs). No I/O here.

use lightning_wall_contract::paths;

use super::grant::PendingGrant;
use super::held;
use super::outbox::Flush;
use super::policy::FailureMode;
use super::reply::Reply;
use super::sidecar_call::Call;

/// The cluster a call-out goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cluster {
    /// The sidecar's internal listener (`sidecar_cluster`), with the bearer token.
    Sidecar,
    /// The sidecar's public listener (`wall_cluster`), with the visitor's own credential.
    Wall,
}

/// One HTTP call-out as the adapter dispatches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outgoing<'a> {
    /// Where to.
    pub cluster: Cluster,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query.
    pub path: &'a str,
    /// JSON body.
    pub body: Option<&'a [u8]>,
    /// The `authorization` value; `None` sends the bearer token (the internal listener's).
    pub authorization: Option<&'a str>,
}

/// What a call-out got back, as the adapter read it.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallAnswer<'a> {
    /// `:status`; `None` when the call failed (reset, timeout, no status).
    pub status: Option<u16>,
    /// `retry-after`, raw.
    pub retry_after: Option<&'a [u8]>,
    /// The body.
    pub body: &'a [u8],
}

/// A request waiting on the sidecar.
#[derive(Debug, PartialEq, Eq)]
pub enum CallOut {
    /// A challenge to mint; when the sidecar cannot, the route's `failure_mode` applies.
    Challenge {
        /// The `ChallengeRequest`, serialized.
        body: Vec<u8>,
        /// The route's failure mode.
        failure_mode: FailureMode,
    },
    /// An empty-proof credential to confirm (deposit held, invoice settled).
    Confirm {
        /// The grant it becomes once confirmed.
        pending: PendingGrant,
        /// `L402 <macaroon>:`: the status endpoints authenticate the token by its macaroon; the
        /// receipt stays in the filter until the sidecar confirmed.
        authorization: String,
    },
    /// The verdicts this request decided, on their way to the sidecar before `then`.
    Verdicts {
        /// The `POST /v1/events` and its batch.
        flush: Flush,
        /// What the request does once the sidecar answered.
        then: AfterVerdict,
    },
}

/// What a request that decided a verdict does once the sidecar has it: the client learns of
/// the forfeit (and can try to `leave`) only after the sidecar knows.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterVerdict {
    /// Send this local reply (a forfeit decided on the request).
    Reply(Reply),
    /// Let the upstream's response continue (a verdict read from it).
    ResumeResponse,
}

impl CallOut {
    /// The call to dispatch.
    pub fn outgoing(&self) -> Outgoing<'_> {
        match self {
            CallOut::Challenge { body, .. } => Outgoing {
                cluster: Cluster::Sidecar,
                method: "POST",
                path: paths::CHALLENGE,
                body: Some(body.as_slice()),
                authorization: None,
            },
            CallOut::Confirm {
                pending,
                authorization,
            } => Outgoing {
                cluster: Cluster::Wall,
                method: "GET",
                path: held::confirm_url(pending.grant.mode),
                body: None,
                authorization: Some(authorization.as_str()),
            },
            CallOut::Verdicts { flush, .. } => flush.call.outgoing(),
        }
    }
}

impl Call {
    /// The call to dispatch: every sync call goes to the internal listener.
    pub fn outgoing(&self) -> Outgoing<'_> {
        Outgoing {
            cluster: Cluster::Sidecar,
            method: self.method,
            path: &self.path,
            body: self.body.as_deref(),
            authorization: None,
        }
    }
}
