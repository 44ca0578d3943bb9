// What the console's browser test starts itself, as tests/integration/node_process.cpp does for
// the C++ tests: a fresh PostgreSQL database and Redis key prefix (from SURGE_TEST_PG_URL and
// SURGE_TEST_REDIS_URL), surge-paysim with two gateways on port 0, and surge-node members on
// free loopback ports sharing that database and prefix. Every process's output goes to a log
// file under the artefact directory; cleanup() kills what is left and drops the database and keys.

import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { openSync, readFileSync, mkdirSync, closeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

export const pgUrl = process.env.SURGE_TEST_PG_URL ?? 'postgresql://surge@127.0.0.1:5432/postgres';
export const redisUrl = process.env.SURGE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

/// A loopback port nothing listens on right now.
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/// `url` (a libpq URI) naming database `db`.
function withDatabase(url, db) {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/// One HTTP call on 127.0.0.1:`port`, bounded by `ms`: {status, body (parsed JSON or text)};
/// status 0 when nothing answered.
export async function http(port, method, path, { body, headers = {}, ms = 5000 } = {}) {
  const h = { ...headers };
  if (body !== undefined && !h['Content-Type']) {
    h['Content-Type'] = 'application/json';
  }
  try {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, {
      method, headers: h, body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
      signal: AbortSignal.timeout(ms),
    });
    const text = await r.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON
    }
    return { status: r.status, body: parsed };
  } catch {
    return { status: 0, body: null };
  }
}

/// Calls `f` until it returns a truthy value (returned) or `ms` pass (throws naming `what`).
export async function waitFor(what, f, ms = 10000, every = 100) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) {
      return v;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }
    await sleep(every);
  }
}

export class Harness {
  /// `nodeArgs`: extra command-line settings every member gets (after the harness's own).
  constructor({ nodeBinary, paysimBinary, logDir, nodeArgs = [] }) {
    this.nodeBinary = nodeBinary;
    this.nodeArgs = nodeArgs;
    this.paysimBinary = paysimBinary;
    this.logDir = logDir;
    this.tag = `${process.pid}_${randomBytes(4).toString('hex')}`;
    this.db = `surge_browser_${this.tag}`;
    this.prefix = `surge_t:browser:${this.tag}:`;
    this.token = randomBytes(24).toString('hex');
    this.nodes = new Map(); // id -> {proc, http, admin, cluster, log}
    this.paysim = null;
    mkdirSync(logDir, { recursive: true });
  }

  psql(sql) {
    execFileSync('psql', [pgUrl, '-v', 'ON_ERROR_STOP=1', '-qc', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  async setUp() {
    this.psql(`CREATE DATABASE ${this.db}`);
    this.dbCreated = true;
  }

  /// surge-paysim with gateways alpha and beta; resolves once both answer /healthz.
  async startPaysim() {
    const log = `${this.logDir}/paysim.log`;
    const fd = openSync(log, 'w');
    const proc = spawn(this.paysimBinary, ['--gateways=alpha=127.0.0.1:0,beta=127.0.0.1:0'], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.paysim = { proc, ports: {}, log };
    await waitFor('surge-paysim to listen', () => {
      for (const line of readFileSync(log, 'utf8').split('\n')) {
        const m = /^paysim: (\w+) listening on 127\.0\.0\.1:(\d+)/.exec(line);
        if (m) {
          this.paysim.ports[m[1]] = Number(m[2]);
        }
      }
      if (proc.exitCode !== null) {
        throw new Error(`surge-paysim exited at start:\n${readFileSync(log, 'utf8')}`);
      }
      return this.paysim.ports.alpha && this.paysim.ports.beta;
    });
    for (const p of Object.values(this.paysim.ports)) {
      await waitFor('surge-paysim /healthz', async () => (await http(p, 'GET', '/healthz')).status === 200);
    }
  }

  /// Starts member `id` (new ports on its first start) and waits until its /readyz is 200.
  async startNode(id) {
    let n = this.nodes.get(id);
    if (!n) {
      n = { http: await freePort(), admin: await freePort(), cluster: await freePort(), log: `${this.logDir}/${id}.log` };
      this.nodes.set(id, n);
    }
    const p = this.paysim.ports;
    const args = [
      `--node.id=${id}`, `--http.port=${n.http}`, `--admin.port=${n.admin}`, `--cluster.port=${n.cluster}`,
      `--pg.url=${withDatabase(pgUrl, this.db)}`, `--redis.url=${redisUrl}`, `--redis.prefix=${this.prefix}`,
      `--admin.token=${this.token}`, '--limits.ip_rate=0', '--log.level=info',
      `--payments.gateways=alpha=json+http://127.0.0.1:${p.alpha},beta=form+http://127.0.0.1:${p.beta}`,
      ...this.nodeArgs,
    ];
    // The node refuses unknown SURGE_* variables; it gets none.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SURGE_')));
    const fd = openSync(n.log, 'a');
    n.proc = spawn(this.nodeBinary, args, { stdio: ['ignore', fd, fd], env });
    closeSync(fd);
    await waitFor(`${id} to be ready`, async () => {
      if (n.proc.exitCode !== null) {
        throw new Error(`${id} exited at start:\n${this.tail(id)}`);
      }
      return (await http(n.http, 'GET', '/readyz', { ms: 1000 })).status === 200;
    }, 30000, 50);
    return n;
  }

  tail(id, lines = 30) {
    try {
      return readFileSync(this.nodes.get(id).log, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /// SIGKILL of member `id`; resolves when it is gone.
  async kill(id) {
    const { proc } = this.nodes.get(id);
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGKILL');
      await gone;
    }
  }

  /// An admin API call on member `id` with the token.
  admin(id, method, path, body) {
    return http(this.nodes.get(id).admin, method, path, { body, headers: { Authorization: `Bearer ${this.token}` } });
  }

  /// A storefront call on member `id`.
  shop(id, method, path, body, headers = {}) {
    return http(this.nodes.get(id).http, method, path, { body, headers });
  }

  async cleanup() {
    const exits = [];
    for (const n of this.nodes.values()) {
      if (n.proc && n.proc.exitCode === null && n.proc.signalCode === null) {
        exits.push(new Promise((resolve) => n.proc.once('exit', resolve)));
        n.proc.kill('SIGKILL');
      }
    }
    if (this.paysim && this.paysim.proc.exitCode === null) {
      exits.push(new Promise((resolve) => this.paysim.proc.once('exit', resolve)));
      this.paysim.proc.kill('SIGTERM');
    }
    await Promise.race([Promise.all(exits), sleep(10000)]);
    if (this.dbCreated) {
      try {
        this.psql(`DROP DATABASE IF EXISTS ${this.db} WITH (FORCE)`);
      } catch (e) {
        console.error(`cannot drop ${this.db}: ${e.stderr ?? e}`);
      }
    }
    try {
      const keys = execFileSync('redis-cli', ['-u', redisUrl, '--scan', '--pattern', `${this.prefix}*`], { encoding: 'utf8' })
        .split('\n').filter(Boolean);
      for (let i = 0; i < keys.length; i += 500) {
        execFileSync('redis-cli', ['-u', redisUrl, 'DEL', ...keys.slice(i, i + 500)], { stdio: 'ignore' });
      }
    } catch (e) {
      console.error(`cannot delete the Redis keys ${this.prefix}*: ${e}`);
    }
  }
}
