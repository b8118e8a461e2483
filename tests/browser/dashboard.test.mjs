// `make browser-test`: the operator dashboard (admin listener) in a phone-sized headless
// Chromium with JavaScript off (the dashboard has none): signing in with the admin token (a
// form; the session cookie is HttpOnly), the held deposit of a visitor, and finding it by the
// reference the visitor reads on the wall page. Run by `scripts/browser-test.sh` inside
// `scripts/demo.sh --run` (LW_DEMO_URL, LW_DEMO_BIN, LW_ADMIN_TOKEN).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const SITE = process.env.LW_DEMO_URL;
const LW = `${process.env.LW_DEMO_BIN}/lightning-wall`;
const ADMIN = 'http://127.0.0.1:8083';
const TOKEN = process.env.LW_ADMIN_TOKEN;
const SHOTS = new URL('../../target/browser/', import.meta.url).pathname;
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };

async function adminApi(method, path) {
  const r = await fetch(`${ADMIN}${path}`, { method, headers: { Authorization: `Bearer ${TOKEN}` } });
  return { status: r.status, body: await r.json() };
}

test('dashboard: sign in, see the held deposit, find it by the wall page reference', async (t) => {
  assert.ok(SITE && TOKEN, 'run through scripts/demo.sh --run');
  mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  t.after(() => browser.close());

  // A visitor meets the wall, notes the reference, pays.
  const visitor = await browser.newPage(PHONE);
  assert.equal((await visitor.goto(`${SITE}/members/`)).status(), 402);
  const hint = await visitor.locator('.lw-hint').textContent();
  const reference = hint.match(/Reference: ([0-9a-f]{10})/)[1];
  const invoice = await visitor.locator('#lw-invoice').inputValue();
  const paid = JSON.parse(execFileSync(LW, ['dev', 'pay', invoice], { encoding: 'utf8' }));
  assert.equal(paid.status, 'held');

  // The operator, on a phone, with JavaScript off.
  const context = await browser.newContext({ ...PHONE, javaScriptEnabled: false });
  const page = await context.newPage();
  const violations = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 401/.test(m.text())) { violations.push(m.text()); }
  });
  try {
    const first = await page.goto(`${ADMIN}/admin/dashboard`);
    assert.equal(first.status(), 401, 'no session: the sign-in page');
    await page.getByLabel(/Admin token/).fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not the admin token' }).waitFor();
    await page.getByLabel(/Admin token/).fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Held now' }).waitFor();
    assert.ok(!page.url().includes(TOKEN), 'the token is never in a URL');
    // Path=/admin: ask for the cookies of a page under it.
    const cookies = await context.cookies(`${ADMIN}/admin/dashboard`);
    const session = cookies.find((c) => c.name === 'lw_admin_session');
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.ok(!session.value.includes(TOKEN), 'the cookie is not the token');
    const held = Number(await page.locator('[data-k="held"]').textContent());
    assert.ok(held >= 1, `at least the visitor's deposit is held (${held})`);
    assert.ok(await page.locator('#slots').isVisible(), 'the HTLC-slot budget is shown');
    assert.ok(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      'no horizontal scrolling at 390 px',
    );
    await page.screenshot({ path: `${SHOTS}dashboard.png`, fullPage: true });

    // The visitor writes in with the reference from the wall page.
    await page.getByLabel(/Reference from the wall page/).fill(reference);
    await page.getByRole('button', { name: 'Find' }).click();
    const result = page.locator('table#lookup-result');
    await result.waitFor();
    const text = await result.textContent();
    assert.match(text, /State\s*held/);
    assert.match(text, new RegExp(`Reference\\s*${reference}`));
    await page.screenshot({ path: `${SHOTS}dashboard-lookup.png`, fullPage: true });

    // An unknown reference is a clear answer.
    await page.getByLabel(/Reference from the wall page/).fill('0000000000');
    await page.getByRole('button', { name: 'Find' }).click();
    await page.getByRole('alert').filter({ hasText: 'No deposit has the reference 0000000000' }).waitFor();
    assert.deepEqual(violations, [], 'no CSP violations or errors');

    // Tidy up: the visitor's deposit back (through the API, with the token).
    const hash = text.match(/Payment hash\s*([0-9a-f]{64})/)[1];
    const refund = await adminApi('POST', `/admin/v1/deposits/${hash}/refund`);
    assert.equal(refund.status, 200);
  } catch (e) {
    await page.screenshot({ path: `${SHOTS}dashboard-failure.png`, fullPage: true }).catch(() => {});
    console.error(`browser-test: screenshot of the failure in ${SHOTS}dashboard-failure.png`);
    throw e;
  }
});
