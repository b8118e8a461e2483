#!/usr/bin/env python3
"""Peer benchmark: verifications/s of the l402 token (bench/peers/, `make bench`) with
pymacaroons 0.13.0 (pinned, PyPI), one thread.

Reads the token JSON of `cargo run --release -p l402 --example peer_token` on stdin and times
the same verification work as l402's `verify_authorization` for SECONDS (argv[1]):
  parse the `Authorization` value (scheme, base64 macaroon, hex preimage), decode the V2 binary
  macaroon, pick the master key named by the lw_key caveat, derive the token's root key
  (HMAC-SHA256(master, SHA-256(identifier))), check the MAC chain with every first-party caveat
  checked for its meaning (services, valid_until, lw_mode, lw_route, lw_key), then the preimage
  against the payment hash in the identifier. Prints one JSON line.
"""
import base64
import hashlib
import hmac
import json
import sys
import time

from pymacaroons import Macaroon, Verifier


def verifier_for(token, key_id):
    service, route, mode, now = token["service"], token["route"], token["mode"], token["now"]

    def check(caveat):
        if isinstance(caveat, bytes):  # pymacaroons hands binary (V2) caveats over as bytes
            caveat = caveat.decode()
        name, _, value = caveat.partition("=")
        if name == "services":
            return any(s.strip().split(":")[0] == service for s in value.split(","))
        if name == service + "_valid_until":
            return now < int(value)
        if name == "lw_mode":
            return value == mode
        if name == "lw_route":
            return value == route
        if name == "lw_key":
            return value == key_id
        if name == "lw_methods":
            return "GET" in value.split(",")
        return False

    v = Verifier()
    v.satisfy_general(check)
    return v


def verify(token, masters, authorization):
    scheme, _, credential = authorization.partition(" ")
    if scheme not in ("L402", "LSAT"):
        raise ValueError("scheme")
    mac_b64, _, preimage_hex = credential.rpartition(":")
    raw = base64.b64decode(mac_b64 + "=" * (-len(mac_b64) % 4))
    m = Macaroon.deserialize(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    key_id = next(c.caveat_id_bytes[len(b"lw_key="):].decode() for c in m.first_party_caveats()
                  if c.caveat_id_bytes.startswith(b"lw_key="))
    identifier = m.identifier_bytes
    root = hmac.new(masters[key_id], hashlib.sha256(identifier).digest(), hashlib.sha256).digest()
    verifier_for(token, key_id).verify(m, root)
    if hashlib.sha256(bytes.fromhex(preimage_hex)).digest() != identifier[2:34]:
        raise ValueError("preimage")
    return True


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    token = json.load(sys.stdin)
    masters = {k: bytes.fromhex(v) for k, v in token["master_keys"].items()}
    auth = token["authorization"]
    assert verify(token, masters, auth)
    # A tampered credential must fail: the benchmark times real verification.
    try:
        verify(token, masters, auth[:-1] + ("0" if auth[-1] != "0" else "1"))
        raise SystemExit("pymacaroons accepted a wrong preimage")
    except ValueError:
        pass
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            verify(token, masters, auth)
        n += 100
    rate = n / (time.perf_counter() - start)
    print(json.dumps({"peer": "pymacaroons 0.13.0", "python": sys.version.split()[0],
                      "verifications_per_second": rate}))


if __name__ == "__main__":
    main()
