# lightning-wall — build, test, benchmark, fuzz.
# `make test` is what CI runs (.ci/run) and what the README tells newcomers to run.

SHELL := /bin/bash
CARGO ?= cargo
WASM_DIR := target/wasm
FILTER_WASM := $(WASM_DIR)/lightning_wall_filter.wasm
# Sources that go into the filter's .wasm: rebuild only when one of them changes.
FILTER_SRCS := $(shell find filter l402 -name '*.rs' -o -name Cargo.toml) Cargo.toml Cargo.lock
FUZZ_SECONDS ?= 60
# The host's conformance filter, built for both wasm targets Envoy loads.
CONFORMANCE_WASM := $(WASM_DIR)/conformance_filter.wasm
CONFORMANCE_WASM_UNKNOWN := $(WASM_DIR)/conformance_filter_unknown.wasm
CONFORMANCE_SRCS := $(shell find host/conformance-filter -name '*.rs' -o -name Cargo.toml) Cargo.toml Cargo.lock

.PHONY: all wasm test test-deps lint fmt clippy clippy-wasm unit bench bench-filter bench-gateway fuzz fuzz-smoke clean

all: wasm

## wasm: build the filter (release, size-optimised) to target/wasm/lightning_wall_filter.wasm,
## and the host's conformance filter (wasm32-wasip1 and wasm32-unknown-unknown)
wasm: $(FILTER_WASM) $(CONFORMANCE_WASM) $(CONFORMANCE_WASM_UNKNOWN)

$(FILTER_WASM): $(FILTER_SRCS) scripts/build-wasm.sh
	scripts/build-wasm.sh lightning-wall-filter lightning_wall_filter $@

$(CONFORMANCE_WASM): $(CONFORMANCE_SRCS) scripts/build-wasm.sh
	scripts/build-wasm.sh lightning-wall-conformance-filter conformance_filter $@

$(CONFORMANCE_WASM_UNKNOWN): $(CONFORMANCE_SRCS) scripts/build-wasm.sh
	WASM_TARGET=wasm32-unknown-unknown \
	  scripts/build-wasm.sh lightning-wall-conformance-filter conformance_filter $@

## test: formatting, clippy (native and wasm), every test
test: test-deps lint wasm unit

## test-deps: tools the tests need that a fresh machine lacks (pymacaroons for the cross-check)
test-deps:
	@python3 -c 'import pymacaroons' 2>/dev/null || \
	  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check 'pymacaroons==0.13.0'

lint: fmt clippy clippy-wasm

fmt:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

clippy-wasm:
	scripts/build-wasm.sh lightning-wall-filter lightning_wall_filter $(FILTER_WASM) clippy

unit: wasm
	$(CARGO) test --locked --workspace

## bench: criterion benchmarks
bench:
	$(CARGO) bench --locked -p l402

## bench-filter: per-request cost of the filter in the host against the no-op filter (~30 s)
bench-filter: wasm
	$(CARGO) bench --locked -p lightning-wall-filter --bench request

## bench-gateway: requests/s through the development gateway, plain vs. the no-op filter (~25 s)
bench-gateway: wasm
	scripts/bench-gateway.sh

## fuzz: run every fuzz target for FUZZ_SECONDS each (nightly + cargo-fuzz, installed if missing)
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	$(CARGO) clean
