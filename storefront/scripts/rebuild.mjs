#!/usr/bin/env node
// Keeps the generated storefront in step with the catalog: reads the Redis stream <prefix>catalog
// (one entry per committed product upsert: fields event_id, key = sku, payload), collects the
// changed skus for at most 2 s after the first one, and runs generate.mjs --skus for them.
//
//   node storefront/scripts/rebuild.mjs --api=URL --site=DIR --redis=redis://HOST:PORT/DB
//        [--prefix=surge:] [--base-url=URL] [--max-products=N]
//
// Long-running; speaks RESP over node:net (no client library); reconnects with backoff. The last
// stream id whose rebuild went live is kept in DIR/.rebuild-stream-id, so a restart resumes after
// it; with no such file it starts at the stream's end (the full generate at start-up covers the
// past). A failed rebuild is retried (5 s later) together with what arrived meanwhile. One log
// line per rebuild: the skus and the time taken.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { die, makeLogger, parseArgs } from './lib.mjs'

const USAGE =
  'usage: node storefront/scripts/rebuild.mjs --api=URL --site=DIR --redis=redis://HOST:PORT/DB [--prefix=surge:] [--base-url=URL] [--max-products=N]'
const args = parseArgs(process.argv.slice(2), ['api', 'site', 'redis', 'prefix', 'base-url', 'max-products'], USAGE)
if (!args.api || !args.site || !args.redis) die(`--api, --site and --redis are required\n${USAGE}`)
const STREAM = `${args.prefix ?? 'surge:'}catalog`
const SITE = path.resolve(args.site)
const STATE = path.join(SITE, '.rebuild-stream-id')
const GENERATE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'generate.mjs')
const WINDOW_MS = 2000
const log = makeLogger('rebuild')

let redisUrl
try {
  redisUrl = new URL(args.redis)
  if (redisUrl.protocol !== 'redis:') throw new Error('not redis:')
} catch {
  die(`--redis must be redis://[:password@]host:port/db, not '${args.redis}'`)
}

// ---------------------------------------------------------------- a minimal RESP2 client

/** Parses one RESP value of `buf` at `pos`: [value, next] or null when more bytes are needed. */
function parse(buf, pos) {
  const eol = buf.indexOf('\r\n', pos)
  if (eol < 0) return null
  const type = String.fromCharCode(buf[pos])
  const line = buf.toString('utf8', pos + 1, eol)
  const next = eol + 2
  switch (type) {
    case '+':
      return [line, next]
    case '-':
      return [new Error(line), next]
    case ':':
      return [Number(line), next]
    case '$': {
      const n = Number(line)
      if (n < 0) return [null, next]
      if (buf.length < next + n + 2) return null
      return [buf.toString('utf8', next, next + n), next + n + 2]
    }
    case '*': {
      const n = Number(line)
      if (n < 0) return [null, next]
      const out = []
      let p = next
      for (let i = 0; i < n; i++) {
        const r = parse(buf, p)
        if (!r) return null
        out.push(r[0])
        p = r[1]
      }
      return [out, p]
    }
    default:
      throw new Error(`bad RESP type byte '${type}'`)
  }
}

class Redis {
  /** Connects (and AUTH / SELECT from the URL); rejects on failure. */
  static async connect(url) {
    const r = new Redis()
    await new Promise((resolve, reject) => {
      r.sock = net.connect({ host: url.hostname || '127.0.0.1', port: Number(url.port || 6379) }, resolve)
      r.sock.once('error', reject)
    })
    r.sock.on('error', (e) => r.fail(e))
    r.sock.on('close', () => r.fail(new Error('connection closed')))
    r.sock.on('data', (d) => r.feed(d))
    if (url.password) {
      const user = decodeURIComponent(url.username)
      const pass = decodeURIComponent(url.password)
      await r.command(...(user ? ['AUTH', user, pass] : ['AUTH', pass]))
    }
    const db = url.pathname.replace(/^\//, '')
    if (db && db !== '0') await r.command('SELECT', db)
    return r
  }

  constructor() {
    this.buf = Buffer.alloc(0)
    this.waiting = []
    this.dead = null
  }

  feed(d) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d
    let pos = 0
    for (;;) {
      let r
      try {
        r = parse(this.buf, pos)
      } catch (e) {
        return this.fail(e)
      }
      if (!r) break
      pos = r[1]
      const w = this.waiting.shift()
      if (!w) continue
      r[0] instanceof Error ? w.reject(r[0]) : w.resolve(r[0])
    }
    this.buf = this.buf.subarray(pos)
  }

