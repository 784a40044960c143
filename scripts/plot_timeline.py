#!/usr/bin/env python3
"""Draws kirzl timelines (Chrome-trace JSON written by io::Timeline, e.g. under KIRZL_TIMELINE)
as one PNG: a row per rank and lane (compute: forward, backward, optimizer step; communication:
each bucket's all-reduce), for a few training steps. Prints what the picture shows: how many
all-reduces started while backward was still running, and how much of their time it hid.

Usage: scripts/plot_timeline.py TRACE.json [TRACE.json ...] -o timeline.png [--first-step N] [--steps K]
"""
import argparse
import json
import sys

COLOURS = {"forward": "#4C72B0", "backward": "#DD8452", "comm": "#55A868", "user": "#8172B3"}


def load(path):
    with open(path, encoding="utf-8") as f:
        trace = json.load(f)
    spans = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
    rank = next((e["pid"] for e in trace["traceEvents"]), 0)
    return rank, sorted(spans, key=lambda e: e["ts"])


def steps_of(spans):
    """Splits a rank's spans into steps: each step begins with a "forward" span."""
    steps = []
    for e in spans:
        if e["name"] == "forward" or not steps:
            steps.append([])
        steps[-1].append(e)
    return steps


def overlap_summary(steps):
    """All-reduces launched before their step's backward ended, and the comm time that overlapped it."""
    launched_early = total = 0
    hidden_us = comm_us = 0
    for step in steps:
        backward = [e for e in step if e["name"] == "backward"]
        if not backward:
            continue
        end = backward[0]["ts"] + backward[0]["dur"]
        for e in step:
            if e.get("cat") != "comm":
                continue
            total += 1
            launched_early += e["ts"] < end
            comm_us += e["dur"]
            hidden_us += max(0, min(end, e["ts"] + e["dur"]) - e["ts"])
    return launched_early, total, hidden_us, comm_us


def colour(e):
    if e.get("cat") == "comm":
        return COLOURS["comm"]
    return COLOURS.get(e["name"], COLOURS["user"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("traces", nargs="+")
    ap.add_argument("-o", "--output", required=True, help="the PNG to write")
    ap.add_argument("--first-step", type=int, default=5, help="first step drawn (0-based; the first steps warm up)")
    ap.add_argument("--steps", type=int, default=2, help="how many steps to draw")
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    ranks = sorted(load(p) for p in args.traces)
    window = []
    for rank, spans in ranks:
        steps = steps_of(spans)
        if len(steps) <= args.first_step:
            sys.exit(f"plot_timeline: rank {rank} has {len(steps)} steps, fewer than --first-step {args.first_step} + 1")
        window.append((rank, steps[args.first_step:args.first_step + args.steps]))
        early, total, hidden, comm = overlap_summary(steps)
        print(f"rank {rank}: {len(steps)} steps; {early} of {total} all-reduces started before backward ended; "
              f"{hidden / 1000:.1f} of {comm / 1000:.1f} ms of all-reduce overlapped backward")

    # Each rank's clock starts when its own DDP object is made, so each row starts at its own
    # first drawn forward: the rows line up step by step, not by wall-clock time.
    fig, ax = plt.subplots(figsize=(10, 0.9 + 0.8 * len(window)), dpi=100)
    labels = []
    for row, (rank, steps) in enumerate(window):
        t0 = steps[0][0]["ts"]
        for lane in (0, 1):
            y = 2 * row + lane
            labels.append((y, f"rank {rank} {'comm' if lane else 'compute'}"))
            for step in steps:
                for e in step:
                    if (e.get("cat") == "comm") != bool(lane):
                        continue
                    ax.broken_barh([((e["ts"] - t0) / 1000, max(e["dur"], 1) / 1000)], (y - 0.4, 0.8),
                                   facecolors=colour(e), edgecolor="black", linewidth=0.3)
    ax.set_yticks([y for y, _ in labels], [name for _, name in labels])
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds since the rank's first drawn step began")
    ax.set_title(f"kirzl timeline: steps {args.first_step}-{args.first_step + args.steps - 1}")
    ax.legend(handles=[Patch(color=COLOURS[k], label=k if k != "user" else "optimizer step") for k in COLOURS],
              loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(window) < 3 else -0.15), ncol=4, frameon=False)
    fig.tight_layout()
    fig.savefig(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
