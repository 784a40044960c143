#!/usr/bin/env python3
"""Markdown table of a bench/run_allreduce.sh output directory: per size, the time per call of every
algorithm (kirzl's with its ratio to raw MPI_Allreduce timed interleaved in the same run).

    python3 bench/allreduce_table.py bench/results/allreduce-np4-x2
"""
import json
import pathlib
import sys


def main(out):
    rows, algos, meta = {}, [], None
    for f in sorted(pathlib.Path(out).glob("*.json")):
        for b in json.load(open(f))["benchmarks"]:
            if not b["name"].startswith("BM_Allreduce/"):
                continue
            algo = b["name"].split("/")[1]
            if algo not in algos:
                algos.append(algo)
            meta = meta or (int(b["ranks"]), int(b["nodes"]), int(b["ranks_per_node"]))
            cell = f"{b['seconds'] * 1e6:.1f} us"
            if "ratio" in b:
                cell += f" ({b['ratio']:.2f})"
            rows.setdefault(int(b["bytes"]), {})[algo] = cell
    print(f"{meta[0]} ranks, {meta[1]} node(s) x {meta[2]}; time per call (kirzl: ratio = raw MPI time / kirzl time, same run)\n")
    print("| bytes | " + " | ".join(algos) + " |")
    print("|---" * (len(algos) + 1) + "|")
    for size in sorted(rows):
        print(f"| {size} | " + " | ".join(rows[size].get(a, "") for a in algos) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