  fail(e) {
    if (!this.dead) this.dead = e
    this.sock?.destroy()
    for (const w of this.waiting.splice(0)) w.reject(e)
  }

  /** Sends one command; resolves to its reply. Fails (and closes) when no reply in `timeoutMs`. */
  command(...argv) {
    if (this.dead) return Promise.reject(this.dead)
    const timeoutMs = 30000
    let payload = `*${argv.length}\r\n`
    for (const a of argv.map(String)) payload += `$${Buffer.byteLength(a)}\r\n${a}\r\n`
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error('no reply from Redis in 30 s')), timeoutMs)
      const done = (f) => (v) => {
        clearTimeout(timer)
        f(v)
      }
      this.waiting.push({ resolve: done(resolve), reject: done(reject) })
      this.sock.write(payload)
    })
  }

  close() {
    this.dead = new Error('closed')
    this.sock?.destroy()
  }
}

// ---------------------------------------------------------------- the rebuild loop

/** The stream id to resume after: the saved one, else the stream's current end. */
async function startId(r) {
  try {
    const id = fs.readFileSync(STATE, 'utf8').trim()
    if (/^\d+-\d+$/.test(id)) return id
  } catch {}
  const last = await r.command('XREVRANGE', STREAM, '+', '-', 'COUNT', '1')
  return last?.length ? last[0][0] : '0-0'
}

/** The skus of XREAD entries ([[id, [field, value, ...]], ...]). */
function skusOf(entries, into) {
  for (const [, fields] of entries) {
    const f = {}
    for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1]
    let sku = f.key
    if (!sku && f.payload) {
      try {
        sku = JSON.parse(f.payload).sku
      } catch {}
    }
    if (sku) into.add(sku)
  }
}

/** Runs generate.mjs --skus; resolves to its last log line, rejects with its last lines. */
function generate(skus) {
  const argv = [GENERATE, `--api=${args.api}`, `--site=${args.site}`, `--skus=${[...skus].join(',')}`]
  if (args['base-url']) argv.push(`--base-url=${args['base-url']}`)
  if (args['max-products']) argv.push(`--max-products=${args['max-products']}`)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d) => (err = (err + d).slice(-4000)))
    child.on('exit', (code) => {
      const lines = err.trim().split('\n')
      code === 0 ? resolve(lines.at(-1)) : reject(new Error(lines.slice(-3).join(' | ')))
    })
  })
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function main() {
  let r = null
  let lastId = null
  let backoff = 1000
  const pending = new Set()
  let firstSeen = 0
  for (;;) {
    try {
      if (!r || r.dead) {
        r?.close()
        r = await Redis.connect(redisUrl)
        if (!lastId) {
          lastId = await startId(r)
          log(`watching ${STREAM} on ${redisUrl.host} after id ${lastId} for ${SITE}`)
        } else if (backoff > 1000) log(`connected to Redis again, resuming after ${lastId}`)
        backoff = 1000
      }
      // Wait for a change (or, with changes pending, for the rest of the window).
      const wait = pending.size ? Math.max(1, WINDOW_MS - (Date.now() - firstSeen)) : 5000
      if (!pending.size || Date.now() - firstSeen < WINDOW_MS) {
        const reply = await r.command('XREAD', 'COUNT', '1000', 'BLOCK', wait, 'STREAMS', STREAM, lastId)
        for (const [, entries] of reply ?? []) {
          if (!pending.size && entries.length) firstSeen = Date.now()
          skusOf(entries, pending)
          if (entries.length) lastId = entries.at(-1)[0]
        }
        if (!pending.size || Date.now() - firstSeen < WINDOW_MS) continue
      }
      const skus = [...pending].sort()
      const t0 = Date.now()
      try {
        const last = await generate(skus)
        pending.clear()
        fs.writeFileSync(STATE, `${lastId}\n`)
        log(
          `${skus.length} sku(s) ${skus.join(',')} live in ${((Date.now() - t0) / 1000).toFixed(1)} s ` +
            `(${((Date.now() - firstSeen) / 1000).toFixed(1)} s after the first change; ${last.replace(/^generate: /, '')})`,
        )
      } catch (e) {
        log(`rebuild of ${skus.join(',')} failed, retrying in 5 s: ${e.message}`)
        await sleep(5000)
        firstSeen = Date.now() // collect what arrived meanwhile for one more window, then retry
      }
    } catch (e) {
      if (backoff === 1000) log(`Redis at ${redisUrl.host}: ${e.message}; reconnecting`)
      r?.close()
      r = null
      await sleep(backoff)
      backoff = Math.min(10000, backoff * 2)
    }
  }
}

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0))
main()
