#!/usr/bin/env node
// The checks must reject what they are meant to reject (ctest: k8s_manifests_selftest).
//
//   node deploy/k8s/check/selftest.mjs
//
// Renders prod and monitoring with `kubectl kustomize`, checks that the render passes as it is,
// then breaks one thing at a time in a copy (an unknown field, a missing probe, a PDB that
// selects other pods, ...) and checks that the problems name it. Last, the committed fixture
// fixtures/broken-statefulset.yaml through check.mjs's command line: exit 1 and both of its
// faults named. Prints "ok"/"not ok" per case and "N passed, N failed"; exit 1 on any failure.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import * as lib from "./lib.mjs";
import { checkOverlay, exported, parseAll } from "./check.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const k8s = path.resolve(here, "..");

function render(dir) {
  try {
    return execFileSync("kubectl", ["kustomize", path.join(k8s, dir)], { encoding: "utf8", timeout: 120000, stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    console.error(e.code === "ENOENT" ? "selftest: ERROR: kubectl not found (deploy/k8s/README.md)" : `selftest: ERROR: kubectl kustomize ${dir}: ${e.stderr || e.message}`);
    process.exit(2);
  }
  return "";
}

const prod = parseAll(render("prod"), "prod");
const monitoring = parseAll(render("monitoring"), "monitoring");
const template = parseAll(fs.readFileSync(path.join(k8s, "prod/secrets.template.yaml"), "utf8"), "template");
const adapterConfig = YAML.parse(monitoring.find((o) => o.kind === "ConfigMap").data["config.yaml"]);

const one = (objs, kind, name) => objs.find((o) => o.kind === kind && (!name || o.metadata.name === name));
const sts = (objs) => one(objs, "StatefulSet", "surge");
const node = (objs) => sts(objs).spec.template.spec.containers.find((c) => c.name === "surge-node");
const settings = (objs) => objs.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("surge-settings")).data;
const envVar = (objs, name) => node(objs).env.find((e) => e.name === name);

// [name, mutation of a copy of prod's objects, what a problem must say]
const cases = [
  ["unknown field in a container", (o) => { node(o).resourcez = { cpu: "1" }; }, /unknown field 'spec\.template\.spec\.containers\[0\]\.resourcez'/],
  ["unknown field deep in a probe", (o) => { node(o).readinessProbe.httpGet.paht = "/readyz"; }, /unknown field 'spec\.template\.spec\.containers\[0\]\.readinessProbe\.httpGet\.paht'/],
  ["unknown field in a ServiceMonitor", (o) => { one(o, "ServiceMonitor").spec.endpoints[0].bearerTokenSecrett = {}; }, /ServiceMonitor\/surge: unknown field 'spec\.endpoints\[0\]\.bearerTokenSecrett'/],
  ["ill-typed field", (o) => { sts(o).spec.minReadySeconds = "ten"; }, /StatefulSet\/surge: schema: .*minReadySeconds must be integer/],
  ["no startupProbe", (o) => { delete node(o).startupProbe; }, /container 'surge-node' has no startupProbe/],
  ["no livenessProbe", (o) => { delete node(o).livenessProbe; }, /container 'surge-node' has no livenessProbe/],
  ["readiness not /readyz", (o) => { node(o).readinessProbe.httpGet.path = "/healthz"; }, /readinessProbe is not GET \/readyz/],
  ["no resource limits", (o) => { delete node(o).resources.limits; }, /has no resources\.limits\.cpu/],
  ["writable root filesystem", (o) => { node(o).securityContext.readOnlyRootFilesystem = false; }, /has no readOnlyRootFilesystem: true/],
  ["may run as root", (o) => { delete node(o).securityContext.runAsNonRoot; delete sts(o).spec.template.spec.securityContext.runAsNonRoot; }, /is not runAsNonRoot: true/],
  ["capabilities kept", (o) => { delete node(o).securityContext.capabilities; }, /does not drop ALL capabilities/],
  ["no preStop", (o) => { delete node(o).lifecycle; }, /has no preStop hook/],
  ["preStop that does not drain", (o) => { node(o).lifecycle.preStop.exec.command = ["sleep", "5"]; }, /preStop hook does not drain/],
  ["preStop without a wait", (o) => { node(o).lifecycle.preStop.exec.command = ["surgectl", "drain", "x", "--wait=20s"]; }, /does not wait longer than the readiness period/],
  ["grace period too short", (o) => { sts(o).spec.template.spec.terminationGracePeriodSeconds = 30; }, /terminationGracePeriodSeconds 30 is not longer than cluster\.leave_timeout \(15s\) \+ the preStop hook \(25s\)/],
  ["leave timeout outgrows the grace period", (o) => { settings(o).SURGE_CLUSTER_LEAVE_TIMEOUT = "1m"; }, /terminationGracePeriodSeconds 60 is not longer than cluster\.leave_timeout \(60s\)/],
  ["cluster TLS off", (o) => { settings(o).SURGE_CLUSTER_TLS = "false"; }, /cluster\.tls \(SURGE_CLUSTER_TLS\) is not true/],
  ["TLS secret not mounted", (o) => { node(o).volumeMounts = node(o).volumeMounts.filter((m) => m.name !== "cluster-tls"); }, /SURGE_CLUSTER_TLS_CERT=\/etc\/surge\/tls\/tls\.crt is not in a mounted Secret volume/],
  ["TLS key missing from the Secret", (o) => { settings(o).SURGE_CLUSTER_TLS_CA = "/etc/surge/tls/ca.pem"; }, /Secret 'surge-cluster-tls' has no key 'ca\.pem'/],
  ["unknown setting", (o) => { settings(o).SURGE_HTTP_PROT = "8080"; }, /SURGE_HTTP_PROT names no setting of surge-node/],
  ["service links on", (o) => { delete sts(o).spec.template.spec.enableServiceLinks; }, /enableServiceLinks is not false/],
  ["node.id not the pod name", (o) => { envVar(o, "SURGE_NODE_ID").valueFrom.fieldRef.fieldPath = "spec.nodeName"; }, /SURGE_NODE_ID \(node\.id\) is not the pod name/],
  ["advertise not the pod IP", (o) => { node(o).env = node(o).env.filter((e) => e.name !== "SURGE_CLUSTER_ADVERTISE"); }, /SURGE_CLUSTER_ADVERTISE \(cluster\.advertise\) is not the pod IP/],
  ["cluster port bound to loopback", (o) => { settings(o).SURGE_CLUSTER_HOST = "127.0.0.1"; }, /cluster\.host \(SURGE_CLUSTER_HOST\) is not 0\.0\.0\.0/],
  ["PDB with another selector", (o) => { one(o, "PodDisruptionBudget").spec.selector.matchLabels = { "app.kubernetes.io/name": "surge" }; }, /PodDisruptionBudget\/surge: selector is not the StatefulSet's selector/],
  ["PDB selecting no Surge pod", (o) => { one(o, "PodDisruptionBudget").spec.selector.matchLabels["app.kubernetes.io/component"] = "web"; }, /no PodDisruptionBudget selects the StatefulSet's pods/],
  ["PDB allowing two", (o) => { one(o, "PodDisruptionBudget").spec.maxUnavailable = 2; }, /maxUnavailable is 2, not 1/],
  ["cluster port open to every namespace", (o) => { one(o, "NetworkPolicy", "surge-cluster-port").spec.ingress[0].from.push({ namespaceSelector: {} }); }, /NetworkPolicy\/surge-cluster-port: lets more than the StatefulSet's own pods reach the cluster port 4242/],
  ["admin port open to everyone", (o) => { delete one(o, "NetworkPolicy", "surge-admin-port").spec.ingress[0].from; }, /NetworkPolicy\/surge-admin-port: lets more than the ops \(and monitoring\) namespaces and the members reach the admin port 9090/],
  ["admin port open to another app's pods", (o) => { one(o, "NetworkPolicy", "surge-admin-port").spec.ingress[0].from.push({ podSelector: { matchLabels: { app: "web" } } }); }, /NetworkPolicy\/surge-admin-port: lets more than the ops/],
  ["admin port closed to the members", (o) => { one(o, "NetworkPolicy", "surge-admin-port").spec.ingress[0].from.pop(); }, /no NetworkPolicy lets the members reach each other's admin port 9090/],
  ["admin port not for ops", (o) => { one(o, "NetworkPolicy", "surge-admin-port").spec.ingress[0].from.shift(); }, /no NetworkPolicy lets the ops namespace reach the admin port 9090/],
  ["NetworkPolicy selecting other pods", (o) => { one(o, "NetworkPolicy", "surge-cluster-port").spec.podSelector.matchLabels["app.kubernetes.io/name"] = "web"; }, /NetworkPolicy\/surge-cluster-port: is about the Surge ports but its podSelector does not select the StatefulSet's pods/],
  ["headless Service not publishing", (o) => { one(o, "Service", "surge-cluster").spec.publishNotReadyAddresses = false; }, /publishNotReadyAddresses is not true/],
  ["no zone spread", (o) => { sts(o).spec.template.spec.topologySpreadConstraints.shift(); }, /no topologySpreadConstraint across topology\.kubernetes\.io\/zone/],
  ["replicas beside the HPA", (o) => { sts(o).spec.replicas = 3; }, /sets spec\.replicas while an HorizontalPodAutoscaler scales it/],
  ["HPA without CPU", (o) => { one(o, "HorizontalPodAutoscaler").spec.metrics.shift(); }, /HorizontalPodAutoscaler\/surge: does not scale on CPU/],
  ["Secret key missing", (o) => { envVar(o, "SURGE_IDS_SECRET").valueFrom.secretKeyRef.key = "ids"; }, /env SURGE_IDS_SECRET reads key 'ids' of Secret 'surge-secrets', which is missing/],
  ["secret written in the manifest", (o) => { const e = envVar(o, "SURGE_PG_URL"); delete e.valueFrom; e.value = "postgresql://surge:pw@db/surge"; }, /SURGE_PG_URL is written in the manifest/],
  ["ServiceMonitor without the token", (o) => { delete one(o, "ServiceMonitor").spec.endpoints[0].authorization; }, /ServiceMonitor\/surge: does not authenticate with the admin token's Secret/],
  ["ServiceMonitor on the storefront port", (o) => { one(o, "ServiceMonitor").spec.selector.matchLabels["app.kubernetes.io/component"] = "storefront"; one(o, "ServiceMonitor").spec.endpoints[0].port = "http"; }, /endpoint port 'http' is not the admin port 9090/],
  ["image not set by the overlay", (o) => { node(o).image = "surge"; }, /image 'surge' is not set by the overlay's images:/],
];

let passed = 0;
let failed = 0;
const result = (ok, name, detail) => {
  console.log(`${ok ? "ok" : "not ok"} - ${name}${detail ? ": " + detail : ""}`);
  ok ? passed++ : failed++;
};

const baseline = await checkOverlay(prod, { external: template, label: "prod" });
result(baseline.length === 0, "prod as committed passes", baseline.join(" | "));

for (const [name, mutate, expected] of cases) {
  const copy = structuredClone(prod);
  mutate(copy);
  const problems = await checkOverlay(copy, { external: template, label: "prod" });
  const hit = problems.find((p) => expected.test(p));
  result(Boolean(hit), `rejects: ${name}`, hit || `no problem matched ${expected} in [${problems.join(" | ")}]`);
}

// The adapter rule and the HPA's metric name go together.
{
  result(lib.adapterProblems(adapterConfig, prod, exported).length === 0, "the prometheus-adapter rule makes the HPA's metric");
  const copy = structuredClone(prod);
  one(copy, "HorizontalPodAutoscaler").spec.metrics[1].pods.metric.name = "surge_requests_per_second";
  const p = lib.adapterProblems(adapterConfig, copy, exported);
  result(p.some((x) => /no prometheus-adapter rule makes the HPA's metric 'surge_requests_per_second'/.test(x)), "rejects: HPA metric no rule makes", p.join(" | "));
  const bad = structuredClone(adapterConfig);
  bad.rules[0].seriesQuery = bad.rules[0].seriesQuery.replace("surge_http_request_duration_seconds_count", "surge_http_requests_count");
  const q = lib.adapterProblems(bad, prod, exported);
  result(q.some((x) => /reads 'surge_http_requests_count', which surge-node does not export/.test(x)), "rejects: adapter rule on a series the node does not export", q.join(" | "));
}

// The committed broken fixture, through the command line.
{
  const fixture = path.join(here, "fixtures/broken-statefulset.yaml");
  const r = spawnSync(process.execPath, [path.join(here, "check.mjs"), `--files=${fixture}`], { encoding: "utf8", timeout: 60000 });
  const out = `${r.stdout}${r.stderr}`;
  result(r.status === 1, "check.mjs exits 1 on fixtures/broken-statefulset.yaml", `exit ${r.status}`);
  result(/PROBLEM .*StatefulSet\/surge: unknown field 'spec\.template\.spec\.containers\[0\]\.readinessProbe\.httpGet\.paht'/.test(out),
    "the fixture's unknown field is named", out.split("\n").find((l) => /paht/.test(l)) || out);
  result(/PROBLEM .*StatefulSet\/surge: container 'surge-node' has no startupProbe/.test(out),
    "the fixture's missing startupProbe is named", out.split("\n").find((l) => /startupProbe/.test(l)) || out);
}

console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
