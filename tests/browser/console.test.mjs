// The admin console in a real browser (playwright-core driving Debian's /usr/bin/chromium,
// headless) against three surge-node members and surge-paysim that this script starts itself
// (harness.mjs). Steps: a wrong token is refused; sign in; three nodes on the map; kill one and
// see its shards move within 10 s; drain and undrain from the page; create a product and set
// stock, seen on the hot-SKU page; refund an order from its page, seen in paysim's /_refunds and
// in the order's timeline; make a sale on the sales page, see shoppers who join its queue counted
// there, and delete it. A screenshot of each page goes to the artefact directory.
//
// usage: node console.test.mjs <surge-node> <surge-paysim> <artefact dir>
// Every step must pass: nothing is skipped.

import { mkdirSync } from 'node:fs';
import { Harness, freePort, http, waitFor } from './harness.mjs';

const [nodeBinary, paysimBinary, artefacts] = process.argv.slice(2);
if (!nodeBinary || !paysimBinary || !artefacts) {
  console.error('usage: node console.test.mjs <surge-node> <surge-paysim> <artefact dir>');
  process.exit(2);
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  console.error(`playwright-core is missing (${e.code ?? e}): run \`npm ci\` in tests/browser (scripts/build.sh does)`);
  process.exit(1);
}
mkdirSync(artefacts, { recursive: true });
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const log = (m) => console.log(`[${elapsed()}] ${m}`);

// Order events go to a shop endpoint nobody listens on (a free port): the webhooks page shows
// its deliveries pending, with the refused attempts.
const deadEndpoint = await freePort();
const hx = new Harness({
  nodeBinary, paysimBinary, logDir: `${artefacts}/logs`,
  nodeArgs: [`--webhooks.endpoints=shop=http://127.0.0.1:${deadEndpoint}/hooks`,
    '--webhooks.secrets=shop=console-test-secret-0123', '--webhooks.retry_base=1s', '--webhooks.retry_max=5s'],
});
let browser;

async function shot(page, name) {
  await page.screenshot({ path: `${artefacts}/${name}.png`, fullPage: true });
}

/// Clicks the button named `name` and confirms the dialog.
async function clickAndConfirm(page, name) {
  await page.getByRole('button', { name, exact: true }).click();
  await page.locator('#confirm').waitFor({ state: 'visible' });
  await page.locator('#confirm-ok').click();
}

