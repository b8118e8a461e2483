// `make browser-test`: a visitor in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) meets the deposit wall of the demo, pays with the dev node, continues by
// itself, leaves and gets the deposit back. Run by `scripts/browser-test.sh` inside
// `scripts/demo.sh --run`, which starts the stack and exports LW_DEMO_URL, LW_DEMO_BIN and
// LW_ADMIN_TOKEN. On failure a screenshot goes to target/browser/failure.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const SITE = process.env.LW_DEMO_URL;
const LW = `${process.env.LW_DEMO_BIN}/lightning-wall`;
const ADMIN = 'http://127.0.0.1:8083';
const INTERNAL = 'http://127.0.0.1:8081';
const SHOTS = new URL('../../target/browser/', import.meta.url).pathname;

async function depositOf(invoice) {
  const r = await fetch(`${ADMIN}/admin/v1/deposits?limit=1000`, {
    headers: { Authorization: `Bearer ${process.env.LW_ADMIN_TOKEN}` },
  });
  assert.equal(r.status, 200);
  const { deposits } = await r.json();
  const d = deposits.find((x) => x.invoice === invoice);
  assert.ok(d, 'the sidecar knows the deposit of the invoice on the page');
  return d;
}

async function nodeState(hash) {
  const r = await fetch(`${INTERNAL}/v1/dev/invoices/${hash}`);
  assert.equal(r.status, 200);
  return (await r.json()).state;
}

test('deposit wall: pay, continue by itself, leave, refunded', async (t) => {
  assert.ok(SITE, 'run through scripts/demo.sh --run');
  mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  // The pages have no inline script and load nothing from elsewhere: a CSP violation or any
  // script error shows up here.
  const problems = [];
  page.on('console', (m) => {
    // The 402 page itself and the first status call (no cookie yet: 401) are expected.
    if (m.type() === 'error' && !/^Failed to load resource: .* status of 40[12]/.test(m.text())) {
      problems.push(m.text());
    }
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  try {
    const wall = await page.goto(`${SITE}/members/`);
    assert.equal(wall.status(), 402);
    assert.equal(await page.locator('h1').textContent(), 'Refundable deposit');
    assert.equal(await page.locator('.lw-amount').textContent(), '1000 sats');
    const qr = page.locator('img.lw-qr');
    await qr.waitFor();
    assert.ok(
      await qr.evaluate((img) => img.complete && img.naturalWidth > 0),
      'the QR code (served by the sidecar) is drawn',
    );
    const invoice = await page.locator('#lw-invoice').inputValue();
    assert.match(invoice, /^lnbcrt/);
    assert.equal(await page.locator('a[href^="lightning:"]').getAttribute('href'), `lightning:${invoice}`);
    assert.ok(await page.locator('#lw-copy').isVisible(), 'copy button shown with script');
    assert.ok(!(await page.locator('#lw-webln').isVisible()), 'no WebLN button without window.webln');
    await page.getByRole('status').filter({ hasText: 'Waiting for your payment' }).waitFor();
    await page.screenshot({ path: `${SHOTS}wall.png`, fullPage: true });

    // The visitor's wallet pays; the page must notice (long-poll) and continue on its own.
    const paid = JSON.parse(execFileSync(LW, ['dev', 'pay', invoice], { encoding: 'utf8' }));
    assert.equal(paid.status, 'held');
    await page.locator('h1', { hasText: 'Members area' }).waitFor({ timeout: 15000 });
    const deposit = await depositOf(invoice);
    assert.equal(deposit.state, 'held');
    assert.equal(await nodeState(deposit.payment_hash), 'ACCEPTED');

    // Leave: the hold invoice is cancelled, the page says so.
    await page.getByRole('link', { name: 'Leave and get my deposit back' }).click();
    await page.getByRole('status').filter({ hasText: 'Your deposit of 1000 sats is held' }).waitFor();
    await page.getByRole('button', { name: 'Leave and refund my deposit' }).click();
    await page.getByRole('status').filter({ hasText: 'Deposit refunded' }).waitFor();
    await page.screenshot({ path: `${SHOTS}refunded.png`, fullPage: true });
    assert.equal(await nodeState(deposit.payment_hash), 'CANCELED');
    const after = await depositOf(invoice);
    assert.equal(after.state, 'refunded');
    assert.equal(after.trigger, 'visitor_left');

    // Back to the members area: a new wall, not the old session.
    const again = await page.goto(`${SITE}/members/`);
    assert.equal(again.status(), 402);
    assert.deepEqual(problems, [], 'no script errors or CSP violations');
  } catch (e) {
    await page.screenshot({ path: `${SHOTS}failure.png`, fullPage: true }).catch(() => {});
    console.error(`browser-test: screenshot of the failure in ${SHOTS}failure.png`);
    throw e;
  }
});
