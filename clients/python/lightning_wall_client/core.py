"""The flow: 402 -> pay hook -> (deposit: poll the status URL) -> retry with the credential."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Optional

CREDENTIAL_HEADER = "x-lightning-wall-credential"
ENDED = {"refunded", "forfeited", "expired"}
_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="([^"]*)"')
_L402_START = re.compile(r"(?:^|,\s*)(L402|LSAT)\s", re.IGNORECASE)
_PREIMAGE = re.compile(r"^[0-9a-fA-F]{64}$")


class WallError(Exception):
    """The flow could not finish; ``code`` is the sidecar's error code or the deposit state."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Challenge:
    """What a 402 asks for (docs/wire-format.md "Challenge")."""

    macaroon: str
    invoice: str
    mode: str = "pay"
    status_url: Optional[str] = None
    leave_url: Optional[str] = None
    terms_url: Optional[str] = None
    route_id: str = ""
    amount_sat: Optional[int] = None
    payment_hash: Optional[str] = None


def parse_challenge(value: str) -> Optional[Challenge]:
    """Parses a ``WWW-Authenticate`` value (several challenges may be folded into one)."""
    starts = list(_L402_START.finditer(value))
    l402 = [m for m in starts if m.group(1).upper() == "L402"]
    chosen = (l402 or starts or [None])[0]
    if chosen is None:
        return None
    text = value[chosen.start(1) :]
    params: dict[str, str] = {}
    for m in _PARAM.finditer(text):
        name = m.group(1).lower()
        if name == "macaroon" and "macaroon" in params:
            break  # the next folded challenge
        params.setdefault(name, m.group(2))
    if not params.get("macaroon") or not params.get("invoice"):
        return None
    return Challenge(
        macaroon=params["macaroon"],
        invoice=params["invoice"],
        mode="deposit" if params.get("mode") == "deposit" else "pay",
        status_url=params.get("status_url"),
        leave_url=params.get("leave_url"),
        terms_url=params.get("terms_url"),
    )


@dataclass
class Response:
    """An answer: status, headers (lower-case names, repeated values joined by ", "), body."""

    status: int
    headers: dict
    body: bytes
    native: object = None  # the transport's own response object (e.g. requests.Response)

    def json(self):
        return json.loads(self.body)

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class _Held:
    route_id: str
    mode: str
    macaroon: str
    credential: str
    status_url: Optional[str] = None
    leave_url: Optional[str] = None


PayHook = Callable[[str, Challenge], Optional[str]]


