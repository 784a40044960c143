#!/usr/bin/env python3
"""A character-level GPT on Debian's fortunes corpus (apt-get install fortunes), from Python: the
twin of examples/gpt.cpp (same model, data split, defaults and JSON last line), data-parallel on
any number of ranks.

    python examples/python/gpt.py
    mpirun -np 2 python examples/python/gpt.py --threads 1

--batch-size is the *global* batch: N ranks take disjoint shares of the same random windows.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

import kirzl
from kirzl import data, models, optim

FORTUNES = "/usr/share/games/fortunes"


def parse(argv=None):
    p = argparse.ArgumentParser(prog="gpt", description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=32, help="the global batch")
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--min-lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--data-dir", default=FORTUNES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--eval-tokens", type=int, default=32768)
    p.add_argument("--sample-tokens", type=int, default=400)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--save", default="", help="write the trained model as a GPT-2 safetensors file")
    return p.parse_args(argv)


def read_fortunes(directory):
    """The fortunes of the package's plain files (not the .dat indexes or .u8 links), in name order."""
    if not os.path.isdir(directory):
        sys.exit(f"gpt: '{directory}' is missing. The corpus is Debian's fortunes package: apt-get install fortunes")
    fortunes = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.endswith(".dat") or os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            cur = ""
            for line in f:
                if line.rstrip("\n") == "%":
                    if cur:
                        fortunes.append(cur)
                    cur = ""
                else:
                    cur += line if line.endswith("\n") else line + "\n"
            if cur:
                fortunes.append(cur)
    return fortunes


def windows(tokens, offsets, T):
    x = np.stack([tokens[o:o + T] for o in offsets]).astype(np.int64)
    y = np.stack([tokens[o + 1:o + T + 1] for o in offsets]).astype(np.int64)
    return x, y


def main(a):
    world = kirzl.init()
    lead = world.rank() == 0
    if a.threads > 0:
        kirzl.set_num_threads(a.threads)
    assert a.batch_size % world.size() == 0, "--batch-size must be divisible by the world size"
    local = a.batch_size // world.size()

    fortunes = read_fortunes(a.data_dir)
    train_text = "".join(f + "%\n" for i, f in enumerate(fortunes) if i % 10 != 9)
    val_text = "".join(f + "%\n" for i, f in enumerate(fortunes) if i % 10 == 9)
    tok = data.CharTokenizer.from_text(train_text + val_text)
    train = np.array(tok.encode(train_text), dtype=np.uint16)
    val = np.array(tok.encode(val_text), dtype=np.uint16)
    counts = np.bincount(np.concatenate([train, val]), minlength=tok.vocab_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    entropy = float(-(p * np.log(p)).sum())

    config = models.GPTConfig(vocab_size=tok.vocab_size, block_size=a.block_size, n_layer=a.n_layer,
                              n_head=a.n_head, n_embd=a.n_embd)
    kirzl.manual_seed(a.seed)
    model = models.GPT(config)
    ddp = kirzl.DistributedDataParallel(model, world)
    decay = [t for t in model.parameters() if t.dim() >= 2]
    no_decay = [t for t in model.parameters() if t.dim() < 2]
    opt = optim.AdamW([{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                      lr=a.lr, betas=(0.9, 0.95))
    schedule = optim.CosineWithWarmup(opt, warmup_steps=a.warmup, total_steps=a.steps, min_lr=a.min_lr)
    if lead:
        print(f"gpt: {len(train)} train / {len(val)} val characters, vocabulary {tok.vocab_size}, "
              f"unigram entropy {entropy:.4f} nats; {config}, {model.num_parameters()} parameters, {world.size()} rank(s)")

    T = a.block_size
    rng = np.random.default_rng(a.seed)  # the same draws on every rank: each takes its share
    start = time.perf_counter()
    for step in range(a.steps):
        offsets = rng.integers(0, len(train) - T, size=a.batch_size)
        x, y = windows(train, offsets[world.rank() * local:(world.rank() + 1) * local], T)
        logits = ddp(kirzl.tensor(x))
        loss = kirzl.cross_entropy(logits.reshape(-1, tok.vocab_size), kirzl.tensor(y).reshape(-1))
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        if lead and (step + 1) % 50 == 0:
            print(f"step {step + 1}/{a.steps}  loss {loss.item():.4f}", flush=True)
    seconds = time.perf_counter() - start

    # Val loss over evenly spaced windows, shared out among the ranks.
    n = max(1, min(a.eval_tokens // T, (len(val) - 1) // T))
    stride = (len(val) - T - 1) // max(1, n - 1)
    mine = list(range(n * world.rank() // world.size(), n * (world.rank() + 1) // world.size()))
    total = 0.0
    with kirzl.no_grad():
        model.eval()
        for i in range(0, len(mine), local):
            x, y = windows(val, [j * stride for j in mine[i:i + local]], T)
            total += model.loss(x, y).item() * len(x)
    sums = kirzl.tensor([total], dtype=kirzl.f64)
    kirzl.all_reduce(sums, op="sum", group=world)
    val_loss = sums[0].item() / n

    if lead:
        print(f"val loss {val_loss:.4f}  (unigram entropy {entropy:.4f})")
        prompt = np.array([tok.encode("%\n")], dtype=np.int64)
        out = model.generate(prompt, a.sample_tokens, temperature=a.temperature, generator=kirzl.Generator(a.seed))
        print("---- sample ----\n" + tok.decode(out.numpy()[0, prompt.shape[1]:].tolist()) + "\n----")
        if a.save:
            models.save_gpt2_safetensors(a.save, model, {"tokenizer": tok.serialize()})
        print(json.dumps({"example": "gpt", "val_loss": round(val_loss, 4), "unigram_entropy": round(entropy, 4),
                          "tokens_per_second": round(a.steps * a.batch_size * T / seconds), "steps": a.steps,
                          "world_size": world.size(), "seconds": round(seconds, 2)}))


if __name__ == "__main__":
    main(parse())
