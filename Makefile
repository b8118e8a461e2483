# lightning-wall — build, test, benchmark, fuzz.
# `make test` is what CI runs (.ci/run) and what the README tells newcomers to run.

SHELL := /bin/bash
CARGO ?= cargo
WASM_DIR := target/wasm
FILTER_WASM := $(WASM_DIR)/lightning_wall_filter.wasm
# Sources that go into the filter's .wasm: rebuild only when one of them changes.
FILTER_SRCS := $(shell find filter l402 contract -name '*.rs' -o -name Cargo.toml) contract/src/wall_text.en.json Cargo.toml Cargo.lock
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
# The host's conformance filter, built for both wasm targets Envoy loads.
CONFORMANCE_WASM := $(WASM_DIR)/conformance_filter.wasm
CONFORMANCE_WASM_UNKNOWN := $(WASM_DIR)/conformance_filter_unknown.wasm
CONFORMANCE_SRCS := $(shell find host/conformance-filter -name '*.rs' -o -name Cargo.toml) Cargo.toml Cargo.lock
# The no-op filter the nginx benchmark measures against (bench/noop-filter).
NOOP_WASM := $(WASM_DIR)/noop_filter.wasm
NOOP_SRCS := $(shell find bench/noop-filter -name '*.rs' -o -name Cargo.toml) Cargo.toml Cargo.lock

.PHONY: all wasm nginx nginx-test nginx-full-shm test test-deps lint fmt clippy clippy-wasm unit nwc-client-test validate-configs demo demo-check clients-test browser-test sidecar-release bench bench-filter bench-gateway bench-nginx bench-sidecar bench-leave soak attack fuzz fuzz-smoke fault clean

all: wasm

## wasm: build the filter (release, size-optimised) to target/wasm/lightning_wall_filter.wasm,
## and the host's conformance filter (wasm32-wasip1 and wasm32-unknown-unknown)
wasm: $(FILTER_WASM) $(CONFORMANCE_WASM) $(CONFORMANCE_WASM_UNKNOWN)

$(FILTER_WASM): $(FILTER_SRCS) scripts/build-wasm.sh
	scripts/build-wasm.sh lightning-wall-filter lightning_wall_filter $@

$(CONFORMANCE_WASM): $(CONFORMANCE_SRCS) scripts/build-wasm.sh
	scripts/build-wasm.sh lightning-wall-conformance-filter conformance_filter $@

$(NOOP_WASM): $(NOOP_SRCS) scripts/build-wasm.sh
	scripts/build-wasm.sh lightning-wall-noop-filter noop_filter $@

$(CONFORMANCE_WASM_UNKNOWN): $(CONFORMANCE_SRCS) scripts/build-wasm.sh
	WASM_TARGET=wasm32-unknown-unknown \
	  scripts/build-wasm.sh lightning-wall-conformance-filter conformance_filter $@

## test: formatting, clippy (native and wasm), every test, the deployment files, the demo's
## flows over HTTP and in a headless browser
test: test-deps lint wasm unit nwc-client-test validate-configs demo-check clients-test browser-test
# The demo's flows and the browser test again in real nginx (built once into ~/.cache; see nginx-test).
test: nginx-test

## test-deps: tools the tests need that a fresh machine lacks (pymacaroons for the cross-check;
## the pinned LNbits in target/lnbits-venv for fake-lnd/tests/lnbits.rs, ~90 s once, then cached)
test-deps:
	@python3 -c 'import pymacaroons' 2>/dev/null || \
	  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check 'pymacaroons==0.13.0'
	@scripts/lnbits-venv.sh >/dev/null

lint: fmt clippy clippy-wasm

fmt:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

clippy-wasm:
	scripts/build-wasm.sh lightning-wall-filter lightning_wall_filter $(FILTER_WASM) clippy

unit: wasm
	$(CARGO) test --locked --workspace
	@# The end-to-end flows again with the filter in a host with nginx's semantics
	@# (ngx_wasm_module; docs/filter.md "Hosts"); `make nginx-test` runs them in real nginx.
	LW_HOST_SEMANTICS=nginx $(CARGO) test --locked --workspace --test flows --test enforcement --test rewards

