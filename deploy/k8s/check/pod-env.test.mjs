#!/usr/bin/env node
// The dev overlay's pods, emulated as processes (ctest: k8s_pod_env, labels deploy and
// integration): two real surge-node members get exactly the environment the rendered StatefulSet
// gives container surge-node — the surge-settings ConfigMap, the downward API (node.id = pod
// name, cluster.advertise = pod IP, here 127.0.0.1), the generated Secrets, the cluster TLS
// Secret's files written as the kubelet mounts them — except what one host cannot share between
// two pods or what names in-cluster services: the three ports (free loopback ports), pg.url and
// redis.url (the test PostgreSQL and Redis: a fresh database and key prefix), the TLS files'
// directory and SURGECTL_ADMIN (the pod's own admin port). Then:
//   - both become ready, form one cluster over mutual TLS with the shared member certificate, and
//     register their advertised address (not 0.0.0.0);
//   - carts on one member hold stock of SKUs owned by both (forwarding across TLS);
//   - under a bounded load through the other member, the StatefulSet's preStop command runs
//     verbatim in the first member's environment (surgectl drain, then sleep), which must leave
//     it owning no shard, and SIGTERM stops it cleanly (exit 0);
//   - no request of the load fails, and no SKU holds more than it has.
// Prints the preStop's and the stop's durations (figures, not assertions) and "N passed, N
// failed". Usage: node pod-env.test.mjs SURGE_NODE SURGECTL ARTIFACT_DIR
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { renderAll } from "./check.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../..");
const { freePort, http, waitFor, pgUrl, redisUrl } = await import(path.join(repo, "tests/browser/harness.mjs"));

const [nodeBinary, surgectl, artifacts] = process.argv.slice(2);
if (!nodeBinary || !surgectl || !artifacts) {
  console.error("usage: node pod-env.test.mjs SURGE_NODE SURGECTL ARTIFACT_DIR");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

let passed = 0;
let failed = 0;
const check = (ok, what, detail = "") => {
  console.log(`${ok ? "ok" : "not ok"} - ${what}${detail ? ": " + detail : ""}`);
  ok ? passed++ : failed++;
  return ok;
};

const started = Date.now();
const phase = (what) => console.log(`# ${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);

const tag = `${process.pid}_${randomBytes(4).toString("hex")}`;
const db = `surge_k8s_${tag}`;
const prefix = `surge_t:k8s:${tag}:`;
const psql = (sql) => execFileSync("psql", [pgUrl, "-v", "ON_ERROR_STOP=1", "-qc", sql], { stdio: ["ignore", "ignore", "pipe"] });
const withDatabase = (url, name) => {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
};

const r = renderAll();
phase("rendered");
const dev = r.rendered.dev;
const sts = dev.find((o) => o.kind === "StatefulSet" && o.metadata.name === "surge");
const container = sts.spec.template.spec.containers.find((c) => c.name === "surge-node");
const secretValue = (name, key) => {
  const s = dev.find((o) => o.kind === "Secret" && o.metadata.name === name);
  return Buffer.from(s.data[key].replace(/\s/g, ""), "base64").toString();
};

/// The environment of container surge-node in pod `pod`, with the substitutions above.
function podEnv(pod, ports) {
  const env = {};
  for (const ref of container.envFrom || []) {
    Object.assign(env, dev.find((o) => o.kind === "ConfigMap" && o.metadata.name === ref.configMapRef.name).data);
  }
  for (const e of container.env || []) {
    if (e.value !== undefined) {
      env[e.name] = String(e.value);
    } else if (e.valueFrom.fieldRef) {
      env[e.name] = { "metadata.name": pod, "status.podIP": "127.0.0.1" }[e.valueFrom.fieldRef.fieldPath];
    } else if (e.valueFrom.secretKeyRef) {
      env[e.name] = secretValue(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
    }
  }
  // The TLS Secret, mounted: its keys as files.
  const mount = container.volumeMounts.find((m) => m.name === "cluster-tls");
  const vol = sts.spec.template.spec.volumes.find((v) => v.name === mount.name);
  const tlsDir = path.join(artifacts, `${pod}-tls`);
  mkdirSync(tlsDir, { recursive: true });
  const tls = dev.find((o) => o.kind === "Secret" && o.metadata.name === vol.secret.secretName);
  for (const key of Object.keys(tls.data)) {
    writeFileSync(path.join(tlsDir, key), secretValue(tls.metadata.name, key), { mode: 0o600 });
  }
  for (const [k, v] of Object.entries(env)) {
    if (v.startsWith(`${mount.mountPath}/`)) {
      env[k] = path.join(tlsDir, v.slice(mount.mountPath.length + 1));
    }
  }
  Object.assign(env, {
    SURGE_HTTP_PORT: String(ports.http),
    SURGE_ADMIN_PORT: String(ports.admin),
    SURGE_CLUSTER_PORT: String(ports.cluster),
    SURGE_PG_URL: withDatabase(pgUrl, db),
    SURGE_REDIS_URL: redisUrl,
    SURGE_REDIS_PREFIX: prefix,
    SURGECTL_ADMIN: `http://127.0.0.1:${ports.admin}`,
    PATH: `${path.dirname(surgectl)}:/usr/local/bin:/usr/bin:/bin`,
  });
  return env;
}

