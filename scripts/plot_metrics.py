#!/usr/bin/env python3
"""Turns a kirzl metrics log (the JSON lines that io::MetricsLog writes, e.g. the examples'
--metrics file) into PNG plots: the loss (training lines, and each evaluated split where
lines carry "split", e.g. "val" or "test"), the throughput (samples_per_second or tokens_per_second), and the data-parallel
communication of each logged step, hidden behind backward or exposed (comm_hidden_ms,
comm_exposed_ms). A plot whose fields the log lacks is not drawn; each written file is printed.

Usage: scripts/plot_metrics.py METRICS.jsonl [-o OUT_PREFIX]   (writes OUT_PREFIX-loss.png, ...)
"""
import argparse
import json
import math
import os
import sys


def read_log(path):
    """The records of a JSONL file; blank lines are skipped, a malformed line is an error naming it."""
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"plot_metrics: {path}:{n}: not a JSON line ({e.msg})")
            if not isinstance(rec, dict) or "step" not in rec:
                raise SystemExit(f"plot_metrics: {path}:{n}: expected an object with a 'step' field")
            records.append(rec)
    return records


def series(records, field, split=None):
    """(steps, values) of `field` over the records of `split` (None: lines without a split)."""
    xs, ys = [], []
    for r in records:
        v = r.get(field)
        if r.get("split") != split or not isinstance(v, (int, float)) or not math.isfinite(v):
            continue
        xs.append(r["step"])
        ys.append(v)
    return xs, ys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("-o", "--output-prefix", help="default: the log's path without its extension")
    args = ap.parse_args()
    records = read_log(args.log)
    if not records:
        sys.exit(f"plot_metrics: {args.log} holds no records")
    prefix = args.output_prefix or os.path.splitext(args.log)[0]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def figure(name, title, ylabel, draw):
        fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
        draw(ax)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        fig.tight_layout()
        out = f"{prefix}-{name}.png"
        fig.savefig(out)
        plt.close(fig)
        print(f"wrote {out}")

    # Training lines carry no "split"; evaluation lines say which split they measured.
    splits = [None] + sorted({r["split"] for r in records if isinstance(r.get("split"), str)})
    losses = [(split, series(records, "loss", split)) for split in splits]
    if any(xs for _, (xs, _) in losses):
        def draw_loss(ax):
            for split, (xs, ys) in losses:
                if xs:
                    ax.plot(xs, ys, "-" if split is None else "o-", label=split or "train")
        figure("loss", "loss", "loss", draw_loss)

    for field, unit in (("samples_per_second", "samples/s"), ("tokens_per_second", "tokens/s")):
        xs, ys = series(records, field)
        if xs:
            figure("throughput", "throughput", unit, lambda ax, xs=xs, ys=ys: ax.plot(xs, ys))
            break

    hidden, exposed = series(records, "comm_hidden_ms"), series(records, "comm_exposed_ms")
    # A single process logs zeros: nothing to draw.
    if hidden[0] and hidden[0] == exposed[0] and max(hidden[1] + exposed[1]) > 0:
        def draw_comm(ax):
            width = 0.8 * min((b - a for a, b in zip(hidden[0], hidden[0][1:])), default=1)
            ax.bar(hidden[0], hidden[1], width, label="hidden behind backward", color="#55A868")
            ax.bar(exposed[0], exposed[1], width, bottom=hidden[1], label="exposed (waited for)", color="#C44E52")
        figure("communication", "all-reduce time per step", "milliseconds", draw_comm)


if __name__ == "__main__":
    main()
