#!/usr/bin/env python3
"""Writes BENCHMARKS.md (stdout) from the raw outputs of one scripts/benchmarks.sh run.

Reads the JSON files in $OUT and the facts and command lines scripts/benchmarks.sh exports
(NPROC, MEM_TOTAL, KERNEL, CMD_<row>, ...). A row whose output is missing says so.
"""

import glob
import json
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from knee import step_passes, worst_p99  # bench/knee.py, next to this file

OUT = os.environ["OUT"]
E = os.environ.get


def load(name):
    try:
        with open(os.path.join(OUT, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def n(x, d=0):
    return f"{x:,.{d}f}"


def ms(x):
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def verdict(ok):
    return "yes" if ok else "**no**"


def cmd(key):
    c = E("CMD_" + key)
    return f"`{c.replace('|', chr(92) + '|')}`" if c else "(not run)"  # a pipe would end the cell


hot = load("hot-sku.json")
cross = load("cross-node.json")
mem = load("memory.json")
act = load("activation.json")
ngx = load("http-nginx.json")
cart = load("http-add-to-cart.json")
page = load("http-product-page.json")
mix = load("mix.json")  # runs before the knee sweep (BENCH_RENDER of an older run)
mix_low = load("mix-low.json")
want_search = bool(E("CMD_search_uncached") or os.path.exists(os.path.join(OUT, "search.json")))
search = load("search.json")  # {"ok": false, "error": ...} while the endpoint is missing
search_runs = [load("search-uncached.json"), load("search-cached.json"), load("search-floor.json")]


def sweep_users(path):
    m = re.search(r"mix-sweep-(\d+)\.json$", path)
    return int(m.group(1)) if m else 0


# Row 6's knee sweep: one surge-load run per shopper count, in the order they ran.
sweep = [(sweep_users(p), load(os.path.basename(p)))
         for p in sorted(glob.glob(os.path.join(OUT, "mix-sweep-*.json")), key=sweep_users)]


knee = 0
for users, m in sweep:
    if not step_passes(m):
        break
    knee = users
fails = [load(os.path.basename(p)) for p in sorted(glob.glob(os.path.join(OUT, "failover-*.json")))]
fails = [f for f in fails if f]

rows = []  # (row, what, surge, baseline, ratio, goal, met)
# Goals are issue 14's (rows 5 and 5b: <= 1,024 B per dormant entity, directory included).

if hot:
    s, b, r = hot["surge"], hot["baseline"], hot["redis_lua"]
    ratio = s["reservations_per_s"] / b["reservations_per_s"] if b["reservations_per_s"] else 0
    rl = s["reservations_per_s"] / r["reservations_per_s"] if r["reservations_per_s"] else 0
    rows.append(("1", "Hot SKU: durable reservations/s, SKU actor vs PostgreSQL row-lock UPDATE (16 clients)",
                 f"{n(s['reservations_per_s'])}/s, p99 {ms(s['p99_ms'])} ms",
                 f"{n(b['reservations_per_s'])}/s, p99 {ms(b['p99_ms'])} ms",
                 f"{ratio:.1f}x", ">= 25x", ratio >= 25 and hot["ok"]))
    rows.append(("1b", "Hot SKU: vs Redis Lua check-and-decrement (pipelined, not durable)",
                 f"{n(s['reservations_per_s'])}/s, p99 {ms(s['p99_ms'])} ms",
                 f"{n(r['reservations_per_s'])}/s, p99 {ms(r['p99_ms'])} ms",
                 f"{rl:.2f}x", ">= 1x (while durable)", rl >= 1 and hot["ok"]))
else:
    rows.append(("1", "Hot SKU vs PostgreSQL / Redis Lua", "-", "-", "-", ">= 25x, >= Redis", False))

def vs_nginx(label, x, what, short, goal, met):
    """Row `label`: the HTTP run `x` (`what` it asked; `short` when it is missing) against nginx's
    1 KiB file, same client; `met(ratio)` says whether the goal is met, besides x's own check."""
    if x and ngx:
        ratio = x["requests_per_s"] / ngx["requests_per_s"] if ngx["requests_per_s"] else 0
        rows.append((label, f"{what} at {x['connections']:,} connections vs nginx 1 KiB file "
                     "(neither writes an access log)",
                     f"{n(x['requests_per_s'])} req/s, p99 {ms(x['p99_ms'])} ms",
                     f"{n(ngx['requests_per_s'])} req/s, p99 {ms(ngx['p99_ms'])} ms",
                     f"{ratio:.2f}x", goal, met(ratio) and x["ok"]))
    else:
        rows.append((label, f"{short} vs nginx", "-", "-", "-", goal, False))


def has_cpu(x):
    return bool(x) and "server_cpu_us_per_request" in x


def cpu_text(x):
    """CPU and context switches per request of an HTTP run's server, or why they are missing."""
    if has_cpu(x):
        return (f"{x['server_cpu_us_per_request']:.1f} µs CPU/request, "
                f"{x['server_context_switches_per_request']:.2f} context switches/request")
    return f"not measured ({x['server_cpu_error']})" if x and x.get("server_cpu_error") else "-"


def cpu_row(label, x, what, goal, met):
    """Row `label`: server CPU per request of HTTP run `x` (from /proc, the measured window) against
    nginx's for its 1 KiB file; `met(us)` says whether the goal is met."""
    ratio = "-"
    if has_cpu(x) and has_cpu(ngx) and ngx["server_cpu_us_per_request"] > 0:
        ratio = f"{x['server_cpu_us_per_request'] / ngx['server_cpu_us_per_request']:.1f}x nginx's"
    rows.append((label, f"Server CPU per {what}: CPU-seconds of the node (every thread, /proc) ÷ "
                 "requests in the measured window; nginx's workers for their 1 KiB file",
                 cpu_text(x), cpu_text(ngx), ratio, goal,
                 has_cpu(x) and x["ok"] and met(x["server_cpu_us_per_request"])))


vs_nginx("2", cart, "HTTP add-to-cart (PUT, hot SKU)", "HTTP add-to-cart", ">= 0.6x, p99 < 50 ms",
         lambda ratio: ratio >= 0.6 and cart["p99_ms"] < 50)
cpu_row("2b", cart, "add-to-cart", "halve it (from 79.5 us, measured at d53105a with bench/profile.sh)",
        lambda us: us <= 39.8)
vs_nginx("3", page, "Product page GET /p/{sku}", "Product page", ">= 1.0x", lambda ratio: ratio >= 1.0)
cpu_row("3b", page, "GET /p/{sku}", "(report)", lambda us: True)

if cross:
    s, c = cross["same_node"], cross["cross_node"]
    rows.append(("4", "Cross-node hop: reservations/s entering at a non-owner vs at the owner",
                 f"{n(c['reservations_per_s'])}/s, p99 {ms(c['p99_ms'])} ms",
                 f"{n(s['reservations_per_s'])}/s, p99 {ms(s['p99_ms'])} ms",
                 f"{cross['ratio']:.2f}x", ">= 0.8x", cross["ratio"] >= 0.8 and cross["ok"]))
else:
    rows.append(("4", "Cross-node hop", "-", "-", "-", ">= 0.8x", False))

if mem and mem.get("dormant"):
    dm = mem["dormant"]
    for row, what, key in (("5", "cart, one line held", "carts"), ("5b", "SKU", "skus")):
        d = dm[key]
        # RSS is measured per page: a node figure below zero is memory the earlier phase freed
        # meanwhile, i.e. nothing measurable is left per entity; shown as such, not as a saving.
        node_b = d['node_bytes']
        node_txt = f"{n(node_b)} node" if node_b >= 0 else f"0 node (RSS fell by {n(-node_b)} B per entity)"
        total_b = max(node_b, 0) + d['redis_bytes']
        rows.append((row, f"Memory per dormant {what} ({d['created']:,} idle past entity.idle_timeout="
                     f"{dm['idle_ms'] / 1000:g}s; {d['came_back']:,} of {d['checked']:,} sampled came back): "
                     "node RSS + Redis",
                     f"{n(total_b)} B ({node_txt} + {n(d['redis_bytes'])} Redis)",
                     "-", "-", "<= 1,024 B",
                     total_b <= 1024 and d["created"] >= 100000 and mem["ok"]))
    c, k = mem["carts"], mem["skus"]
    rows.append(("5d", f"Memory per live cart actor, for reference ({c['activated']:,} live)",
                 f"{n(c['bytes_per_actor'])} B", "-", "-", "(report)", mem["ok"]))
    rows.append(("5e", f"Memory per live SKU actor, for reference ({k['activated']:,} live)",
                 f"{n(k['bytes_per_actor'])} B", "-", "-", "(report)", mem["ok"]))
else:
    rows.append(("5", "Memory per dormant entity", "-", "-", "-", "<= 1,024 B per cart and per SKU", False))

if act:
    rows.append(("5c", f"SKU activation, {act['holds']:,} hold changes in {act['journal_batches']:,} journal batches: "
                 "time to first answer from Redis snapshot vs PostgreSQL journal replay",
                 f"{ms(act['redis_snapshot_ms'])} ms (Redis snapshot)",
                 f"{ms(act['pg_journal_ms'])} ms (journal replay); PostgreSQL snapshot {ms(act['pg_snapshot_ms'])} ms",
                 f"{act['pg_journal_ms'] / act['redis_snapshot_ms']:.1f}x faster" if act["redis_snapshot_ms"] else "-",
                 "(report)", act["ok"]))

def mix_row(label, m):
    worst = max((v["p99_ms"] for v in m["latency"].values()), default=0)
    kinds = ", ".join(f"{k} {ms(v['p99_ms'])}" for k, v in m["latency"].items())
    users = m["model"].get("users", 0)
    rows.append((label, f"{users:,} shoppers, mix scenario, think {m['think_ms'] / 1000:g} s, 3-node cluster: p99 per request kind (ms)",
                 f"{kinds}; {n(m['throughput_rps'])} req/s, {m['errors']:,} errors, {m.get('unsent', 0):,} not sent",
                 "-", "-", "p99 < 300 ms (< 1 s)", worst < 300 and m["errors"] == 0 and not m.get("unsent")))


if sweep:
    ran = ", ".join(f"{u:,}" for u, _ in sweep)
    think = next((m["think_ms"] for _, m in sweep if m), 0)
    at_knee = dict(sweep).get(knee)
    cut = (E("SWEEP_STOP") or "").startswith("not run")  # the budget stopped it: a lower bound
    figure = (f"{'at least ' if cut else ''}{knee:,} shoppers ({n(at_knee['throughput_rps'])} req/s, worst p99 "
              f"{ms(worst_p99(at_knee)[0])} ms)" if at_knee else f"< {sweep[0][0]:,} shoppers")
    rows.append(("6", f"Knee: most shoppers (mix, think {think / 1000:g} s, 3-node cluster) with every "
                 f"p99 < 300 ms, errors <= 0.5 %, nothing unsent; steps run: {ran} "
                 f"({E('SWEEP_STOP') or 'see the sweep'})",
                 figure, "-", "-", ">= 30,000", knee >= 30000))
elif mix:
    mix_row("6", mix)
else:
    rows.append(("6", "Knee: most shoppers on a 3-node cluster with every p99 < 300 ms", "-", "-",
                 "-", ">= 30,000", False))
if mix_low and not sweep:
    mix_row("6b", mix_low)

if fails:
    times = [f["failover_ms"] for f in fails]
    ok = all(f["ok"] for f in fails)
    rows.append(("7", "Failover: kill -9 of a hot SKU's owner -> next successful reservation via a survivor",
                 ", ".join(f"{t / 1000:.2f} s" for t in times) + f"; max {max(times) / 1000:.2f} s",
                 "-", "-", "< 1 s (issue 20; G5: < 3 s)", ok and max(times) < 1000))
else:
    rows.append(("7", "Failover after kill -9", "-", "-", "-", "< 1 s (issue 20; G5: < 3 s)", False))

if search and search.get("ok") and all(search_runs):
    unc, cac, flo = search_runs
    ratio = unc["requests_per_s"] / flo["requests_per_s"] if flo["requests_per_s"] else 0

    def run_text(x):
        return f"{n(x['requests_per_s'])} req/s, p50 {ms(x['p50_ms'])} ms, p99 {ms(x['p99_ms'])} ms"

    rows.append(("8", f"Search GET /api/v1/search at {unc['connections']:,} connections over "
                 f"{n(int(E('SEARCH_PRODUCTS') or 0))} generated products, {unc.get('paths', 0):,} distinct "
                 "queries (word, prefix, typo, two words + category): uncached (http.page_cache=0) "
                 f"and, for the {cac.get('paths', 0):,} most popular, with the node's cache; "
                 "vs the same SQL straight to PostgreSQL (pgbench)",
                 f"uncached {run_text(unc)}; cached {run_text(cac)}", run_text(flo),
                 f"{ratio:.2f}x (uncached req/s)", "p99 < 20 ms cached, < 60 ms uncached",
                 unc["ok"] and cac["ok"] and flo["ok"] and cac["p99_ms"] < 20 and unc["p99_ms"] < 60))
elif want_search:
    why = (search or {}).get("error") or "no output"
    rows.append(("8", f"Search at 100 connections, uncached and cached vs PostgreSQL ({why})", "-",
                 "-", "-", "p99 < 20 ms cached, < 60 ms uncached", False))

lcp = load("storefront-lcp.json")
if lcp and lcp.get("pages"):
    pg = lcp["pages"]
    rows.append(("9", f"Storefront Largest Contentful Paint through the edge, Lighthouse mobile emulation "
                 f"(4x CPU, 150 ms RTT, 1.6 Mbit/s down, 412x823), median of {lcp['runs']} cold loads: "
                 "home `/`, product page",
                 ", ".join(f"{k} {v['lcp_median_ms']:,} ms" for k, v in pg.items()), "-", "-", "< 1.0 s",
                 lcp["ok"] and all(v["lcp_median_ms"] < 1000 for v in pg.values())))
elif E("CMD_storefront_lcp") or lcp:
    why = (lcp or {}).get("error") or "no output"
    rows.append(("9", f"Storefront LCP under mobile emulation ({why})", "-", "-", "-", "< 1.0 s", False))

# Row 10 (issue 16): the edge's generated product page vs nginx's 1 KiB file, alternately twice.
edge_rounds = [(load(f"edge-page-{r}.json"), load(f"edge-nginx-{r}.json")) for r in (1, 2)]
if E("CMD_edge_page") or any(a or b for a, b in edge_rounds):
    done = [(a, b) for a, b in edge_rounds if a and b and b["requests_per_s"]]
    if done:
        ratios = [a["requests_per_s"] / b["requests_per_s"] for a, b in done]
        mean = sum(ratios) / len(ratios)
        rows.append(("10", f"Edge (nginx as scripts/edge.sh configures it) serving a generated product page "
                     f"GET /p/{{sku}}/ at {done[0][0]['connections']:,} connections vs nginx 1 KiB file, "
                     f"alternately, {len(done)} round(s)",
                     "; ".join(f"{n(a['requests_per_s'])} req/s, p99 {ms(a['p99_ms'])} ms" for a, _ in done),
                     "; ".join(f"{n(b['requests_per_s'])} req/s, p99 {ms(b['p99_ms'])} ms" for _, b in done),
                     " / ".join(f"{r:.2f}x" for r in ratios) + f" (mean {mean:.2f}x)", ">= 0.9x (mean)",
                     mean >= 0.9 and all(a["ok"] for a, _ in done)))
    else:
        rows.append(("10", "Edge product page vs nginx (no output)", "-", "-", "-", ">= 0.9x (mean)", False))

# Row 11 (issue 16): node RSS per open stock stream (surge-bench streams).
streams = load("streams.json")
if streams:
    per = streams["per_stream_bytes"]
    rows.append(("11", f"Live stock: node RSS per open stock stream (SSE) with {streams['opened']:,} of "
                 f"{streams['count']:,} streams open on one SKU; one stock change reached "
                 f"{streams['changed']:,} of them, the last in {streams['change_ms']:,.0f} ms",
                 f"{per / 1024:.2f} KiB", "-", "-", "<= 8 KiB per stream",
                 streams["ok"] and per <= 8192))
elif E("CMD_streams"):
    rows.append(("11", "Live stock: node RSS per open stock stream (no output)", "-", "-", "-",
                 "<= 8 KiB per stream", False))

# Row 12 (issue 17): the drop (surge-load --scenario=drop) and its capacity sweep.
drop_doc = load("drop.json")
drop = (drop_doc or {}).get("drop")
cap_doc = load("drop-capacity.json")
cap = (cap_doc or {}).get("capacity")


def drop_goals(d):
    """(met, parts) of the drop's goals: 0 oversell (cross-checked), bots' share among buyers no
    higher than among arrivals, tau-b >= 0.99, every waiting shopper told sold_out within 2 s."""
    checks = d["passed"] and not d["error"]
    parts = [d["oversell"] == 0 and checks,
             d["bot_share_buyers"] <= d["bot_share_arrivals"],
             d["tau_b"] is not None and d["tau_b"] >= 0.99,
             d["notify_s"] is not None and d["notify_s"] <= 2.0]
    return all(parts), parts


def opt(x, fmt, unit=""):
    return "n/a" if x is None else f"{x:{fmt}}{unit}"


if drop:
    met, _ = drop_goals(drop)
    lat = drop["latency"]
    st = drop_doc["settings"]
    rows.append(("12", f"Drop: {drop['users']:,} shoppers ({st['bots'] * 100:g} % bots, polling every "
                 f"{st['bot_interval_ms']:g} ms and adding to cart without a pass) arriving over the "
                 f"{st['arrive_before_s']:g} s before the start and {st['arrive_after_s']:g} s after, "
                 f"{drop['units']:,} units of 3 SKUs, queue on (admission {st['admission_rate']}), "
                 "3-node cluster; shoppers poll their ticket every "
                 f"{st['poll_ms'] / 1000:g} s",
                 f"oversell {drop['oversell']} (cross-checked with the admin stock); admitted add to cart "
                 f"p99 {ms(lat['add_item']['p99_ms'])} ms, checkout p99 {ms(lat['checkout']['p99_ms'])} ms; "
                 f"sold out told within {opt(drop['notify_s'], '.2f', ' s')} of the last unit sold "
                 f"({drop['notify_waiting']:,} waiting); bots {drop['bot_share_arrivals'] * 100:.1f} % of "
                 f"arrivals, {drop['bot_share_buyers'] * 100:.1f} % of buyers; Kendall tau-b "
                 f"{opt(drop['tau_b'], '.4f')} ({drop['tau_n']:,} admitted after the start)",
                 "-", "-", "0 oversell, bots among buyers <= among arrivals, tau >= 0.99, told <= 2 s", met))
elif E("CMD_drop"):
    rows.append(("12", "Drop: a flash sale with a waiting room (no output)", "-", "-", "-",
                 "0 oversell, bots among buyers <= among arrivals, tau >= 0.99, told <= 2 s", False))
if cap:
    best = cap["max_shoppers_ok"]
    steps = ", ".join(f"{x['users']:,} ({ms(x['admitted_p99_ms'])} ms{'' if x['step_passed'] else ', miss'})"
                      for x in cap["steps"])
    cst = cap_doc["settings"]
    rows.append(("12b", "Drop capacity: most shoppers queued for a sale (joining over the "
                 f"{cst['arrive_before_s']:g} s before its start, polling every {cst['poll_ms'] / 1000:g} s) "
                 "with admitted shoppers' add-to-cart and checkout p99 < 300 ms, 3-node cluster; steps "
                 "(admitted p99): " + steps,
                 (f"{best:,} shoppers (at most {cap['max_waiting_ok']:,} waiting at once)" if best
                  else f"< {cap['steps'][0]['users']:,} shoppers" if cap["steps"] else "-"), "-", "-",
                 ">= 100,000", best >= 100000))
elif E("CMD_drop_capacity"):
    rows.append(("12b", "Drop capacity (no output)", "-", "-", "-", ">= 100,000", False))

# Row 13 (issue 18): the ceiling of one PostgreSQL primary as the shared journal (surge-bench journal).
jr = load("journal.json")
if jr and jr.get("ceilings"):
    top = max(jr["ceilings"], key=lambda c: c["reservations_per_s"])
    per_e = "; ".join(f"{c['events']}/batch: {n(c['reservations_per_s'])} reservations/s, "
                      f"{n(c['transactions_per_s'])} tx/s at {c['nodes']} node(s)" for c in jr["ceilings"])
    rows.append(("13", "Journal ceiling: one PostgreSQL primary shared by 1..N nodes' group commits "
                 f"({jr['streams_per_node']} SKU streams per node, journal.writers {jr['writers']}, "
                 f"max_batch {jr['max_batch']}, fenced), per reservations per batch: " + per_e,
                 f"{n(top['reservations_per_s'])} reservations/s, {n(top['transactions_per_s'])} journal tx/s "
                 f"({top['events']} per batch, {top['nodes']} nodes)",
                 f"{n(top['one_node_reservations_per_s'])} reservations/s (1 node)",
                 f"{top['ratio']:.2f}x", "(report: deploy/README.md's capacity model)", jr["ok"]))
elif E("CMD_journal"):
    rows.append(("13", "Journal ceiling (no output)", "-", "-", "-", "(report)", False))

# Row 14 (issue 19): checkout with authorise + capture vs one charge at checkout, same invocation
# (bench/capture_compare.py wrote capture.json from the two surge-load runs).
cap14 = load("capture.json")
CAP14_GOAL = "(report)"
if cap14 and cap14.get("runs"):
    at, af, ra = cap14["runs"]["at_checkout"], cap14["runs"]["after_confirm"], cap14["ratio"]

    def cap14_text(x):
        return (f"{n(x['orders_per_s'], 1)} orders/s, checkout p99 {ms(x['checkout_p99_ms'])} ms "
                f"(p50 {ms(x['checkout_p50_ms'])} ms)")

    def cap14_ratio(key):
        return "-" if ra.get(key) is None else f"{ra[key]:.2f}x"

    rows.append(("14", f"Checkout with authorise + capture (payments.capture=after_confirm: two gateway "
                 f"calls on the checkout's path) vs one charge at checkout (at_checkout, the baseline), "
                 f"surge-paysim {cap14['gateway_latency_ms']:g} ms per call, {at['users']:,} closed-model "
                 f"shoppers (think {at['think_ms'] / 1000:g} s), {at['duration_ms'] / 1000:g} s per mode, "
                 "a fresh node each, same seed",
                 cap14_text(af), cap14_text(at),
                 f"orders/s {cap14_ratio('orders_per_s')}, p99 {cap14_ratio('checkout_p99')}",
                 CAP14_GOAL, cap14["ok"]))
elif E("CMD_capture"):
    rows.append(("14", "Checkout: authorise + capture vs one charge at checkout (no output)", "-", "-",
                 "-", CAP14_GOAL, False))

p = print
p("# Surge benchmarks")
p()
p("Generated by `scripts/benchmarks.sh` (do not edit by hand: run it again). Every baseline and")
p("Surge ran back to back on the same machine in one invocation; the raw outputs of this run are")
p(f"in `bench-results/{E('STAMP')}/` (JSON per row, the full console output as `.txt`).")
p()
p(f"- date: {E('STAMP')}")
p(f"- machine: {E('NPROC')} CPUs ({E('CPU_MODEL')}), {E('MEM_TOTAL')} memory, {E('KERNEL')}; load average {E('LOADAVG_START')} at the start, {E('LOADAVG')} at the end (other work on the host included)")
if E('SETTLED_STEPS'):
    p(f"- before each step, after a PostgreSQL CHECKPOINT, the host was let settle (until its CPUs were <= 25 % busy over 2 s, 90 s at most): {E('SETTLED_STEPS')}")
p(f"- services: PostgreSQL {E('PGVER')} (fsync and synchronous_commit as configured, same host), Redis {E('REDISVER')}, nginx {E('NGINXVER')}")
p(f"- build: {E('BUILD_TYPE')}; whole run {E('T_TOTAL')} s; measured window per HTTP/hot-SKU run {E('D')} after a warm-up")
p("- everything (clients, servers, PostgreSQL, Redis) shares these CPUs: the figures are for this")
p("  machine only, and a client competes with the server it measures")
p()
p("| # | what | Surge | baseline | ratio | goal | met |")
p("|---|---|---|---|---:|---|---|")
for r in rows:
    p(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {verdict(r[6])} |")
p()
p("## Commands")
p()
p("Paths are relative to the repository; JSON files are in the run's results directory; NODE,")
p("NGINX, SURVIVOR, ... are the loopback ports and ids the script picked.")
p()
p("| # | command |")
p("|---|---|")
p(f"| 1 | {cmd('hot_sku')} |")
p(f"| 2 | {cmd('nginx')} then {cmd('cart')}; the node: {cmd('http_node')} (no access log, as "
  "nginx's `access_log off`; production keeps it, ~6 % of add-to-cart's CPU) |")
p(f"| 3 | {cmd('page')} |")
p(f"| 4 | {cmd('cross_node')} |")
p(f"| 5 | {cmd('memory')}; {cmd('activation')} |")
if sweep:
    p(f"| 6 | {cmd('mix_sweep')}, each step while the previous passed"
      + (f"; then {cmd('mix')}" if E("CMD_mix") else "") + " |")
else:
    p(f"| 6 | {cmd('mix')} (and first {cmd('mix_low')}) |")
p(f"| 7 | {cmd('failover')} (x{len(fails)}; the killed node is restarted between runs) |")
if want_search:
    runs = (f"{cmd('search_uncached')}, then {cmd('search_cached')}, then {cmd('search_floor')}"
            if E("CMD_search_uncached") else "the search runs did not run (see row 8)")
    p(f"| 8 | {runs}"
      + (f"; the catalog, once: {cmd('search_import')}" if E("CMD_search_import") else "") + " |")
if E("CMD_storefront_lcp"):
    p(f"| 9 | {cmd('storefront_lcp')} |")
if E("CMD_edge_page"):
    p(f"| 10 | {cmd('edge_nginx')} then {cmd('edge_page')} |")
if E("CMD_streams"):
    p(f"| 11 | {cmd('streams')} |")
if E("CMD_drop"):
    p(f"| 12 | {cmd('drop')}" + (f"; then {cmd('drop_capacity')}" if E("CMD_drop_capacity") else "")
      + " (nodes with auth.jwt_secret from the secret file, --log.access_sample=0) |")
if E("CMD_journal"):
    p(f"| 13 | {cmd('journal')} |")
if E("CMD_capture"):
    p(f"| 14 | {cmd('capture')}; the nodes: {cmd('capture_node')} |")
p()
p("## Details")
p()
if hot:
    p("### 1. Hot SKU")
    p()
    p("| system | reservations/s | p50 ms | p99 ms | errors |")
    p("|---|---:|---:|---:|---:|")
    for key in ("baseline", "redis_lua", "surge"):
        s = hot[key]
        p(f"| {s['system']} | {n(s['reservations_per_s'])} | {ms(s['p50_ms'])} | {ms(s['p99_ms'])} | {s['errors']} |")
    p()
    j = hot["journal"]
    p(f"Surge: {j['requests']:,} journal batches in {j['transactions']:,} PostgreSQL transactions; "
      f"check: held {hot['held']:,} live, {hot['held_reloaded']:,} after re-activation from PostgreSQL "
      f"({'OK' if hot['ok'] else 'FAIL'}). Redis Lua: the key dropped by exactly the successful runs.")
    p()
for title, d in (("2-3. HTTP, same client for every target", None),):
    if ngx or cart or page:
        p(f"### {title}")
        p()
        p("| target | connections | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors | "
          "server µs CPU/req | server switches/req |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for x in (ngx, cart, page):
            if x:
                cpu = (f"{x['server_cpu_us_per_request']:.1f} | {x['server_context_switches_per_request']:.2f}"
                       if has_cpu(x) else "- | -")
                p(f"| {x['label']} | {x['connections']:,} | {n(x['requests_per_s'])} | {ms(x['p50_ms'])} | "
                  f"{ms(x['p90_ms'])} | {ms(x['p99_ms'])} | {ms(x['p999_ms'])} | {x['errors']} | {cpu} |")
        p()
        p("Server CPU: utime+stime of the server's processes (surge-node: every thread; nginx: its "
          "worker processes) from /proc at the start and the end of the measured window, divided "
          "by the requests answered in it; context switches (voluntary and involuntary, every "
          "thread) the same way. The client's own CPU is not included.")
        p()
if cross:
    p("### 4. Cross-node hop")
    p()
    p("| entry | reservations/s | p50 ms | p99 ms |")
    p("|---|---:|---:|---:|")
    for key in ("same_node", "cross_node"):
        s = cross[key]
        p(f"| {s['system']} | {n(s['reservations_per_s'])} | {ms(s['p50_ms'])} | {ms(s['p99_ms'])} |")
    p()
if mem and mem.get("dormant"):
    dm = mem["dormant"]
    p("### 5. Memory and activation")
    p()
    p(f"| dormant entity (entity.idle_timeout={dm['idle_ms'] / 1000:g}s) | created | creations/s | s to dormant | "
      "node RSS B | Redis B (run's keys) | Redis B (used_memory) | B per dormant entity | came back |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, d in ((f"cart, one line held on one of {dm['hold_skus']} SKUs", dm["carts"]), ("SKU, no holds", dm["skus"])):
        p(f"| {name} | {d['created']:,} | {n(d['per_second'])} | {d['settle_seconds']:.1f} | {n(d['node_bytes'])} | "
          f"{n(d['redis_bytes'])} | {n(d['redis_used_bytes'])} | {n(d['bytes_per_entity'])} | "
          f"{d['came_back']:,} of {d['checked']:,} |")
    p()
    p("Per dormant entity: node VmRSS growth after `malloc_trim(0)` (in-process `runtime::entity_layer`, glibc malloc) "
      "plus Redis growth of the run's keys (MEMORY USAGE plus the dictionary entries it leaves out); "
      "used_memory growth is shown as a cross-check (other clients of the same Redis disturb it). "
      "A dormant cart's hold stays on its SKU (live, its holds keep it) and is counted with the cart. "
      "PostgreSQL (journal, catalog rows) is durable storage, not memory: not counted. "
      "Came back: sampled entities, dormant before, answered a get with their content; each hold SKU's "
      "held count equals the carts holding it.")
    p()
    p("| live actor (reference, entity.idle_timeout=1d) | activated | activations/s | RSS before MiB | RSS after MiB | bytes per live actor |")
    p("|---|---:|---:|---:|---:|---:|")
    kinds = [("cart", mem["carts"]), ("SKU", mem["skus"])]
    if mem.get("caf_floor", {}).get("activated"):
        kinds.append(("bare CAF actor: 7 handlers, a pending timer, no state (reference)", mem["caf_floor"]))
    for name, k in kinds:
        p(f"| {name} | {k['activated']:,} | {n(k['per_second'])} | {k['rss_before'] / 2**20:.1f} | "
          f"{k['rss_after'] / 2**20:.1f} | {n(k['bytes_per_actor'])} |")
    p()
    p(f"`sizeof(caf::scheduled_actor)` = {mem['sizeof_scheduled_actor']} B.")
    p()
if act:
    p(f"| activation from | ms to first answer (median of {act.get('samples', 3)} SKUs) |")
    p("|---|---:|")
    p(f"| Redis snapshot (+ PostgreSQL check of its batch) | {ms(act['redis_snapshot_ms'])} |")
    p(f"| PostgreSQL snapshot, Redis empty | {ms(act['pg_snapshot_ms'])} |")
    p(f"| PostgreSQL journal only, {act['journal_batches']:,} batches replayed | {ms(act['pg_journal_ms'])} |")
    p()
    p(f"Each SKU got {act['holds'] // 2:,} holds and then their releases, one per journal batch, "
      f"then a stock change; the snapshot after that is {act['snapshot_bytes']:,} B. Each fresh node "
      "first activates a SKU that does not exist (warm pools), then the timed ones one by one.")
    p()
if sweep:
    p("### 6. The knee: shoppers on a 3-node cluster")
    p()
    first = next((m for _, m in sweep if m), None)
    if first:
        mixes = ",".join(f"{k}:{v}" for k, v in first["mix"].items())
        p(f"Closed-model shoppers, mix {mixes}, think {first['think_ms']} ms, {first['connections']} "
          f"connections over 3 nodes, one run per step on the same cluster; a step passes when every "
          f"request kind's p99 < 300 ms, errors <= 0.5 %, no request is left unsent and the "
          f"cross-check passes. Knee: **{f'{knee:,}' if knee else f'< {sweep[0][0]:,}'}** shoppers; "
          f"{E('SWEEP_STOP') or ''} (sweep {E('SWEEP_SECONDS') or '?'} s, budget "
          f"{E('MIX_SWEEP_BUDGET') or '?'} s). "
          + (f"Before the first step, a warm-up run (not counted): {cmd('mix_warmup')}. "
             if E("CMD_mix_warmup") else "")
          + "Latency is from the intended start (client queueing included).")
        p()
    p("| shoppers | duration s | req/s | max p99 ms (kind) | errors | not sent | cross-check | passes |")
    p("|---:|---:|---:|---|---:|---:|---|---|")
    for u, m in sweep:
        if not m:
            p(f"| {u:,} | - | - | - | - | - | - | **no** (no output) |")
            continue
        w, kind = worst_p99(m)
        check = "passed" if m["check"].get("passed") else ("FAILED" if m["check"].get("performed") else "not run")
        p(f"| {u:,} | {m['duration_ms'] / 1000:g} | {n(m['throughput_rps'])} | {ms(w)} ({kind}) | "
          f"{m['errors']:,} | {m.get('unsent', 0):,} | {check} | {verdict(step_passes(m))} |")
    p()
    p("Worst p99 per step (0 to 1 s, 20 ms per `#`, `|` marks 300 ms, `>` beyond 1 s):")
    p()
    p("```")
    width, mark = 50, 15
    for u, m in sweep:
        if not m:
            continue
        w = worst_p99(m)[0]
        line = list(("#" * min(width, int(w / 20 + 0.5))).ljust(width))
        line[mark] = "|"
        p(f"{u:>8,} {''.join(line)}{'>' if w > 1000 else ' '} {ms(w)} ms")
    p("```")
    p()
for m in ([mix_low, mix] if not sweep else
          [dict(sweep).get(knee), next((m for _, m in sweep if m and not step_passes(m)), None)]):
    if not m:
        continue
    p(f"### 6. Shoppers on a 3-node cluster: {m['model'].get('users', 0):,}")
    p()
    mixes = ",".join(f"{k}:{v}" for k, v in m["mix"].items())
    p(f"{m['model'].get('users', 0):,} closed-model shoppers, mix {mixes}, think {m['think_ms']} ms, "
      f"{m['duration_ms'] / 1000:g} s, {m['connections']} connections over 3 nodes; "
      f"{m['requests']:,} requests, {n(m['throughput_rps'])} req/s, {m['errors']:,} errors, "
      f"{m.get('unsent', 0):,} not sent (still waiting for a connection at the end); "
      f"cross-check {'passed' if m['check'].get('passed') else 'FAILED or not run'}. "
      "Latency is from the intended start (client queueing included).")
    p()
    p("| request kind | count | errors | p50 ms | p99 ms | p99.9 ms | max ms |")
    p("|---|---:|---:|---:|---:|---:|---:|")
    for k, v in m["latency"].items():
        p(f"| {k} | {v['count']:,} | {v['errors']:,} | {ms(v['p50_ms'])} | {ms(v['p99_ms'])} | "
          f"{ms(v['p999_ms'])} | {ms(v['max_ms'])} |")
    p()
    worst = max((v["p99_ms"] for v in m["latency"].values()), default=0)
    p(f"Worst p99 {ms(worst)} ms: {'under' if worst < 1000 else 'over'} a second, "
      f"{'under' if worst < 300 else 'over'} the 300 ms goal.")
    p()
top, top_what = os.path.join(OUT, "mix-top.txt"), "the 100,000-shopper run (`top`, a 10 s sample after 20 s)"
if sweep:  # the last step that ran: the first miss, or the largest
    top = os.path.join(OUT, f"mix-top-{sweep[-1][0]}.txt")
    top_what = f"the {sweep[-1][0]:,}-shopper step (`top`, a 10 s sample after a third of it)"
if (mix or sweep) and os.path.exists(top):
    with open(top) as f:
        lines = [l.rstrip() for l in f if l.strip()][:22]
    if lines:
        p(f"CPU during {top_what}:")
        p()
        p("```")
        for l in lines:
            p(l)
        p("```")
        p()
if fails:
    p("### 7. Failover")
    p()
    p("| run | victim | ms from kill -9 to the first 200 | probes |")
    p("|---|---|---:|---|")
    for i, f in enumerate(fails, 1):
        p(f"| {i} | {f['victim']} | {n(f['failover_ms'])} | {f['probes']} ({f['statuses']}) |")
    p()
if search and search.get("ok") and any(search_runs):
    p("### 8. Search")
    p()
    p("| target | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors | server µs CPU/req |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|")
    for x in search_runs:
        if x:
            cpu = f"{x['server_cpu_us_per_request']:.1f}" if has_cpu(x) else "-"
            p(f"| {x['label']} | {n(x['requests_per_s'])} | {ms(x['p50_ms'])} | {ms(x['p90_ms'])} | "
              f"{ms(x['p99_ms'])} | {ms(x['p999_ms'])} | {x['errors']} | {cpu} |")
    p()
    p("The same distinct queries (`surgectl catalog queries`) in turn over every connection; the "
      "floor runs bench/search_floor.sql for a random one per pgbench transaction (after a "
      "primary-key lookup of the query in a small table, counted in its latency).")
    p()
if lcp and lcp.get("pages"):
    p("### 9. Storefront LCP")
    p()
    p("| page | path | LCP per load ms | LCP median ms | FCP median ms | LCP element | bytes |")
    p("|---|---|---|---:|---:|---|---:|")
    for k, v in lcp["pages"].items():
        p(f"| {k} | `{v['path']}` | {', '.join(str(x) for x in v['lcp_ms'])} | {v['lcp_median_ms']:,} | "
          f"{v['fcp_median_ms']:,} | `{v['lcp_element']}` | {v['transfer_bytes']:,} |")
    p()
    p("Each load in a fresh Chromium context with the cache disabled, through the edge (nginx) in front "
      "of one node; CDP `Emulation.setCPUThrottlingRate` 4, `Network.emulateNetworkConditions` "
      "latency 150 ms, 209,715 B/s down, 96,000 B/s up; viewport 412x823 at 1.75, mobile UA. LCP: the "
      "last `largest-contentful-paint` entry one second after `load`. One uncounted warm-up load per page.")
    p()
if drop:
    p("### 12. The drop")
    p()
    p("| SKU | stock | sold to shoppers | admin on_hand | held | sold |")
    p("|---|---:|---:|---:|---:|---:|")
    for k in drop["skus"]:
        p(f"| {k['sku']} | {k['stock']:,} | {k['confirmed_units']:,} | {k.get('on_hand', '?')} | "
          f"{k.get('held', '?')} | {k.get('sold', '?')} |")
    p()
    sh, q, b = drop["shoppers"], drop["queue"], drop["bots_without_pass"]
    p("| request kind | count | errors | p50 ms | p90 ms | p99 ms | max ms |")
    p("|---|---:|---:|---:|---:|---:|---:|")
    for k, v in drop["latency"].items():
        if v["count"]:
            p(f"| {k} | {v['count']:,} | {v['errors']:,} | {ms(v['p50_ms'])} | {ms(v['p90_ms'])} | "
              f"{ms(v['p99_ms'])} | {ms(v['max_ms'])} |")
    p()
    _, parts = drop_goals(drop)
    p(f"Shoppers: {sh['joined']:,} joined, {sh['admitted']:,} admitted, {sh['bought']:,} bought "
      f"({sh['bot_buyers']:,} of them bots), {sh['sold_out']:,} told sold out, {sh['expired']:,} expired, "
      f"{sh['failed']:,} failed, {sh['undecided']:,} undecided; {sh['checkouts_unanswered']:,} admitted "
      f"checkouts without an answer. Bots without a pass: {b['refused']:,} answered 403 queue_required, "
      f"{b['not_started']:,} 409 sale_not_started, {b['other']:,} other, {b['holds']:,} holds. "
      f"Queue: {q['tickets']:,} tickets, at most {q['max_waiting']:,} waiting, admission "
      f"{q['admission_rate_seen']:.1f}/s from the first admission to the last, lottery seed "
      f"`{q['lottery_seed'] or '-'}`, sold out at {q['sold_out_at'] or '-'}. Kendall tau-b over "
      f"{drop['tau_n']:,} shoppers who arrived after the start: arrival (when each shopper sent its "
      f"join) against admission order (its pass's expiry minus pass_ttl, in ms, and within one "
      f"round of admission, which admits a prefix of ranks at once, the ticket's join number); "
      f"{drop['tau_tied_share'] * 100:.1f} % of those pairs were admitted in the same millisecond, "
      f"and with those as ties tau-b is {opt(drop.get('tau_b_strict'), '.4f')}. Goals: " +
      ", ".join(f"{name} {verdict(ok)}" for name, ok in zip(
          ("0 oversell", "bots no more among buyers", "tau >= 0.99", "told <= 2 s"), parts)) + ".")
    p()
    if os.path.exists(os.path.join(OUT, "drop-queue.svg")):
        p(f"The queue over time: `bench-results/{E('STAMP')}/drop-queue.svg` (data `drop.tsv`).")
        p()
if cap:
    p("### 12b. Drop capacity")
    p()
    p("| shoppers | at most waiting | admitted | add p99 ms | checkout p99 ms | checks | step |")
    p("|---:|---:|---:|---:|---:|---|---|")
    for x in cap["steps"]:
        p(f"| {x['users']:,} | {x['queue']['max_waiting']:,} | {x['shoppers']['admitted']:,} | "
          f"{ms(x['latency']['add_item']['p99_ms'])} | {ms(x['latency']['checkout']['p99_ms'])} | "
          f"{'passed' if x['passed'] else 'FAILED'} | {'pass' if x['step_passed'] else 'miss'} |")
    p()

if jr:
    p("### 13. Journal ceiling")
    p()
    p("| nodes | reservations per batch | journal tx/s | batches/s | reservations/s | commit p50 ms | "
      "commit p99 ms | WAL MB/s | errors |")
    p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for x in jr["steps"]:
        p(f"| {x['nodes']} | {x['events']} | {n(x['transactions_per_s'])} | {n(x['batches_per_s'])} | "
          f"{n(x['reservations_per_s'])} | {ms(x['p50_ms'])} | {ms(x['p99_ms'])} | "
          f"{x['wal_mb_per_s']:.1f} | {x['errors']} |")
    p()
    p(f"Every acknowledged batch is in the journal: {jr['in_journal']:,} of {jr['acknowledged']:,}.")
    p()

if cap14 and cap14.get("runs"):
    p("### 14. Checkout: authorise + capture vs one charge")
    p()
    p("| payments.capture | orders/s | checkouts | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | "
      "add to cart p99 ms | errors | not sent | gateway charges | cross-check |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for mode in ("at_checkout", "after_confirm"):
        x = cap14["runs"][mode]
        p(f"| {mode} | {n(x['orders_per_s'], 1)} | {x['checkouts']:,} | {ms(x['checkout_p50_ms'])} | "
          f"{ms(x['checkout_p90_ms'])} | {ms(x['checkout_p99_ms'])} | {ms(x['checkout_p999_ms'])} | "
          f"{ms(x['checkout_max_ms'])} | {ms(x['add_item_p99_ms'])} | {x['errors']:,} | {x['unsent']:,} | "
          f"{n(x['gateway_approved']) if 'gateway_approved' in x else '-'} | {x['cross_check']} |")
    p()
    ra = cap14["ratio"]
    fmt = lambda k: "-" if ra.get(k) is None else f"{ra[k]:.2f}x"
    p(f"after_confirm / at_checkout: orders/s {fmt('orders_per_s')}, checkout p50 {fmt('checkout_p50')}, "
      f"p99 {fmt('checkout_p99')}. Orders/s: checkouts answered 201 in the measured run over its "
      "duration; latency from the intended start (client queueing included). Gateway charges: "
      "surge-paysim's approved charges of that mode (warm-up included; an after_confirm charge is "
      "approved once captured); authorisations left open after both runs: "
      f"{cap14['runs']['after_confirm'].get('gateway_open_authorisations', '-')}. Per-second data: "
      f"`bench-results/{E('STAMP')}/capture-MODE.tsv`.")
    p()

notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "BENCHMARKS-notes.md")
if os.path.exists(notes):
    with open(notes) as f:
        p(f.read().rstrip())
