#!/usr/bin/env python3
"""Row 14 of scripts/benchmarks.sh: checkout with payments.capture=after_confirm against
at_checkout, side by side.

    capture_compare.py OUT_DIR GATEWAY_LATENCY_MS

Reads from OUT_DIR the two measured surge-load runs (capture-at_checkout.json,
capture-after_confirm.json; --scenario=checkout), their warm-ups when present
(capture-MODE-warmup.json) and surge-paysim's charge log counted by status after each mode
(capture-MODE-charges.json; cumulative, both modes share one surge-paysim). Prints the table
with the ratio after_confirm / at_checkout of orders/s and checkout p99 (the baseline is the
single charge, at_checkout, from the same invocation) and writes OUT_DIR/capture.json (what
bench/benchmarks_md.py renders) and OUT_DIR/capture.tsv. Exit 1 when a run's output is missing.
"""

import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

MODES = ("at_checkout", "after_confirm")


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def figures(run, warmup):
    """What the row shows of one surge-load --scenario=checkout report."""
    lat = run.get("latency", {})
    co = lat.get("checkout", {})
    elapsed = run.get("elapsed_s") or 0
    out = run.get("outcomes", {})
    check = run.get("check", {})
    return {
        "orders": out.get("orders", 0),
        "confirmed_units": out.get("confirmed_units", 0),
        "elapsed_s": elapsed,
        "orders_per_s": out.get("orders", 0) / elapsed if elapsed else 0.0,
        "checkouts": co.get("count", 0),
        "checkout_errors": co.get("errors", 0),
        "checkout_p50_ms": co.get("p50_ms", 0.0),
        "checkout_p90_ms": co.get("p90_ms", 0.0),
        "checkout_p99_ms": co.get("p99_ms", 0.0),
        "checkout_p999_ms": co.get("p999_ms", 0.0),
        "checkout_max_ms": co.get("max_ms", 0.0),
        "add_item_p99_ms": lat.get("add_item", {}).get("p99_ms", 0.0),
        "cart_p99_ms": lat.get("cart", {}).get("p99_ms", 0.0),
        "requests_per_s": run.get("throughput_rps", 0.0),
        "errors": run.get("errors", 0),
        "unsent": run.get("unsent", 0),
        "checkout_unknown": out.get("checkout_unknown", 0),
        "hold_expired": out.get("hold_expired", 0),
        "cross_check": ("passed" if check.get("passed") else "FAILED") if check.get("performed")
        else "not run",
        "users": run.get("model", {}).get("users", 0),
        "think_ms": run.get("think_ms", 0),
        "duration_ms": run.get("duration_ms", 0),
        "seed": run.get("seed", 0),
        "connections": run.get("connections", 0),
        "warmup_orders": (warmup or {}).get("outcomes", {}).get("orders", 0),
    }


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: capture_compare.py OUT_DIR GATEWAY_LATENCY_MS")
    out_dir, latency_ms = sys.argv[1], float(sys.argv[2])
    runs = {}
    missing = []
    before = {}
    for mode in MODES:
        run = load(os.path.join(out_dir, f"capture-{mode}.json"))
        if not run:
            missing.append(f"capture-{mode}.json")
            continue
        f = figures(run, load(os.path.join(out_dir, f"capture-{mode}-warmup.json")))
        # surge-paysim's log is cumulative: this mode's charges are the growth since the last.
        charges = load(os.path.join(out_dir, f"capture-{mode}-charges.json"))
        if charges is not None:
            f["gateway_approved"] = charges.get("approved", 0) - before.get("approved", 0)
            f["gateway_open_authorisations"] = charges.get("authorized", 0)
            f["gateway_other"] = {k: v - before.get(k, 0) for k, v in charges.items()
                                  if k not in ("approved", "authorized") and v != before.get(k, 0)}
            before = charges
        f["ok"] = (f["cross_check"] == "passed" and f["errors"] == 0 and f["unsent"] == 0
                   and f["orders"] > 0 and f.get("gateway_open_authorisations", 0) == 0)
        runs[mode] = f
    if missing:
        print(f"capture: missing {', '.join(missing)}")
        return 1

    at, after = runs["at_checkout"], runs["after_confirm"]
    ratio = {
        "orders_per_s": after["orders_per_s"] / at["orders_per_s"] if at["orders_per_s"] else None,
        "checkout_p99": after["checkout_p99_ms"] / at["checkout_p99_ms"] if at["checkout_p99_ms"] else None,
        "checkout_p50": after["checkout_p50_ms"] / at["checkout_p50_ms"] if at["checkout_p50_ms"] else None,
    }
    doc = {"gateway_latency_ms": latency_ms, "runs": runs, "ratio": ratio,
           "ok": at["ok"] and after["ok"]}
    with open(os.path.join(out_dir, "capture.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")

    lines = [
        ("orders/s", "orders_per_s", "{:,.1f}", "orders_per_s"),
        ("checkout p50 ms", "checkout_p50_ms", "{:.2f}", "checkout_p50"),
        ("checkout p90 ms", "checkout_p90_ms", "{:.2f}", None),
        ("checkout p99 ms", "checkout_p99_ms", "{:.2f}", "checkout_p99"),
        ("checkout p99.9 ms", "checkout_p999_ms", "{:.2f}", None),
        ("add to cart p99 ms", "add_item_p99_ms", "{:.2f}", None),
        ("orders", "orders", "{:,}", None),
        ("requests/s (all kinds)", "requests_per_s", "{:,.1f}", None),
        ("errors", "errors", "{:,}", None),
        ("not sent", "unsent", "{:,}", None),
        ("gateway charges approved", "gateway_approved", "{:,}", None),
        ("authorisations left open", "gateway_open_authorisations", "{:,}", None),
        ("cross-check", "cross_check", "{}", None),
    ]
    table = [("", "at_checkout", "after_confirm", "after/at")]
    for label, key, fmt, rkey in lines:
        cells = [fmt.format(r[key]) if key in r else "-" for r in (at, after)]
        r = ratio.get(rkey) if rkey else None
        table.append((label, cells[0], cells[1], f"{r:.2f}x" if r is not None else ""))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    print(f"capture: checkout against surge-paysim at {latency_ms:g} ms per gateway call, "
          f"{at['users']:,} shoppers, think {at['think_ms']} ms, {at['duration_ms'] / 1000:g} s per "
          f"mode, seed {at['seed']} (one charge at checkout vs authorise + confirm + capture)")
    for row in table:
        print("  " + row[0].ljust(widths[0]) + "".join("  " + c.rjust(w) for c, w in zip(row[1:], widths[1:])))
    print(f"capture: {'ok' if doc['ok'] else 'FAILED'} (both runs: cross-check passed, no errors, "
          "nothing unsent, no authorisation left open)")

    with open(os.path.join(out_dir, "capture.tsv"), "w") as f:
        cols = ["orders_per_s", "checkout_p50_ms", "checkout_p90_ms", "checkout_p99_ms",
                "checkout_p999_ms", "add_item_p99_ms", "orders", "errors", "unsent",
                "gateway_approved", "cross_check"]
        f.write("# mode\t" + "\t".join(cols) + "\n")
        for mode in MODES:
            f.write(mode + "\t" + "\t".join(str(runs[mode].get(c, "")) for c in cols) + "\n")
        f.write("# ratio after_confirm/at_checkout: orders_per_s "
                f"{ratio['orders_per_s']}, checkout_p99 {ratio['checkout_p99']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
