// storefront/scripts/generate.mjs and rebuild.mjs end to end, against a catalog API served by this
// script (the endpoints and shapes of API.md that rendering reads) and the test Redis
// (SURGE_TEST_REDIS_URL, stream under a prefix of its own). Needs storefront/.output from
// scripts/build.sh (`nuxt build`).
//
// Full generation: pages, JSON-LD, sitemap with --base-url, 404.html, robots.txt, the `current`
// symlink. Incremental (--skus): a renamed product that changed category, a new one and a removed
// one; the other pages are hard links to the previous release, which keeps its old files. At most
// 3 releases. A failing run (API down) exits 1 and leaves `current` alone. rebuild.mjs turns a
// stream entry into a live page.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const SCRIPTS = path.join(REPO, 'storefront', 'scripts')
const BASE_URL = 'https://shop.example'

// ---------------------------------------------------------------- a catalog API

const catalog = new Map()
const put = (sku, name, category, price_cents, available = 5) =>
  catalog.set(sku, { sku, name, description: `About ${name}.`, category, price_cents, currency: 'EUR', available, per_customer_limit: 0 })
put('A-1', 'Alpha one', 'cat1', 1234)
put('B-2', 'Bravo two', 'cat1', 2000, 0)
put('C-3', 'Charlie three', 'cat2', 999)
put('D-4', 'Delta four', 'café bar', 500)

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

function catalogApi(req, res) {
  const u = new URL(req.url, 'http://x')
  const all = [...catalog.values()].sort((a, b) => a.sku.localeCompare(b.sku))
  const limit = Number(u.searchParams.get('limit') ?? 20)
  if (u.pathname === '/api/v1/categories') {
    const counts = {}
    for (const p of all) counts[p.category] = (counts[p.category] ?? 0) + 1
    return json(res, 200, { items: Object.entries(counts).sort().map(([category, count]) => ({ category, count })) })
  }
  if (u.pathname === '/api/v1/products') {
    const from = Number(u.searchParams.get('cursor') ?? 0)
    const items = all.slice(from, from + limit) // pages of `limit`: exercises next_cursor
    return json(res, 200, { items, next_cursor: from + limit < all.length ? String(from + limit) : null })
  }
  const m = /^\/api\/v1\/products\/([^/]+)$/.exec(u.pathname)
  if (m) {
    const p = catalog.get(decodeURIComponent(m[1]))
    return p ? json(res, 200, p) : json(res, 404, { error: { code: 'not_found', message: 'no such product' } })
  }
  if (u.pathname === '/api/v1/search') {
    let items = all
    if (u.searchParams.get('category')) items = items.filter((p) => p.category === u.searchParams.get('category'))
    if (u.searchParams.get('in_stock') === 'true') items = items.filter((p) => p.available > 0)
    return json(res, 200, { items: items.slice(0, limit).map((p) => ({ ...p, score: 0 })), facets: {}, total: items.length, next_cursor: null })
  }
  json(res, 404, { error: { code: 'not_found', message: 'no route' } })
}

// ---------------------------------------------------------------- helpers

function run(script, args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(SCRIPTS, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d) => (err += d))
    child.on('exit', (code) => resolve({ code, err }))
  })
}

const read = (site, rel) => fs.readFileSync(path.join(site, 'current', rel), 'utf8')
const exists = (site, rel) => fs.existsSync(path.join(site, 'current', rel))
const releases = (site) => fs.readdirSync(path.join(site, 'releases')).sort()

/** One Redis command over RESP; resolves to the raw reply text. */
function redis(url, ...argv) {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port || 6379) })
    let cmd = ''
    const db = u.pathname.replace('/', '')
    const enc = (a) => `*${a.length}\r\n` + a.map((x) => `$${Buffer.byteLength(String(x))}\r\n${x}\r\n`).join('')
    if (db && db !== '0') cmd += enc(['SELECT', db])
    cmd += enc(argv)
    let out = ''
    sock.on('data', (d) => {
      out += d
      const want = db && db !== '0' ? 2 : 1
      if (out.split('\r\n').length > want) {
        sock.end()
        resolve(out)
      }
    })
    sock.on('error', reject)
    sock.write(cmd)
  })
}

