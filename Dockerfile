# Dockerfile — the lightning-wall sidecar image: built in a Rust stage, run from distroless as an
# unprivileged user (no shell, no package manager). Build from the repository root:
#
#   docker build -t registry.example.com/lightning-wall/lightning-wall:0.1.0 .
#
# The build command is the Makefile's `sidecar-release` target (scripts/validate-configs.sh
# checks that they stay the same, that every COPY source exists, the image runs as non-root
# and hadolint finds nothing).

# The workspace's rust-version (Cargo.toml). Debian 12 (bookworm) on purpose: the binary links
# against glibc, and the runtime image below is Debian 12's; a newer builder glibc would not run
# there. Pin by digest for reproducible builds.
FROM docker.io/library/rust:1.95-slim-bookworm AS build
WORKDIR /src
# Every workspace member must be present for cargo to load the workspace, even those not built.
COPY Cargo.toml Cargo.lock ./
COPY l402 l402
COPY contract contract
COPY filter filter
COPY host host
COPY sidecar sidecar
COPY client client
COPY fake-lnd fake-lnd
COPY fake-cln fake-cln
COPY fake-nwc fake-nwc
COPY tests tests
COPY demo demo
COPY fuzz-checks fuzz-checks
COPY bench/noop-filter bench/noop-filter
# rustls (ring) and SQLite (bundled by sqlx) are compiled in: the binary needs only glibc and
# libgcc, which the distroless cc image provides.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p lightning-wall --bin lightning-wall \
 && install -D -m 0755 target/release/lightning-wall /out/lightning-wall

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/lightning-wall /usr/local/bin/lightning-wall
# distroless `nonroot` (65532); the Kubernetes manifests set the same uid and fsGroup.
USER 65532:65532
WORKDIR /var/lib/lightning-wall
# 8081 internal (the filter), 8082 public (wall endpoints); admin stays on loopback.
EXPOSE 8081 8082
ENTRYPOINT ["/usr/local/bin/lightning-wall"]
CMD ["serve", "--config", "/etc/lightning-wall/lightning-wall.yaml"]