const pods = new Map(); // name -> {proc, ports, env, log}
async function startPod(name) {
  const ports = { http: await freePort(), admin: await freePort(), cluster: await freePort() };
  const env = podEnv(name, ports);
  const log = path.join(artifacts, `${name}.log`);
  const fd = openSync(log, "w");
  const proc = spawn(nodeBinary, [], { env, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
  pods.set(name, { proc, ports, env, log, exited });
}

const token = secretValue(container.env.find((e) => e.name === "SURGE_ADMIN_TOKEN").valueFrom.secretKeyRef.name, "admin-token");
const admin = (pod, method, p, body) => http(pods.get(pod).ports.admin, method, p, { body, headers: { Authorization: `Bearer ${token}` } });

try {
  psql(`CREATE DATABASE ${db}`);
  await startPod("surge-0");
  await startPod("surge-1");
  for (const [name, p] of pods) {
    await waitFor(`${name} /readyz 200 (log ${p.log})`, async () => {
      if (p.proc.exitCode !== null) {
        throw new Error(`${name} exited at start:\n${readFileSync(p.log, "utf8").slice(-3000)}`);
      }
      return (await http(p.ports.http, "GET", "/readyz")).status === 200;
    }, 90000, 200);
  }
  phase("both ready");
  check(true, "both pods' surge-node start with the StatefulSet's environment and become ready");

  const cluster = await waitFor("two members up with shards", async () => {
    const c = await admin("surge-0", "GET", "/admin/v1/cluster");
    const up = c.status === 200 && c.body.nodes.filter((n) => n.status === "up" && n.shards > 0);
    return up && up.length === 2 ? c.body : null;
  }, 30000, 200);
  for (const n of cluster.nodes) {
    const p = pods.get(n.node_id);
    check(Boolean(p) && n.address === `127.0.0.1:${p.ports.cluster}`, `${n.node_id} registers its advertised address`, n.address);
  }

  // Stock on SKUs owned by both members; a cart on surge-1 holds one of each.
  const skus = Array.from({ length: 16 }, (_, i) => `k8s-${i}`);
  for (const sku of skus) {
    const put = await admin("surge-0", "PUT", `/admin/v1/products/${sku}`, { name: sku, description: "d", category: "c", price_cents: 100, currency: "EUR", per_customer_limit: 0 });
    const stock = await admin("surge-0", "POST", `/admin/v1/products/${sku}/stock`, { set: 1000 });
    if (put.status !== 200 || stock.status !== 200) {
      throw new Error(`cannot stock ${sku}: ${put.status} ${stock.status}`);
    }
  }
  const cart = await http(pods.get("surge-1").ports.http, "POST", "/api/v1/carts", { body: {} });
  let held = 0;
  for (const sku of skus) {
    const p = await http(pods.get("surge-1").ports.http, "PUT", `/api/v1/carts/${cart.body.cart_id}/items/${sku}`, { body: { qty: 1 } });
    held += p.status === 200 ? 1 : 0;
  }
  const owners = new Set();
  for (const sku of skus) {
    const s = await admin("surge-1", "GET", `/admin/v1/products/${sku}/stock`);
    if (s.status === 200 && s.body.held === 1) {
      owners.add(s.body.owner_node);
    }
  }
  check(held === skus.length && owners.size === 2, "holds on both members' SKUs through one member (forwarding over mutual TLS)", `${held}/${skus.length} held, owners ${[...owners].join(",")}`);

  // A bounded load through surge-0 while surge-1 leaves as a terminating pod does.
  let stop = false;
  const codes = new Map();
  const load = (async () => {
    const c = await http(pods.get("surge-0").ports.http, "POST", "/api/v1/carts", { body: {} });
    for (let i = 0; i < 2000 && !stop; i++) {
      const sku = skus[i % skus.length];
      const res = await http(pods.get("surge-0").ports.http, "PUT", `/api/v1/carts/${c.body.cart_id}/items/${sku}`, { body: { qty: i % 3 }, ms: 15000 });
      codes.set(res.status, (codes.get(res.status) || 0) + 1);
      await sleep(20);
    }
  })();
  await sleep(500);

  const hook = container.lifecycle.preStop.exec.command;
  phase("load running; preStop");
  const t0 = Date.now();
  const pre = spawnSync(hook[0], hook.slice(1), { env: pods.get("surge-1").env, encoding: "utf8", timeout: 120000 });
  const preSeconds = (Date.now() - t0) / 1000;
  writeFileSync(path.join(artifacts, "prestop.log"), `${pre.stdout}${pre.stderr}`);
  check(pre.status === 0, "the preStop command runs verbatim and exits 0", `exit ${pre.status}, ${pre.stderr.trim().split("\n").slice(-1)[0] || ""}`);
  const after = await admin("surge-0", "GET", "/admin/v1/cluster");
  const s1 = after.body.nodes.find((n) => n.node_id === "surge-1");
  check(s1 && s1.shards === 0, "after the preStop hook surge-1 owns no shard", s1 ? `${s1.status}, ${s1.shards} shards` : "absent");

  const t1 = Date.now();
  pods.get("surge-1").proc.kill("SIGTERM");
  const grace = sts.spec.template.spec.terminationGracePeriodSeconds;
  const exit = await Promise.race([pods.get("surge-1").exited, sleep((grace + 60) * 1000, null, { ref: false })]);
  const stopSeconds = (Date.now() - t1) / 1000;
  check(exit !== null && exit.code === 0, "SIGTERM stops surge-1 cleanly", exit ? `code ${exit.code} signal ${exit.signal}` : "did not stop");
  await sleep(500);
  stop = true;
  await load;
  const total = [...codes.values()].reduce((a, b) => a + b, 0);
  const bad = [...codes.entries()].filter(([c]) => c !== 200);
  check(total > 0 && bad.length === 0, "no request through the remaining member failed while the pod left", `${total} requests, codes ${JSON.stringify(Object.fromEntries(codes))}`);
  let over = 0;
  for (const sku of skus) {
    const s = await admin("surge-0", "GET", `/admin/v1/products/${sku}/stock`);
    if (s.status !== 200 || s.body.held + s.body.sold > s.body.on_hand) {
      over++;
    }
  }
  check(over === 0, "every SKU: held + sold <= on_hand, readable after the leave");
  console.log(`figures: preStop ${preSeconds.toFixed(1)} s (drain + sleep), SIGTERM to exit ${stopSeconds.toFixed(1)} s, terminationGracePeriodSeconds ${grace}`);
} catch (e) {
  check(false, "the run", e.stack || String(e));
} finally {
  phase("cleaning up");
  for (const p of pods.values()) {
    if (p.proc.exitCode === null && p.proc.signalCode === null) {
      p.proc.kill("SIGTERM");
      const done = await Promise.race([p.exited, sleep(30000, null, { ref: false })]);
      if (!done) {
        p.proc.kill("SIGKILL");
        await p.exited;
      }
    }
  }
  phase("members stopped");
  try {
    psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  } catch (e) {
    console.error(`cannot drop ${db}: ${e.stderr ?? e}`);
  }
  try {
    const keys = execFileSync("redis-cli", ["-u", redisUrl, "--scan", "--pattern", `${prefix}*`], { encoding: "utf8" }).split("\n").filter(Boolean);
    for (let i = 0; i < keys.length; i += 500) {
      execFileSync("redis-cli", ["-u", redisUrl, "DEL", ...keys.slice(i, i + 500)], { stdio: "ignore" });
    }
  } catch (e) {
    console.error(`cannot delete the Redis keys ${prefix}*: ${e}`);
  }
  r.cleanup();
  phase("done");
}
console.log(`${passed} passed, ${failed} failed`);
// Exit now: fetch's kept-alive connections to the stopped members would hold the process a while.
process.exit(failed === 0 && passed > 0 ? 0 : 1);
