// The checks of deploy/k8s, as functions over parsed objects (check.mjs renders the overlays and
// calls them; selftest.mjs feeds them broken copies). Each returns a list of problems, one
// string each, naming the object (Kind/name) and the field; an empty list means it passed.
//
// - schemaProblems: the object against the Kubernetes OpenAPI schema of its apiVersion/kind, as
//   the npm package kubernetes-models compiles it (@kubernetes-models/prometheus-operator for
//   monitoring.coreos.com). Types, enums, required fields.
// - unknownFieldProblems: fields the schema does not declare (kubernetes-models ignores them; the
//   API server drops or refuses them). The schema's own validator is run on a recording proxy of
//   the object: every property it looks up is one the schema declares, every object whose keys
//   it enumerates is a map (labels, data, ...). A key present but never looked up is unknown.
// - policyProblems: Surge's rules for one rendered overlay (README.md "What the check enforces").
import fs from "node:fs";

// ------------------------------------------------------------------------------------- schemas

const modelCache = new Map();

/// The kubernetes-models class for apiVersion/kind, or null when no package has one.
export async function modelOf(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (modelCache.has(key)) {
    return modelCache.get(key);
  }
  let spec;
  if (typeof apiVersion !== "string" || typeof kind !== "string") {
    spec = null;
  } else if (apiVersion.startsWith("monitoring.coreos.com/")) {
    spec = `@kubernetes-models/prometheus-operator/${apiVersion}`;
  } else {
    spec = `kubernetes-models/${apiVersion}`;
  }
  let model = null;
  if (spec) {
    try {
      const mod = await import(spec);
      model = typeof mod[kind] === "function" ? mod[kind] : null;
    } catch {
      model = null;
    }
  }
  modelCache.set(key, model);
  return model;
}

export function nameOf(obj) {
  const kind = obj && typeof obj.kind === "string" ? obj.kind : "(no kind)";
  const name = obj && obj.metadata && obj.metadata.name ? obj.metadata.name : "(no name)";
  return `${kind}/${name}`;
}

export async function schemaProblems(obj) {
  const model = await modelOf(obj && obj.apiVersion, obj && obj.kind);
  if (!model) {
    return [`${nameOf(obj)}: no schema for apiVersion '${obj && obj.apiVersion}' kind '${obj && obj.kind}'`];
  }
  try {
    new model(secretWithoutLineBreaks(obj)).validate();
  } catch (e) {
    return [`${nameOf(obj)}: schema: ${e.message}`];
  }
  return [];
}

/// kustomize wraps a generated Secret's long base64 values over several lines; the API server
/// reads them (Go's base64 decoder skips line breaks), the schema's "byte" format does not.
function secretWithoutLineBreaks(obj) {
  if (!obj || obj.kind !== "Secret" || !isPlainObject(obj.data)) {
    return obj;
  }
  const data = {};
  for (const [k, v] of Object.entries(obj.data)) {
    data[k] = typeof v === "string" ? v.replace(/[\r\n]/g, "") : v;
  }
  return { ...obj, data };
}

function isPlainObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

