#!/usr/bin/env python3
"""Cross-check of the l402 crate against pymacaroons 0.13.0 (libmacaroons-compatible).

Driven by l402/tests/pymacaroons.rs; reads one JSON request on stdin, writes one JSON answer:

  {"op": "mint", "root_key": hex, "identifier": hex, "location": str,
   "caveats": [str], "third_party": bool}
      -> {"macaroon": <pymacaroons V2 base64 (URL-safe, unpadded)>}
  {"op": "verify", "root_key": hex, "macaroon": <base64, any variant>}
      -> {"ok": bool, "error": str|null, "identifier": hex, "caveats": [str], "signature": hex}

Verification satisfies every first-party caveat (their meaning is the l402 crate's business);
what is checked here is the binary format and the HMAC chain.
"""
import base64
import json
import sys

try:
    from pymacaroons import MACAROON_V2, Macaroon, Verifier
except ImportError:
    sys.stderr.write("pymacaroons is not installed: run `make test-deps`\n")
    sys.exit(3)


def b64decode_any(text):
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def main():
    req = json.load(sys.stdin)
    key = bytes.fromhex(req["root_key"])
    if req["op"] == "mint":
        m = Macaroon(
            location=req["location"],
            identifier=bytes.fromhex(req["identifier"]),
            key=key,
            version=MACAROON_V2,
        )
        for caveat in req["caveats"]:
            m.add_first_party_caveat(caveat)
        if req.get("third_party"):
            m.add_third_party_caveat("https://auth.example", b"\x05" * 32, "third-party-id")
        json.dump({"macaroon": m.serialize()}, sys.stdout)
    elif req["op"] == "verify":
        # pymacaroons' deserializer wants URL-safe base64; we emit standard padded.
        raw = b64decode_any(req["macaroon"])
        m = Macaroon.deserialize(base64.urlsafe_b64encode(raw).decode().rstrip("="))
        verifier = Verifier()
        verifier.satisfy_general(lambda caveat: True)
        ok, error = True, None
        try:
            verifier.verify(m, key)
        except Exception as e:  # pymacaroons raises MacaroonInvalidSignatureException & co.
            ok, error = False, type(e).__name__
        json.dump(
            {
                "ok": ok,
                "error": error,
                "identifier": m.identifier_bytes.hex(),
                "caveats": [c.caveat_id_bytes.decode("utf-8", "replace") for c in m.caveats],
                "signature": m.signature if isinstance(m.signature, str) else m.signature.decode(),
            },
            sys.stdout,
        )
    else:
        sys.stderr.write("unknown op\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
