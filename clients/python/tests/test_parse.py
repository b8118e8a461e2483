"""The challenge parser on the headers the filter sends (filter/src/engine/challenge.rs)."""

import unittest

from lightning_wall_client import parse_challenge

MAC = "AgELbGlnaHRuaW5nLXdhbGwCQgAA+/8="
INV = "lnbcrt10u1pexample"
DEPOSIT = (
    f'L402 macaroon="{MAC}", invoice="{INV}", mode="deposit", '
    'status_url="/.well-known/lightning-wall/deposit", leave_url="/.well-known/lightning-wall/leave", '
    'terms_url="/.well-known/lightning-wall/terms"'
)


class ParseChallenge(unittest.TestCase):
    def test_a_deposit_challenge_names_the_mode_and_the_wall_urls(self):
        c = parse_challenge(DEPOSIT)
        self.assertEqual((c.macaroon, c.invoice, c.mode), (MAC, INV, "deposit"))
        self.assertEqual(c.status_url, "/.well-known/lightning-wall/deposit")
        self.assertEqual(c.leave_url, "/.well-known/lightning-wall/leave")
        self.assertEqual(c.terms_url, "/.well-known/lightning-wall/terms")

    def test_a_classic_challenge_is_a_pay_challenge(self):
        c = parse_challenge(f'L402 macaroon="{MAC}", invoice="{INV}"')
        self.assertEqual((c.mode, c.macaroon, c.status_url), ("pay", MAC, None))

    def test_folded_lsat_and_l402_values_read_the_l402_one(self):
        lsat = DEPOSIT.replace("L402", "LSAT").replace(MAC, "AgEOlsat")
        c = parse_challenge(f"{lsat}, {DEPOSIT}")
        self.assertEqual((c.macaroon, c.mode), (MAC, "deposit"))

    def test_anything_else_is_not_a_challenge(self):
        self.assertIsNone(parse_challenge('Basic realm="x"'))
        self.assertIsNone(parse_challenge(f'L402 macaroon="{MAC}"'))


if __name__ == "__main__":
    unittest.main()
