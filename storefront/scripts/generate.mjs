#!/usr/bin/env node
// Renders the storefront into DIR/releases/<id>/ and points DIR/current at it atomically.
//
//   node storefront/scripts/generate.mjs --api=URL --site=DIR [--skus=A,B] [--max-products=N]
//        [--base-url=URL] [--concurrency=N]
//
// Full run: reads the catalog from URL (/api/v1/categories, /api/v1/products paged), starts the
// built Nuxt server (.output/server/index.mjs, from scripts/build.sh) on a free loopback port with
// its API at URL, fetches every route and writes it as <route>/index.html next to a copy of
// .output/public. --skus: starts from a hard-linked copy of the current release and renders only
// those products, their old and new categories, home and sitemap.xml (a full run when there is no
// current release or it came from another build). Files are never changed in place (a new file is
// renamed over the old one), so older releases stay intact. Keeps the newest 3 releases and the
// current one. Progress on stderr; exit 1 with a message on any failure (DIR/current unchanged).
import { spawn, execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { die, intOption, makeLogger, parseArgs, safeSegment } from './lib.mjs'

const USAGE =
  'usage: node storefront/scripts/generate.mjs --api=URL --site=DIR [--skus=A,B] [--max-products=N] [--base-url=URL] [--concurrency=N]'
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const OUTPUT = path.join(ROOT, '.output')
const MANIFEST = '.surge-manifest.json'
const KEEP = 3
/** Client-side pages: one shell each, filled in the browser. */
const SHELLS = ['/search/', '/cart/', '/checkout/', '/order/', '/signin/']
const log = makeLogger('generate')

const args = parseArgs(
  process.argv.slice(2),
  ['api', 'site', 'skus', 'max-products', 'base-url', 'concurrency'],
  USAGE,
)
if (!args.api || !args.site) die(`--api and --site are required\n${USAGE}`)
const API = args.api.replace(/\/$/, '')
const SITE = path.resolve(args.site)
const BASE_URL = (args['base-url'] ?? 'http://127.0.0.1:8080').replace(/\/$/, '')
const MAX_PRODUCTS = intOption(args, 'max-products', 10000)
const CONCURRENCY = intOption(args, 'concurrency', 6)
const SKUS = args.skus ? [...new Set(args.skus.split(',').map((s) => s.trim()).filter(Boolean))] : null

// ---------------------------------------------------------------- catalog reads

async function apiGet(p) {
  let res
  try {
    res = await fetch(API + p, { headers: { Accept: 'application/json' } })
  } catch (e) {
    throw new Error(`the catalog API at ${API} does not answer (${e.cause?.code ?? e.message})`)
  }
  if (res.status === 404) return null
  if (!res.ok) throw new Error(`GET ${API}${p} answered HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`)
  return res.json()
}

/** Up to `max` products (sku -> category) and the categories, from the listing API. */
async function readCatalog(max) {
  const cats = await apiGet('/api/v1/categories')
  if (!cats) throw new Error(`${API}/api/v1/categories is 404: is --api a Surge node or its HAProxy?`)
  const products = {}
  let n = 0
  let cursor = null
  do {
    const q = new URLSearchParams({ limit: String(Math.min(100, max - n)) })
    if (cursor) q.set('cursor', cursor)
    const page = await apiGet(`/api/v1/products?${q}`)
    if (!page) throw new Error(`${API}/api/v1/products is 404`)
    for (const p of page.items) {
      if (n >= max) break
      products[p.sku] = p.category
      n++
    }
    cursor = page.next_cursor
  } while (cursor && n < max)
  return { products, categories: cats.items.map((c) => c.category) }
}

// ---------------------------------------------------------------- the Nuxt server

/** Starts .output/server/index.mjs on a free loopback port; resolves to { url, stop }. */
function startRenderer() {
  const entry = path.join(OUTPUT, 'server', 'index.mjs')
  if (!fs.existsSync(entry)) die(`${entry} is missing: run scripts/build.sh (nuxt build) first`)
  const child = spawn(process.execPath, [entry], {
    env: {
      ...process.env,
      NITRO_PORT: '0',
      NITRO_HOST: '127.0.0.1',
      NUXT_API_INTERNAL: API,
      NUXT_PUBLIC_SITE_URL: BASE_URL,
      NODE_ENV: 'production',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let errors = ''
  child.stderr.on('data', (d) => {
    errors = (errors + d).slice(-4000)
  })
  const stop = () => {
    if (child.exitCode === null) child.kill('SIGTERM')
  }
  process.on('exit', stop)
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`the Nuxt server did not start in 30 s: ${errors}`)), 30000)
    child.stdout.on('data', (d) => {
      out += d
      const m = /Listening on (http:\/\/[^\s]+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve({ url: m[1].replace(/\/$/, ''), stop, lastErrors: () => errors })
      }
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the Nuxt server exited (${code}): ${errors}`))
    })
  })
}

/** The HTML of `route` and its status (200 or 404; anything else throws). */
async function render(server, route) {
  const res = await fetch(server.url + route, { headers: { Accept: 'text/html' } })
  const html = await res.text()
  if (res.status !== 200 && res.status !== 404) {
    throw new Error(`rendering ${route} answered HTTP ${res.status} (is the catalog API at ${API} up?)`)
  }
  // The entry stylesheet is inlined in every page (features.inlineStyles): drop its render-blocking link.
  return { status: res.status, html: html.replace(/<link rel="stylesheet" href="\/_nuxt\/entry\.[^"]+\.css"[^>]*>/, '') }
}

// ---------------------------------------------------------------- files

/** Writes `data` to `file` through a temporary file and a rename (never in place: hard links). */
function writeAtomic(file, data) {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  const tmp = `${file}.tmp-${process.pid}`
  fs.writeFileSync(tmp, data)
  fs.renameSync(tmp, file)
}

/** The file of `route` under `dir`: "/p/X/" -> dir/p/X/index.html, "/404.html" -> dir/404.html. */
function routeFile(dir, route) {
  const rel = decodeURIComponent(route)
  return route.endsWith('/') ? path.join(dir, rel, 'index.html') : path.join(dir, rel)
}

const productRoute = (sku) => `/p/${encodeURIComponent(sku)}/`
const categoryRoute = (c) => `/c/${encodeURIComponent(c)}/`

/** An id for the build in .output: its hashed asset names. Releases of other builds are not reused. */
function buildId() {
  const dir = path.join(OUTPUT, 'public', '_nuxt')
  if (!fs.existsSync(dir)) die(`${dir} is missing: run scripts/build.sh (nuxt build) first`)
  return createHash('sha256').update(fs.readdirSync(dir).sort().join('\n')).digest('hex').slice(0, 16)
}

function sitemap(manifest) {
  const urls = ['/', ...manifest.categories.map(categoryRoute), ...Object.keys(manifest.products).map(productRoute)]
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;')
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n' +
    urls.map((u) => `  <url><loc>${esc(BASE_URL + u)}</loc></url>\n`).join('') +
    '</urlset>\n'
  )
}

const robots = () =>
  `User-agent: *\nDisallow: /cart/\nDisallow: /checkout/\nDisallow: /order/\nDisallow: /signin/\nDisallow: /api/\n` +
  `Sitemap: ${BASE_URL}/sitemap.xml\n`

/** Takes DIR/.lock (waits for a running generate; a dead holder's lock is taken over). */
async function lock() {
  const dir = path.join(SITE, '.lock')
  for (let waited = 0; ; waited += 200) {
    try {
      fs.mkdirSync(dir)
      fs.writeFileSync(path.join(dir, 'pid'), String(process.pid))
      process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
      return
    } catch (e) {
      if (e.code !== 'EEXIST') throw e
    }
    let holder = 0
    try {
      holder = Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8'))
    } catch {}
    let alive = false
    try {
      if (holder) process.kill(holder, 0), (alive = true)
    } catch {}
    if (!alive && waited >= 1000) {
      log(`taking over the lock of generate pid ${holder || '?'} (not running)`)
      fs.rmSync(dir, { recursive: true, force: true })
      continue
    }
    if (waited % 10000 === 0) log(`waiting for another generate (pid ${holder || '?'}) to finish`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

// ---------------------------------------------------------------- rendering many routes

/** Renders `routes` into `dir` with CONCURRENCY requests; returns the routes that were 404. */
async function renderAll(server, dir, routes) {
  const missing = []
  let done = 0
  let next = 0
  let lastReport = Date.now()
  const start = Date.now()
  const worker = async () => {
    while (next < routes.length) {
      const route = routes[next++]
      const { status, html } = await render(server, route)
      if (status === 404) missing.push(route)
      else writeAtomic(routeFile(dir, route), html)
      done++
      if (Date.now() - lastReport >= 2000 || done === routes.length) {
        lastReport = Date.now()
        const rate = done / Math.max(0.001, (Date.now() - start) / 1000)
        log(`rendered ${done}/${routes.length} pages (${rate.toFixed(0)}/s)`)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, routes.length) }, worker))
  return missing
}

async function render404(server, dir) {
  const { status, html } = await render(server, '/__surge_not_found__/')
  if (status !== 404) throw new Error(`the not-found page rendered with HTTP ${status}`)
  writeAtomic(path.join(dir, '404.html'), html)
}

// ---------------------------------------------------------------- full and incremental runs

/** The release being built: removed again when the run fails. */
let building = null

function newReleaseDir() {
  const id = new Date().toISOString().replace(/[-:.]/g, '') + `-${process.pid}`
  building = { id, dir: path.join(SITE, 'releases', id) }
  return building
}

async function full(server, bid) {
  log(`reading the catalog from ${API} (at most ${MAX_PRODUCTS} products)`)
  const cat = await readCatalog(MAX_PRODUCTS)
  const products = Object.fromEntries(Object.entries(cat.products).filter(([sku]) => safeSegment(sku)))
  const categories = cat.categories.filter(safeSegment)
  const skipped = Object.keys(cat.products).length - Object.keys(products).length
  if (skipped) log(`${skipped} product(s) have a sku that is not a safe file name: the node serves their pages`)
  const rel = newReleaseDir()
  fs.mkdirSync(path.dirname(rel.dir), { recursive: true })
  fs.cpSync(path.join(OUTPUT, 'public'), rel.dir, { recursive: true })
  const routes = ['/', ...SHELLS, ...categories.map(categoryRoute), ...Object.keys(products).map(productRoute)]
  const missing = new Set(await renderAll(server, rel.dir, routes))
  await render404(server, rel.dir)
  for (const r of missing) {
    if (r === '/' || SHELLS.includes(r)) throw new Error(`page ${r} rendered as 404`)
    log(`${r} vanished while generating: left out`)
  }
  const manifest = {
    build: bid,
    products: Object.fromEntries(Object.entries(products).filter(([sku]) => !missing.has(productRoute(sku)))),
    categories: categories.filter((c) => !missing.has(categoryRoute(c))),
  }
  return { rel, manifest, pages: routes.length - missing.size }
}

async function incremental(server, bid, currentDir, manifest) {
  const rel = newReleaseDir()
  fs.mkdirSync(path.dirname(rel.dir), { recursive: true })
  execFileSync('cp', ['-al', currentDir, rel.dir]) // hard links: fast, and no space for unchanged files
  const cats = new Set()
  const routes = ['/']
  for (const sku of SKUS) {
    if (!safeSegment(sku)) {
      log(`sku '${sku}' is not a safe file name: the node serves its page`)
      continue
    }
    const old = manifest.products[sku]
    if (old !== undefined) cats.add(old)
    const p = await apiGet(`/api/v1/products/${encodeURIComponent(sku)}`)
    if (!p) {
      delete manifest.products[sku]
      fs.rmSync(path.join(rel.dir, 'p', sku), { recursive: true, force: true })
      log(`${sku} no longer exists: its page is removed`)
      continue
    }
    if (safeSegment(p.category)) cats.add(p.category)
    if (old === undefined && Object.keys(manifest.products).length >= MAX_PRODUCTS) {
      log(`${sku}: over --max-products=${MAX_PRODUCTS}, the node serves its page`)
      continue
    }
    manifest.products[sku] = p.category
    routes.push(productRoute(sku))
  }
  for (const c of cats) routes.push(categoryRoute(c))
  const missing = new Set(await renderAll(server, rel.dir, routes))
  if (missing.has('/')) throw new Error('the home page rendered as 404')
  for (const sku of SKUS) {
    if (missing.has(productRoute(sku))) {
      delete manifest.products[sku]
      fs.rmSync(path.join(rel.dir, 'p', sku), { recursive: true, force: true })
    }
  }
  const known = new Set(manifest.categories)
  for (const c of cats) {
    if (missing.has(categoryRoute(c))) {
      known.delete(c)
      fs.rmSync(path.join(rel.dir, 'c', c), { recursive: true, force: true })
    } else known.add(c)
  }
  manifest.categories = [...known].sort()
  manifest.build = bid
  return { rel, manifest, pages: routes.length - missing.size }
}

/** Points SITE/current at `rel` (a rename of a temporary symlink) and drops old releases. */
function publish(rel) {
  const tmp = path.join(SITE, `.current-${process.pid}`)
  fs.rmSync(tmp, { force: true })
  fs.symlinkSync(path.join('releases', rel.id), tmp)
  fs.renameSync(tmp, path.join(SITE, 'current'))
  const dir = path.join(SITE, 'releases')
  const ids = fs.readdirSync(dir).sort()
  for (const id of ids.slice(0, Math.max(0, ids.length - KEEP))) {
    if (id !== rel.id) fs.rmSync(path.join(dir, id), { recursive: true, force: true })
  }
}

async function main() {
  const t0 = Date.now()
  fs.mkdirSync(SITE, { recursive: true })
  await lock()
  const bid = buildId()
  let currentDir = null
  let manifest = null
  if (SKUS) {
    try {
      currentDir = fs.realpathSync(path.join(SITE, 'current'))
      manifest = JSON.parse(fs.readFileSync(path.join(currentDir, MANIFEST), 'utf8'))
    } catch {
      currentDir = null
    }
    if (!currentDir) log('no current release: a full generation instead')
    else if (manifest.build !== bid) {
      log('the current release comes from another build: a full generation instead')
      currentDir = null
    }
  }
  const server = await startRenderer()
  let result
  try {
    result = currentDir ? await incremental(server, bid, currentDir, manifest) : await full(server, bid)
  } catch (e) {
    const errs = server.lastErrors().trim()
    throw new Error(errs ? `${e.message}\n  (Nuxt server: ${errs.split('\n').slice(-3).join(' | ')})` : e.message)
  } finally {
    server.stop()
  }
  const { rel, manifest: m, pages } = result
  writeAtomic(path.join(rel.dir, 'sitemap.xml'), sitemap(m))
  writeAtomic(path.join(rel.dir, 'robots.txt'), robots())
  writeAtomic(path.join(rel.dir, MANIFEST), JSON.stringify(m))
  publish(rel)
  building = null
  const what = currentDir ? `incremental (${SKUS.join(',')})` : 'full'
  log(
    `release ${rel.id} is live: ${what}, ${pages} page(s) rendered, ${Object.keys(m.products).length} products, ` +
      `${m.categories.length} categories, ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  )
}

// A run that stops early removes its unfinished release (the renderer and the lock go on exit too).
process.on('exit', () => building && fs.rmSync(building.dir, { recursive: true, force: true }))
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => die(`generate stopped by ${sig} (${SITE}/current is unchanged)`))
main().catch((e) => die(`generate failed: ${e.message} (${SITE}/current is unchanged)`))
