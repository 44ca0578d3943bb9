// BENCHMARKS row 9: Largest Contentful Paint of the storefront's home and a product page under
// Lighthouse's mobile emulation, through the edge. Starts its own stack with
// tests/storefront/harness.mjs (one surge-node member, surge-paysim, the generated site, the
// edge; a fresh database and Redis prefix from SURGE_TEST_PG_URL / SURGE_TEST_REDIS_URL, dropped
// at the end) and loads each page in Debian's Chromium (playwright-core from tests/storefront's
// node_modules) through the Chrome DevTools Protocol:
//   Emulation.setCPUThrottlingRate {rate: 4}
//   Network.emulateNetworkConditions {latency: 150 ms, down 1.6 Mbit/s, up 750 kbit/s}
//     (Lighthouse's figures: 1.6 * 1024 kbit/s = 209,715 B/s, 750 kbit/s = 96,000 B/s)
//   Network.setCacheDisabled {cacheDisabled: true}, a fresh browser context per load
//   viewport 412x823, deviceScaleFactor 1.75, mobile, touch, a mobile Chrome user agent
// LCP is the last 'largest-contentful-paint' entry (PerformanceObserver, buffered) once the page
// has loaded and painted for a further second. One load of each page first warms the edge and
// the disk (not counted); then --runs loads each, alternating the pages; the median is reported.
//
// usage: node bench/storefront_lcp.mjs --node=PATH --paysim=PATH [--runs=5] [--json=FILE]
//        [--artefacts=DIR] [--sku=CON-NEB]
import { createRequire } from 'node:module';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = Object.fromEntries(process.argv.slice(2).map((a) => {
  const m = /^--([^=]+)=(.*)$/.exec(a);
  if (!m) {
    console.error(`storefront_lcp: unknown argument ${a}`);
    process.exit(2);
  }
  return [m[1], m[2]];
}));
for (const k of Object.keys(args)) {
  if (!['node', 'paysim', 'runs', 'json', 'artefacts', 'sku'].includes(k)) {
    console.error(`storefront_lcp: unknown option --${k}`);
    process.exit(2);
  }
}
if (!args.node || !args.paysim) {
  console.error('usage: node bench/storefront_lcp.mjs --node=PATH --paysim=PATH [--runs=5] [--json=FILE] [--artefacts=DIR] [--sku=SKU]');
  process.exit(2);
}
const runs = Number(args.runs ?? 5);
const sku = args.sku ?? 'CON-NEB';
const GOAL_MS = 1000;

let chromium;
try {
  ({ chromium } = createRequire(join(repo, 'tests/storefront/package.json'))('playwright-core'));
} catch (e) {
  console.error(`storefront_lcp: playwright-core is missing (${e.code ?? e}): run \`npm ci\` in tests/storefront (scripts/build.sh does)`);
  process.exit(1);
}
const { StorefrontStack } = await import('../tests/storefront/harness.mjs');

const emulation = {
  cpu_slowdown: 4,
  latency_ms: 150,
  download_bytes_per_s: Math.round((1.6 * 1024 * 1024) / 8),
  upload_bytes_per_s: Math.round((750 * 1024) / 8),
  viewport: { width: 412, height: 823 },
  device_scale_factor: 1.75,
  user_agent: 'Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36',
};

