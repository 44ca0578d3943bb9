#!/usr/bin/env node
// A small preview server for a generated site (development only; the edge is nginx, scripts/edge.sh):
// static files from DIR/current (dir/ -> dir/index.html, else 404.html; gzip) and /api/ proxied to --api,
// streamed (so Server-Sent Events pass through).
//
//   node storefront/scripts/serve.mjs --site=DIR --api=URL [--port=8090] [--host=127.0.0.1]
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import zlib from 'node:zlib'
import { die, intOption, makeLogger, parseArgs } from './lib.mjs'

const USAGE = 'usage: node storefront/scripts/serve.mjs --site=DIR --api=URL [--port=8090] [--host=127.0.0.1]'
const args = parseArgs(process.argv.slice(2), ['site', 'api', 'port', 'host'], USAGE)
if (!args.site || !args.api) die(`--site and --api are required\n${USAGE}`)
const api = new URL(args.api)
const port = intOption(args, 'port', 8090)
const host = args.host ?? '127.0.0.1'
const log = makeLogger('serve')
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.xml': 'application/xml',
  '.txt': 'text/plain; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
}

function proxy(req, res) {
  const headers = { ...req.headers, host: api.host, 'x-forwarded-for': req.socket.remoteAddress }
  const up = http.request(
    { host: api.hostname, port: api.port || 80, path: req.url, method: req.method, headers },
    (r) => {
      res.writeHead(r.statusCode, r.headers)
      r.pipe(res)
    },
  )
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' })
    res.end('{"error":{"code":"unavailable","message":"upstream down"}}')
  })
  res.on('close', () => up.destroy())
  req.pipe(up)
}

function serveFile(req, res) {
  const root = fs.realpathSync(path.join(args.site, 'current'))
  let rel
  try {
    rel = decodeURIComponent(new URL(req.url, 'http://x').pathname)
  } catch {
    rel = '/'
  }
  let file = path.join(root, path.normalize(rel))
  if (!file.startsWith(root)) file = path.join(root, '404.html')
  if (rel.endsWith('/')) file = path.join(file, 'index.html')
  else if (fs.existsSync(path.join(file, 'index.html'))) {
    res.writeHead(301, { location: `${rel}/` })
    return res.end()
  }
  let status = 200
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
    file = path.join(root, '404.html')
    status = 404
  }
  const cache = rel.startsWith('/_nuxt/') ? 'public, max-age=31536000, immutable' : 'public, max-age=30'
  const type = TYPES[path.extname(file)] ?? 'application/octet-stream'
  const gzip = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '') && type !== 'application/octet-stream'
  res.writeHead(status, { 'content-type': type, 'cache-control': cache, ...(gzip ? { 'content-encoding': 'gzip', vary: 'Accept-Encoding' } : {}) })
  const body = fs.createReadStream(file)
  gzip ? body.pipe(zlib.createGzip()).pipe(res) : body.pipe(res)
}

http
  .createServer((req, res) => (req.url.startsWith('/api/') ? proxy(req, res) : serveFile(req, res)))
  .listen(port, host, () => log(`http://${host}:${port}/ serving ${args.site}/current, /api/ -> ${api.origin}`))