## nwc-client-test: FakeNwc driven by an independent NIP-47 client, @getalby/sdk's NWCClient
## (pinned in tests/nwc-client/package-lock.json, installed once into target/nwc-client)
nwc-client-test:
	CARGO=$(CARGO) scripts/nwc-client-test.sh

## validate-configs: envoy/, examples/kubernetes/, deploy/kubernetes/ (rendered by kustomize),
## deploy/systemd/ and the Dockerfiles against Envoy's, Kubernetes' and systemd's rules (pinned
## validators from PyPI, installed into target/validate-venv)
validate-configs:
	$(CARGO) build --locked -p lightning-wall --bin lightning-wall
	LW_BIN=target/debug/lightning-wall scripts/validate-configs.sh

## demo: build and run the demo in the foreground: the sidecar (dev node), the demo site and
## Envoy (or the development gateway; PROXY=nginx: nginx with ngx_wasm_module) on
## http://127.0.0.1:8080. Ctrl-C stops it.
PROXY ?=
demo:
	DEMO_PROXY=$(PROXY) scripts/demo.sh

## demo-check: the demo's pay, deposit, leave, trap and spam flows over HTTP (curl), then stop
demo-check:
	DEMO_PROXY=$(PROXY) scripts/demo.sh --run scripts/demo-check.sh

## nginx: nginx 1.27.4 with Kong's ngx_wasm_module and the wasmtime C API 26, cached in
## ~/.cache/lightning-wall (~9 min once on 2 cores, then nothing); prints the binary's path
nginx:
	@scripts/build-nginx.sh

## nginx-test: the demo's flows against real nginx (make nginx, then demo-check and the
## browser test with PROXY=nginx): pay, deposit, leave, trap (and its path tricks), rate limit,
## upstream verdict, rewards, own headers refused, one connection. Part of `make test`: the
## nginx build is cached in ~/.cache (10-47 min once on 2 cores; docs/deployment.md "nginx")
nginx-test: nginx wasm
	@# The nginx image's configuration parses and loads the filter (its /etc/nginx/ paths
	@# pointed at the files built here).
	d=$$(mktemp -d) && cp $(FILTER_WASM) "$$(dirname "$$(dirname "$$(scripts/build-nginx.sh)")")/conf/mime.types" $$d/ && \
	  sed "s|/etc/nginx/|$$d/|g" deploy/nginx-image/nginx.conf >$$d/nginx.conf && \
	  "$$(scripts/build-nginx.sh)" -t -q -p $$d/ -e stderr -c $$d/nginx.conf; s=$$?; rm -rf $$d; exit $$s
	DEMO_PROXY=nginx scripts/demo.sh --run scripts/demo-check.sh
	DEMO_PROXY=nginx scripts/browser-test.sh

## nginx-full-shm: issue #17's 100,000 client addresses in real nginx (make nginx) whose
## shared-data zone (shm_kv * 1m) fills: each answered 402, an early mint counter evicted, a paid
## credential still 200, no trap, no worker lost (~2 min on 2 busy cores; part of `make fault`)
nginx-full-shm: nginx wasm
	scripts/nginx-full-shm.sh

## clients-test: the client helpers (Rust client/, clients/js, clients/python) end to end against
## the demo: deposit refunded on leave, forfeited on a trap path, the pay route
clients-test: wasm
	scripts/clients-test.sh

## browser-test: the wall page in headless Chromium (Debian's chromium + playwright-core)
browser-test:
	DEMO_PROXY=$(PROXY) scripts/browser-test.sh

## sidecar-release: the sidecar binary exactly as the Dockerfile builds it
sidecar-release:
	$(CARGO) build --locked --release -p lightning-wall --bin lightning-wall

## bench: every benchmark (l402 vs the HMAC floor, the filter in the host vs a no-op filter,
## gateway throughput, peer macaroon libraries, the sidecar on SQLite and PostgreSQL) written
## with machine info and commands to bench/RESULTS.md (~10 min; bench/run.sh)
bench: wasm $(NOOP_WASM) test-deps
	bench/run.sh