@dataclass
class LightningWall:
    """A session with sites behind lightning-wall.

    ``pay(invoice, challenge)`` pays the BOLT 11 invoice and returns the preimage (64 hex) when
    the wallet gives one, else ``None``; it may refuse by raising. ``request`` answers a
    :class:`Response` and sends a paid request again, so its body must be bytes or str.
    """

    pay: PayHook
    wait_timeout_s: float = 120.0
    timeout_s: float = 70.0
    _by_route: dict = field(default_factory=dict)
    _route_of_path: dict = field(default_factory=dict)
    _last: Optional[_Held] = None

    def request(self, method: str, url: str, data=None, headers: Optional[dict] = None) -> Response:
        key = _path_key(url)
        known = self._by_route.get(self._route_of_path.get(key)) or self._last
        sent = known.credential if known else None
        res = self._send(method, url, headers, data, sent)
        if res.status == 401 and sent:
            # A credential for another route, or one that ended: ask for this route's 402.
            sent = None
            res = self._send(method, url, headers, data, None)
        if res.status != 402:
            return self._adopt(res, key, known)
        challenge = _read_challenge(res)
        if challenge is None:
            return res
        held = self._by_route.get(challenge.route_id)
        if held and held.credential != sent:
            retry = self._send(method, url, headers, data, held.credential)
            if retry.status not in (401, 402):
                return self._adopt(retry, key, held)
        entry = self._acquire(challenge, url)
        self._by_route[challenge.route_id] = entry
        return self._adopt(self._send(method, url, headers, data, entry.credential), key, entry)

    def get(self, url: str, **kw) -> Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, data=None, **kw) -> Response:
        return self.request("POST", url, data=data, **kw)

    def leave(self, route_id: Optional[str] = None) -> list:
        """Leaves every held deposit (or ``route_id``'s): one POST each; the refund follows."""
        answers = []
        for rid, entry in list(self._by_route.items()):
            if entry.mode != "deposit" or (route_id is not None and rid != route_id):
                continue
            res = self._transport("POST", entry.leave_url, {"authorization": f"L402 {entry.credential}"}, None)
            if res.status != 200:
                raise WallError(_error_code(res), f"leave answered {res.status}")
            del self._by_route[rid]
            if self._last is entry:
                self._last = None
            answers.append(res.json())
        return answers

    def deposit_status(self, route_id: str) -> dict:
        entry = self._by_route.get(route_id)
        if entry is None or entry.mode != "deposit":
            raise WallError("no_deposit", f"no deposit for {route_id!r}")
        return self._poll(entry.status_url, entry.macaroon, 0).json()

    # --- internals -------------------------------------------------------------------------

    def _send(self, method, url, headers, data, credential) -> Response:
        h = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        if credential:
            h["authorization"] = f"L402 {credential}"
        return self._transport(method, url, h, data)

    def _transport(self, method, url, headers, data) -> Response:
        """One HTTP exchange with urllib; error statuses are answers, not exceptions."""
        if isinstance(data, str):
            data = data.encode()
        req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                return Response(r.status, _headers(r.headers), r.read(), r)
        except urllib.error.HTTPError as e:
            with e:
                return Response(e.code, _headers(e.headers), e.read(), e)

    def _adopt(self, res: Response, key: str, entry: Optional[_Held]) -> Response:
        if entry is None or res.status in (401, 402):
            return res
        # A pay credential sent with an empty proof comes back whole (pay without the preimage).
        full = res.headers.get(CREDENTIAL_HEADER)
        if full and full.startswith(entry.macaroon + ":"):
            entry.credential = full
        self._route_of_path[key] = entry.route_id
        self._last = entry
        return res

    def _acquire(self, challenge: Challenge, url: str) -> _Held:
        preimage = self.pay(challenge.invoice, challenge)
        if challenge.mode != "deposit":
            if preimage is not None and not _PREIMAGE.match(preimage):
                raise WallError("bad_preimage", "the wallet returned something that is not a preimage")
            return _Held(challenge.route_id, "pay", challenge.macaroon, f"{challenge.macaroon}:{preimage or ''}")
        status_url = urllib.parse.urljoin(url, challenge.status_url)
        leave_url = urllib.parse.urljoin(url, challenge.leave_url)
        deadline = time.monotonic() + self.wait_timeout_s
        while True:
            left = int(deadline - time.monotonic())
            if left <= 0:
                raise WallError("not_held", "the deposit was not held in time")
            res = self._poll(status_url, challenge.macaroon, min(30, left))
            if res.status != 200:
                raise WallError(_error_code(res), f"deposit status answered {res.status}")
            body = res.json()
            if body.get("state") == "held" and body.get("credential"):
                return _Held(challenge.route_id, "deposit", challenge.macaroon, body["credential"], status_url, leave_url)
            if body.get("state") in ENDED:
                raise WallError(body["state"], f"the deposit {body['state']}")

    def _poll(self, status_url: str, macaroon: str, wait_s: int) -> Response:
        url = f"{status_url}?wait={wait_s}" if wait_s > 0 else status_url
        return self._transport("GET", url, {"authorization": f"L402 {macaroon}:"}, None)


def _headers(msg) -> dict:
    out: dict = {}
    for name, value in msg.items():
        name = name.lower()
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _path_key(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    return f"{p.scheme}://{p.netloc}{p.path}"


def _error_code(res: Response) -> str:
    try:
        return res.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return f"http_{res.status}"


def _read_challenge(res: Response) -> Optional[Challenge]:
    header = res.headers.get("www-authenticate")
    challenge = parse_challenge(header) if header else None
    if challenge is None:
        return None
    if challenge.mode == "deposit" and not (challenge.status_url and challenge.leave_url):
        return None
    try:
        body = res.json()
    except ValueError:
        body = {}
    if isinstance(body, dict):
        challenge.route_id = body.get("route_id") if isinstance(body.get("route_id"), str) else ""
        challenge.amount_sat = body.get("amount_sat")
        challenge.payment_hash = body.get("payment_hash")
    return challenge
