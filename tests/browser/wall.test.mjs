// `make browser-test`: a visitor on a phone-sized headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) meets the deposit wall of the demo: the page names the site, the
// amount, the hold time and the way out; the visitor pays with the dev node, continues by
// itself, leaves and gets the deposit back; the "I have paid" button; the forfeit page; and the
// whole way without JavaScript. Run by `scripts/browser-test.sh` inside
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

// A phone: 390x844 CSS pixels, touch, a mobile user agent's viewport rules.
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };

async function launch(t) {
  assert.ok(SITE, 'run through scripts/demo.sh --run');
  mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  t.after(() => browser.close());
  return browser;
}

// The pages have no inline script and load nothing from elsewhere: a CSP violation or any
// script error shows up here.
function watch(page) {
  const problems = [];
  page.on('console', (m) => {
    // The 402/403 pages themselves and the first status call (no cookie yet: 401) are expected.
    if (m.type() === 'error' && !/^Failed to load resource: .* status of 40[123]/.test(m.text())) {
      problems.push(m.text());
    }
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  return problems;
}

async function shotOnFailure(page, name, body) {
  try {
    await body();
  } catch (e) {
    await page.screenshot({ path: `${SHOTS}${name}-failure.png`, fullPage: true }).catch(() => {});
    console.error(`browser-test: screenshot of the failure in ${SHOTS}${name}-failure.png`);
    throw e;
  }
}

function pay(invoice) {
  const paid = JSON.parse(execFileSync(LW, ['dev', 'pay', invoice], { encoding: 'utf8' }));
  assert.equal(paid.status, 'held');
}

test('deposit wall: explains itself, pay, continue by itself, leave, refunded', async (t) => {
  const browser = await launch(t);
  const page = await browser.newPage(PHONE);
  const problems = watch(page);
  try {
    const wall = await page.goto(`${SITE}/members/`);
    assert.equal(wall.status(), 402);
    assert.equal(await page.locator('h1').textContent(), 'Refundable deposit');
    // The site's name, the amount with a thousands separator, how long it can be held, the
    // idle refund, what counts as abuse, the leave link and a reference.
    assert.equal(await page.locator('.lw-site').first().textContent(), 'Demo Shop');
    assert.match(await page.title(), /Demo Shop/);
    assert.equal(await page.locator('.lw-amount').textContent(), '1,000 sats');
    const rules = await page.locator('.lw-rules').textContent();
    assert.match(rules, /for 1 h at most/);
    assert.match(rules, /after 10 min without a visit/);
    assert.match(rules, /Only abuse costs the deposit/);
    const leave = page.getByRole('link', { name: 'Leave and get my deposit back' });
    assert.ok(await leave.isVisible(), 'the leave link is on the wall page');
    assert.equal(await leave.getAttribute('href'), '/.well-known/lightning-wall/leave');
    assert.match(await page.locator('.lw-hint').textContent(), /Reference: [0-9a-f]{10}/);
    // Fits a phone: nothing wider than the screen.
    assert.ok(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      'no horizontal scrolling at 390 px',
    );
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
    pay(invoice);
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

async function waitForNodeState(hash, want) {
  let state;
  for (let i = 0; i < 100; i += 1) {
    state = await nodeState(hash);
    if (state === want) { return state; }
    await new Promise((r) => setTimeout(r, 100));
  }
  return state;
}

test('"I have paid" and coming back to the tab check at once, without the long-poll', async (t) => {
  const browser = await launch(t);
  for (const how of ['button', 'focus']) {
    const page = await browser.newPage(PHONE);
    const problems = watch(page);
    // A phone suspends the tab while the wallet app is in front: the long-poll never answers.
    await page.route(
      (url) => url.pathname.endsWith('/.well-known/lightning-wall/deposit') && url.searchParams.get('wait') === '25',
      () => {},
    );
    await shotOnFailure(page, `check-${how}`, async () => {
      assert.equal((await page.goto(`${SITE}/members/`)).status(), 402);
      const button = page.getByRole('button', { name: 'I have paid: continue' });
      assert.ok(await button.isVisible(), 'the check button is on the page');
      await button.click();
      await page.getByRole('status').filter({ hasText: 'No payment has arrived yet' }).waitFor();
      const invoice = await page.locator('#lw-invoice').inputValue();
      pay(invoice);
      // The node holds it; the wall learns it from the node's stream a moment later. A check
      // in between says "not yet" (the button) or looks again (focus): wait for the wall so
      // the one check this test makes is the one that must continue.
      for (let i = 0; i < 100 && (await depositOf(invoice)).state !== 'held'; i += 1) {
        await new Promise((r) => setTimeout(r, 100));
      }
      if (how === 'button') {
        await button.click();
      } else {
        // The visitor switches back from the wallet app.
        await page.evaluate(() => window.dispatchEvent(new Event('focus')));
      }
      await page.locator('h1', { hasText: 'Members area' }).waitFor({ timeout: 15000 });
      const deposit = await depositOf(invoice);
      assert.equal(deposit.state, 'held');
      assert.equal(await nodeState(deposit.payment_hash), 'ACCEPTED');
      assert.deepEqual(problems, [], 'no script errors or CSP violations');
    });
    await page.close();
  }
});

test('a forfeit reaches the browser as a page with the amount and a reference; the node settles', async (t) => {
  const browser = await launch(t);
  const page = await browser.newPage(PHONE);
  await shotOnFailure(page, 'forfeit', async () => {
    assert.equal((await page.goto(`${SITE}/members/`)).status(), 402);
    const invoice = await page.locator('#lw-invoice').inputValue();
    pay(invoice);
    await page.locator('h1', { hasText: 'Members area' }).waitFor({ timeout: 15000 });
    const deposit = await depositOf(invoice);
    // A link on the site's own page to the trap path, followed (as a scraper following every
    // link does): a same-origin navigation, so it counts.
    await page.evaluate(() => {
      const a = document.createElement('a');
      a.href = '/wp-login.php';
      a.id = 'lw-test-trap';
      a.textContent = 'log in';
      document.body.append(a);
    });
    const [answer] = await Promise.all([page.waitForNavigation(), page.click('#lw-test-trap')]);
    assert.equal(answer.status(), 403);
    assert.match(answer.headers()['content-type'], /^text\/html/);
    assert.equal(answer.headers()['x-lightning-wall-reason'], 'forfeited');
    assert.equal(await page.locator('h1').textContent(), 'Deposit forfeited');
    const text = await page.locator('main').textContent();
    assert.match(text, /Your deposit of 1,000 sats was kept by Demo Shop/);
    assert.ok(text.includes(`reference ${deposit.token_id.slice(0, 10)}`), text);
    await page.screenshot({ path: `${SHOTS}forfeited.png`, fullPage: true });
    // The money: the hold invoice is settled on the node, the deposit forfeited by the trap.
    assert.equal(await waitForNodeState(deposit.payment_hash, 'SETTLED'), 'SETTLED');
    const after = await depositOf(invoice);
    assert.equal(after.state, 'forfeited');
    assert.equal(after.trigger, 'trap_path');
  });
});

test('without JavaScript: pay, press "I have paid", continue to the page asked for', async (t) => {
  const browser = await launch(t);
  const context = await browser.newContext({ ...PHONE, javaScriptEnabled: false });
  t.after(() => context.close());
  const page = await context.newPage();
  await shotOnFailure(page, 'nojs', async () => {
    assert.equal((await page.goto(`${SITE}/members/?from=nojs`)).status(), 402);
    assert.match(await page.locator('main').textContent(), /Without JavaScript: pay the invoice/);
    const invoice = await page.locator('#lw-invoice').inputValue();
    assert.match(invoice, /^lnbcrt/);
    assert.ok(
      await page.locator('img.lw-qr').evaluate((img) => img.complete && img.naturalWidth > 0),
      'the QR code is drawn without script',
    );
    // Not paid yet: a page that says so, with the invoice and the same button.
    await page.getByRole('button', { name: 'I have paid: continue' }).click();
    assert.equal(await page.locator('h1').textContent(), 'Payment not received yet');
    assert.equal(await page.locator('#lw-invoice').inputValue(), invoice);
    const deposit = await depositOf(invoice);
    assert.equal(await nodeState(deposit.payment_hash), 'OPEN');
    await page.screenshot({ path: `${SHOTS}nojs-not-paid.png`, fullPage: true });
    pay(invoice);
    const [answer] = await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'I have paid: continue' }).click(),
    ]);
    // Back to where the visitor was going (query included), now with the deposit's cookie.
    assert.equal(new URL(answer.url()).pathname + new URL(answer.url()).search, '/members/?from=nojs');
    assert.equal(answer.status(), 200);
    await page.locator('h1', { hasText: 'Members area' }).waitFor();
    const cookies = await context.cookies();
    assert.ok(cookies.some((c) => c.name === 'lightning-wall' && c.httpOnly), 'the deposit cookie is set');
    assert.equal((await depositOf(invoice)).state, 'held');
    assert.equal(await nodeState(deposit.payment_hash), 'ACCEPTED');
    await page.screenshot({ path: `${SHOTS}nojs-continued.png`, fullPage: true });
  });
});
