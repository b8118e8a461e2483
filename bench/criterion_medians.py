#!/usr/bin/env python3
"""Markdown table of criterion medians as ratios to a baseline of the same run.

    criterion_medians.py CRITERION_DIR SINCE_UNIX BASELINE_ID[,BASELINE_ID...] [ID_PREFIX...]

Reads CRITERION_DIR/**/new/{benchmark,estimates}.json (criterion's own output, not its terminal
text); only results written after SINCE_UNIX count, so a stale figure from an older run can
never slip in. Every benchmark whose id starts with one of ID_PREFIX is listed with its median
and the ratio median / median(BASELINE_ID), one column per baseline given. A benchmark id that is `cpu/…` is compared to the
`cpu/` form of the baseline when there is one (the same clock on both sides).
"""
import json
import os
import sys
from pathlib import Path


def fmt(ns):
    return f"{ns / 1000:.3f} µs" if ns >= 1000 else f"{ns:.1f} ns"


def main():
    root, since, baselines = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3].split(",")
    prefixes = sys.argv[4:] or [""]
    medians = {}
    for bench in root.glob("**/new/benchmark.json"):
        estimates = bench.with_name("estimates.json")
        if not estimates.exists() or os.path.getmtime(estimates) < since:
            continue
        full_id = json.loads(bench.read_text())["full_id"]
        medians[full_id] = json.loads(estimates.read_text())["median"]["point_estimate"]
    for baseline in baselines:
        if baseline not in medians:
            sys.exit(f"criterion_medians: no fresh result for the baseline {baseline!r} in {root}")
    heads = " | ".join(f"ratio to `{b}`" for b in baselines)
    print(f"| benchmark | median | {heads} |")
    print("|---|---:|" + "---:|" * len(baselines))
    for full_id in sorted(medians):
        if not any(full_id.startswith(p) for p in prefixes):
            continue
        cells = []
        for baseline in baselines:
            base = baseline
            if full_id.startswith("cpu/") and f"cpu/{baseline}" in medians:
                base = f"cpu/{baseline}"
            ratio = medians[full_id] / medians[base]
            note = "" if base == baseline else f" (to `{base}`)"
            cells.append(f"{ratio:.2f}×{note}")
        print(f"| `{full_id}` | {fmt(medians[full_id])} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
