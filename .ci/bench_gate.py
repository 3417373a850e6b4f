#!/usr/bin/env python3
"""Fails CI on gross benchmark regressions only: a Nagle stall (most RPCs ~40 ms), or a
figure ten times worse than its target. Never on noise: every bound is loose on purpose.

Reads the JSON object `tq-testbed bench --json` prints last, on stdin."""

import json
import sys

# scenario -> (field, bound, "max" or "min"): ten times the target, at small N.
BOUNDS = {
    "reconfigure_warm": ("p50_ms", 150.0, "max"),
    "reconfigure_cold": ("p50_ms", 600.0, "max"),
    "unlock_warm": ("p50_ms", 50.0, "max"),
    "unlock_blackholed": ("p50_ms", 100.0, "max"),
    # 10 000/s is the target; a Nagle stall caps 4 clients near 100/s.
    "status_saturated": ("per_s", 500.0, "min"),
}
# A Nagle stall makes nearly every small RPC take ~40 ms: the sequential empty RPC's median
# among them. A busy machine makes some RPCs slow, never the median of an idle loop.
MAX_RPC_FLOOR_P50_MS = 20.0
MAX_SLOW_SHARE = 0.25


def main() -> int:
    lines = [l for l in sys.stdin.read().splitlines() if l.startswith("{")]
    if not lines:
        print("bench gate: no JSON summary on stdin")
        return 1
    d = json.loads(lines[-1])
    failures = []
    for name, (field, bound, kind) in BOUNDS.items():
        got = d["scenarios"].get(name, {}).get(field)
        if got is None:
            failures.append(f"{name}: no {field}")
        elif (kind == "max" and got > bound) or (kind == "min" and got < bound):
            failures.append(f"{name} {field} = {got} (bound {kind} {bound})")
        else:
            print(f"bench gate: {name} {field} = {got} (bound {kind} {bound}): ok")
    rpc = d["floors"]["rpc"]["p50_ms"]
    print(f"bench gate: empty RPC p50 = {rpc} ms (bound max {MAX_RPC_FLOOR_P50_MS})")
    if rpc > MAX_RPC_FLOOR_P50_MS:
        failures.append(f"an empty RPC's median is {rpc} ms: a Nagle stall?")
    slow, timed = d["slow_rpcs"], max(d["timed_rpcs"], 1)
    print(f"bench gate: {slow} of {timed} timed RPCs took 35 ms or more")
    if slow / timed > MAX_SLOW_SHARE:
        failures.append(f"{slow} of {timed} RPCs took 35 ms or more: a Nagle stall?")
    for f in failures:
        print(f"bench gate: FAIL {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
