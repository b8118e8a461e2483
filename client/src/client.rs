//! The flow (docs/programs.md): send; on a 402 pay through the wallet; for a deposit poll the
//! status URL with `L402 <macaroon>:` until the credential appears; send again with it. A
//! credential is kept per route and reused; a 401 for a credential of another route asks for
//! this route's 402 instead. State is behind a mutex never held across an await.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, Request, Response, StatusCode, Url};
use serde_json::Value;

use crate::challenge::{self, Challenge, Mode};

/// The header the filter hands a pay credential back in when it came with an empty proof.
const CREDENTIAL_HEADER: &str = "x-lightning-wall-credential";
/// Longest long-poll per status call (the sidecar caps `wait` at 60 s).
const POLL_WAIT_S: u64 = 30;

/// What a wallet reports when it cannot or will not pay.
pub type WalletError = Box<dyn std::error::Error + Send + Sync>;

/// A payment preimage (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Preimage(pub [u8; 32]);

impl std::fmt::Debug for Preimage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Preimage(..)") // a secret: never in logs
    }
}

impl Preimage {
    /// From 64 hex characters, as wallets print it.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }
}

/// Pays invoices. A hold invoice (deposit) never yields a preimage while held; a custodial
/// wallet may never show one either: answer `None` then. Refuse by returning an error (the
/// challenge says the mode and, with a JSON body, the amount).
pub trait Wallet: Send + Sync {
    /// Pays `invoice` (BOLT 11).
    fn pay(
        &self,
        invoice: &str,
        challenge: &Challenge,
    ) -> impl Future<Output = Result<Option<Preimage>, WalletError>> + Send;
}

/// Why a request could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP exchange failed.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// A request with a streaming body cannot be sent a second time after paying.
    #[error("the request body cannot be replayed after paying (use a byte body)")]
    BodyNotReplayable,
    /// The wallet did not pay.
    #[error("the wallet did not pay: {0}")]
    Wallet(WalletError),
    /// A wall endpoint answered an error (`code` from its JSON body, else `http_<status>`).
    #[error("{what} answered {status} ({code})")]
    Wall {
        /// Which call.
        what: &'static str,
        /// HTTP status.
        status: u16,
        /// The sidecar's error code.
        code: String,
    },
    /// The deposit ended before it was held (`refunded`, `forfeited`, `expired`).
    #[error("the deposit {0} before it was held")]
    DepositEnded(String),
    /// The node did not hold the deposit within the wait.
    #[error("the deposit was not held within {0:?}")]
    NotHeld(Duration),
    /// The wall handed out a credential that cannot be sent in a header.
    #[error("the credential is not a valid header value")]
    BadCredential,
    /// A URL in the challenge does not resolve against the site.
    #[error("bad URL in the challenge: {0}")]
    BadUrl(String),
}

#[derive(Clone)]
struct Held {
    route_id: String,
    mode: Mode,
    macaroon: String,
    credential: String,
    status_url: Option<Url>,
    leave_url: Option<Url>,
}

#[derive(Default)]
struct Session {
    by_route: HashMap<String, Held>,
    route_of_path: HashMap<String, String>,
    last: Option<String>,
}

/// A session with sites behind lightning-wall over a `reqwest::Client`.
pub struct WallClient<W> {
    http: reqwest::Client,
    wallet: W,
    wait: Duration,
    session: Mutex<Session>,
}

impl<W: Wallet> WallClient<W> {
    /// A client with a default `reqwest::Client`.
    pub fn new(wallet: W) -> Self {
        Self::with_client(reqwest::Client::new(), wallet)
    }

    /// A client over your own `reqwest::Client` (timeouts, proxies, TLS roots).
    pub fn with_client(http: reqwest::Client, wallet: W) -> Self {
        Self {
            http,
            wallet,
            wait: Duration::from_secs(120),
            session: Mutex::new(Session::default()),
        }
    }

    /// How long to wait for a deposit to be held after paying (default 120 s).
    pub fn deposit_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The wallet.
    pub fn wallet(&self) -> &W {
        &self.wallet
    }

