#!/usr/bin/env bash
# Build nginx 1.27.4 with Kong's ngx_wasm_module and the wasmtime C API 26 (the proxy-wasm host
# inside nginx and Kong Gateway), cached outside the clone so a second run does nothing.
#
#   scripts/build-nginx.sh            # prints the path of the built nginx binary on stdout
#
# Sources, first that exists: $LW_VENDOR_DIR, then ../shared/vendor (or ../../shared/vendor)
# beside the repository, else
# downloaded from the projects' own archives. Every archive is checked against a pinned SHA-256
# of its content (paths without the top folder, modes and file hashes), so a local `git archive`
# and the download of the same commit are accepted alike and anything else is refused.
# The wasmtime C API comes from crates.io (nginx/wasmtime-c-api, its own Cargo.lock and target
# directory: it must never join the workspace, which pins wasmtime 48).
# Cache: ${LW_NGINX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lightning-wall}/{wasmtime-c-api-*,nginx-*}.
# Build recipe and costs: docs/deployment.md "nginx".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${LW_NGINX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lightning-wall}
jobs=${LW_NGINX_JOBS:-2}

nginx_archive=nginx-1.27.4.tar.gz
nginx_url=https://github.com/nginx/nginx/archive/refs/tags/release-1.27.4.tar.gz
nginx_digest=009abc68ed6f95258683c91a1b89e28a095f2c0b80d4b1d70134c08edeebb6ff
module_commit=3bed27836bb402143c6cbde17994b1d11a1084bc
module_archive=ngx_wasm_module-3bed2783.tar.gz
module_url=https://github.com/Kong/ngx_wasm_module/archive/$module_commit.tar.gz
module_digest=fa017c12e1b1b03bf605015e4cdaa18577f72aa4b31c7caac9420e3a5e8e7da1
# Changing how nginx is configured changes this line, and so the cache key.
configure_flags="--with-http_ssl_module --with-http_realip_module"

log() { echo "build-nginx: $*" >&2; }