export async function unknownFieldProblems(obj) {
  const model = await modelOf(obj && obj.apiVersion, obj && obj.kind);
  if (!model) {
    return []; // schemaProblems says so
  }
  const info = new WeakMap(); // each object of `obj` -> {keys looked up, enumerated?}
  const proxies = new WeakMap();
  const wrap = (v) => {
    if (v === null || typeof v !== "object") {
      return v;
    }
    if (proxies.has(v)) {
      return proxies.get(v);
    }
    const seen = { keys: new Set(), open: false };
    info.set(v, seen);
    const note = (k) => {
      if (typeof k === "string") {
        seen.keys.add(k);
      }
    };
    const p = new Proxy(v, {
      get(t, k, r) {
        note(k);
        return wrap(Reflect.get(t, k, r));
      },
      has(t, k) {
        note(k);
        return Reflect.has(t, k);
      },
      getOwnPropertyDescriptor(t, k) {
        note(k);
        return Reflect.getOwnPropertyDescriptor(t, k);
      },
      ownKeys(t) {
        seen.open = true;
        return Reflect.ownKeys(t);
      },
    });
    proxies.set(v, p);
    return p;
  };
  const target = secretWithoutLineBreaks(obj);
  try {
    model.prototype.validate.call(wrap(target));
  } catch {
    return []; // a schema error: schemaProblems reports it, and the walk below would be partial
  }
  const problems = [];
  const walk = (v, path) => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}[${i}]`));
      return;
    }
    if (!isPlainObject(v)) {
      return;
    }
    const seen = info.get(v);
    if (!seen) {
      return; // under a field the schema leaves open
    }
    for (const k of Object.keys(v)) {
      const sub = path ? `${path}.${k}` : k;
      if (!seen.open && !seen.keys.has(k)) {
        problems.push(`${nameOf(obj)}: unknown field '${sub}'`);
        continue;
      }
      walk(v[k], sub);
    }
  };
  walk(target, "");
  return problems;
}

// -------------------------------------------------------------------------------- the policies

/// "15s", "2m", "500ms", "1h" -> seconds; null when ill-formed.
export function parseSeconds(text) {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(String(text).trim());
  if (!m) {
    return null;
  }
  const n = Number(m[1]);
  return { ms: n / 1000, s: n, m: n * 60, h: n * 3600, undefined: n }[m[2]];
}

/// The setting names of config/include/surge/config/settings.def as SURGE_* variables.
export function knownSettingVariables(settingsDef) {
  const names = new Set();
  const text = fs.readFileSync(settingsDef, "utf8");
  for (const m of text.matchAll(/^SURGE_[A-Z]+\(\s*[a-z_0-9]+\s*,\s*(?:[^,"]+,\s*)?"([a-z_.0-9]+)"/gm)) {
    names.add(`SURGE_${m[1].replace(/\./g, "_").toUpperCase()}`);
  }
  return names;
}

const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]);

function podSpecOf(obj) {
  if (WORKLOADS.has(obj.kind)) {
    return obj.spec && obj.spec.template && obj.spec.template.spec;
  }
  if (obj.kind === "CronJob") {
    return obj.spec && obj.spec.jobTemplate && obj.spec.jobTemplate.spec &&
      obj.spec.jobTemplate.spec.template && obj.spec.jobTemplate.spec.template.spec;
  }
  if (obj.kind === "Pod") {
    return obj.spec;
  }
  return null;
}

/// matchLabels selects labels (matchExpressions are not used here and count as not matching).
function selects(selector, labels) {
  if (!isPlainObject(selector) || selector.matchExpressions) {
    return false;
  }
  const want = selector.matchLabels || {};
  if (Object.keys(want).length === 0) {
    return false; // "everything" is not "these pods"
  }
  return Object.entries(want).every(([k, v]) => labels && labels[k] === v);
}

function sameLabels(a, b) {
  const ka = Object.keys(a || {}).sort();
  const kb = Object.keys(b || {}).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/// The shell text of an exec handler, or "".
function execText(handler) {
  const cmd = handler && handler.exec && handler.exec.command;
  return Array.isArray(cmd) ? cmd.join(" ") : "";
}

/// Seconds a preStop hook takes at most: `sleep N`, `--wait=N` of surgectl drain, a sleep action.
function preStopSeconds(preStop) {
  let drain = 0;
  let sleep = 0;
  if (preStop && preStop.sleep && Number.isInteger(preStop.sleep.seconds)) {
    sleep += preStop.sleep.seconds;
  }
  const text = execText(preStop);
  for (const m of text.matchAll(/\bsleep\s+([0-9]+(?:\.[0-9]+)?[smh]?)/g)) {
    sleep += parseSeconds(m[1]) || 0;
  }
  for (const m of text.matchAll(/--wait=([0-9]+(?:\.[0-9]+)?(?:ms|s|m|h)?)/g)) {
    drain += parseSeconds(m[1]) || 0;
  }
  const drains = /\bsurgectl\b.*\bdrain\b/.test(text) ||
    /\/admin\/v1\/nodes\/[^ ]*\/drain/.test(text) ||
    (preStop && preStop.httpGet && /\/drain$/.test(preStop.httpGet.path || ""));
  return { drain, sleep, drains };
}

/// Every container of a pod spec with its kind ("container", "init container").
function containersOf(pod) {
  const out = [];
  for (const c of (pod && pod.containers) || []) {
    out.push({ c, what: "container" });
  }
  for (const c of (pod && pod.initContainers) || []) {
    out.push({ c, what: "init container" });
  }
  return out;
}

/// The port number a Service/NetworkPolicy port means for a container (named or numbered).
function portNumber(port, container) {
  if (typeof port === "number") {
    return port;
  }
  for (const p of (container && container.ports) || []) {
    if (p.name === port) {
      return p.containerPort;
    }
  }
  return null;
}

/// The policies of one rendered overlay. `objects` are its objects; `external` are Secrets that
/// exist outside it (prod's template); `settings` the known SURGE_* variables.
export function policyProblems(objects, { external = [], settings = null, label = "" } = {}) {
  const problems = [];
  const say = (obj, msg) => problems.push(`${label ? label + ": " : ""}${obj ? nameOf(obj) + ": " : ""}${msg}`);
  const byKind = (k) => objects.filter((o) => o && o.kind === k);
  const secrets = [...byKind("Secret"), ...external.filter((o) => o && o.kind === "Secret")];
  const configMaps = byKind("ConfigMap");

  // Every container of every workload: probes, resources, non-root, read-only root, no
  // escalation, no capabilities, seccomp; every image set by the overlay.
  for (const w of objects.filter((o) => o && podSpecOf(o))) {
    const pod = podSpecOf(w);
    const psc = pod.securityContext || {};
    for (const { c, what } of containersOf(pod)) {
      const who = `${what} '${c.name}'`;
      if (what === "container") {
        for (const probe of ["readinessProbe", "livenessProbe", "startupProbe"]) {
          if (!isPlainObject(c[probe])) {
            say(w, `${who} has no ${probe}`);
          }
        }
      }
      const r = c.resources || {};
      for (const part of ["requests", "limits"]) {
        for (const res of ["cpu", "memory"]) {
          if (!r[part] || r[part][res] === undefined) {
            say(w, `${who} has no resources.${part}.${res}`);
          }
        }
      }
      const sc = c.securityContext || {};
      const nonRoot = sc.runAsNonRoot ?? psc.runAsNonRoot;
      if (nonRoot !== true) {
        say(w, `${who} is not runAsNonRoot: true`);
      }
      if ((sc.runAsUser ?? psc.runAsUser) === 0) {
        say(w, `${who} runs as uid 0`);
      }
      if (sc.readOnlyRootFilesystem !== true) {
        say(w, `${who} has no readOnlyRootFilesystem: true`);
      }
      if (sc.allowPrivilegeEscalation !== false) {
        say(w, `${who} has no allowPrivilegeEscalation: false`);
      }
      if (sc.privileged === true) {
        say(w, `${who} is privileged`);
      }
      const drop = (sc.capabilities && sc.capabilities.drop) || [];
      if (!drop.includes("ALL")) {
        say(w, `${who} does not drop ALL capabilities`);
      }
      if (sc.capabilities && Array.isArray(sc.capabilities.add) && sc.capabilities.add.length) {
        say(w, `${who} adds capabilities ${sc.capabilities.add.join(",")}`);
      }
      const seccomp = (sc.seccompProfile || psc.seccompProfile || {}).type;
      if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") {
        say(w, `${who} has no seccompProfile RuntimeDefault`);
      }
      if (c.image === "surge" || !c.image) {
        say(w, `${who} image '${c.image || ""}' is not set by the overlay's images:`);
      }
    }
  }

  // The Surge StatefulSet.
  const sts = byKind("StatefulSet").find((o) => o.metadata && o.metadata.name === "surge");
  if (!sts) {
    say(null, "no StatefulSet 'surge'");
    return problems;
  }
  const pod = podSpecOf(sts) || {};
  const podLabels = (sts.spec.template.metadata || {}).labels || {};
  const selector = sts.spec.selector || {};
  if (!selects(selector, podLabels)) {
    say(sts, "spec.selector does not select the pod template's labels");
  }
  const node = (pod.containers || []).find((c) => c.name === "surge-node");
  if (!node) {
    say(sts, "no container 'surge-node'");
    return problems;
  }

  // Its settings: env, plus the ConfigMaps it reads whole (envFrom).
  const env = new Map(); // name -> {value} | {valueFrom}
  for (const ref of node.envFrom || []) {
    if (ref.configMapRef) {
      const cm = configMaps.find((m) => m.metadata.name === ref.configMapRef.name);
      if (!cm) {
        if (!ref.configMapRef.optional) {
          say(sts, `envFrom names ConfigMap '${ref.configMapRef.name}', which the overlay does not have`);
        }
        continue;
      }
      for (const [k, v] of Object.entries(cm.data || {})) {
        env.set(k, { value: String(v), from: `ConfigMap ${cm.metadata.name}` });
      }
    } else if (ref.secretRef) {
      say(sts, "envFrom a whole Secret: name each secret variable in env instead");
    }
  }
  for (const e of node.env || []) {
    env.set(e.name, e.valueFrom ? { valueFrom: e.valueFrom, from: "env" } : { value: String(e.value ?? ""), from: "env" });
  }
  if (settings) {
    for (const name of env.keys()) {
      if (name.startsWith("SURGE_") && !name.startsWith("SURGE_TEST_") && name !== "SURGE_CONFIG" &&
          !settings.has(name)) {
        say(sts, `${name} names no setting of surge-node (config/include/surge/config/settings.def): the node would refuse to start`);
      }
    }
  }
  if (pod.enableServiceLinks !== false) {
    say(sts, "enableServiceLinks is not false: Kubernetes would add SURGE_*_SERVICE_* variables (from the surge-* Services) that surge-node refuses as unknown settings");
  }
  const value = (n) => (env.has(n) && env.get(n).value !== undefined ? env.get(n).value : undefined);
  const fieldRef = (n) => env.has(n) && env.get(n).valueFrom && env.get(n).valueFrom.fieldRef &&
    env.get(n).valueFrom.fieldRef.fieldPath;
  if (fieldRef("SURGE_NODE_ID") !== "metadata.name") {
    say(sts, "SURGE_NODE_ID (node.id) is not the pod name (downward API fieldRef metadata.name)");
  }
  if (fieldRef("SURGE_CLUSTER_ADVERTISE") !== "status.podIP") {
    say(sts, "SURGE_CLUSTER_ADVERTISE (cluster.advertise) is not the pod IP (downward API fieldRef status.podIP)");
  }
  for (const [n, what] of [["SURGE_CLUSTER_HOST", "cluster.host"], ["SURGE_HTTP_HOST", "http.host"], ["SURGE_ADMIN_HOST", "admin.host"]]) {
    if (value(n) !== "0.0.0.0") {
      say(sts, `${what} (${n}) is not 0.0.0.0: the pod's IP would not be served`);
    }
  }
  if (!env.has("SURGE_ADMIN_TOKEN") || !env.get("SURGE_ADMIN_TOKEN").valueFrom ||
      !env.get("SURGE_ADMIN_TOKEN").valueFrom.secretKeyRef) {
    say(sts, "SURGE_ADMIN_TOKEN (admin.token) does not come from a Secret");
  }
  for (const n of ["SURGE_AUTH_JWT_SECRET", "SURGE_IDS_SECRET", "SURGE_PG_URL", "SURGE_REDIS_URL"]) {
    if (env.has(n) && env.get(n).value !== undefined) {
      say(sts, `${n} is written in the manifest: take it from a Secret (secretKeyRef)`);
    }
  }

  // Mutual TLS between members: on, and its files in a mounted Secret.
  if (value("SURGE_CLUSTER_TLS") !== "true") {
    say(sts, "cluster.tls (SURGE_CLUSTER_TLS) is not true");
  }
  if (value("SURGE_CLUSTER_INSECURE") === "true") {
    say(sts, "cluster.insecure is true");
  }
  const volumes = pod.volumes || [];
  for (const n of ["SURGE_CLUSTER_TLS_CERT", "SURGE_CLUSTER_TLS_KEY", "SURGE_CLUSTER_TLS_CA"]) {
    const file = value(n);
    if (!file) {
      say(sts, `${n} is not set`);
      continue;
    }
    const mount = (node.volumeMounts || []).find((m) => file.startsWith(m.mountPath.replace(/\/?$/, "/")));
    const vol = mount && volumes.find((v) => v.name === mount.name);
    if (!vol || !vol.secret) {
      say(sts, `${n}=${file} is not in a mounted Secret volume (the cluster TLS secret is not mounted)`);
      continue;
    }
    const key = file.slice(mount.mountPath.replace(/\/?$/, "/").length);
    const s = secrets.find((x) => x.metadata.name === vol.secret.secretName);
    if (s && !secretKeys(s).has(key)) {
      say(sts, `${n}=${file}: Secret '${s.metadata.name}' has no key '${key}'`);
    }
  }

  // Probes on the right paths, the preStop drain, the grace period.
  const path = (p) => p && p.httpGet && p.httpGet.path;
  if (path(node.readinessProbe) !== "/readyz") {
    say(sts, "surge-node's readinessProbe is not GET /readyz");
  }
  if (path(node.livenessProbe) !== "/healthz") {
    say(sts, "surge-node's livenessProbe is not GET /healthz");
  }
  const preStop = node.lifecycle && node.lifecycle.preStop;
  const readinessPeriod = (node.readinessProbe && node.readinessProbe.periodSeconds) || 10;
  let hook = { drain: 0, sleep: 0, drains: false };
  if (!preStop) {
    say(sts, "surge-node has no preStop hook (the drain)");
  } else {
    hook = preStopSeconds(preStop);
    if (!hook.drains) {
      say(sts, "surge-node's preStop hook does not drain the node (surgectl drain or POST /admin/v1/nodes/{id}/drain)");
    }
    if (!(hook.sleep > readinessPeriod)) {
      say(sts, `surge-node's preStop hook does not wait longer than the readiness period (${readinessPeriod}s) for load balancers to stop sending`);
    }
  }
  const leave = parseSeconds(value("SURGE_CLUSTER_LEAVE_TIMEOUT") ?? "15s");
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  if (leave === null) {
    say(sts, "SURGE_CLUSTER_LEAVE_TIMEOUT is not a duration");
  } else if (!(grace > leave + hook.drain + hook.sleep)) {
    say(sts, `terminationGracePeriodSeconds ${grace} is not longer than cluster.leave_timeout (${leave}s) + the preStop hook (${hook.drain + hook.sleep}s)`);
  }
  const ps = pod.securityContext || {};
  if ((node.securityContext || {}).runAsUser !== 10001 && ps.runAsUser !== 10001) {
    say(sts, "surge-node does not run as uid 10001 (the image's user)");
  }

  // Zones.
  const spread = (pod.topologySpreadConstraints || []).find((t) => t.topologyKey === "topology.kubernetes.io/zone");
  if (!spread || !selects(spread.labelSelector, podLabels)) {
    say(sts, "no topologySpreadConstraint across topology.kubernetes.io/zone selecting its pods");
  }

  // Services.
  const services = byKind("Service");
  const svcFor = (port) => services.filter((s) => selects({ matchLabels: s.spec.selector }, podLabels) &&
    (s.spec.ports || []).some((p) => portNumber(p.targetPort ?? p.port, node) === port));
  const headless = services.find((s) => s.metadata.name === sts.spec.serviceName);
  if (!headless) {
    say(sts, `serviceName '${sts.spec.serviceName}' names no Service`);
  } else {
    if (headless.spec.clusterIP !== "None") {
      say(headless, "the StatefulSet's Service is not headless (clusterIP: None)");
    }
    if (headless.spec.publishNotReadyAddresses !== true) {
      say(headless, "publishNotReadyAddresses is not true: a starting member would have no DNS name");
    }
    if (!selects({ matchLabels: headless.spec.selector }, podLabels)) {
      say(headless, "does not select the StatefulSet's pods");
    }
  }
  for (const [port, what] of [[8080, "storefront"], [9090, "admin"], [4242, "cluster"]]) {
    if (svcFor(port).length === 0) {
      say(null, `no Service selects the Surge pods on port ${port} (${what})`);
    }
  }

  // PodDisruptionBudget: one pod at a time, the StatefulSet's selector.
  const pdbs = byKind("PodDisruptionBudget").filter((p) => p.spec && selects(p.spec.selector, podLabels));
  if (pdbs.length === 0) {
    say(null, "no PodDisruptionBudget selects the StatefulSet's pods");
  }
  for (const p of byKind("PodDisruptionBudget")) {
    if (!sameLabels((p.spec.selector || {}).matchLabels, selector.matchLabels) && selects(selector, podLabels) &&
        p.metadata.name === "surge") {
      say(p, "selector is not the StatefulSet's selector");
    }
  }
  for (const p of pdbs) {
    if (p.spec.maxUnavailable !== 1) {
      say(p, `maxUnavailable is ${JSON.stringify(p.spec.maxUnavailable)}, not 1`);
    }
  }

  // NetworkPolicies: cluster port from the StatefulSet's pods only, admin port from namespaces
  // (ops among them) only, storefront open.
  const nps = byKind("NetworkPolicy").filter((n) => n.spec && selects(n.spec.podSelector, podLabels));
  if (nps.length === 0) {
    say(null, "no NetworkPolicy selects the StatefulSet's pods");
  }
  for (const n of byKind("NetworkPolicy")) {
    const mentions = (n.spec.ingress || []).some((r) => (r.ports || []).some((p) => [4242, 9090].includes(portNumber(p.port, node))));
    if (mentions && !selects(n.spec.podSelector, podLabels)) {
      say(n, "is about the Surge ports but its podSelector does not select the StatefulSet's pods");
    }
  }
  const rules = nps.flatMap((n) => (n.spec.ingress || []).map((r) => ({ n, r })));
  const rulesFor = (port) => rules.filter(({ r }) => !r.ports || r.ports.length === 0 ||
    r.ports.some((p) => p.port === undefined || portNumber(p.port, node) === port));
  const clusterRules = rulesFor(4242);
  if (nps.length && clusterRules.length === 0) {
    say(null, "no NetworkPolicy lets the members reach each other on the cluster port 4242");
  }
  for (const { n, r } of clusterRules) {
    const from = r.from || [];
    if (from.length === 0 || !from.every((f) => f.podSelector && !f.namespaceSelector && !f.ipBlock &&
        selects(f.podSelector, podLabels))) {
      say(n, "lets more than the StatefulSet's own pods reach the cluster port 4242");
    }
  }
  // Admin: whole namespaces named by label, or the members themselves (cluster-wide admin
  // routes ask every member's admin API for its part).
  const member = (f) => f.podSelector && !f.namespaceSelector && !f.ipBlock && selects(f.podSelector, podLabels);
  const adminRules = rulesFor(9090);
  for (const { n, r } of adminRules) {
    const from = r.from || [];
    if (from.length === 0 || !from.every((f) => member(f) || (f.namespaceSelector && !f.podSelector && !f.ipBlock &&
        Object.keys(f.namespaceSelector.matchLabels || {}).length > 0))) {
      say(n, "lets more than the ops (and monitoring) namespaces and the members reach the admin port 9090");
    }
  }
  if (nps.length && !adminRules.some(({ r }) => (r.from || []).some(member))) {
    say(null, "no NetworkPolicy lets the members reach each other's admin port 9090 (cluster-wide admin routes)");
  }
  if (nps.length && !adminRules.some(({ r }) => (r.from || []).some((f) => f.namespaceSelector &&
      (f.namespaceSelector.matchLabels || {})["kubernetes.io/metadata.name"] === "ops"))) {
    say(null, "no NetworkPolicy lets the ops namespace reach the admin port 9090");
  }
  if (nps.length && !rulesFor(8080).some(({ r }) => !r.from || r.from.length === 0)) {
    say(null, "no NetworkPolicy opens the storefront port 8080");
  }

  // HorizontalPodAutoscaler: the StatefulSet, on CPU and on request rate; then the StatefulSet
  // leaves replicas to it.
  const hpas = byKind("HorizontalPodAutoscaler").filter((h) => h.spec.scaleTargetRef &&
    h.spec.scaleTargetRef.kind === "StatefulSet" && h.spec.scaleTargetRef.name === "surge");
  if (hpas.length) {
    if (sts.spec.replicas !== undefined) {
      say(sts, "sets spec.replicas while an HorizontalPodAutoscaler scales it: every apply would undo the autoscaler");
    }
    for (const h of hpas) {
      const metrics = h.spec.metrics || [];
      if (!metrics.some((m) => m.type === "Resource" && m.resource && m.resource.name === "cpu")) {
        say(h, "does not scale on CPU");
      }
      if (!metrics.some((m) => m.type === "Pods" && m.pods && m.pods.metric && m.pods.metric.name)) {
        say(h, "does not scale on a Pods metric (request rate)");
      }
      if ((h.spec.minReplicas ?? 1) < 2) {
        say(h, "minReplicas below 2: a drain would have nowhere to hand shards to");
      }
    }
  } else if (!(sts.spec.replicas >= 2)) {
    say(sts, "no HorizontalPodAutoscaler and fewer than 2 replicas");
  }
  for (const h of byKind("HorizontalPodAutoscaler")) {
    const t = h.spec.scaleTargetRef || {};
    if (!objects.some((o) => o.kind === t.kind && o.metadata.name === t.name)) {
      say(h, `scaleTargetRef ${t.kind}/${t.name} is not in the overlay`);
    }
  }

  // ServiceMonitor: the admin Service's /metrics with the token.
  const monitors = byKind("ServiceMonitor");
  if (monitors.length === 0) {
    say(null, "no ServiceMonitor");
  }
  for (const m of monitors) {
    const svc = services.find((s) => selects(m.spec.selector, s.metadata.labels || {}));
    if (!svc) {
      say(m, "selects no Service of the overlay");
      continue;
    }
    for (const ep of m.spec.endpoints || []) {
      const sp = (svc.spec.ports || []).find((p) => p.name === ep.port);
      if (!sp || portNumber(sp.targetPort ?? sp.port, node) !== 9090) {
        say(m, `endpoint port '${ep.port}' is not the admin port 9090 of Service ${svc.metadata.name}`);
      }
      if ((ep.path || "/metrics") !== "/metrics") {
        say(m, `endpoint path ${ep.path} is not /metrics`);
      }
      const cred = ep.authorization && ep.authorization.credentials;
      const token = env.get("SURGE_ADMIN_TOKEN");
      const ref = token && token.valueFrom && token.valueFrom.secretKeyRef;
      if (!cred || !ref || cred.name !== ref.name || cred.key !== ref.key) {
        say(m, "does not authenticate with the admin token's Secret (authorization.credentials)");
      }
    }
  }

  // Every Secret and key the objects read exists (in the overlay or outside it, for prod).
  const refs = [];
  for (const w of objects.filter((o) => o && podSpecOf(o))) {
    const p = podSpecOf(w);
    for (const { c } of containersOf(p)) {
      for (const e of c.env || []) {
        const r = e.valueFrom && e.valueFrom.secretKeyRef;
        if (r) {
          refs.push({ w, name: r.name, key: r.key, optional: r.optional === true, where: `env ${e.name}` });
        }
      }
    }
    for (const v of p.volumes || []) {
      if (v.secret) {
        refs.push({ w, name: v.secret.secretName, key: null, optional: v.secret.optional === true, where: `volume ${v.name}` });
      }
    }
  }
  for (const m of monitors) {
    for (const ep of m.spec.endpoints || []) {
      const cred = ep.authorization && ep.authorization.credentials;
      if (cred) {
        refs.push({ w: m, name: cred.name, key: cred.key, optional: false, where: "authorization.credentials" });
      }
    }
  }
  for (const r of refs) {
    const s = secrets.find((x) => x.metadata.name === r.name);
    if (!s) {
      if (!r.optional) {
        say(r.w, `${r.where} reads Secret '${r.name}', which is missing`);
      }
    } else if (r.key && !secretKeys(s).has(r.key)) {
      say(r.w, `${r.where} reads key '${r.key}' of Secret '${r.name}', which is missing`);
    }
  }
  return problems;
}

