#!/usr/bin/env python3
"""The search row's helpers (scripts/benchmarks.sh, step `search`).

  search_bench.py prepare QUERIES.tsv DIR
      From `surgectl catalog queries` lines (KIND<TAB>Q<TAB>CATEGORY): DIR/search-paths.txt (one
      GET /api/v1/search target per query, for surge-bench http --paths), DIR/search-queries.tsv
      (i, q, category: COPY input of the floor's query table) and DIR/search-floor.pgbench (the
      pgbench script: a random query from that table, then bench/search_floor.sql with it).
  search_bench.py floor LOG_PREFIX PGBENCH_OUTPUT OUT.json
      pgbench's per-transaction logs (-l --log-prefix=LOG_PREFIX) and its output (tps, without
      the initial connection time) -> requests/s, p50, p99, max as surge-bench http writes them.
"""

import glob
import json
import os
import re
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = "bench_search_queries"


def prepare(tsv, out):
    rows = []
    with open(tsv) as f:
        for line in f:
            kind, q, category = line.rstrip("\n").split("\t")
            rows.append((kind, q, category))
    if not rows:
        sys.exit("search_bench.py: no queries in " + tsv)
    with open(os.path.join(out, "search-paths.txt"), "w") as f:
        for _, q, category in rows:
            params = {"q": q}
            if category:
                params["category"] = category
            f.write("/api/v1/search?" + urllib.parse.urlencode(params) + "\n")
    with open(os.path.join(out, "search-queries.tsv"), "w") as f:
        for i, (_, q, category) in enumerate(rows, 1):
            f.write(f"{i}\t{q}\t{category}\n")  # the vocabulary has no tab, backslash or newline
    with open(os.path.join(HERE, "search_floor.sql")) as f:
        template = "".join(l for l in f if not l.lstrip().startswith("--"))
    with open(os.path.join(out, "search-floor.pgbench"), "w") as f:
        f.write(f"\\set i random(1, {len(rows)})\n")
        f.write(f"SELECT q, category FROM {TABLE} WHERE i = :i \\gset\n")
        f.write(template.strip() + "\n")


def floor(prefix, output, out):
    with open(output) as f:
        m = re.search(r"^tps = ([0-9.]+) \(without initial connection time\)", f.read(), re.M)
    tps = float(m.group(1)) if m else 0.0
    lat = []
    errors = 0
    for path in glob.glob(prefix + ".[0-9]*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                # client_id transaction_no time script_no time_epoch time_us [schedule_lag]
                if len(parts) >= 6 and parts[2].isdigit():
                    lat.append(int(parts[2]) / 1000.0)
                elif len(parts) >= 6:
                    errors += 1  # "failed" or "skipped"
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, max(0, int(len(lat) * p / 100.0 + 0.5) - 1))] if lat else 0.0

    result = {"label": "PostgreSQL floor (pgbench, the same queries)", "measured": len(lat),
              "requests_per_s": tps,
              "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "p999_ms": pct(99.9),
              "max_ms": lat[-1] if lat else 0.0, "errors": errors,
              "ok": bool(lat) and tps > 0 and not errors}
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"floor: {len(lat):,} transactions, {result['requests_per_s']:,.0f}/s, "
          f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "floor":
        floor(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
