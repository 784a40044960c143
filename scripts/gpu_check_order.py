#!/usr/bin/env python3
"""The order in which scripts/gpu-check.sh starts the runs of one lane (Note [GPU check order]).

    gpu_check_order.py RESULTS_DIR NAME...         prints the names, one a line, in the order to start them
    gpu_check_order.py --new RESULTS_DIR NAME...   prints only the names no earlier summary ran

NAME is a run's name as runs.tsv records it (a test program, "tool:program" for compute-sanitizer,
"program-shardIofN" for a shard). Names that no earlier GPU summary (RESULTS_DIR/gpu-*.json,
bench/results/) ran come first, in the order given: they have never run on a GPU, so they say the
most. The others follow by their seconds in the newest summary that ran them, longest first, so
that the long runs start early and a lane's last runs are its short ones. A shard counts as its
program. Without summaries (or python3 missing there), the order given is kept.
"""
import glob
import json
import os
import re
import sys


def history(results_dir):
    """{run name: seconds} from the newest summary that ran each name."""
    seen = {}
    summaries = []
    for path in glob.glob(os.path.join(results_dir, "gpu-*.json")):
        try:
            with open(path) as f:
                s = json.load(f)
        except (OSError, ValueError):
            continue
        summaries.append((s.get("date") or "", path, s))
    for _, _, s in sorted(summaries, key=lambda x: (x[0], x[1])):
        for r in s.get("runs", []):
            try:
                seen[r["name"]] = int(r.get("seconds") or 0)
            except (KeyError, ValueError):
                continue
    return seen


def base(name):
    return re.sub(r"-shard\d+of\d+$", "", name)


def order(names, seen):
    new = [n for n in names if base(n) not in seen]
    old = [n for n in names if base(n) in seen]
    old.sort(key=lambda n: -seen[base(n)])  # stable: ties keep the order given
    return new + old


def main():
    args = sys.argv[1:]
    new_only = bool(args) and args[0] == "--new"
    if new_only:
        args = args[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    seen = history(args[0])
    for n in order(args[1:], seen):
        if not new_only or base(n) not in seen:
            print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