/// One cold load of `url` under the emulation: {lcp_ms, fcp_ms, element, bytes}. (No time to
/// first byte: DevTools throttling delays the response after Navigation Timing's responseStart.)
async function measure(browser, url) {
  const context = await browser.newContext({
    viewport: emulation.viewport, deviceScaleFactor: emulation.device_scale_factor, isMobile: true,
    hasTouch: true, userAgent: emulation.user_agent,
  });
  try {
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: emulation.latency_ms,
      downloadThroughput: emulation.download_bytes_per_s, uploadThroughput: emulation.upload_bytes_per_s,
    });
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: emulation.cpu_slowdown });
    await page.goto(url, { waitUntil: 'load', timeout: 60000 });
    await sleep(1000); // late paints (hydration, the stock line) may still become the LCP
    return await page.evaluate(() => new Promise((done) => {
      const nav = performance.getEntriesByType('navigation')[0];
      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
      new PerformanceObserver((list) => {
        const all = list.getEntries();
        const last = all[all.length - 1];
        done({
          lcp_ms: last.startTime, fcp_ms: fcp ? fcp.startTime : null,
          element: last.element ? `${last.element.tagName.toLowerCase()}${last.element.dataset?.testid ? `[data-testid=${last.element.dataset.testid}]` : ''}` : (last.url || '?'),
          bytes: performance.getEntriesByType('resource').reduce((s, r) => s + (r.transferSize || 0), nav ? nav.transferSize : 0),
        });
      }).observe({ type: 'largest-contentful-paint', buffered: true });
    }));
  } finally {
    await context.close();
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const artefacts = args.artefacts ?? mkdtempSync(join(tmpdir(), 'surge-lcp-'));
const stack = new StorefrontStack({ nodeBinary: args.node, paysimBinary: args.paysim, artefacts, members: 1 });
let browser;
let failed = false;
const result = { ok: false, runs, goal_ms: GOAL_MS, emulation, pages: {} };
const stop = async () => {
  if (browser) {
    await browser.close().catch(() => {});
  }
  await stack.stop();
};
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => stop().finally(() => process.exit(1)));
}
try {
  await stack.start();
  browser = await chromium.launch({ executablePath: process.env.STOREFRONT_CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  const pages = { home: `${stack.base}/`, product: `${stack.base}/p/${sku}/` };
  for (const url of Object.values(pages)) {
    await measure(browser, url); // warm-up, not counted
  }
  const samples = Object.fromEntries(Object.keys(pages).map((k) => [k, []]));
  for (let i = 0; i < runs; ++i) {
    for (const [name, url] of Object.entries(pages)) {
      const m = await measure(browser, url);
      samples[name].push(m);
      console.error(`storefront_lcp: ${name} run ${i + 1}: LCP ${m.lcp_ms.toFixed(0)} ms (${m.element}), FCP ${m.fcp_ms?.toFixed(0)} ms, ${m.bytes} B`);
    }
  }
  for (const [name, ms] of Object.entries(samples)) {
    result.pages[name] = {
      path: new URL(pages[name]).pathname,
      lcp_ms: ms.map((m) => Math.round(m.lcp_ms)),
      lcp_median_ms: Math.round(median(ms.map((m) => m.lcp_ms))),
      fcp_median_ms: Math.round(median(ms.map((m) => m.fcp_ms ?? 0))),
      lcp_element: ms[ms.length - 1].element,
      transfer_bytes: ms[ms.length - 1].bytes,
    };
  }
  result.ok = Object.values(result.pages).every((p) => p.lcp_median_ms < GOAL_MS);
} catch (e) {
  failed = true;
  result.error = String(e?.message ?? e).split('\n')[0];
  console.error(`storefront_lcp: ${e?.stack ?? e}`);
} finally {
  await stop();
}

console.log(`LCP under mobile emulation (4x CPU, ${emulation.latency_ms} ms RTT, 1.6 Mbit/s down, 750 kbit/s up, 412x823 @1.75), median of ${runs} cold loads`);
console.log('| page | path | LCP runs ms | LCP median ms | FCP median ms | LCP element | bytes | goal < 1,000 ms |');
console.log('|---|---|---|---:|---:|---|---:|---|');
for (const [name, p] of Object.entries(result.pages)) {
  console.log(`| ${name} | ${p.path} | ${p.lcp_ms.join(', ')} | ${p.lcp_median_ms} | ${p.fcp_median_ms} | ${p.lcp_element} | ${p.transfer_bytes} | ${p.lcp_median_ms < GOAL_MS ? 'yes' : 'no'} |`);
}
if (failed) {
  console.log(`failed: ${result.error}`);
}
if (args.json) {
  writeFileSync(args.json, `${JSON.stringify(result, null, 2)}\n`);
}
process.exit(failed ? 1 : 0);