async function main() {
  await hx.setUp();
  await hx.startPaysim();
  await hx.startNode('n1'); // first: it migrates the database
  await Promise.all([hx.startNode('n2'), hx.startNode('n3')]);
  const cluster = async () => (await hx.admin('n1', 'GET', '/admin/v1/cluster')).body;
  await waitFor('three members up, shards spread', async () => {
    const c = await cluster();
    return c?.nodes?.length === 3 && c.nodes.every((n) => n.status === 'up' && n.shards > 0);
  }, 30000, 200);
  log('three nodes and paysim are up');

  browser = await chromium.launch({ executablePath: process.env.SURGE_CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const base = `http://127.0.0.1:${hx.nodes.get('n1').admin}`;

  // A wrong token is refused, and nothing is kept.
  await page.goto(`${base}/console`);
  await page.getByLabel('Admin token').fill('not-the-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#signin-error', { hasText: 'refused (401)' }).waitFor();
  if (await page.evaluate(() => sessionStorage.length) !== 0) {
    throw new Error('a refused token was kept in sessionStorage');
  }
  await shot(page, 'signin-refused');
  log('a wrong token is refused');

  // Sign in; the map shows three members and 256 shards.
  await page.getByLabel('Admin token').fill(hx.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/#\/cluster$/);
  await waitFor('three members on the map', async () => (await page.locator('#members tr[data-status="up"]').count()) === 3);
  await waitFor('256 shards on the map', async () => (await page.locator('#shard-grid .cell').count()) === 256);
  if (page.url().includes(hx.token)) {
    throw new Error('the token is in the URL');
  }
  await shot(page, 'cluster');
  log('signed in; three nodes on the map');

  // Kill n3: its shards move on the map within 10 s.
  const before = await page.locator('#shard-grid .cell[data-owner="n3"]').count();
  if (before === 0) {
    throw new Error('n3 owns no shard on the map');
  }
  await hx.kill('n3');
  const killed = Date.now();
  await waitFor('n3\'s shards to move on the map', async () => (await page.locator('#shard-grid .cell[data-owner="n3"]').count()) === 0, 10000, 100);
  log(`killed n3: its ${before} shards moved on the map in ${((Date.now() - killed) / 1000).toFixed(1)} s`);
  await shot(page, 'cluster-after-kill');

  // Drain n2 from the page, then undrain it.
  await clickAndConfirm(page, 'Drain n2');
  await page.locator('#members tr[data-node="n2"][data-status="draining"]').waitFor();
  await waitFor('n2 to hand its shards over', async () => (await page.locator('#shard-grid .cell[data-owner="n2"]').count()) === 0, 20000);
  log('drained n2 from the page');
  await clickAndConfirm(page, 'Undrain n2');
  await page.locator('#members tr[data-node="n2"][data-status="up"]').waitFor();
  await waitFor('n2 to take shards again', async () => (await page.locator('#shard-grid .cell[data-owner="n2"]').count()) > 0, 20000);
  log('undrained n2 from the page');

  // A product made on the catalog page; its stock set and added on the hot-SKU page.
  const sku = 'BROWSER-KETTLE';
  await page.goto(`${base}/console#/catalog`);
  await page.getByRole('button', { name: 'New product' }).click();
  await page.locator('#edit-sku').fill(sku);
  await page.locator('#edit-name').fill('Browser kettle');
  await page.locator('#edit-description').fill('1.7 l, steel');
  await page.locator('#edit-category').fill('kitchen');
  await page.locator('#edit-price_cents').fill('2599');
  await page.locator('#edit-currency').fill('EUR');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#status', { hasText: `Saved ${sku}` }).waitFor();
  log('created a product on the catalog page');

  await page.goto(`${base}/console#/hot`);
  await page.locator('#stock-sku').fill(sku);
  await page.locator('#stock-mode').selectOption('set');
  await page.locator('#stock-qty').fill('25');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.locator('#stock tr[data-sku] td:nth-child(2)', { hasText: /^25$/ }).waitFor();
  await page.locator('#stock-mode').selectOption('add');
  await page.locator('#stock-qty').fill('5');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.locator('#stock tr[data-sku] td:nth-child(2)', { hasText: /^30$/ }).waitFor();
  log('set and added stock on the hot-SKU page');

  // An order through the storefront (two of the SKU, paid on alpha).
  const cart = await hx.shop('n1', 'POST', '/api/v1/carts', { customer_id: 'browser-customer' });
  const cartId = cart.body?.cart_id;
  const put = await hx.shop('n1', 'PUT', `/api/v1/carts/${cartId}/items/${sku}`, { qty: 2 });
  if (put.status !== 200) {
    throw new Error(`cannot add to the cart: ${put.status} ${JSON.stringify(put.body)}`);
  }
  // The held units show on the hot-SKU page, live.
  await page.locator('#stock tr[data-sku] td:nth-child(3)', { hasText: /^2$/ }).waitFor();
  await page.locator(`#hot-list tr[data-sku="${sku}"]`).waitFor();
  log('the SKU is in the live hot list');
  await shot(page, 'hot-skus');
  const order = await hx.shop('n1', 'POST', `/api/v1/carts/${cartId}/checkout`, { payment: { method: 'card', token: 'tok_ok' } }, { 'Idempotency-Key': `browser-${hx.tag}` });
  if (order.status !== 201) {
    throw new Error(`checkout failed: ${order.status} ${JSON.stringify(order.body)}`);
  }
  const orderId = order.body.order_id;
  log(`ordered ${orderId}`);

  // Refund it from its page: paysim logs the refund, the timeline shows it.
  await page.goto(`${base}/console#/orders`);
  await page.locator('#order-results').waitFor();
  await page.goto(`${base}/console#/orders/${encodeURIComponent(orderId)}`);
  await page.locator('#timeline li[data-event="confirmed"]').waitFor();
  await clickAndConfirm(page, 'Refund in full');
  await page.locator('#timeline li[data-event="refunded"]').waitFor({ timeout: 15000 });
  const refunds = await http(hx.paysim.ports.alpha, 'GET', '/_refunds');
  const mine = (refunds.body ?? []).filter((r) => r.status === 'refunded' && r.amount_cents === 2 * 2599);
  if (mine.length !== 1) {
    throw new Error(`paysim's /_refunds does not show the refund once: ${JSON.stringify(refunds.body)}`);
  }
  log('refunded the order from its page; paysim logged it and the timeline shows it');
  await shot(page, 'order');

  // A sale made on the sales page (an hour from now, with a waiting room): it shows as
  // scheduled; two shoppers join through the storefront and the panel counts them waiting;
  // then it is deleted from the page.
  const dropSku = 'BROWSER-DROP';
  const saleId = `drop-${hx.tag}`.replace(/_/g, '-');
  for (const [method, path, body] of [
    ['PUT', `/admin/v1/products/${dropSku}`, { name: 'Browser drop', description: 'sale item', category: 'kitchen', price_cents: 999, currency: 'EUR', per_customer_limit: 0 }],
    ['POST', `/admin/v1/products/${dropSku}/stock`, { set: 5 }],
  ]) {
    const r = await hx.admin('n1', method, path, body);
    if (r.status !== 200) {
      throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  }
  await page.goto(`${base}/console#/sales`);
  await page.getByRole('button', { name: 'New sale' }).click();
  // datetime-local values (to the minute) in the browser's own time zone.
  const [startsLocal, endsLocal] = await page.evaluate(() => {
    const p = (n) => String(n).padStart(2, '0');
    const local = (d) => `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
    const now = Date.now();
    return [local(new Date(now + 3600e3)), local(new Date(now + 7200e3))];
  });
  await page.locator('#sale-id').fill(saleId);
  await page.locator('#sale-name').fill('Browser drop day');
  await page.locator('#sale-skus').fill(dropSku);
  await page.locator('#sale-starts').fill(startsLocal);
  await page.locator('#sale-ends').fill(endsLocal);
  await page.locator('#sale-rate').fill('5');
  await page.locator('#sale-ttl').fill('2m');
  await page.getByRole('button', { name: 'Save sale' }).click();
  await page.locator('#status', { hasText: `Saved sale ${saleId}` }).waitFor();
  const saleRow = page.locator(`#sales tr[data-sale="${saleId}"]`);
  await page.locator(`#sales tr[data-sale="${saleId}"][data-state="scheduled"]`).waitFor();
  const stored = (await hx.admin('n1', 'GET', `/admin/v1/sales/${saleId}`)).body;
  if (stored?.queue?.pass_ttl !== 120 || stored?.queue?.admission_rate !== 5 || stored?.skus?.[0] !== dropSku ||
      Math.abs(Date.parse(stored?.starts_at) - Date.now() - 3600e3) > 120e3) {
    throw new Error(`the sale saved from the page is not what was entered: ${JSON.stringify(stored)}`);
  }
  // Through n2, which learns of the sale within sales.refresh (1 s): 404 until then.
  for (const customer of ['drop-shopper-1', 'drop-shopper-2']) {
    const j = await waitFor(`n2 to let ${customer} join`, async () => {
      const r = await hx.shop('n2', 'POST', `/api/v1/sales/${saleId}/queue`, { customer_id: customer });
      return r.status === 404 ? null : r;
    }, 10000, 200);
    if (j.status !== 201 || j.body?.position !== null) {
      throw new Error(`join ${customer}: ${j.status} ${JSON.stringify(j.body)}`);
    }
  }
  await saleRow.locator('td:nth-child(6)', { hasText: /^2$/ }).waitFor(); // Waiting
  await saleRow.locator('td:nth-child(10)', { hasText: /^(0\.0 %|–)$/ }).waitFor(); // sell-through (unknown before the prewarm reads stock)
  log('made a sale on the sales page; two shoppers waiting show in the panel');
  await shot(page, 'sales');
  await clickAndConfirm(page, `Delete sale ${saleId}`);
  await saleRow.waitFor({ state: 'detached' });
  if ((await hx.admin('n1', 'GET', `/admin/v1/sales/${saleId}`)).status !== 404) {
    throw new Error('the sale deleted from the page is still there');
  }
  log('deleted the sale from the page');

  // The webhooks page: the endpoint with the order's event pending (nobody listens there), the
  // refused attempts of that delivery, and "Deliver again".
  await page.goto(`${base}/console#/webhooks`);
  await page.locator('#webhook-endpoints tr[data-endpoint="shop"]').waitFor();
  await page.fill('#webhook-order', orderId);
  await page.getByRole('button', { name: 'Filter' }).click();
  // The order's first event is tried (and refused); its refund's events wait behind it (one
  // order's events reach an endpoint in order), not tried at all.
  const delivery = page.locator('#webhook-deliveries tr[data-status="pending"]', { hasText: 'order.confirmed' }).first();
  await delivery.waitFor({ timeout: 20000 });
  await page.locator('#webhook-deliveries tr[data-status="pending"]', { hasText: 'order.refunded' })
    .locator('td:nth-child(6)', { hasText: /^0$/ }).waitFor();
  await delivery.getByRole('button', { name: 'Attempts' }).click();
  await page.locator('#webhook-attempts tr[data-attempt="1"]', { hasText: 'not sent' }).waitFor({ timeout: 20000 });
  const deliveryId = await delivery.getAttribute('data-delivery');
  await clickAndConfirm(page, `Deliver again ${deliveryId}`);
  await page.locator('#status', { hasText: `Delivery ${deliveryId} is due again.` }).waitFor();
  log('the webhooks page shows the order event pending at a dead endpoint, its attempts, and delivers it again');
  await shot(page, 'webhooks');

  // The other pages render with what the cluster has: the order in the list, the product in the
  // catalog, alpha's charges on the payments page, drawn charts from the metrics history.
  for (const [name, ready] of [['orders', `#order-results tr[data-order="${orderId}"]`], ['catalog', `#products tr[data-sku="${sku}"]`], ['payments', '#payments section[data-node] td:text-is("alpha")'], ['charts', '#charts .chart canvas']]) {
    await page.goto(`${base}/console#/${name}`);
    await page.locator(ready).first().waitFor({ state: 'attached' });
    await page.waitForTimeout(name === 'charts' ? 1500 : 700); // let a poll land before the picture
    await shot(page, name);
  }

  // Signing out forgets the token; a stale token sends the page back to sign-in.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Admin token').waitFor();
  await page.evaluate(() => sessionStorage.setItem('surge.admin.token', 'stale'));
  await page.goto(`${base}/console#/cluster`);
  await page.locator('#signin-error', { hasText: 'refused (401)' }).waitFor();
  log('a stale token sends the page back to sign-in');

  if (pageErrors.length) {
    throw new Error(`errors on the page: ${pageErrors.join('; ')}`);
  }
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(`FAILED after ${elapsed()}: ${e.stack ?? e}`);
  for (const id of hx.nodes.keys()) {
    console.error(`---- ${id} (last lines)\n${hx.tail(id)}`);
  }
} finally {
  await browser?.close().catch(() => {});
  await hx.cleanup();
}
console.log(`${failed ? 'FAILED' : 'passed'} in ${elapsed()}; screenshots in ${artefacts}`);
process.exit(failed ? 1 : 0);
