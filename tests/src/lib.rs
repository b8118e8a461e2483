//! The end-to-end harness: the real sidecar (library, dev node, SQLite) on loopback in its own
//! tokio runtime, and the built `lightning_wall_filter.wasm` in the proxy-wasm test host with
//! the sidecar's internal listener as its call-out cluster. Tests in `tests/tests/` drive
//! requests through the filter and act as the visitor's wallet and browser. For kill -9 tests
//! the sidecar runs in a child process instead ([`Wall::start_killable`]). Test support code:
//! a failed setup step panics with what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lightning_wall::config::Config;
use lightning_wall::ids::PaymentHash;
use lightning_wall::node::{InvoiceState, Node};
use lightning_wall::serve::{Running, start};
use lightning_wall::testing::ports::loopback_ports;
use lightning_wall_host::Runtime;
use lightning_wall_host::stream::Message;
use lightning_wall_host::testing::{Exchange, Request, TestHost, echo_upstream, wasm_file};
use lightning_wall_host::{CalloutPhases, HostSemantics};
use serde_json::{Value, json};

pub use lightning_wall_host::testing;

pub mod attack;

/// The Envoy cluster name the filter calls (the sidecar's internal listener).
pub const CLUSTER: &str = "lightning_wall_sidecar";
/// The cluster of the sidecar's public listener (wall endpoints).
pub const WALL_CLUSTER: &str = "lightning_wall_public";

/// The node of every test but those of other backends: the development node.
const DEV_NODE: &str = "node: { backend: dev }";

/// Routes used by every test: a pay API, a free health check, a pay route for one query
/// (`/shop/…?wc-ajax=checkout`), a deposit wall on the rest.
fn config_yaml(
    data: &str,
    node: &str,
    ports: [u16; 3],
    admin_token_file: &str,
    mint_per_min: u32,
) -> String {
    let [internal, public, admin] = ports;
    format!(
        r#"
data_dir: {data}
{node}
listeners:
  internal: {{ bind: "127.0.0.1:{internal}" }}
  public: {{ bind: "127.0.0.1:{public}" }}
  admin: {{ bind: "127.0.0.1:{admin}", token: {{ file: {admin_token_file} }} }}
limits:
  challenge_mint_rate: {{ requests: {mint_per_min}, per: 1m }}
rewards:
  enabled: true
  max_per_reward_sat: 100
  max_per_token_sat: 150
  withdraw_max_sat: 1000
routes:
  - id: health
    match: {{ path: {{ exact: /healthz }} }}
    mode: free
  - id: api
    match: {{ path: {{ prefix: /v1/ }}, methods: [GET] }}
    mode: pay
    pay: {{ amount_sat: 21 }}
  - id: open-api
    match: {{ path: {{ prefix: /open/ }} }}
    mode: pay
    failure_mode: open
    pay: {{ amount_sat: 5 }}
  - id: checkout
    match: {{ path: {{ prefix: /shop/ }}, query: {{ wc-ajax: checkout }} }}
    mode: pay
    pay: {{ amount_sat: 7 }}
  - id: wall
    match: {{ path: {{ prefix: / }} }}
    mode: deposit
    deposit:
      amount_sat: 1000
      idle_timeout: 5m
      session_cap: 1h
      trap_paths: [/wp-login.php]
      rate_limit: {{ requests: 20, per: 1m }}
      error_storm: {{ errors: 5, within: 1m }}
"#
    )
}

/// 32 random bytes, hex (bearer tokens of the test config).
fn random_hex() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom");
    hex::encode(bytes)
}

/// How the sidecar runs.
enum Sidecar {
    /// In this process, on the harness's runtime: stopped gracefully.
    InProcess(Running),
    /// In a child process (this test binary re-executed, see [`serve_if_child`]): killable.
    Process(Child),
}

/// The environment variable naming the config a re-executed test binary serves.
const CHILD_CONFIG: &str = "LW_E2E_SIDECAR_CONFIG";

/// The entry point of the sidecar's child process: when this test binary was re-executed by
/// [`Wall::start_killable`], serves the sidecar (`lightning_wall::serve::start`, what the
/// `serve` command runs) until the process is killed; otherwise returns at once. Call it from an
/// ignored test named as given to `start_killable`.
pub fn serve_if_child() {
    let Ok(config) = std::env::var(CHILD_CONFIG) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = Config::load(std::path::Path::new(&config)).expect("the test config");
        let _running = start(config).await.expect("the sidecar starts");
        std::future::pending::<()>().await;
    });
}

