"""End to end against the demo stack (`make clients-test` starts it through scripts/demo.sh:
the filter's .wasm in the proxy in front of the demo site, the sidecar with the dev node). The
wallet hook pays with the dev node; the money is read from the node itself."""

import json
import os
import time
import unittest
import urllib.request

from lightning_wall_client import LightningWall

SITE = os.environ.get("LW_DEMO_URL")
INTERNAL = os.environ.get("LW_DEMO_INTERNAL", "http://127.0.0.1:8081")

try:
    from lightning_wall_client.requests_adapter import RequestsWall
except ImportError:  # requests is optional; make clients-test installs it and requires it
    if os.environ.get("LW_CLIENTS_REQUIRE_REQUESTS"):
        raise
    RequestsWall = None


def _json(url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


class DevWallet:
    """Pays with the dev node; keeps the preimage to itself when told to."""

    def __init__(self, show_preimage=True):
        self.show_preimage = show_preimage
        self.paid = []

    def pay(self, invoice, challenge):
        answer = _json(f"{INTERNAL}/v1/dev/pay", {"invoice": invoice})
        self.paid.append((challenge, answer["status"]))
        return answer.get("preimage") if self.show_preimage else None


def node_state(payment_hash):
    return _json(f"{INTERNAL}/v1/dev/invoices/{payment_hash}")["state"]


@unittest.skipUnless(SITE, "needs the demo stack: make clients-test")
class AgainstTheDemo(unittest.TestCase):
    wall_class = LightningWall

    def wall(self, wallet):
        return self.wall_class(pay=wallet.pay)

    def wait_node_state(self, payment_hash, want):
        seen = None
        for _ in range(100):
            seen = node_state(payment_hash)
            if seen == want:
                return
            time.sleep(0.1)
        self.fail(f"the hold invoice is {seen} on the node, not {want}")

    def test_deposit_held_used_left_refunded(self):
        wallet = DevWallet()
        wall = self.wall(wallet)
        res = wall.get(f"{SITE}/members/")
        self.assertEqual(res.status, 200)
        self.assertIn("Members area", res.text())
        [(challenge, paid)] = wallet.paid
        self.assertEqual((challenge.mode, paid), ("deposit", "held"))
        self.assertEqual(node_state(challenge.payment_hash), "ACCEPTED")
        self.assertEqual(wall.get(f"{SITE}/members/").status, 200)
        self.assertEqual(len(wallet.paid), 1, "used again without paying again")
        [answer] = wall.leave()
        self.assertEqual(answer["state"], "leaving")
        self.wait_node_state(challenge.payment_hash, "CANCELED")

    def test_deposit_trap_path_forfeits(self):
        wallet = DevWallet()
        wall = self.wall(wallet)
        self.assertEqual(wall.get(f"{SITE}/members/").status, 200)
        [(challenge, _)] = wallet.paid
        trap = wall.get(f"{SITE}/wp-login.php")
        self.assertEqual(trap.status, 403)
        self.assertEqual(trap.headers.get("x-lightning-wall-reason"), "forfeited")
        self.assertEqual(len(wallet.paid), 1)
        self.wait_node_state(challenge.payment_hash, "SETTLED")

    def test_pay_route_with_and_without_the_preimage(self):
        for show in (True, False):
            wallet = DevWallet(show_preimage=show)
            wall = self.wall(wallet)
            res = wall.get(f"{SITE}/api/quote")
            self.assertEqual(res.status, 200, f"show_preimage={show}")
            self.assertIs(res.json()["paid"], True)
            [(challenge, _)] = wallet.paid
            self.assertEqual(challenge.mode, "pay")
            self.assertEqual(node_state(challenge.payment_hash), "SETTLED")
            self.assertEqual(wall.get(f"{SITE}/api/quote").status, 200)
            self.assertEqual(len(wallet.paid), 1, "the credential is reused")


@unittest.skipUnless(SITE and RequestsWall, "needs the demo stack and requests: make clients-test")
class AgainstTheDemoWithRequests(AgainstTheDemo):
    wall_class = RequestsWall


if __name__ == "__main__":
    unittest.main()