need_packages() {
  local missing=()
  command -v cmake >/dev/null || missing+=(cmake)
  command -v cc >/dev/null || missing+=(build-essential)
  [ -f /usr/include/pcre2.h ] || missing+=(libpcre2-dev)
  [ -f /usr/include/zlib.h ] || missing+=(zlib1g-dev)
  [ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "missing build packages: ${missing[*]} (apt-get install them, or run as root)"
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

# The content digest of a .tar.gz: independent of the top folder's name and of compression.
content_digest() {
  python3 - "$1" <<'EOF'
import hashlib, sys, tarfile
rows = []
with tarfile.open(sys.argv[1]) as t:
    for m in t.getmembers():
        if m.type == tarfile.XGLTYPE or "/" not in m.name.strip("/"):
            continue
        name = m.name.split("/", 1)[1]
        if m.isfile():
            data = t.extractfile(m).read()
            rows.append(f"f {name} {m.mode & 0o111 != 0} {hashlib.sha256(data).hexdigest()}")
        elif m.issym():
            rows.append(f"l {name} {m.linkname}")
        elif m.isdir():
            rows.append(f"d {name.rstrip('/')}")
h = hashlib.sha256()
for r in sorted(rows):
    h.update(r.encode() + b"\n")
print(h.hexdigest())
EOF
}

# fetch_source ARCHIVE URL DIGEST -> path of a checked archive
fetch_source() {
  local archive=$1 url=$2 digest=$3 dir path
  # ../shared beside a clone (CI), ../../shared beside a worktree of one.
  for dir in "${LW_VENDOR_DIR:-}" "$root/../shared/vendor" "$root/../../shared/vendor"; do
    if [ -n "$dir" ] && [ -f "$dir/$archive" ]; then path=$dir/$archive; break; fi
  done
  if [ -z "${path:-}" ]; then
    path=$cache/downloads/$archive
    if [ ! -f "$path" ]; then
      log "downloading $url"
      mkdir -p "$cache/downloads"
      curl -fsSL --retry 3 -o "$path.part" "$url" && mv "$path.part" "$path" || {
        log "cannot download $url; put $archive in \$LW_VENDOR_DIR or ../shared/vendor"
        exit 1
      }
    fi
  fi
  local got
  got=$(content_digest "$path")
  if [ "$got" != "$digest" ]; then
    log "$path: content digest $got, expected $digest (not the pinned source); refusing it"
    exit 1
  fi
  echo "$path"
}

unpack() { # unpack ARCHIVE DEST: the archive's top folder becomes DEST
  rm -rf "$2" && mkdir -p "$2" && tar -xzf "$1" -C "$2" --strip-components=1
}

wrapper=$root/nginx/wasmtime-c-api
wasmtime_key=$(cat "$wrapper/Cargo.toml" "$wrapper/Cargo.lock" "$wrapper/src/lib.rs" | sha256sum | cut -c1-16)
wasmtime_dir=$cache/wasmtime-c-api-26-$wasmtime_key
nginx_key=$(printf '%s\n' "$nginx_digest" "$module_digest" "$wasmtime_key" "$configure_flags" | sha256sum | cut -c1-16)
nginx_dir=$cache/nginx-$nginx_key

if [ -x "$nginx_dir/sbin/nginx" ]; then
  echo "$nginx_dir/sbin/nginx"
  exit 0
fi
need_packages

# 1. The wasmtime C API (~7.5 min on 2 cores, once).
if [ ! -f "$wasmtime_dir/lib/libwasmtime.a" ]; then
  log "building the wasmtime C API 26 (crates.io wasmtime-c-api-impl) into $wasmtime_dir"
  target_dir=$cache/wasmtime-c-api-target
  CARGO_TARGET_DIR=$target_dir cargo build --locked --release \
    --manifest-path "$wrapper/Cargo.toml" >&2
  include=$(ls -d "$target_dir"/release/build/wasmtime-c-api-impl-*/out/include | head -n1)
  # wasmtime-c-api-impl 26.0.0's generated conf.h leaves WASMTIME_FEATURE_WAT undefined although
  # the feature is built; ngx_wasm_module then fails to compile (wasmtime_wat2wasm).
  sed -i 's|^/\* #undef WASMTIME_FEATURE_WAT \*/|#define WASMTIME_FEATURE_WAT|' \
    "$include/wasmtime/conf.h"
  rm -rf "$wasmtime_dir.part" && mkdir -p "$wasmtime_dir.part/lib"
  cp -r "$include" "$wasmtime_dir.part/include"
  cp "$target_dir/release/libwasmtime.a" "$wasmtime_dir.part/lib/"
  rm -rf "$wasmtime_dir" && mv "$wasmtime_dir.part" "$wasmtime_dir"
  # Gigabytes of intermediate files: the library and headers are all nginx needs.
  rm -rf "$target_dir"
fi

# 2. nginx with the module, wasmtime linked in statically (~1 min).
nginx_src=$(fetch_source "$nginx_archive" "$nginx_url" "$nginx_digest")
module_src=$(fetch_source "$module_archive" "$module_url" "$module_digest")
work=$cache/nginx-build-$nginx_key
log "building nginx 1.27.4 with ngx_wasm_module ${module_commit:0:8} into $nginx_dir"
unpack "$nginx_src" "$work/nginx"
unpack "$module_src" "$work/ngx_wasm_module"
(
  cd "$work/nginx"
  # shellcheck disable=SC2086 # configure_flags is a list of flags
  NGX_WASM_RUNTIME=wasmtime \
    NGX_WASM_RUNTIME_INC=$wasmtime_dir/include \
    NGX_WASM_RUNTIME_LIB=$wasmtime_dir/lib \
    NGX_WASM_RUNTIME_LD_OPT=$wasmtime_dir/lib/libwasmtime.a \
    auto/configure --prefix="$nginx_dir" $configure_flags \
    --add-module="$work/ngx_wasm_module" >&2
  make -j"$jobs" >&2
  # Only the binary and nginx's stock conf/ (mime.types) are kept; configurations pass -p and -c.
  rm -rf "$nginx_dir.part" && mkdir -p "$nginx_dir.part/sbin"
  cp objs/nginx "$nginx_dir.part/sbin/" && cp -r conf "$nginx_dir.part/conf"
  rm -rf "$nginx_dir" && mv "$nginx_dir.part" "$nginx_dir"
)
rm -rf "$work"
"$nginx_dir/sbin/nginx" -v >&2 2>&1
echo "$nginx_dir/sbin/nginx"