/// The host semantics `LW_HOST_SEMANTICS` names (envoy by default; nginx with nginx.conf's
/// directives), so every end-to-end test runs under either.
pub fn semantics_from_env() -> HostSemantics {
    HostSemantics::from_env().unwrap_or_else(|e| panic!("{e}"))
}

/// The filter's plugin configuration for a host: where it forbids call-outs from response
/// callbacks, or forwards request headers the filter removed (nginx), the filter is told so,
/// as nginx/nginx.conf does.
pub fn plugin_configuration(semantics: &HostSemantics) -> String {
    // Named only where needed: Envoy's configuration stays what it always was.
    let callouts = if semantics.callouts == CalloutPhases::Anywhere {
        ""
    } else {
        r#", "request_callouts_only": true"#
    };
    let own_headers = if semantics.removed_request_headers_reach_upstream {
        r#", "refuse_own_headers": true"#
    } else {
        ""
    };
    format!(
        r#"{{"sidecar_cluster": "{CLUSTER}", "wall_cluster": "{WALL_CLUSTER}"{callouts}{own_headers}}}"#
    )
}

/// One sidecar and one host with the filter.
pub struct Wall {
    rt: tokio::runtime::Runtime,
    /// The proxy-wasm host the filter runs in (`LW_HOST_SEMANTICS`: envoy, the default, or
    /// nginx; or [`Wall::start_in`]).
    semantics: HostSemantics,
    sidecar: Option<Sidecar>,
    /// The test the child process runs, for a killable sidecar.
    child_entry: Option<String>,
    config_path: PathBuf,
    internal: String,
    public: String,
    admin: String,
    admin_token: String,
    data: PathBuf,
    pub host: TestHost,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// The filter module, loaded once per test binary.
pub fn filter_runtime() -> Arc<Runtime> {
    static RUNTIME: std::sync::OnceLock<Arc<Runtime>> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let path = wasm_file("lightning_wall_filter.wasm").unwrap_or_else(|e| panic!("{e}"));
            Arc::new(Runtime::from_file(&path).expect("the filter .wasm loads"))
        })
        .clone()
}

impl Wall {
    /// Starts the sidecar and a host with `workers` worker VMs (bootstrapped on return).
    pub fn start(workers: usize) -> Wall {
        Wall::start_with(workers, 1000)
    }

    /// As [`Wall::start`], with the sidecar's challenge mint rate per client IP per minute.
    pub fn start_with(workers: usize, mint_per_min: u32) -> Wall {
        Wall::start_with_sidecar(workers, mint_per_min, None, DEV_NODE, semantics_from_env())
    }

    /// As [`Wall::start`], the filter in a host with these semantics (whatever
    /// `LW_HOST_SEMANTICS` says).
    pub fn start_in(workers: usize, semantics: HostSemantics) -> Wall {
        Wall::start_with_sidecar(workers, 1000, None, DEV_NODE, semantics)
    }

    /// As [`Wall::start_in`], and the host is not ticked before returning (nothing
    /// bootstrapped yet).
    pub fn start_in_unticked(workers: usize, semantics: HostSemantics) -> Wall {
        Wall::start_with_sidecar_ticked(workers, 1000, None, DEV_NODE, semantics, false)
    }

    /// As [`Wall::start`], on another node backend: `node_yaml` is the config's `node:` section
    /// (the dev-node helpers, `dev_pay` and `node_state`, do not apply).
    pub fn start_on_node(workers: usize, node_yaml: &str) -> Wall {
        Wall::start_with_sidecar(workers, 1000, None, node_yaml, semantics_from_env())
    }

    fn start_with_sidecar(
        workers: usize,
        mint_per_min: u32,
        child_entry: Option<&str>,
        node: &str,
        semantics: HostSemantics,
    ) -> Wall {
        Wall::start_with_sidecar_ticked(workers, mint_per_min, child_entry, node, semantics, true)
    }

