#!/usr/bin/env node
// Checks deploy/k8s without a Kubernetes cluster (ctest: k8s_manifests, label deploy).
//
//   node deploy/k8s/check/check.mjs
//       copies deploy/k8s to a temporary folder, makes dev's secret files there
//       (scripts/k8s-dev-secrets.sh), renders the dev, prod and monitoring kustomizations with
//       `kubectl kustomize`, and checks every object: its schema (kubernetes-models), unknown
//       fields, Surge's policies (lib.mjs); prod's Secrets are those of prod/secrets.template.yaml.
//   node deploy/k8s/check/check.mjs --files=A.yaml[,B.yaml] [--external=SECRETS.yaml]
//       checks already-rendered objects as one overlay (a fixture, your own render).
//
// Prints one line per problem, then a summary; exit 0 when there is none, 1 when there are, 2 on
// a usage or set-up error (kubectl or node_modules missing, a render that fails).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../..");

function fail(msg) {
  console.error(`k8s check: ERROR: ${msg}`);
  process.exit(2);
}

let YAML;
let lib;
try {
  YAML = (await import("yaml")).default;
  lib = await import("./lib.mjs");
  await import("kubernetes-models/v1");
} catch (e) {
  fail(`cannot load the npm packages (${e.message}): run \`npm ci\` in deploy/k8s/check (scripts/build.sh does)`);
}

/// Parses a multi-document YAML text into its objects (empty documents skipped).
export function parseAll(text, origin) {
  const docs = YAML.parseAllDocuments(text);
  const out = [];
  for (const d of docs) {
    if (d.errors && d.errors.length) {
      throw new Error(`${origin}: YAML: ${d.errors[0].message}`);
    }
    const v = d.toJS();
    if (v !== null && v !== undefined) {
      out.push(v);
    }
  }
  return out;
}

/// Every check on one overlay's objects; a list of problems.
export async function checkOverlay(objects, { external = [], label = "" } = {}) {
  const problems = [];
  const prefix = label ? `${label}: ` : "";
  for (const o of [...objects, ...external]) {
    for (const p of await lib.schemaProblems(o)) {
      problems.push(prefix + p);
    }
    for (const p of await lib.unknownFieldProblems(o)) {
      problems.push(prefix + p);
    }
  }
  const settings = lib.knownSettingVariables(path.join(repo, "config/include/surge/config/settings.def"));
  problems.push(...lib.policyProblems(objects, { external, settings, label }));
  return problems;
}

/// Whether surge-node exports a metric family of this name (net/src/metrics.cpp names them).
export function exported(name) {
  const text = fs.readFileSync(path.join(repo, "net/src/metrics.cpp"), "utf8");
  return text.includes(`"${name}"`);
}

function render(dir) {
  try {
    return execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", timeout: 120000, stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    if (e.code === "ENOENT") {
      throw new Error("kubectl not found: install kubectl (1.27 or later: kustomize v5 is built in; scripts/deps.sh does)");
    }
    throw new Error(`kubectl kustomize ${dir} failed: ${(e.stderr || e.message || "").toString().trim()}`);
  }
}

/// Renders dev, prod and monitoring from a temporary copy of deploy/k8s with dev's secret files
/// made fresh there: {rendered: {dev, prod, monitoring} (objects), template (prod's Secrets),
/// secretsDir (dev's files), cleanup()}. Exits 2 on a set-up error.
export function renderAll() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "surge-k8s-check-"));
  const cleanup = () => fs.rmSync(tmp, { recursive: true, force: true });
  const k8s = path.join(tmp, "k8s");
  // The committed manifests only: dev's secret files are made fresh below.
  fs.cpSync(path.join(repo, "deploy/k8s"), k8s, {
    recursive: true,
    filter: (src) => !/\/(node_modules|secrets)(\/|$)/.test(path.relative(repo, src)),
  });
  try {
    execFileSync(path.join(repo, "scripts/k8s-dev-secrets.sh"), [path.join(k8s, "dev/secrets")], { stdio: ["ignore", "ignore", "pipe"], timeout: 60000 });
  } catch (e) {
    cleanup();
    fail(`scripts/k8s-dev-secrets.sh failed: ${(e.stderr || e.message || "").toString().trim()}`);
  }
  const rendered = {};
  let template;
  try {
    for (const overlay of ["dev", "prod", "monitoring"]) {
      rendered[overlay] = parseAll(render(path.join(k8s, overlay)), overlay);
    }
    template = parseAll(fs.readFileSync(path.join(k8s, "prod/secrets.template.yaml"), "utf8"), "prod/secrets.template.yaml");
  } catch (e) {
    cleanup();
    fail(e.message);
  }
  return { rendered, template, secretsDir: path.join(k8s, "dev/secrets"), cleanup };
}

async function main(argv) {
  const opts = {};
  for (const a of argv) {
    const m = /^--([a-z]+)=(.*)$/.exec(a);
    if (!m || !["files", "external"].includes(m[1])) {
      fail(`unknown argument '${a}' (usage: check.mjs [--files=A.yaml,... [--external=S.yaml]])`);
    }
    opts[m[1]] = m[2];
  }
  const problems = [];
  const counts = [];
  if (opts.files) {
    const objects = [];
    for (const f of opts.files.split(",")) {
      objects.push(...parseAll(fs.readFileSync(f, "utf8"), f));
    }
    const external = opts.external ? parseAll(fs.readFileSync(opts.external, "utf8"), opts.external) : [];
    problems.push(...(await checkOverlay(objects, { external, label: path.basename(opts.files) })));
    counts.push(`${objects.length} objects in ${opts.files}`);
  } else {
    const r = renderAll();
    try {
      const { rendered, template } = r;
      for (const overlay of ["dev", "prod", "monitoring"]) {
        counts.push(`${rendered[overlay].length} objects in ${overlay}`);
      }
      counts.push(`${template.length} Secrets in prod/secrets.template.yaml`);
      problems.push(...(await checkOverlay(rendered.dev, { label: "dev" })));
      problems.push(...(await checkOverlay(rendered.prod, { external: template, label: "prod" })));
      // monitoring/ is not an overlay of Surge: schemas and unknown fields, then the adapter rule.
      for (const o of rendered.monitoring) {
        problems.push(...(await lib.schemaProblems(o)).map((p) => `monitoring: ${p}`));
        problems.push(...(await lib.unknownFieldProblems(o)).map((p) => `monitoring: ${p}`));
      }
      const cm = rendered.monitoring.find((o) => o.kind === "ConfigMap" && o.data && o.data["config.yaml"]);
      if (!cm) {
        problems.push("monitoring: no prometheus-adapter ConfigMap with a config.yaml");
      } else {
        const config = YAML.parse(cm.data["config.yaml"]);
        problems.push(...lib.adapterProblems(config, rendered.prod, exported));
      }
      // Every Secret of the template is namespaced where prod puts everything.
      const ns = (rendered.prod.find((o) => o.kind === "StatefulSet") || { metadata: {} }).metadata.namespace;
      for (const s of template) {
        if (s.metadata && s.metadata.namespace !== ns) {
          problems.push(`prod: ${lib.nameOf(s)} in prod/secrets.template.yaml is not in namespace '${ns}'`);
        }
      }
    } finally {
      r.cleanup();
    }
  }
  for (const p of problems) {
    console.log(`PROBLEM ${p}`);
  }
  console.log(`k8s check: ${counts.join(", ")}; ${problems.length} problem(s)`);
  return problems.length === 0 ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
