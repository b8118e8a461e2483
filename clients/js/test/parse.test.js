// The challenge parser on the headers the filter sends (filter/src/engine/challenge.rs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChallenge } from '../index.js';

const MAC = 'AgELbGlnaHRuaW5nLXdhbGwCQgAA+/8=';
const INV = 'lnbcrt10u1pexample';
const DEPOSIT =
  `L402 macaroon="${MAC}", invoice="${INV}", mode="deposit", ` +
  'status_url="/.well-known/lightning-wall/deposit", leave_url="/.well-known/lightning-wall/leave", ' +
  'terms_url="/.well-known/lightning-wall/terms"';

test('a deposit challenge names the mode and the wall URLs', () => {
  assert.deepEqual(parseChallenge(DEPOSIT), {
    macaroon: MAC,
    invoice: INV,
    mode: 'deposit',
    statusUrl: '/.well-known/lightning-wall/deposit',
    leaveUrl: '/.well-known/lightning-wall/leave',
    termsUrl: '/.well-known/lightning-wall/terms',
  });
});

test('a classic challenge is a pay challenge', () => {
  const c = parseChallenge(`L402 macaroon="${MAC}", invoice="${INV}"`);
  assert.equal(c.mode, 'pay');
  assert.equal(c.macaroon, MAC);
  assert.equal(c.statusUrl, null);
});

test('fetch folds LSAT and L402 into one value: the L402 one is read', () => {
  const lsat = DEPOSIT.replace('L402', 'LSAT').replace(MAC, 'AgEOlsat');
  const c = parseChallenge(`${lsat}, ${DEPOSIT}`);
  assert.equal(c.macaroon, MAC);
  assert.equal(c.mode, 'deposit');
});

test('anything else is not a challenge', () => {
  assert.equal(parseChallenge('Basic realm="x"'), null);
  assert.equal(parseChallenge(`L402 macaroon="${MAC}"`), null);
});