// ---------------------------------------------------------------- the tests

const output = path.join(REPO, 'storefront', '.output', 'server', 'index.mjs')
if (!fs.existsSync(output)) {
  console.error(`${output} is missing: run scripts/build.sh (npm ci and nuxt build in storefront/)`)
  process.exit(1)
}

const server = http.createServer(catalogApi)
await new Promise((r) => server.listen(0, '127.0.0.1', r))
const API = `http://127.0.0.1:${server.address().port}`
const site = fs.mkdtempSync(path.join(os.tmpdir(), 'surge-site-'))
const common = [`--api=${API}`, `--site=${site}`, `--base-url=${BASE_URL}`]

test('a full generation renders every page and points current at it', async () => {
  const r = await run('generate.mjs', common)
  assert.equal(r.code, 0, r.err)
  assert.match(r.err, /release \S+ is live: full/)
  assert.match(fs.readlinkSync(path.join(site, 'current')), /^releases\//)
  const home = read(site, 'index.html')
  assert.match(home, /<html[^>]* lang="en"/)
  for (const name of ['Alpha one', 'Charlie three']) assert.ok(home.includes(name), `home lists ${name}`)
  const a = read(site, 'p/A-1/index.html')
  assert.match(a, /data-testid="product-name"[^>]*>Alpha one</)
  assert.match(a, /€12\.34/)
  const ld = JSON.parse(/<script type="application\/ld\+json"[^>]*>(.*?)<\/script>/s.exec(a)[1])
  assert.equal(ld['@type'], 'Product')
  assert.deepEqual([ld.offers.price, ld.offers.priceCurrency, ld.offers.availability], ['12.34', 'EUR', 'https://schema.org/InStock'])
  assert.match(read(site, 'p/B-2/index.html'), /OutOfStock/)
  assert.match(read(site, 'c/cat1/index.html'), /Bravo two/)
  assert.match(read(site, 'c/café bar/index.html'), /Delta four/)
  assert.ok(read(site, 'sitemap.xml').includes(`<loc>${BASE_URL}/c/caf%C3%A9%20bar/</loc>`))
  for (const shell of ['search', 'cart', 'checkout', 'order', 'signin']) assert.ok(exists(site, `${shell}/index.html`), shell)
  assert.match(read(site, '404.html'), /find that page/)
  const sitemap = read(site, 'sitemap.xml')
  for (const u of ['/', '/c/cat1/', '/c/cat2/', '/p/A-1/', '/p/B-2/', '/p/C-3/'])
    assert.ok(sitemap.includes(`<loc>${BASE_URL}${u}</loc>`), `sitemap has ${u}`)
  assert.match(read(site, 'robots.txt'), new RegExp(`Sitemap: ${BASE_URL}/sitemap.xml`))
  assert.ok(fs.readdirSync(path.join(site, 'current', '_nuxt')).some((f) => f.endsWith('.js')), 'assets copied')
})

test('--skus renders only what changed; other files are hard links; the old release is intact', async () => {
  const before = fs.realpathSync(path.join(site, 'current'))
  put('A-1', 'Alpha renamed', 'cat3', 1500)
  put('N-9', 'November new', 'cat2', 700)
  const r = await run('generate.mjs', [...common, '--skus=A-1,N-9'])
  assert.equal(r.code, 0, r.err)
  assert.match(r.err, /incremental \(A-1,N-9\)/)
  const after = fs.realpathSync(path.join(site, 'current'))
  assert.notEqual(after, before)
  assert.match(read(site, 'p/A-1/index.html'), /Alpha renamed/)
  assert.match(fs.readFileSync(path.join(before, 'p/A-1/index.html'), 'utf8'), /Alpha one/, 'old release unchanged')
  assert.match(read(site, 'p/N-9/index.html'), /November new/)
  assert.match(read(site, 'c/cat3/index.html'), /Alpha renamed/)
  assert.doesNotMatch(read(site, 'c/cat1/index.html'), /Alpha/)
  assert.match(read(site, 'c/cat2/index.html'), /November new/)
  assert.match(read(site, 'index.html'), /November new/)
  assert.ok(read(site, 'sitemap.xml').includes(`${BASE_URL}/p/N-9/`))
  assert.ok(read(site, 'sitemap.xml').includes(`${BASE_URL}/c/cat3/`))
  assert.equal(fs.statSync(path.join(after, 'p/C-3/index.html')).ino, fs.statSync(path.join(before, 'p/C-3/index.html')).ino)
})

test('a removed product and an emptied category lose their pages; 3 releases are kept', async () => {
  catalog.delete('B-2')
  let r = await run('generate.mjs', [...common, '--skus=B-2'])
  assert.equal(r.code, 0, r.err)
  assert.ok(!exists(site, 'p/B-2/index.html'))
  assert.ok(!read(site, 'sitemap.xml').includes('/p/B-2/'))
  assert.ok(!exists(site, 'c/cat1/index.html'), 'cat1 is empty now')
  assert.ok(!read(site, 'sitemap.xml').includes('/c/cat1/'))
  r = await run('generate.mjs', [...common, '--skus=C-3'])
  assert.equal(r.code, 0, r.err)
  assert.equal(releases(site).length, 3)
  assert.ok(releases(site).includes(path.basename(fs.realpathSync(path.join(site, 'current')))))
})

test('a run that cannot read the catalog exits 1 and leaves current alone', async () => {
  const current = fs.readlinkSync(path.join(site, 'current'))
  const dead = net.createServer()
  await new Promise((r) => dead.listen(0, '127.0.0.1', r))
  const port = dead.address().port
  await new Promise((r) => dead.close(r))
  const r = await run('generate.mjs', [`--api=http://127.0.0.1:${port}`, `--site=${site}`])
  assert.equal(r.code, 1)
  assert.match(r.err, /does not answer.*current is unchanged/s)
  assert.equal(fs.readlinkSync(path.join(site, 'current')), current)
  assert.equal(releases(site).length, 3)
})

test('rebuild.mjs turns a catalog stream entry into a live page', async () => {
  const url = process.env.SURGE_TEST_REDIS_URL
  assert.ok(url, 'SURGE_TEST_REDIS_URL is not set: the test Redis is needed (scripts/services.sh)')
  const prefix = `sitetest${process.pid}:`
  const child = spawn(process.execPath, [path.join(SCRIPTS, 'rebuild.mjs'), ...common, `--redis=${url}`, `--prefix=${prefix}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let log = ''
  const seen = (re) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`rebuild log never matched ${re}: ${log}`)), 60000)
      const check = () => re.test(log) && (clearTimeout(t), resolve())
      child.stderr.on('data', (d) => ((log += d), check()))
      check()
    })
  try {
    await seen(/watching/)
    put('C-3', 'Charlie changed', 'cat2', 999)
    await redis(url, 'XADD', `${prefix}catalog`, '*', 'event_id', '1', 'key', 'C-3', 'payload', '{"sku":"C-3"}')
    await seen(/1 sku\(s\) C-3 live in/)
    assert.match(read(site, 'p/C-3/index.html'), /Charlie changed/)
    assert.match(fs.readFileSync(path.join(site, '.rebuild-stream-id'), 'utf8'), /^\d+-\d+\n$/)
  } finally {
    child.kill('SIGTERM')
    await redis(url, 'DEL', `${prefix}catalog`)
  }
})

test('cleanup', () => {
  server.close()
  fs.rmSync(site, { recursive: true, force: true })
})