    fn start_with_sidecar_ticked(
        workers: usize,
        mint_per_min: u32,
        child_entry: Option<&str>,
        node: &str,
        semantics: HostSemantics,
        tick: bool,
    ) -> Wall {
        let dir = tempfile::tempdir().unwrap();
        // Never from the kernel's ephemeral range: see loopback_ports.
        let [internal, public, admin] = loopback_ports::<3>();
        let config_path = dir.path().join("lightning-wall.yaml");
        let data = dir.path().join("data");
        let admin_token = random_hex();
        let admin_token_file = dir.path().join("admin.token");
        std::fs::write(&admin_token_file, &admin_token).unwrap();
        std::fs::write(
            &config_path,
            config_yaml(
                &data.display().to_string(),
                node,
                [internal, public, admin],
                &admin_token_file.display().to_string(),
                mint_per_min,
            ),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut wall = Wall {
            sidecar: None,
            child_entry: child_entry.map(str::to_owned),
            config_path,
            internal: format!("http://127.0.0.1:{internal}"),
            public: format!("http://127.0.0.1:{public}"),
            admin: format!("http://127.0.0.1:{admin}"),
            admin_token,
            data,
            host: TestHost::builder(filter_runtime())
                .configuration(plugin_configuration(&semantics))
                .semantics(semantics.clone())
                .workers(workers)
                .start_time(SystemTime::now())
                .cluster_url(CLUSTER, &format!("http://127.0.0.1:{internal}"))
                .cluster_url(WALL_CLUSTER, &format!("http://127.0.0.1:{public}"))
                // Before start_sidecar: the first bootstrap fails, the tick retries it.
                .build()
                .expect("the host starts the filter"),
            rt,
            semantics,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        wall.start_sidecar();
        if tick {
            wall.tick();
            if wall.semantics.callouts != CalloutPhases::Anywhere {
                // The revocation snapshot follows the bootstrap one tick later there.
                wall.tick();
            }
        }
        wall
    }

    /// The address (`127.0.0.1:<port>`) of the sidecar's internal listener, the filter's
    /// call-out cluster: a test can put a listener of its own there while the sidecar is down.
    pub fn internal_addr(&self) -> &str {
        self.internal.trim_start_matches("http://")
    }

    /// As [`Wall::start`], with the sidecar in a child process that [`Wall::kill_sidecar`]
    /// kills with SIGKILL: this test binary re-executed to run only the ignored test `entry`,
    /// which calls [`serve_if_child`].
    pub fn start_killable(workers: usize, entry: &str) -> Wall {
        Wall::start_with_sidecar(workers, 1000, Some(entry), DEV_NODE, semantics_from_env())
    }

    /// Starts (or restarts) the sidecar on the same ports, store and dev node.
    pub fn start_sidecar(&mut self) {
        assert!(self.sidecar.is_none(), "sidecar already running");
        let Some(entry) = self.child_entry.clone() else {
            let config = Config::load(&self.config_path).expect("the test config is valid");
            let running = self.rt.block_on(start(config)).expect("the sidecar starts");
            self.sidecar = Some(Sidecar::InProcess(running));
            return;
        };
        let child = Command::new(std::env::current_exe().unwrap())
            .args([entry.as_str(), "--exact", "--ignored", "--nocapture"])
            .env(CHILD_CONFIG, &self.config_path)
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("the test binary re-executes");
        self.sidecar = Some(Sidecar::Process(child));
        // Ready when its internal listener answers.
        let ready = self.rt.block_on(async {
            for _ in 0..400 {
                let url = format!("{}/healthz", self.internal);
                if self.http.get(&url).send().await.is_ok() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            false
        });
        assert!(ready, "the sidecar's child process never listened");
    }

    /// Edits the sidecar's config file (`edit` gets its YAML and returns the new one); the next
    /// [`Wall::start_sidecar`] serves it.
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let yaml = std::fs::read_to_string(&self.config_path).unwrap();
        std::fs::write(&self.config_path, edit(yaml)).unwrap();
    }

    /// Stops the sidecar: in process, gracefully (in-flight requests finish; then its ports
    /// refuse connections); in a child process, with SIGKILL.
    pub fn stop_sidecar(&mut self) {
        match self.sidecar.take() {
            Some(Sidecar::InProcess(running)) => self.rt.block_on(running.shutdown()),
            Some(Sidecar::Process(mut child)) => {
                child.kill().unwrap(); // SIGKILL on Unix: no shutdown code runs
                child.wait().unwrap();
            }
            None => {}
        }
    }

    /// The SQLite store's files in the data dir (the database, its WAL and shared memory).
    fn store_files(dir: &std::path::Path) -> [PathBuf; 3] {
        [
            "lightning-wall.db",
            "lightning-wall.db-wal",
            "lightning-wall.db-shm",
        ]
        .map(|f| dir.join(f))
    }

    /// Copies the store's files (sidecar stopped) into `backup`, as an operator's file backup.
    pub fn back_up_store(&self, backup: &std::path::Path) {
        assert!(
            self.sidecar.is_none(),
            "stop the sidecar before copying its store"
        );
        std::fs::create_dir_all(backup).unwrap();
        for (from, to) in Wall::store_files(&self.data)
            .iter()
            .zip(Wall::store_files(backup))
        {
            if from.exists() {
                std::fs::copy(from, to).unwrap();
            }
        }
    }

    /// Replaces the store under the stopped sidecar: deleted, then restored from `backup` if
    /// given (else the sidecar creates an empty one). The master keys and the dev node, which
    /// live beside it in the data dir, stay (as keys from the config and a node would).
    pub fn replace_store(&self, backup: Option<&std::path::Path>) {
        assert!(
            self.sidecar.is_none(),
            "stop the sidecar before replacing its store"
        );
        for f in Wall::store_files(&self.data) {
            let _ = std::fs::remove_file(f);
        }
        if let Some(backup) = backup {
            for (from, to) in Wall::store_files(backup)
                .iter()
                .zip(Wall::store_files(&self.data))
            {
                if from.exists() {
                    std::fs::copy(from, to).unwrap();
                }
            }
        }
    }

    /// Mines `blocks` blocks on the dev node (its auto-cancel of held invoices applies).
    pub fn advance_blocks(&self, blocks: u32) {
        let node = match &self.sidecar {
            Some(Sidecar::InProcess(running)) => running.dev_node.clone(),
            _ => None,
        }
        .expect("an in-process sidecar with the dev node");
        self.rt.block_on(node.advance_blocks(blocks)).unwrap();
    }

    /// SIGKILLs the sidecar of a [`Wall::start_killable`] wall.
    pub fn kill_sidecar(&mut self) {
        assert!(
            matches!(self.sidecar, Some(Sidecar::Process(_))),
            "kill_sidecar needs a wall from start_killable"
        );
        self.stop_sidecar();
    }

    /// The running in-process sidecar's store (to fill it beyond what a test can do through
    /// the API, e.g. a million revocations).
    pub fn store(&self) -> lightning_wall::store::Store {
        match &self.sidecar {
            Some(Sidecar::InProcess(running)) => running.lifecycle.store().clone(),
            _ => panic!("store() needs an in-process sidecar"),
        }
    }

    /// Another Envoy instance with the filter (`workers` worker VMs) in front of this same
    /// sidecar and store: a second replica of the proxy. `internal` answers its call-outs to the
    /// internal listener (`None`: straight to the sidecar over HTTP).
    pub fn replica(
        &self,
        workers: usize,
        internal: Option<lightning_wall_host::callout::CallHandler>,
    ) -> TestHost {
        self.replica_in(workers, internal, self.semantics.clone())
    }

    /// As [`Wall::replica`], in another host than this one's.
    pub fn replica_in(
        &self,
        workers: usize,
        internal: Option<lightning_wall_host::callout::CallHandler>,
        semantics: HostSemantics,
    ) -> TestHost {
        let builder = TestHost::builder(filter_runtime())
            .configuration(plugin_configuration(&semantics))
            .semantics(semantics)
            .workers(workers)
            .start_time(SystemTime::now())
            .cluster_url(WALL_CLUSTER, &self.public);
        let builder = match internal {
            Some(h) => builder.cluster_handler(CLUSTER, move |r| h(r)),
            None => builder.cluster_url(CLUSTER, &self.internal),
        };
        builder.build().expect("the host starts the filter")
    }

    /// The sidecar's data dir (generated master keys, SQLite, the dev node's key).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data
    }

    /// The sidecar's config file (it reloads it on change: tests rewrite it).
    pub fn config_path(&self) -> &std::path::Path {
        &self.config_path
    }

    /// `http://127.0.0.1:<port>` of the admin API, and its bearer token.
    pub fn admin(&self) -> (&str, &str) {
        (&self.admin, &self.admin_token)
    }

    /// `http://127.0.0.1:<port>` of the sidecar's public (wall) listener.
    pub fn public_url(&self) -> &str {
        &self.public
    }

    /// Runs a future on the sidecar's runtime (for tests' own HTTP calls).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Whether the filter refuses client-supplied `x-lightning-wall-*` request headers (400,
    /// `refuse_own_headers`: nginx, where a removed header still reaches the upstream) rather
    /// than stripping them (Envoy).
    pub fn refuses_own_request_headers(&self) -> bool {
        self.semantics.removed_request_headers_reach_upstream
    }

    /// Whether a verdict read from the upstream's response leaves with the next tick rather than
    /// before the response (hosts without call-outs from response callbacks: nginx).
    pub fn response_verdicts_wait_for_the_tick(&self) -> bool {
        self.semantics.callouts != CalloutPhases::Anywhere
    }

    /// One sync period: fires every worker's tick (bootstrap, sync, events).
    pub fn tick(&mut self) {
        self.host.advance(Duration::from_millis(1000));
    }

    /// Sends a request through the filter; the upstream echoes it.
    pub fn send(&mut self, req: &Request) -> Exchange {
        self.host.send(req, echo_upstream)
    }

    /// Sends a request; `upstream` answers it if the filter forwards it.
    pub fn send_with(
        &mut self,
        req: &Request,
        upstream: impl FnOnce(&Message) -> Message,
    ) -> Exchange {
        self.host.send(req, upstream)
    }

    fn post(&self, url: String, body: Value) -> (u16, Value) {
        self.rt.block_on(async {
            let r = self.http.post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
        })
    }

    /// The dev node pays `invoice` (a hold invoice ends up held, a normal one settled).
    pub fn dev_pay(&self, invoice: &str) -> Value {
        let (status, body) = self.post(
            format!("{}/v1/dev/pay", self.internal),
            json!({"invoice": invoice}),
        );
        assert_eq!(status, 200, "dev pay: {body}");
        body
    }

    /// The deposit status endpoint, as the wall page polls it (empty-proof macaroon).
    pub fn deposit_status(&self, macaroon: &str) -> Value {
        self.rt.block_on(async {
            let r = self
                .http
                .get(format!(
                    "{}/.well-known/lightning-wall/deposit?wait=5",
                    self.public
                ))
                .header("authorization", format!("L402 {macaroon}:"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json().await.unwrap()
        })
    }

    /// The visitor leaves: the hold invoice is cancelled.
    pub fn leave(&self, credential: &str) -> Value {
        self.rt.block_on(async {
            let r = self
                .http
                .post(format!("{}/.well-known/lightning-wall/leave", self.public))
                .header("authorization", format!("L402 {credential}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json().await.unwrap()
        })
    }

    /// GETs `url` with an optional `Authorization` value; status and JSON body.
    pub fn get_json(&self, url: &str, authorization: Option<&str>) -> (u16, Value) {
        self.rt.block_on(async {
            let mut request = self.http.get(url);
            if let Some(auth) = authorization {
                request = request.header("authorization", auth);
            }
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
        })
    }

    /// A GET on the sidecar's public listener (as Envoy routes `/.well-known/lightning-wall/`):
    /// status, content type, body.
    pub fn public_get(&self, path_and_query: &str) -> (u16, String, String) {
        self.rt.block_on(async {
            let r = self
                .http
                .get(format!("{}{path_and_query}", self.public))
                .send()
                .await
                .unwrap();
            let content_type = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            (r.status().as_u16(), content_type, r.text().await.unwrap())
        })
    }

    /// The dev node's state of an invoice through `GET /v1/dev/invoices/{hash}`: status and
    /// `state` (`OPEN`, `ACCEPTED`, `SETTLED`, `CANCELED`) or the error code.
    pub fn dev_invoice_state(&self, payment_hash: &str) -> (u16, String) {
        self.rt.block_on(async {
            let r = self
                .http
                .get(format!("{}/v1/dev/invoices/{payment_hash}", self.internal))
                .send()
                .await
                .unwrap();
            let code = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            let text = body["state"]
                .as_str()
                .or(body["error"]["code"].as_str())
                .unwrap_or_default()
                .to_owned();
            (code, text)
        })
    }

    /// The sidecar's Prometheus text.
    pub fn sidecar_metrics(&self) -> String {
        self.rt.block_on(async {
            let r = self
                .http
                .get(format!("{}/metrics", self.internal))
                .send()
                .await
                .unwrap();
            r.text().await.unwrap()
        })
    }

    /// The invoice's state on the dev node.
    pub fn node_state(&self, payment_hash: &str) -> InvoiceState {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(payment_hash, &mut hash).unwrap();
        let node = match &self.sidecar {
            Some(Sidecar::InProcess(running)) => running.dev_node.clone(),
            // Another process's dev node: ask it over its dev endpoint.
            Some(Sidecar::Process(_)) => {
                let (code, state) = self.dev_invoice_state(payment_hash);
                return InvoiceState::from_lnd_str(&state)
                    .filter(|_| code == 200)
                    .unwrap_or_else(|| panic!("dev invoice state: {code} {state}"));
            }
            None => None,
        }
        .expect("sidecar running with the dev node");
        self.rt
            .block_on(node.lookup(&PaymentHash(hash)))
            .unwrap()
            .state
    }

    /// Waits (real time, up to 5 s) until the invoice reaches `want`.
    pub fn wait_node_state(&self, payment_hash: &str, want: InvoiceState) {
        if !self.reaches_node_state(payment_hash, want) {
            panic!(
                "invoice never reached {want:?} (is {:?})",
                self.node_state(payment_hash)
            );
        }
    }

    /// Ticks, then waits as [`Wall::wait_node_state`] does, up to four times: what one tick
    /// sends (a verdict, a usage count) is re-sent on the next if its call-out timed out, as the
    /// proxy's timer would do every second, so a loaded machine does not fail the test, while
    /// a verdict that is never sent still does.
    pub fn tick_until_node_state(&mut self, payment_hash: &str, want: InvoiceState) {
        for _ in 0..4 {
            self.tick();
            if self.reaches_node_state(payment_hash, want) {
                return;
            }
        }
        panic!(
            "invoice never reached {want:?} in 4 ticks (is {:?})",
            self.node_state(payment_hash)
        );
    }

    fn reaches_node_state(&self, payment_hash: &str, want: InvoiceState) -> bool {
        for _ in 0..200 {
            if self.node_state(payment_hash) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }

    /// A 402 challenge for `path` (JSON body), as an API client gets it.
    pub fn challenge(&mut self, path: &str) -> Value {
        let ex = self.send(&Request::get(path).header("accept", "application/json"));
        let resp = ex.response.expect("an answer");
        assert_eq!(
            resp.status(),
            Some(402),
            "{:?}",
            String::from_utf8_lossy(&resp.body)
        );
        serde_json::from_slice(&resp.body).unwrap()
    }

    /// Challenge, pay the hold invoice, fetch the credential: a visitor with a held deposit.
    pub fn held_deposit(&mut self, path: &str) -> (String, Value) {
        let challenge = self.challenge(path);
        let paid = self.dev_pay(challenge["invoice"].as_str().unwrap());
        assert_eq!(paid["status"], "held");
        let status = self.deposit_status(challenge["macaroon"].as_str().unwrap());
        assert_eq!(status["state"], "held", "{status}");
        (status["credential"].as_str().unwrap().to_owned(), challenge)
    }
}

impl Drop for Wall {
    fn drop(&mut self) {
        self.stop_sidecar();
    }
}

/// A response's status.
/// The test config's limits are per minute, in windows aligned on the epoch by the host's clock
/// (docs/deployment.md "Several Envoy replicas"), and a test host's clock starts at the real
/// time. Call before [`Wall::start`] when a test's counted hits have ticks between them: waiting
/// until early in a minute keeps them in one window (a window edge between them would restart
/// the count, as it does for a visitor, and the test would see no forfeit).
pub fn early_in_a_minute() {
    let second = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() % 60);
    if second > 30 {
        std::thread::sleep(Duration::from_secs(61 - second));
    }
}

pub fn status(ex: &Exchange) -> Option<u16> {
    ex.response.as_ref().and_then(|r| r.status())
}

/// A response header.
pub fn header<'a>(ex: &'a Exchange, name: &str) -> Option<&'a str> {
    ex.response.as_ref().and_then(|r| r.headers.get(name))
}

/// The sidecar's revocation snapshot with no revocation (docs/internal-api.md), for test
/// doubles of the sidecar.
pub fn empty_snapshot() -> Vec<u8> {
    let mut b = b"LWR1".to_vec();
    b.extend_from_slice(&[0; 12]);
    b
}