## bench-sidecar: challenge minting rate (pay, deposit), 10,000 held deposits' RSS, 1,000
## long-poll waiters, against `lightning-wall serve` with the dev node and SQLite (~1 min)
bench-sidecar:
	scripts/bench-sidecar.sh

## bench-leave: leave -> hold invoice CANCELED on the node, p50/p99 over 200 honest visitors on
## the demo stack (includes the 1 s leave grace; ~1 min)
bench-leave:
	scripts/demo.sh --run scripts/bench-leave.sh

## attack: the attacker suite's strategies against the demo (starts it, runs them, prints the
## outcome table of docs/reliability.md); LW_ATTACK_URL=<url> runs them against a demo already up
attack:
	@if [ -n "$$LW_ATTACK_URL" ]; then \
	  $(CARGO) test --locked -p lightning-wall-e2e --test attack attack_the_running_demo -- --ignored --nocapture; \
	else \
	  $(CARGO) test --locked -p lightning-wall-e2e --test attack --no-run && \
	  scripts/demo.sh --run env LW_ATTACK_URL=http://127.0.0.1:8080 $(CARGO) test --locked -p lightning-wall-e2e --test attack attack_the_running_demo -- --ignored --nocapture; \
	fi

## soak: issue #14's soak against the demo stack with release binaries (root, ~2 min after the
## release build): 60 s of unpaid challenges from 100,000 rotating IPv6 addresses plus 10,000
## concurrent long-polls while an honest visitor pays and leaves; sidecar RSS and the filter's
## shared data at start and end (bench/RESULTS.md)
soak: wasm
	scripts/soak.sh

## bench-filter: per-request cost of the filter in the host against the no-op filter (~30 s)
bench-filter: wasm
	$(CARGO) bench --locked -p lightning-wall-filter --bench request

## bench-gateway: requests/s through the development gateway, plain vs. the no-op filter (~25 s)
bench-gateway: wasm
	scripts/bench-gateway.sh

## bench-nginx: requests/s through real nginx (make nginx, cached), no filter vs. a no-op
## proxy-wasm filter vs. the filter with a paid credential, loaded by wrk (~2 min)
bench-nginx: wasm $(NOOP_WASM) nginx
	scripts/bench-nginx.sh

## fuzz: run every fuzz target for FUZZ_SECONDS each (nightly + cargo-fuzz, installed if missing);
## FUZZ_RUNS=N also stops each after N executions. Prints the rows of fuzz/RESULTS.md.
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

## fuzz-smoke: every fuzz target for a few seconds (machines with nightly); `make test` replays
## the committed corpora on stable (fuzz-checks/tests/corpus.rs)
fuzz-smoke:
	scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS)

## fault: the long fault runs: 1,000 SIGKILLs of the sidecar across deposit lifecycles on
## SQLite, then on PostgreSQL (LW_TEST_POSTGRES_URL), ~10 min each (FAULT_KILLS,
## FAULT_PG_KILLS), then every fault and security test (docs/reliability.md), then `make soak`
## and `make nginx-full-shm`
FAULT_KILLS ?= 1000
FAULT_PG_KILLS ?= 1000
fault: wasm
	LW_CRASH_KILLS=$(FAULT_KILLS) LW_CRASH_LIFECYCLES=1000 \
	  $(CARGO) test --locked -p lightning-wall --test crash -- --nocapture
	LW_CRASH_STORE=postgres LW_CRASH_KILLS=$(FAULT_PG_KILLS) LW_CRASH_LIFECYCLES=1000 \
	  $(CARGO) test --locked -p lightning-wall --test crash -- --nocapture
	$(CARGO) test --locked -p lightning-wall --test faults_lnd --test postgres_restart --test clock_jumps
	$(CARGO) test --locked -p lightning-wall-e2e --test faults --test resilience --test security
	scripts/soak.sh
	$(MAKE) --no-print-directory nginx-full-shm

clean:
	$(CARGO) clean