    /// The underlying `reqwest::Client`, to build requests for [`WallClient::execute`].
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET url` through the wall.
    pub async fn get(&self, url: &str) -> Result<Response, Error> {
        self.execute(self.http.get(url).build()?).await
    }

    /// Sends `request`, paying when the site answers 402. Its body must be replayable.
    pub async fn execute(&self, request: Request) -> Result<Response, Error> {
        let key = path_key(request.url());
        let known = self.with_session(|s| {
            let route = s.route_of_path.get(&key).or(s.last.as_ref())?;
            s.by_route.get(route).cloned()
        });
        let mut sent = known.as_ref().map(|h| h.credential.clone());
        let mut res = self.send(&request, sent.as_deref()).await?;
        if res.status() == StatusCode::UNAUTHORIZED && sent.is_some() {
            // A credential for another route, or one that ended: ask for this route's 402.
            sent = None;
            res = self.send(&request, None).await?;
        }
        if res.status() != StatusCode::PAYMENT_REQUIRED {
            return Ok(self.adopt(res, &key, known));
        }
        let values: Vec<String> = res
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let body = res.bytes().await?;
        let Some(challenge) = challenge::from_response(&refs, &body) else {
            return Err(Error::Wall {
                what: "the site",
                status: 402,
                code: "no_l402_challenge".into(),
            });
        };
        let stored = self.with_session(|s| s.by_route.get(&challenge.route_id).cloned());
        if let Some(held) = stored.filter(|h| Some(&h.credential) != sent.as_ref()) {
            let retry = self.send(&request, Some(&held.credential)).await?;
            if !matches!(retry.status().as_u16(), 401 | 402) {
                return Ok(self.adopt(retry, &key, Some(held)));
            }
        }
        let held = self.acquire(&challenge, request.url()).await?;
        self.with_session(|s| s.by_route.insert(challenge.route_id.clone(), held.clone()));
        let res = self.send(&request, Some(&held.credential)).await?;
        Ok(self.adopt(res, &key, Some(held)))
    }

    /// Leaves every held deposit: one `POST leave_url` each; the hold invoice is cancelled
    /// (the sats go back) after the sidecar's leave grace. Answers the sidecar's answers.
    pub async fn leave(&self) -> Result<Vec<Value>, Error> {
        let deposits: Vec<Held> = self.with_session(|s| {
            s.by_route
                .values()
                .filter(|h| h.mode == Mode::Deposit)
                .cloned()
                .collect()
        });
        let mut answers = Vec::new();
        for held in deposits {
            let Some(url) = held.leave_url.clone() else {
                continue;
            };
            let res = self
                .http
                .post(url)
                .header(AUTHORIZATION, format!("L402 {}", held.credential))
                .send()
                .await?;
            let (status, body) = (res.status(), res.bytes().await?);
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if status != StatusCode::OK {
                return Err(wall_error("leave", status, &json));
            }
            self.with_session(|s| {
                s.by_route.remove(&held.route_id);
                if s.last.as_deref() == Some(held.route_id.as_str()) {
                    s.last = None;
                }
            });
            answers.push(json);
        }
        Ok(answers)
    }

    /// A held deposit's status as the sidecar reports it (`state`, `reason`, …).
    pub async fn deposit_status(&self, route_id: &str) -> Result<Value, Error> {
        let held = self.with_session(|s| s.by_route.get(route_id).cloned());
        let Some((url, macaroon)) = held.and_then(|h| Some((h.status_url?, h.macaroon))) else {
            return Err(Error::Wall {
                what: "deposit status",
                status: 0,
                code: "no_deposit".into(),
            });
        };
        let (status, json) = self.poll(url, &macaroon, 0).await?;
        if status != StatusCode::OK {
            return Err(wall_error("deposit status", status, &json));
        }
        Ok(json)
    }

    fn with_session<T>(&self, f: impl FnOnce(&mut Session) -> T) -> T {
        let mut guard = self.session.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    async fn send(&self, request: &Request, credential: Option<&str>) -> Result<Response, Error> {
        let mut req = request.try_clone().ok_or(Error::BodyNotReplayable)?;
        req.headers_mut().remove(AUTHORIZATION);
        if let Some(c) = credential {
            let value =
                HeaderValue::from_str(&format!("L402 {c}")).map_err(|_| Error::BadCredential)?;
            req.headers_mut().insert(AUTHORIZATION, value);
        }
        Ok(self.http.execute(req).await?)
    }

    /// Remembers which credential served this path; takes a pay credential handed back whole
    /// for an empty proof (pay without the preimage).
    fn adopt(&self, res: Response, key: &str, held: Option<Held>) -> Response {
        let Some(held) = held else { return res };
        if matches!(res.status().as_u16(), 401 | 402) {
            return res;
        }
        let full = res
            .headers()
            .get(CREDENTIAL_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                v.strip_prefix(held.macaroon.as_str())
                    .is_some_and(|r| r.starts_with(':'))
            })
            .map(str::to_owned);
        self.with_session(|s| {
            if let (Some(full), Some(h)) = (full, s.by_route.get_mut(&held.route_id)) {
                h.credential = full;
            }
            s.route_of_path
                .insert(key.to_owned(), held.route_id.clone());
            s.last = Some(held.route_id.clone());
        });
        res
    }

    async fn acquire(&self, c: &Challenge, site: &Url) -> Result<Held, Error> {
        let preimage = self
            .wallet
            .pay(&c.invoice, c)
            .await
            .map_err(Error::Wallet)?;
        let mut held = Held {
            route_id: c.route_id.clone(),
            mode: c.mode,
            macaroon: c.macaroon.clone(),
            credential: format!("{}:", c.macaroon),
            status_url: None,
            leave_url: None,
        };
        if c.mode == Mode::Pay {
            if let Some(p) = preimage {
                held.credential = format!("{}:{}", c.macaroon, hex::encode(p.0));
            }
            return Ok(held);
        }
        let resolve = |u: &Option<String>| {
            let u = u.as_deref().unwrap_or_default();
            site.join(u).map_err(|_| Error::BadUrl(u.to_owned()))
        };
        let status_url = resolve(&c.status_url)?;
        held.leave_url = Some(resolve(&c.leave_url)?);
        let deadline = Instant::now() + self.wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now()).as_secs();
            if left == 0 {
                return Err(Error::NotHeld(self.wait));
            }
            let (status, json) = self
                .poll(status_url.clone(), &c.macaroon, left.min(POLL_WAIT_S))
                .await?;
            if status != StatusCode::OK {
                return Err(wall_error("deposit status", status, &json));
            }
            match (
                json.get("state").and_then(Value::as_str),
                json.get("credential").and_then(Value::as_str),
            ) {
                (Some("held"), Some(credential)) => {
                    held.credential = credential.to_owned();
                    held.status_url = Some(status_url);
                    return Ok(held);
                }
                (Some(s @ ("refunded" | "forfeited" | "expired")), _) => {
                    return Err(Error::DepositEnded(s.to_owned()));
                }
                _ => {}
            }
        }
    }

    async fn poll(
        &self,
        mut url: Url,
        macaroon: &str,
        wait_s: u64,
    ) -> Result<(StatusCode, Value), Error> {
        if wait_s > 0 {
            url.query_pairs_mut()
                .append_pair("wait", &wait_s.to_string());
        }
        let res = self
            .http
            .request(Method::GET, url)
            .header(AUTHORIZATION, format!("L402 {macaroon}:"))
            .send()
            .await?;
        let status = res.status();
        let body = res.bytes().await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }
}

fn wall_error(what: &'static str, status: StatusCode, json: &Value) -> Error {
    Error::Wall {
        what,
        status: status.as_u16(),
        code: json
            .pointer("/error/code")
            .and_then(Value::as_str)
            .map_or_else(|| format!("http_{}", status.as_u16()), str::to_owned),
    }
}

fn path_key(url: &Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preimages_are_64_hex_and_never_printed() {
        let p = Preimage::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(p.0, [0xab; 32]);
        assert_eq!(format!("{p:?}"), "Preimage(..)");
        assert!(Preimage::from_hex("ab").is_none());
        assert!(Preimage::from_hex(&"zz".repeat(32)).is_none());
    }
}
