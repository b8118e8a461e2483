"""lightning-wall's client helper for Python (docs/programs.md).

A 402 is answered by paying through the caller's wallet hook, then the request is sent again
with the credential; deposits are polled until held, and ``leave()`` refunds them. The core
uses only the standard library (``urllib``); ``lightning_wall_client.requests_adapter`` plugs
the same flow into a ``requests.Session``. It never pays without asking the hook and never puts
a credential in a URL.
"""

from .core import Challenge, LightningWall, Response, WallError, parse_challenge

__all__ = ["Challenge", "LightningWall", "Response", "WallError", "parse_challenge"]
