//! The attacker suite: every strategy a bot would try to keep its deposit after abusing the
//! site, and the honest and third-party cases that must never cost a visitor anything. Each
//! strategy runs against a [`Site`] — the end-to-end harness ([`Wall`]: the real `.wasm` in the
//! host, the real sidecar) in `tests/tests/attack.rs`, or a running `make demo` over HTTP
//! (`make attack`, [`Demo`]) — and reports the invoice's final state **on the node**, not an
//! HTTP status. The table in docs/reliability.md is this suite's output ([`table`]).

use std::time::{Duration, Instant};

use lightning_wall_host::testing::Request;
use lightning_wall_host::{HeaderMap, Message};
use serde_json::Value;

use crate::Wall;

/// What happened to the deposit, read from the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The hold invoice was settled: the site kept the deposit.
    Forfeited,
    /// The hold invoice was cancelled: the money went back.
    Refunded,
    /// Still held, untouched (the requests were refused).
    Refused,
}

impl Outcome {
    fn from_node(state: &str) -> Outcome {
        match state {
            "SETTLED" => Outcome::Forfeited,
            "CANCELED" => Outcome::Refunded,
            _ => Outcome::Refused,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Forfeited => "forfeited",
            Outcome::Refunded => "refunded",
            Outcome::Refused => "refused (deposit untouched)",
        }
    }
}

/// One line of the table: the strategy, the deposit's fate on the node, what the attacker (or
/// the third party) got.
#[derive(Clone, Debug)]
pub struct Row {
    pub strategy: &'static str,
    pub outcome: Outcome,
    pub got: String,
}

