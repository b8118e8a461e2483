"""The same flow over a ``requests.Session`` (optional: ``pip install requests``).

    wall = RequestsWall(pay=my_wallet_pay, session=requests.Session())
    r = wall.get("https://site/api/quote")   # r.native is the requests.Response
"""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from .core import LightningWall, Response


@dataclass
class RequestsWall(LightningWall):
    session: requests.Session = field(default_factory=requests.Session)

    def _transport(self, method, url, headers, data) -> Response:
        r = self.session.request(method, url, headers=headers, data=data, timeout=self.timeout_s)
        # requests joins repeated headers with ", " already; names are case-insensitive.
        return Response(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content, r)
