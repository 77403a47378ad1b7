#!/usr/bin/env python3
"""Sums a bpmcp trace (--trace FILE) per episode: calls, errors, runs,
credits charged and upstream requests. Python 3 standard library only.

    python3 docs/trace-summary.py trace.jsonl [more.jsonl ...]

Lines without an episode are grouped by session ("stdio" over stdio).
A run's credits are counted once, from the last line that reports them
(run_prompt and get_run may both report the same run).
"""
import json
import sys
from collections import defaultdict


def main(paths):
    calls = defaultdict(int)
    errors = defaultdict(int)
    upstream = defaultdict(int)
    credits = defaultdict(dict)  # group -> run id -> credits
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                e = json.loads(line)
                group = e.get("episode") or "session " + (e.get("session") or "-")
                calls[group] += 1
                errors[group] += 1 if e.get("is_error") else 0
                upstream[group] += e.get("upstream_requests", 0)
                if e.get("run_id") and e.get("credits") is not None:
                    credits[group][e["run_id"]] = e["credits"]
    print(f"{'episode':<24} {'calls':>6} {'errors':>6} {'runs':>5} {'credits':>8} {'upstream':>9}")
    for group in sorted(calls):
        runs = credits[group]
        print(f"{group:<24} {calls[group]:>6} {errors[group]:>6} {len(runs):>5} {sum(runs.values()):>8} {upstream[group]:>9}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
