// FakeNwc checked by an independent NIP-47 client: @getalby/sdk's NWCClient (8.1.1, pinned in
// package-lock.json) talks to FakeNwc over FakeNwc's own relay. It reads the info event to
// choose NIP-44, creates hold invoices, receives hold_invoice_accepted, settles and cancels,
// and reads NIP-47 error codes — the same calls the sidecar's `nwc` backend makes.
// Run by scripts/nwc-client-test.sh (FAKE_NWC_BIN = the built fake-nwc binary).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { createHash, randomBytes } from "node:crypto";
import { WebSocket } from "ws";

// Node 20 (Debian's) has no global WebSocket; nostr-tools, under the SDK, uses the global one.
globalThis.WebSocket ??= WebSocket;
const { NWCClient } = await import("@getalby/sdk");

const fake = spawn(process.env.FAKE_NWC_BIN, [], { stdio: ["pipe", "pipe", "inherit"] });
const lines = createInterface({ input: fake.stdout })[Symbol.asyncIterator]();
const next = async () => (await lines.next()).value;
const command = async (line) => {
  fake.stdin.write(`${line}\n`);
  return next();
};
const started = JSON.parse(await next());
const client = new NWCClient({ nostrWalletConnectUrl: started.connection });
after(() => {
  client.close();
  fake.stdin.end();
});

const fresh = () => {
  const preimage = randomBytes(32);
  return { preimage: preimage.toString("hex"), hash: createHash("sha256").update(preimage).digest("hex") };
};

const accepted = [];
const waiters = [];
await client.subscribeNotifications((n) => {
  accepted.push(n);
  waiters.splice(0).forEach((w) => w());
}, ["hold_invoice_accepted"]);
const notificationFor = async (hash) => {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = accepted.find((n) => n.notification.payment_hash === hash);
    if (found) return found;
    assert.ok(Date.now() < deadline, "no hold_invoice_accepted within 10 s");
    await new Promise((resolve) => {
      waiters.push(resolve);
      setTimeout(resolve, 200);
    });
  }
};

test("the info event and get_info offer the hold invoice methods over NIP-44", async () => {
  const info = await client.getInfo();
  for (const method of ["make_hold_invoice", "settle_hold_invoice", "cancel_hold_invoice", "lookup_invoice", "get_info"]) {
    assert.ok(info.methods.includes(method), `${method} in ${info.methods}`);
  }
  assert.equal(info.network, "regtest");
  assert.equal(client.encryptionType, "nip44_v2");
});

test("a hold invoice is held, notified with its settle deadline, and settled with the preimage", async () => {
  const { preimage, hash } = fresh();
  const made = await client.makeHoldInvoice({ amount: 21_000, description: "sdk", payment_hash: hash, expiry: 600 });
  assert.equal(made.payment_hash, hash);
  assert.equal(made.amount, 21_000);
  assert.match(made.invoice, /^lnbcrt210n1/);
  assert.equal(await command(`pay ${made.invoice}`), "ok");
  const n = await notificationFor(hash);
  assert.equal(n.notification_type, "hold_invoice_accepted");
  assert.equal(n.notification.amount, 21_000);
  assert.equal(typeof n.notification.settle_deadline, "number");
  assert.equal((await client.lookupInvoice({ payment_hash: hash })).state, "accepted");
  assert.deepEqual(await client.settleHoldInvoice({ preimage }), {});
  assert.equal(await command(`state ${hash}`), "settled");
  const settled = await client.lookupInvoice({ payment_hash: hash });
  assert.equal(settled.state, "settled");
  assert.equal(settled.preimage, preimage);
});

test("a held hold invoice is cancelled by its hash, and a settle after it is refused", async () => {
  const { preimage, hash } = fresh();
  const made = await client.makeHoldInvoice({ amount: 5_000, payment_hash: hash, expiry: 600 });
  assert.equal(await command(`pay ${made.invoice}`), "ok");
  await notificationFor(hash);
  assert.deepEqual(await client.cancelHoldInvoice({ payment_hash: hash }), {});
  assert.equal(await command(`state ${hash}`), "canceled");
  await assert.rejects(client.settleHoldInvoice({ preimage }), (e) => e.code === "INTERNAL");
  assert.equal(await command(`state ${hash}`), "canceled");
});

test("errors carry NIP-47 codes", async () => {
  await assert.rejects(client.lookupInvoice({ payment_hash: fresh().hash }), (e) => e.code === "NOT_FOUND");
  const { hash } = fresh();
  await client.makeHoldInvoice({ amount: 1_000, payment_hash: hash });
  await assert.rejects(client.makeHoldInvoice({ amount: 1_000, payment_hash: hash }), (e) => e.code === "INTERNAL");
});
