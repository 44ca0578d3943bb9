// The shopper's side of Surge in Chromium, through the edge (global-setup.mjs starts the stack):
// the journey from home to a confirmed order, live stock seen by a second browser, two browsers
// racing for the last unit, a declined card, a slow gateway, a catalog change reaching the
// generated pages through rebuild.mjs, a sale with a waiting room (countdown, join, lottery,
// pass, sold out), and axe (WCAG 2 A and AA) on every page type and sale state. The pages
// are found through the contract's data-testid hooks only.
import { test, expect } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { mkdirSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { repo, saleBody } from './harness.mjs';

const base = () => process.env.STOREFRONT_BASE;
const artefacts = () => process.env.STOREFRONT_ARTEFACTS;
const byId = (page, id) => page.getByTestId(id);

test.use({ baseURL: process.env.STOREFRONT_BASE });

/// An admin API call on member n1.
async function admin(method, path, body) {
  const r = await fetch(`http://127.0.0.1:${process.env.STOREFRONT_ADMIN_PORT}${path}`, {
    method, headers: { Authorization: `Bearer ${process.env.STOREFRONT_ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(5000),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

/// A storefront API call through the edge, as the page's shopper (its token) when given.
async function api(path, token) {
  const r = await fetch(`${base()}${path}`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(5000),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

async function charges() {
  const r = await fetch(`http://127.0.0.1:${process.env.STOREFRONT_PAYSIM_PORT}/_charges`, { signal: AbortSignal.timeout(5000) });
  return r.json();
}

/// The rows of `sql` on the test database (psql -At), one string per row.
async function rows(sql) {
  const { execFileSync } = await import('node:child_process');
  return execFileSync('psql', [process.env.STOREFRONT_DB_URL, '-v', 'ON_ERROR_STOP=1', '-Atqc', sql], { encoding: 'utf8' })
    .split('\n').filter(Boolean);
}

/// The page's browser state: cart id, token, customer id.
function shopperState(page) {
  return page.evaluate(() => ({
    cartId: localStorage.getItem('surge.cart_id'),
    token: localStorage.getItem('surge.token'),
    customerId: localStorage.getItem('surge.customer_id'),
  }));
}

/// axe with the WCAG 2 A and AA rules on what the page shows now; serious and critical
/// violations fail the test (all of them are attached to the report).
async function checkA11y(page, name, testInfo) {
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa']).analyze();
  await testInfo.attach(`axe-${name}.json`, { body: JSON.stringify(result.violations, null, 2), contentType: 'application/json' });
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${name}: ${v.id} (${v.impact}) ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    `axe on ${name}`).toEqual([]);
}

/// A screenshot for the README: always into the artefacts, with SURGE_SCREENSHOTS=1 also into
/// storefront/screenshots/.
async function readmeShot(page, name) {
  const dir = join(artefacts(), 'screenshots');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`) });
  if (process.env.SURGE_SCREENSHOTS === '1') {
    mkdirSync(join(repo, 'storefront/screenshots'), { recursive: true });
    copyFileSync(join(dir, `${name}.png`), join(repo, 'storefront/screenshots', `${name}.png`));
  }
}

/// Waits until the page's Vue app is mounted (hydrated): before that, clicks and inputs of a
/// generated page reach no handler.
async function hydrated(page) {
  await page.waitForFunction(() => document.querySelector('#__nuxt')?.__vue_app__ !== undefined);
}

/// Opens `path` and waits for hydration.
async function visit(page, path) {
  await page.goto(path);
  await hydrated(page);
}

/// Clicks the link or button `testId` and waits for the page at `url` (a pattern) to hydrate.
async function follow(page, testId, url) {
  await byId(page, testId).click();
  await expect(page).toHaveURL(url);
  await hydrated(page);
}

/// Signs `customer` in through the sign-in page.
async function signIn(page, customer) {
  await visit(page, '/signin/?next=/');
  await byId(page, 'signin-customer').fill(customer);
  await byId(page, 'signin-submit').click();
  await expect(byId(page, 'signed-in-as')).toContainText(customer);
}

/// On a product page: the live stock is shown from the stream with `available` units.
async function expectLiveStock(page, available) {
  const stock = byId(page, 'stock');
  await expect(stock).toHaveAttribute('data-live', 'sse');
  await expect(stock).toHaveAttribute('data-available', String(available));
}

/// Clicks add-to-cart on the product page of `sku`; resolves with the cart request's status.
async function addToCart(page, sku) {
  const put = page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().includes(`/items/${sku}`));
  await byId(page, 'add-to-cart').click();
  return (await put).status();
}

/// From any page: cart -> checkout -> `token` -> place the order (clicked twice when `double`).
async function placeOrder(page, token, { double = false } = {}) {
  await follow(page, 'nav-cart', /\/cart\//);
  await expect(byId(page, 'cart-line').first()).toBeVisible();
  await follow(page, 'checkout-link', /\/checkout\//);
  await byId(page, 'card-token').fill(token);
  if (double) {
    await byId(page, 'place-order').dblclick();
  } else {
    await byId(page, 'place-order').click();
  }
}

const shared = {}; // what later tests reuse: an order id and its shopper's token

test('journey: home, search, product with live stock, sign in, cart, checkout, confirmation', async ({ page }, testInfo) => {
  await visit(page, '/');
  await expect(byId(page, 'featured')).toBeVisible();
  await expect(byId(page, 'hot')).toBeVisible();
  await expect(byId(page, 'product-card').first()).toBeVisible();
  await checkA11y(page, 'home', testInfo);

  await byId(page, 'nav-search').fill('Nebula');
  await byId(page, 'nav-search').press('Enter');
  await expect(page).toHaveURL(/\/search\/\?q=Nebula/);
  const card = byId(page, 'product-card').filter({ hasText: 'Nebula Console' });
  await expect(card).toBeVisible();
  await checkA11y(page, 'search', testInfo);
  await card.click();
  await hydrated(page);

  await expect(page).toHaveURL(/\/p\/CON-NEB\/?$/);
  await expect(byId(page, 'product-name')).toHaveText('Nebula Console');
  await expect(byId(page, 'product-price')).toContainText('399');
  await expect(byId(page, 'product-description')).toContainText('Nebula Console');
  await expectLiveStock(page, 50);
  await expect(byId(page, 'stock')).toContainText('50');
  await checkA11y(page, 'product', testInfo);

  await follow(page, 'nav-signin', /\/signin\//);
  await checkA11y(page, 'signin', testInfo);
  await byId(page, 'signin-customer').fill('alice');
  await byId(page, 'signin-submit').click();
  await expect(byId(page, 'signed-in-as')).toContainText('alice');
  if (!/\/p\/CON-NEB\/?$/.test(new URL(page.url()).pathname)) {
    await visit(page, '/p/CON-NEB/');
  }
  await expectLiveStock(page, 50);
  await readmeShot(page, 'product');

  expect(await addToCart(page, 'CON-NEB')).toBe(200);
  await expect(byId(page, 'cart-count')).toHaveText('1');
  await expectLiveStock(page, 49);

  await follow(page, 'nav-cart', /\/cart\//);
  await expect(byId(page, 'cart-line')).toHaveCount(1);
  await expect(byId(page, 'cart-line')).toHaveAttribute('data-sku', 'CON-NEB');
  await expect(byId(page, 'cart-total')).toContainText('399');
  await readmeShot(page, 'cart');
  await checkA11y(page, 'cart', testInfo);

  await follow(page, 'checkout-link', /\/checkout\//);
  await checkA11y(page, 'checkout', testInfo);
  await byId(page, 'card-token').fill('tok_ok');
  await follow(page, 'place-order', /\/order\/\?id=/);
  const orderId = (await byId(page, 'order-id').textContent()).trim();
  expect(orderId).not.toBe('');
  expect(new URL(page.url()).searchParams.get('id')).toBe(orderId);
  await expect(byId(page, 'order-status')).toBeVisible();
  await checkA11y(page, 'order', testInfo);

  const { token, customerId } = await shopperState(page);
  expect(customerId).toBe('alice');
  const order = await api(`/api/v1/orders/${encodeURIComponent(orderId)}`, token);
  expect(order.status).toBe(200);
  expect(['paid', 'confirmed']).toContain(order.body.status);
  expect(order.body.lines).toEqual([expect.objectContaining({ sku: 'CON-NEB', qty: 1, price_cents: 39900 })]);
  await expect(byId(page, 'order-status')).toContainText(new RegExp(order.body.status, 'i'));
  Object.assign(shared, { orderId, token });
});

test('a second browser sees the stock drop within 2 s of an add to cart', async ({ browser }) => {
  const buyer = await browser.newContext();
  const watcher = await browser.newContext();
  try {
    const a = await buyer.newPage();
    const b = await watcher.newPage();
    await signIn(a, 'bob');
    await visit(a, '/p/AUD-PULSE/');
    await visit(b, '/p/AUD-PULSE/');
    await expectLiveStock(a, 30);
    await expectLiveStock(b, 30);
    expect(await addToCart(a, 'AUD-PULSE')).toBe(200);
    // The promise of the issue: visible on the other page within 2 s (the stream's watcher reads
    // the SKU every 250 ms).
    await expect(byId(b, 'stock')).toHaveAttribute('data-available', '29', { timeout: 2000 });
    await expect(byId(b, 'stock')).toContainText('29');
  } finally {
    await buyer.close();
    await watcher.close();
  }
});

test('two browsers race for the last unit: one order, the other sees sold out', async ({ browser }) => {
  const contexts = [await browser.newContext(), await browser.newContext()];
  try {
    const pages = await Promise.all(contexts.map((c) => c.newPage()));
    await signIn(pages[0], 'carol');
    await signIn(pages[1], 'dan');
    for (const p of pages) {
      await visit(p, '/p/GAM-LAST/');
      await expectLiveStock(p, 1);
      await expect(byId(p, 'add-to-cart')).toBeEnabled();
    }
    // Both click at once. The loser either gets 409 sold_out, or (when the winner's hold reached
    // it over the live stock stream first) finds its button disabled and sends nothing.
    const puts = pages.map((p) =>
      p
        .waitForResponse((r) => r.request().method() === 'PUT' && r.url().includes('/items/GAM-LAST'), { timeout: 10000 })
        .then((r) => r.status())
        .catch(() => null),
    );
    await Promise.all(pages.map((p) => byId(p, 'add-to-cart').click({ timeout: 3000 }).catch(() => {})));
    const statuses = await Promise.all(puts);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect([409, null]).toContain(statuses.find((s) => s !== 200));
    const winner = pages[statuses.indexOf(200)];
    const loser = pages[1 - statuses.indexOf(200)];

    await expect(byId(loser, 'sold-out')).toBeVisible();
    await expect(byId(loser, 'add-to-cart')).toBeDisabled();
    await expect(byId(loser, 'stock')).toHaveAttribute('data-available', '0');

    await placeOrder(winner, 'tok_ok');
    await expect(winner).toHaveURL(/\/order\/\?id=/);
    await expect(byId(winner, 'order-id')).not.toBeEmpty();

    expect(await rows("SELECT count(DISTINCT order_id) FROM order_lines WHERE sku = 'GAM-LAST'")).toEqual(['1']);
    const stock = await admin('GET', '/admin/v1/products/GAM-LAST/stock');
    expect(stock.body).toEqual(expect.objectContaining({ sold: 1, held: 0, available: 0 }));
    await loser.reload();
    await expect(byId(loser, 'sold-out')).toBeVisible();
  } finally {
    await Promise.all(contexts.map((c) => c.close()));
  }
});

test('a declined card keeps the cart and says so', async ({ page }) => {
  await signIn(page, 'erin');
  await visit(page, '/p/CON-DECL/');
  await expectLiveStock(page, 20);
  expect(await addToCart(page, 'CON-DECL')).toBe(200);
  await placeOrder(page, 'tok_decline');
  await expect(byId(page, 'checkout-error')).toBeVisible();
  await expect(byId(page, 'checkout-error')).toContainText(/declin/i);
  await expect(page).toHaveURL(/\/checkout\//);

  const { cartId, token } = await shopperState(page);
  const cart = await api(`/api/v1/carts/${encodeURIComponent(cartId)}`, token);
  expect(cart.status).toBe(200);
  expect(cart.body.items).toEqual([expect.objectContaining({ sku: 'CON-DECL', qty: 1 })]);
  expect(await rows(`SELECT count(*) FROM orders WHERE cart_id = '${cartId}' AND status IN ('paid', 'confirmed')`)).toEqual(['0']);

  await byId(page, 'nav-cart').click();
  await expect(byId(page, 'cart-line')).toHaveAttribute('data-sku', 'CON-DECL');
});

test('a slow gateway shows progress and ends with one order and one charge', async ({ page }) => {
  await signIn(page, 'frank');
  await visit(page, '/p/CON-SLOW/');
  await expectLiveStock(page, 20);
  expect(await addToCart(page, 'CON-SLOW')).toBe(200);
  const { cartId } = await shopperState(page); // the page forgets it once ordered
  expect(cartId).toBeTruthy();
  const keys = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && /\/api\/v1\/carts\/[^/]+\/checkout$/.test(new URL(r.url()).pathname)) {
      keys.push(r.headers()['idempotency-key']);
    }
  });
  await placeOrder(page, 'tok_slow', { double: true }); // a double click is one attempt
  await expect(byId(page, 'checkout-progress')).toBeVisible();
  await expect(page).toHaveURL(/\/order\/\?id=/, { timeout: 60_000 });
  await expect(byId(page, 'order-id')).not.toBeEmpty();

  expect(keys.length).toBeGreaterThan(0);
  const distinct = [...new Set(keys)];
  expect(distinct).toHaveLength(1);
  expect(distinct[0]).toBeTruthy();
  expect(await rows(`SELECT count(*) FROM orders WHERE cart_id = '${cartId}'`)).toEqual(['1']);
  const approved = (await charges()).filter((c) => c.idempotency_key === distinct[0] && c.status === 'approved');
  expect(approved).toHaveLength(1);
});

test('a catalog change reaches the generated product page within 60 s', async ({ page }) => {
  const name = 'Starfall Saga Remastered';
  const put = await admin('PUT', '/admin/v1/products/GAM-RENAME', {
    name, description: 'Starfall Saga, remastered.', category: 'games', price_cents: 5900, currency: 'EUR', per_customer_limit: 0,
  });
  expect(put.status).toBe(200);
  // The generated file itself (no browser cache in the way), then the page in the browser.
  await expect.poll(async () => {
    const r = await fetch(`${base()}/p/GAM-RENAME/`, { cache: 'no-store', signal: AbortSignal.timeout(5000) });
    return (await r.text()).includes(name);
  }, { timeout: 60_000, intervals: [500] }).toBe(true);
  await visit(page, '/p/GAM-RENAME/');
  await expect(byId(page, 'product-name')).toHaveText(name);
});

/// The `data-state` of the waiting room on `page` ("none", "waiting", "admitted", ...).
const queueState = (page) => byId(page, 'queue').getAttribute('data-state');

test('a sale: countdown, waiting room, lottery, pass, add to cart, sold out for the other shopper', async ({ browser }, testInfo) => {
  const sku = 'SALE-DROP';
  const saleName = 'Nova Midnight Drop';
  // The generated page has the sale and its start time, and no countdown (it would be stale).
  const html = await (await fetch(`${base()}/p/${sku}/`, { cache: 'no-store', signal: AbortSignal.timeout(5000) })).text();
  expect(html).toContain(saleName);
  expect(html).toContain('data-testid="sale-starts"');
  expect(html).not.toContain('sale-countdown');
  expect(html).not.toContain('data-testid="add-to-cart"');

  const contexts = [await browser.newContext(), await browser.newContext(), await browser.newContext()];
  try {
    const [a, b, visitor] = await Promise.all(contexts.map((c) => c.newPage()));
    // A visitor who is not signed in: the countdown, and a sign-in link instead of the queue.
    await visit(visitor, `/p/${sku}/`);
    await expect(byId(visitor, 'sale-name')).toHaveText(saleName);
    await expect(byId(visitor, 'sale-countdown')).toHaveText(/^23 h \d\d min$/);
    await expect(byId(visitor, 'queue-signin')).toBeVisible();
    await expect(byId(visitor, 'join-queue')).toHaveCount(0);
    await expect(byId(visitor, 'add-to-cart')).toHaveCount(0);
    await readmeShot(visitor, 'sale-countdown');
    await checkA11y(visitor, 'product-sale-scheduled', testInfo);

    // Two shoppers join before the start: no place yet, it is drawn at the start.
    await signIn(a, 'gina');
    await signIn(b, 'hugo');
    for (const p of [a, b]) {
      await visit(p, `/p/${sku}/`);
      await expect(byId(p, 'sale-countdown')).toBeVisible();
      const join = p.waitForResponse((r) => r.request().method() === 'POST' && r.url().includes('/queue'));
      await byId(p, 'join-queue').click();
      expect([200, 201]).toContain((await join).status());
      await expect(byId(p, 'queue-position')).toHaveText(/your place is drawn at the start/);
      await expect(byId(p, 'queue-position')).toHaveAttribute('data-position', '');
      await expect(byId(p, 'queue')).toHaveAttribute('data-live', 'sse');
    }
    await readmeShot(a, 'sale-queued');
    await checkA11y(a, 'product-sale-queued', testInfo);

    // The start moves to 15 s from now; once every node's product JSON says so, the pages are
    // opened again: each finds its ticket in sessionStorage and follows it, counting down.
    const startsAt = Date.now() + 15_000;
    const put = await admin('PUT', '/admin/v1/sales/nova-drop', saleBody('nova-drop', startsAt, 600e3));
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    await expect.poll(async () => {
      const seen = await Promise.all([0, 1, 2, 3].map(async () => (await api(`/api/v1/products/${sku}`)).body?.sale?.starts_at));
      return seen.every((t) => Date.parse(t) === Date.parse(put.body.starts_at));
    }, { timeout: 10_000 }).toBe(true);
    for (const p of [a, b]) {
      await visit(p, `/p/${sku}/`);
      await expect(byId(p, 'sale-countdown')).toHaveText(/^\d+ s$/);
      await expect(byId(p, 'queue-position')).toHaveText(/drawn at the start/);
    }

    // At the start the lottery ranks both; one unit, so one pass: one shopper's turn, the other
    // first in line.
    await expect.poll(async () => (await Promise.all([a, b].map(queueState))).sort().join(','), { timeout: 30_000 })
      .toBe('admitted,waiting');
    const [winner, loser] = (await queueState(a)) === 'admitted' ? [a, b] : [b, a];
    await expect(byId(winner, 'sale-live')).toBeVisible();
    await expect(byId(winner, 'queue-admitted')).toContainText("It's your turn");
    await expect(byId(winner, 'pass-left')).toHaveText(/^\d min \d\d s$/);
    await expect(byId(loser, 'queue-position')).toHaveAttribute('data-position', '1');
    await expect(byId(loser, 'queue-position')).toHaveText("You're number 1 in the queue.");
    await expect(byId(loser, 'add-to-cart')).toHaveCount(0);
    await readmeShot(loser, 'sale-waiting');
    await readmeShot(winner, 'sale-admitted');
    await checkA11y(winner, 'product-sale-admitted', testInfo);
    const stored = await winner.evaluate(() => JSON.parse(sessionStorage.getItem('surge.sale.nova-drop') ?? 'null'));
    expect(stored?.pass).toBeTruthy();

    // The visitor who is not signed in still cannot buy: no add-to-cart, the sign-in link.
    await visit(visitor, `/p/${sku}/`);
    await expect(byId(visitor, 'sale-live')).toBeVisible();
    await expect(byId(visitor, 'queue-signin')).toBeVisible();
    await expect(byId(visitor, 'add-to-cart')).toHaveCount(0);

    // The winner's add to cart carries the pass and holds the unit; the order sells it.
    const passSent = winner.waitForRequest((r) => r.method() === 'PUT' && r.url().includes(`/items/${sku}`));
    expect(await addToCart(winner, sku)).toBe(200);
    expect((await passSent).headers()['surge-pass']).toBe(stored.pass);
    await placeOrder(winner, 'tok_ok');
    await expect(winner).toHaveURL(/\/order\/\?id=/);
    await expect(byId(winner, 'order-id')).not.toBeEmpty();

    // The other shopper is told it is sold out, live, and is offered nothing.
    await expect(byId(loser, 'queue-sold-out')).toBeVisible({ timeout: 10_000 });
    await expect(byId(loser, 'queue')).toHaveAttribute('data-live', 'sse');
    await expect(byId(loser, 'add-to-cart')).toHaveCount(0);
    await expect(byId(loser, 'join-queue')).toHaveCount(0);
    await readmeShot(loser, 'sale-sold-out');
    await checkA11y(loser, 'product-sale-sold-out', testInfo);

    expect(await rows(`SELECT count(DISTINCT order_id) FROM order_lines WHERE sku = '${sku}'`)).toEqual(['1']);
    const stock = await admin('GET', `/admin/v1/products/${sku}/stock`);
    expect(stock.body).toEqual(expect.objectContaining({ sold: 1, held: 0, available: 0 }));
    const sale = await admin('GET', '/admin/v1/sales/nova-drop');
    expect(sale.body?.stats).toEqual(expect.objectContaining({ sold: 1, admitted: 1 }));
    expect(sale.body?.stats?.lottery_seed).toMatch(/^[0-9a-f]+$/);
  } finally {
    await Promise.all(contexts.map((c) => c.close()));
  }
});

test('accessibility of the remaining page types', async ({ page }, testInfo) => {
  await visit(page, '/c/consoles/');
  await expect(byId(page, 'product-card').first()).toBeVisible();
  await checkA11y(page, 'category', testInfo);

  await visit(page, '/p/AUD-GONE/');
  await expect(byId(page, 'sold-out')).toBeVisible();
  await expect(byId(page, 'add-to-cart')).toBeDisabled();
  await checkA11y(page, 'product-sold-out', testInfo);

  await visit(page, '/cart/');
  await expect(byId(page, 'cart-empty')).toBeVisible();
  await checkA11y(page, 'cart-empty', testInfo);

  const missing = await page.goto('/does-not-exist/');
  expect(missing.status()).toBe(404);
  await expect(page.locator('body')).toContainText(/couldn't find|not found/i);
  await checkA11y(page, '404', testInfo);

  if (shared.orderId) { // the confirmation as a shopper coming back to it
    await visit(page, '/');
    await page.evaluate(([t]) => {
      localStorage.setItem('surge.token', t);
      localStorage.setItem('surge.customer_id', 'alice');
    }, [shared.token]);
    await visit(page, `/order/?id=${encodeURIComponent(shared.orderId)}`);
    await expect(byId(page, 'order-id')).toHaveText(shared.orderId);
    await checkA11y(page, 'order-revisited', testInfo);
  }
});