function secretKeys(s) {
  return new Set([...Object.keys(s.data || {}), ...Object.keys(s.stringData || {})]);
}

/// The prometheus-adapter rule (monitoring/) makes each Pods metric the HPAs scale on, from a
/// series the nodes export: `adapterConfig` is the parsed config.yaml, `exported(name)` tells
/// whether surge-node exports a metric family of that name.
export function adapterProblems(adapterConfig, overlayObjects, exported) {
  const problems = [];
  const rules = (adapterConfig && Array.isArray(adapterConfig.rules)) ? adapterConfig.rules : [];
  if (rules.length === 0) {
    return ["monitoring: prometheus-adapter config.yaml has no rules"];
  }
  const wanted = new Set();
  for (const h of overlayObjects.filter((o) => o.kind === "HorizontalPodAutoscaler")) {
    for (const m of h.spec.metrics || []) {
      if (m.type === "Pods" && m.pods && m.pods.metric) {
        wanted.add(m.pods.metric.name);
      }
    }
  }
  for (const name of wanted) {
    const rule = rules.find((r) => r.name && (r.name.as === name ||
      (!r.name.as && r.name.matches && new RegExp(r.name.matches).test(name))));
    if (!rule) {
      problems.push(`monitoring: no prometheus-adapter rule makes the HPA's metric '${name}'`);
      continue;
    }
    const series = /^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(rule.seriesQuery || "");
    if (!series) {
      problems.push(`monitoring: the rule for '${name}' has no series name in seriesQuery`);
      continue;
    }
    const family = series[1].replace(/_(count|sum|bucket|total)$/, "");
    if (!exported(series[1]) && !exported(family)) {
      problems.push(`monitoring: the rule for '${name}' reads '${series[1]}', which surge-node does not export`);
    }
    const over = (rule.resources && rule.resources.overrides) || {};
    if (!over.pod || over.pod.resource !== "pod" || !over.namespace || over.namespace.resource !== "namespace") {
      problems.push(`monitoring: the rule for '${name}' does not map the pod and namespace labels to resources`);
    }
    if (!/rate\(/.test(rule.metricsQuery || "")) {
      problems.push(`monitoring: the rule for '${name}' is not a rate (metricsQuery)`);
    }
  }
  return problems;
}
