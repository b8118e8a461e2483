// End to end against the demo stack (`make clients-test` starts it through scripts/demo.sh:
// the filter's .wasm in the proxy in front of the demo site, the sidecar with the dev node).
// The wallet hook pays with the dev node; the money is read from the node itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LightningWall } from '../index.js';

const SITE = process.env.LW_DEMO_URL;
const INTERNAL = process.env.LW_DEMO_INTERNAL ?? 'http://127.0.0.1:8081';
const skip = !SITE && 'needs the demo stack: make clients-test';

/** A wallet backed by the dev node; keeps the preimage to itself when told to. */
function devWallet({ showPreimage = true } = {}) {
  const paid = [];
  const pay = async (invoice, challenge) => {
    const res = await fetch(`${INTERNAL}/v1/dev/pay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ invoice }),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    paid.push({ ...challenge, status: body.status });
    return showPreimage ? (body.preimage ?? null) : null;
  };
  return { pay, paid };
}

async function nodeState(hash) {
  const res = await fetch(`${INTERNAL}/v1/dev/invoices/${hash}`);
  return (await res.json()).state;
}

async function waitNodeState(hash, want) {
  let seen;
  for (let i = 0; i < 100; i++) {
    seen = await nodeState(hash);
    if (seen === want) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`the hold invoice is ${seen} on the node, not ${want}`);
}

test('deposit: held, used, left, refunded (CANCELED on the node)', { skip }, async () => {
  const wallet = devWallet();
  const wall = new LightningWall({ pay: wallet.pay });
  const res = await wall.fetch(`${SITE}/members/`);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /Members area/);
  assert.equal(wallet.paid.length, 1);
  const [deposit] = wallet.paid;
  assert.equal(deposit.mode, 'deposit');
  assert.equal(deposit.status, 'held');
  assert.equal(await nodeState(deposit.paymentHash), 'ACCEPTED');
  // Used again without paying again.
  assert.equal((await wall.fetch(`${SITE}/members/`)).status, 200);
  assert.equal(wallet.paid.length, 1);
  const [answer] = await wall.leave();
  assert.equal(answer.state, 'leaving');
  await waitNodeState(deposit.paymentHash, 'CANCELED');
});

test('deposit: a trap path forfeits it (SETTLED on the node)', { skip }, async () => {
  const wallet = devWallet();
  const wall = new LightningWall({ pay: wallet.pay });
  assert.equal((await wall.fetch(`${SITE}/members/`)).status, 200);
  const [deposit] = wallet.paid;
  const trap = await wall.fetch(`${SITE}/wp-login.php`);
  assert.equal(trap.status, 403);
  assert.equal(trap.headers.get('x-lightning-wall-reason'), 'forfeited');
  assert.equal(wallet.paid.length, 1, 'the helper does not pay again on a forfeit answer');
  await waitNodeState(deposit.paymentHash, 'SETTLED');
});

test('pay route: with the preimage, and with a wallet that never shows it', { skip }, async () => {
  for (const showPreimage of [true, false]) {
    const wallet = devWallet({ showPreimage });
    const wall = new LightningWall({ pay: wallet.pay });
    const res = await wall.fetch(`${SITE}/api/quote`);
    assert.equal(res.status, 200, `showPreimage ${showPreimage}`);
    assert.equal((await res.json()).paid, true);
    assert.equal(wallet.paid[0].mode, 'pay');
    assert.equal(await nodeState(wallet.paid[0].paymentHash), 'SETTLED');
    // The next call reuses the credential (the full one handed back for the empty proof).
    assert.equal((await wall.fetch(`${SITE}/api/quote`)).status, 200);
    assert.equal(wallet.paid.length, 1);
  }
});
