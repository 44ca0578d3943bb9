#!/usr/bin/env python3
"""Row 6's knee rule, shared by scripts/benchmarks.sh (whether the sweep goes on) and
bench/benchmarks_md.py (the table): a surge-load run passes when every request kind's p99 is
under 300 ms, errors are at most 0.5 % of the requests, no request was left unsent and the
cross-check passed (when it ran).

    bench/knee.py RUN.json     exit 0 when the run passes, 1 when it misses or cannot be read
"""

import json
import sys


def worst_p99(m):
    """The largest p99 (ms) over the request kinds of a surge-load run, and its kind."""
    return max(((v["p99_ms"], k) for k, v in m["latency"].items()), default=(0, "-"))


def step_passes(m):
    """Whether the surge-load run `m` (its --json, parsed; None when missing) meets the rule."""
    if not m:
        return False
    check_ok = m["check"].get("passed") or not m["check"].get("performed")
    return (worst_p99(m)[0] < 300 and m["errors"] <= 0.005 * max(m["requests"], 1)
            and not m.get("unsent") and check_ok)


if __name__ == "__main__":
    try:
        with open(sys.argv[1]) as f:
            run = json.load(f)
    except (IndexError, OSError, ValueError):
        sys.exit(1)
    sys.exit(0 if step_passes(run) else 1)