/// A request as a client sends it.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn get(path: impl Into<String>) -> Req {
        Req {
            method: "GET",
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn post(path: impl Into<String>, form: &str) -> Req {
        Req {
            method: "POST",
            path: path.into(),
            headers: vec![(
                "content-type",
                "application/x-www-form-urlencoded".to_owned(),
            )],
            body: form.as_bytes().to_vec(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Req {
        self.headers.push((name, value.into()));
        self
    }

    /// The credential in `Authorization: L402`.
    pub fn auth(self, credential: &str) -> Req {
        self.header("authorization", format!("L402 {credential}"))
    }

    /// The credential in the wall cookie, as a browser sends it.
    pub fn cookie(self, credential: &str) -> Req {
        self.header("cookie", format!("lightning-wall={credential}"))
    }
}

/// What came back.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    /// `x-lightning-wall-reason` of a refusal.
    pub reason: Option<String>,
    pub body: String,
}

impl Resp {
    /// The site's own content was served (not the wall's answer).
    pub fn served(&self) -> bool {
        self.reason.is_none() && self.status != 402 && self.status < 500
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A visitor with a held deposit.
#[derive(Clone, Debug)]
pub struct Deposit {
    /// `<macaroon>:<receipt>`.
    pub credential: String,
    pub macaroon: String,
    pub payment_hash: String,
}

/// The paths and limits of the deposit route under attack.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// A page behind the deposit.
    pub page: &'static str,
    pub trap: &'static str,
    /// Requests per window before the rate limit forfeits.
    pub rate_limit: u32,
    /// Upstream 4xx per window before the error storm forfeits.
    pub error_storm: u32,
}

/// Where the strategies run.
pub trait Site {
    fn layout(&self) -> Layout;
    /// Sends one request through the wall (round-robin over the workers where there are
    /// several).
    fn send(&mut self, req: &Req) -> Resp;
    /// `first` and `second` in flight at the same time: `second` completes while `first` is at
    /// the upstream.
    fn race(&mut self, first: &Req, second: &Req) -> (Resp, Resp);
    /// The sidecar's own leave endpoint, not through the filter (the last line of defence).
    fn leave_at_sidecar(&mut self, credential: &str) -> Resp;
    fn held_deposit(&mut self) -> Deposit;
    /// The invoice's state on the node: `OPEN`, `ACCEPTED`, `SETTLED`, `CANCELED`.
    fn node_state(&mut self, payment_hash: &str) -> String;
    /// One filter sync period passes.
    fn tick(&mut self);
    /// Restarts the sidecar (same store and node); false where it cannot be done.
    fn restart_sidecar(&mut self) -> bool;
}

const LEAVE: &str = "/.well-known/lightning-wall/leave";
const STATUS: &str = "/.well-known/lightning-wall/deposit";
const REWARDS: &str = "/.well-known/lightning-wall/rewards";
const SPAM: &str = "message=BUY+NOW+at+http%3A%2F%2Fspam.example";

/// The deposit's fate: waits (real time, a few ticks) until the node leaves ACCEPTED, or long
/// enough past the leave grace to be sure it will not.
pub fn fate(site: &mut dyn Site, payment_hash: &str) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(4);
    loop {
        site.tick();
        let state = site.node_state(payment_hash);
        if state != "ACCEPTED" || Instant::now() > deadline {
            return Outcome::from_node(&state);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn served(resps: &[Resp]) -> usize {
    resps.iter().filter(|r| r.served()).count()
}

fn leave(site: &mut dyn Site, d: &Deposit) -> Resp {
    site.send(&Req::post(LEAVE, "").auth(&d.credential))
}

/// Trap path, then leave at once.
pub fn trap_then_leave(site: &mut dyn Site) -> Row {
    let l = site.layout();
    let d = site.held_deposit();
    let trap = site.send(&Req::get(l.trap).auth(&d.credential));
    assert_eq!(trap.reason.as_deref(), Some("forfeited"));
    let left = leave(site, &d);
    Row {
        strategy: "trap path, then leave",
        outcome: fate(site, &d.payment_hash),
        got: format!(
            "trap 403 forfeited; leave {} {}",
            left.status,
            left.reason.unwrap_or_default()
        ),
    }
}

/// Spam the site (its verdict forfeits), then leave at once.
pub fn spam_then_leave(site: &mut dyn Site) -> Row {
    let d = site.held_deposit();
    let spam = site.send(&Req::post("/members/guestbook", SPAM).auth(&d.credential));
    let left = leave(site, &d);
    Row {
        strategy: "spam (upstream forfeit verdict), then leave",
        outcome: fate(site, &d.payment_hash),
        got: format!(
            "spam answered {}; leave {} {}",
            spam.status,
            left.status,
            left.reason.unwrap_or_default()
        ),
    }
}

/// The spam and the leave in flight at the same moment: the leave completes while the spam
/// is still at the upstream.
pub fn spam_and_leave_at_once(site: &mut dyn Site) -> Row {
    let d = site.held_deposit();
    let spam = Req::post("/members/guestbook", SPAM).auth(&d.credential);
    let (spam, left) = site.race(&spam, &Req::post(LEAVE, "").auth(&d.credential));
    Row {
        strategy: "spam and leave at the same moment",
        outcome: fate(site, &d.payment_hash),
        got: format!(
            "spam answered {}; leave {} {}",
            spam.status,
            left.status,
            left.json()["state"].as_str().unwrap_or_default()
        ),
    }
}

fn forged(req: Req) -> Req {
    req.header("sec-fetch-site", "cross-site")
        .header("origin", "null")
        .header("referer", "https://evil.example/")
}

/// Every request claims to come from another site, credential in `Authorization`.
pub fn forged_provenance_with_authorization(site: &mut dyn Site) -> Row {
    let l = site.layout();
    let d = site.held_deposit();
    let pages: Vec<Resp> = (0..3)
        .map(|_| site.send(&forged(Req::get(l.page).auth(&d.credential))))
        .collect();
    let trap = site.send(&forged(Req::get(l.trap).auth(&d.credential)));
    let left = leave(site, &d);
    Row {
        strategy: "forged Sec-Fetch-Site/Origin/Referer on every request (Authorization header)",
        outcome: fate(site, &d.payment_hash),
        got: format!(
            "{} of 3 pages served (and paid for), trap {} {}, leave {}",
            served(&pages),
            trap.status,
            trap.reason.unwrap_or_default(),
            left.status
        ),
    }
}

/// Every request claims to come from another site, credential in the cookie: refused
/// outright, so nothing is served, nothing counted, nothing fined.
pub fn forged_provenance_with_cookie(site: &mut dyn Site) -> Row {
    let l = site.layout();
    let d = site.held_deposit();
    let mut resps: Vec<Resp> = (0..l.rate_limit + 5)
        .map(|_| site.send(&forged(Req::get(l.page).cookie(&d.credential))))
        .collect();
    resps.push(site.send(&forged(Req::get(l.trap).cookie(&d.credential))));
    let refused = resps
        .iter()
        .filter(|r| r.reason.as_deref() == Some("cross_site_refused"))
        .count();
    Row {
        strategy: "forged Sec-Fetch-Site/Origin/Referer on every request (cookie)",
        outcome: fate(site, &d.payment_hash),
        got: format!(
            "{} of {} requests served ({refused} refused cross_site_refused, trap included)",
            served(&resps),
            resps.len()
        ),
    }
}

/// A burst over the rate limit from one token, spread over the workers.
pub fn burst_over_the_rate_limit(site: &mut dyn Site) -> Row {
    let l = site.layout();
    let d = site.held_deposit();
    let resps: Vec<Resp> = (0..l.rate_limit + 10)
        .map(|_| site.send(&Req::get(l.page).auth(&d.credential)))
        .collect();
    let left = leave(site, &d);
    Row {
        strategy: "burst over the rate limit from one token on several workers",
        outcome: fate(site, &d.payment_hash),
        got: format!(
            "{} of {} requests served (the limit is {}), leave {}",
            served(&resps),
            resps.len(),
            l.rate_limit,
            left.status
        ),
    }
}

/// Probing for pages that do not exist until the error storm forfeits.
pub fn error_storm(site: &mut dyn Site) -> Row {
    let l = site.layout();
    let d = site.held_deposit();
    let resps: Vec<Resp> = (0..=l.error_storm)
        .map(|i| site.send(&Req::get(format!("/members/nope-{i}")).auth(&d.credential)))
        .collect();
    let left = leave(site, &d);
    Row {
        strategy: "error storm (upstream 4xx)",
        outcome: fate(site, &d.payment_hash),
        got: format!(
            "{} not-found answers, leave {} {}",
            resps.iter().filter(|r| r.status == 404).count(),
            left.status,
            left.reason.unwrap_or_default()
        ),
    }
}

/// The trap, then a leave straight at the sidecar before any filter tick: the verdict was
/// already sent by the trap request itself.
pub fn verdict_racing_the_tick(site: &mut dyn Site) -> Row {
    let l = site.layout();
    let d = site.held_deposit();
    site.send(&Req::get(l.trap).auth(&d.credential));
    let left = site.leave_at_sidecar(&d.credential);
    Row {
        strategy: "a verdict racing the tick (leave at the sidecar right after the trap)",
        outcome: fate(site, &d.payment_hash),
        got: format!(
            "leave at the sidecar answered {} {}",
            left.status,
            left.json()["state"].as_str().unwrap_or_default()
        ),
    }
}

/// A forfeited token replayed on every worker and on the wall, rewards and status endpoints.
pub fn forfeited_token_replayed(site: &mut dyn Site, workers: usize) -> Row {
    let l = site.layout();
    let d = site.held_deposit();
    site.send(&Req::get(l.trap).auth(&d.credential));
    let pages: Vec<Resp> = (0..workers.max(1) * 2)
        .flat_map(|_| {
            [
                site.send(&Req::get(l.page).auth(&d.credential)),
                site.send(&Req::get(l.page).cookie(&d.credential)),
            ]
        })
        .collect();
    let left = leave(site, &d);
    let rewards = site.send(&Req::get(REWARDS).auth(&d.credential));
    let status = site.send(&Req::get(STATUS).auth(&format!("{}:", d.macaroon)));
    Row {
        strategy: "a forfeited token replayed on every worker, the wall, rewards and status",
        outcome: fate(site, &d.payment_hash),
        got: format!(
            "{} of {} pages served; leave {} {}; rewards balance {} sat; status {}",
            served(&pages),
            pages.len(),
            left.status,
            left.reason.unwrap_or_default(),
            rewards.json()["balance_sat"],
            status.json()["state"].as_str().unwrap_or_default()
        ),
    }
}

/// The trap, the sidecar restarts, then the leave.
pub fn restart_between_abuse_and_leave(site: &mut dyn Site) -> Option<Row> {
    let l = site.layout();
    let d = site.held_deposit();
    site.send(&Req::get(l.trap).auth(&d.credential));
    if !site.restart_sidecar() {
        return None;
    }
    let left = leave(site, &d);
    let at_sidecar = site.leave_at_sidecar(&d.credential);
    Some(Row {
        strategy: "a sidecar restart between the abuse and the leave",
        outcome: fate(site, &d.payment_hash),
        got: format!(
            "leave {} {}; at the sidecar {}",
            left.status,
            left.reason.unwrap_or_default(),
            at_sidecar.json()["state"].as_str().unwrap_or_default()
        ),
    })
}

// ---- the honest side --------------------------------------------------------------------

/// A visitor reading at a human pace, then leaving.
pub fn human_pace_browsing(site: &mut dyn Site) -> Row {
    let l = site.layout();
    let d = site.held_deposit();
    let mut pages = Vec::new();
    for _ in 0..5 {
        pages.push(
            site.send(
                &Req::get(l.page)
                    .cookie(&d.credential)
                    .header("sec-fetch-site", "same-origin"),
            ),
        );
        site.tick();
    }
    let left = site.send(
        &Req::post(LEAVE, "")
            .cookie(&d.credential)
            .header("sec-fetch-site", "same-origin"),
    );
    Row {
        strategy: "honest: browsing at a human pace, then leave",
        outcome: fate(site, &d.payment_hash),
        got: format!(
            "{} of 5 pages served; leave {} {}",
            served(&pages),
            left.status,
            left.json()["state"].as_str().unwrap_or_default()
        ),
    }
}

/// Someone mails the visitor a link to the trap path; the visitor opens it.
pub fn trap_link_from_a_mail(site: &mut dyn Site) -> Row {
    let l = site.layout();
    let d = site.held_deposit();
    let opened = site.send(
        &Req::get(l.trap)
            .cookie(&d.credential)
            .header("sec-fetch-site", "none")
            .header("sec-fetch-mode", "navigate"),
    );
    let page = site.send(
        &Req::get(l.page)
            .cookie(&d.credential)
            .header("sec-fetch-site", "same-origin"),
    );
    let still_held = site.node_state(&d.payment_hash) == "ACCEPTED" && page.served();
    let left = leave(site, &d);
    Row {
        strategy: "honest: a trap link opened from a mail (Sec-Fetch-Site: none)",
        outcome: fate(site, &d.payment_hash),
        got: format!(
            "trap {} {}; browsing continued: {still_held}; leave {}",
            opened.status,
            opened.reason.unwrap_or_default(),
            left.status
        ),
    }
}

/// A hostile page embeds the trap (`<img src>`): cross-site, so the browser sends no Strict
/// cookie and the filter sees no credential at all.
pub fn hostile_page_embeds_the_trap(site: &mut dyn Site) -> Row {
    let l = site.layout();
    let d = site.held_deposit();
    let embedded = site.send(
        &Req::get(l.trap)
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-mode", "no-cors")
            .header("referer", "https://evil.example/"),
    );
    let left = leave(site, &d);
    Row {
        strategy: "third party: a hostile page embeds the trap path",
        outcome: fate(site, &d.payment_hash),
        got: format!(
            "the embed got {} (no credential: a challenge); the visitor's leave {}",
            embedded.status, left.status
        ),
    }
}

/// A page on a sibling subdomain (same registrable domain) requests the trap and a page:
/// same-site, so the Strict cookie is sent.
pub fn sibling_subdomain_page(site: &mut dyn Site) -> Row {
    let l = site.layout();
    let d = site.held_deposit();
    let resps: Vec<Resp> = [l.trap, l.page]
        .iter()
        .map(|p| {
            site.send(
                &Req::get(*p)
                    .cookie(&d.credential)
                    .header("sec-fetch-site", "same-site")
                    .header("referer", "https://user-content.example.com/"),
            )
        })
        .collect();
    let left = leave(site, &d);
    Row {
        strategy: "third party: a sibling-subdomain page requests the trap and a page",
        outcome: fate(site, &d.payment_hash),
        got: format!(
            "{} of 2 served ({} refused); the visitor's leave {}",
            served(&resps),
            resps
                .iter()
                .filter(|r| r.reason.as_deref() == Some("cross_site_refused"))
                .count(),
            left.status
        ),
    }
}

/// The rows as the markdown table of docs/reliability.md.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| strategy | outcome on the node | what the attacker (or third party) got |\n|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            r.strategy,
            r.outcome.as_str(),
            r.got
        ));
    }
    out
}

// ---- the end-to-end harness as a site ----------------------------------------------------

/// The demo site's behaviour where the strategies need it (demo/src/main.rs): spam in the
/// guestbook gets `x-lightning-wall-verdict: forfeit`, unknown pages 404, the rest a page.
fn demo_like_upstream(m: &Message) -> Message {
    let path = m.headers.get(":path").unwrap_or("/");
    let body = String::from_utf8_lossy(&m.body);
    let mut headers = HeaderMap::from_pairs([(":status", "200")]);
    if path == "/members/guestbook" && body.contains("http") {
        headers = HeaderMap::from_pairs([(":status", "403")]);
        headers.add(b"x-lightning-wall-verdict", b"forfeit");
    } else if path.starts_with("/members/nope") || path == "/wp-login.php" {
        headers = HeaderMap::from_pairs([(":status", "404")]);
    }
    Message {
        headers,
        body: b"page".to_vec(),
        trailers: HeaderMap::new(),
    }
}

fn to_request(req: &Req) -> Request {
    let mut r = Request::new(req.method, &req.path).body(req.body.clone());
    for (k, v) in &req.headers {
        r = r.header(k, v);
    }
    r
}

fn from_exchange(ex: &lightning_wall_host::testing::Exchange) -> Resp {
    let resp = ex.response.as_ref();
    Resp {
        status: resp.and_then(|r| r.status()).unwrap_or(0),
        reason: resp
            .and_then(|r| r.headers.get("x-lightning-wall-reason"))
            .map(str::to_owned),
        body: resp
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .unwrap_or_default(),
    }
}

impl Wall {
    /// What Envoy routes behind the filter: the wall endpoints to the sidecar's public
    /// listener (real HTTP), the rest to [`demo_like_upstream`].
    fn upstream_for(&self, m: &Message) -> Message {
        let path = m.headers.get(":path").unwrap_or("/");
        if !path.starts_with("/.well-known/lightning-wall/") {
            return demo_like_upstream(m);
        }
        let method = m.headers.get(":method").unwrap_or("GET").to_owned();
        let url = format!("{}{path}", self.public);
        let mut request = self.http.request(method.parse().unwrap(), url);
        for (k, v) in m.headers.iter() {
            let k = String::from_utf8_lossy(k);
            if !k.starts_with(':') {
                request = request.header(k.as_ref(), v);
            }
        }
        let body = m.body.clone();
        let (status, text) = self.rt.block_on(async move {
            let r = request.body(body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        });
        Message {
            headers: HeaderMap::from_pairs([(":status", status.to_string())]),
            body: text.into_bytes(),
            trailers: HeaderMap::new(),
        }
    }

    fn start_exchange(&mut self, req: &Req) -> lightning_wall_host::testing::StreamHandle {
        let mut request = to_request(req);
        if req.body.is_empty() {
            request.body_chunks.clear();
        }
        let h = self.host.start(&request, request.body_chunks.is_empty());
        for chunk in &request.body_chunks {
            self.host.request_body(h, chunk, true);
        }
        h
    }

    fn exchange(&mut self, req: &Req) -> Resp {
        let h = self.start_exchange(req);
        self.finish_exchange(h)
    }

    fn finish_exchange(&mut self, h: lightning_wall_host::testing::StreamHandle) -> Resp {
        let up = self.host.upstream_request(h).cloned();
        if let Some(up) = up
            .as_ref()
            .filter(|_| self.host.stream(h).is_some_and(|s| s.awaiting_upstream()))
        {
            let resp = self.upstream_for(up);
            self.host.respond(h, &resp);
        }
        from_exchange(&self.host.complete(h, up))
    }
}

impl Site for Wall {
    fn layout(&self) -> Layout {
        // tests/src/lib.rs: the `wall` route.
        Layout {
            page: "/members/",
            trap: "/wp-login.php",
            rate_limit: 20,
            error_storm: 5,
        }
    }

    fn send(&mut self, req: &Req) -> Resp {
        self.exchange(req)
    }

    fn race(&mut self, first: &Req, second: &Req) -> (Resp, Resp) {
        let h = self.start_exchange(first);
        // `first` is at the upstream now; `second` goes all the way meanwhile.
        let second = self.exchange(second);
        (self.finish_exchange(h), second)
    }

    fn leave_at_sidecar(&mut self, credential: &str) -> Resp {
        let url = format!("{}{LEAVE}", self.public);
        let request = self
            .http
            .post(url)
            .header("authorization", format!("L402 {credential}"));
        self.rt.block_on(async move {
            let r = request.send().await.unwrap();
            Resp {
                status: r.status().as_u16(),
                reason: None,
                body: r.text().await.unwrap_or_default(),
            }
        })
    }

    fn held_deposit(&mut self) -> Deposit {
        let (credential, challenge) = Wall::held_deposit(self, "/members/");
        Deposit {
            credential,
            macaroon: challenge["macaroon"].as_str().unwrap().to_owned(),
            payment_hash: challenge["payment_hash"].as_str().unwrap().to_owned(),
        }
    }

    fn node_state(&mut self, payment_hash: &str) -> String {
        format!("{:?}", Wall::node_state(self, payment_hash)).to_uppercase()
    }

    fn tick(&mut self) {
        Wall::tick(self);
    }

    fn restart_sidecar(&mut self) -> bool {
        self.stop_sidecar();
        self.start_sidecar();
        true
    }
}

// ---- a running `make demo` as a site -------------------------------------------------------

/// A running demo (`make demo`): the site through the wall at `base` (`http://127.0.0.1:8080`),
/// the sidecar's internal listener (dev pay, dev invoice state) and public listener.
pub struct Demo {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    internal: String,
    public: String,
}

impl Demo {
    pub fn new(base: &str, internal: &str, public: &str) -> Demo {
        Demo {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            internal: internal.trim_end_matches('/').to_owned(),
            public: public.trim_end_matches('/').to_owned(),
        }
    }

    async fn call(http: reqwest::Client, url: String, req: Req) -> Resp {
        let mut r = http.request(req.method.parse().unwrap(), url);
        for (k, v) in &req.headers {
            r = r.header(*k, v);
        }
        let r = r.body(req.body.clone()).send().await.unwrap();
        Resp {
            status: r.status().as_u16(),
            reason: r
                .headers()
                .get("x-lightning-wall-reason")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: r.text().await.unwrap_or_default(),
        }
    }
}

impl Site for Demo {
    fn layout(&self) -> Layout {
        // examples/demo/lightning-wall.yaml: the `members` route.
        Layout {
            page: "/members/",
            trap: "/wp-login.php",
            rate_limit: 60,
            error_storm: 20,
        }
    }

    fn send(&mut self, req: &Req) -> Resp {
        let url = format!("{}{}", self.base, req.path);
        self.rt
            .block_on(Demo::call(self.http.clone(), url, req.clone()))
    }

    fn race(&mut self, first: &Req, second: &Req) -> (Resp, Resp) {
        let a = Demo::call(
            self.http.clone(),
            format!("{}{}", self.base, first.path),
            first.clone(),
        );
        let b = Demo::call(
            self.http.clone(),
            format!("{}{}", self.base, second.path),
            second.clone(),
        );
        self.rt.block_on(async { tokio::join!(a, b) })
    }

    fn leave_at_sidecar(&mut self, credential: &str) -> Resp {
        let url = format!("{}{LEAVE}", self.public);
        self.rt.block_on(Demo::call(
            self.http.clone(),
            url,
            Req::post(LEAVE, "").auth(credential),
        ))
    }

    fn held_deposit(&mut self) -> Deposit {
        let challenge = self
            .send(&Req::get("/members/").header("accept", "application/json"))
            .json();
        let invoice = challenge["invoice"].as_str().expect("a deposit challenge");
        let url = format!("{}/v1/dev/pay", self.internal);
        let body = serde_json::json!({ "invoice": invoice });
        let http = self.http.clone();
        self.rt.block_on(async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200, "dev pay");
        });
        let macaroon = challenge["macaroon"].as_str().unwrap().to_owned();
        let status = self
            .send(&Req::get(format!("{STATUS}?wait=10")).auth(&format!("{macaroon}:")))
            .json();
        assert_eq!(status["state"], "held", "{status}");
        Deposit {
            credential: status["credential"].as_str().unwrap().to_owned(),
            macaroon,
            payment_hash: challenge["payment_hash"].as_str().unwrap().to_owned(),
        }
    }

    fn node_state(&mut self, payment_hash: &str) -> String {
        let url = format!("{}/v1/dev/invoices/{payment_hash}", self.internal);
        let http = self.http.clone();
        self.rt.block_on(async move {
            let r = http.get(url).send().await.unwrap();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            body["state"].as_str().unwrap_or_default().to_owned()
        })
    }

    fn tick(&mut self) {
        std::thread::sleep(Duration::from_millis(1000));
    }

    fn restart_sidecar(&mut self) -> bool {
        false
    }
}
