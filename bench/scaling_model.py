#!/usr/bin/env python3
"""A communication scaling model for kirzl's data-parallel training (issue #17, item 4).

Fits latency (alpha, seconds per ring step) and inverse bandwidth (beta, seconds per byte) for two
link classes, inside a node ("intra") and between nodes ("inter"), from measured all-reduce runs
(Google Benchmark JSON of bench/bench_allreduce), then predicts the per-step communication time
and weak-scaling efficiency of DDP training of GPT-2 124M and 1.5B at 8..1024 nodes of 4 GPUs,
flat ring against hierarchical, with and without overlap of the buckets with backward.

    python3 bench/scaling_model.py --measured a.json b.json ... [--markdown]
    python3 bench/scaling_model.py --synthetic [--markdown]   # no measurements: a self-check

numpy only. Every formula is a small function below, checked by python/tests/test_scaling_model.py;
the model is Note [scaling model cost formulas] and Note [scaling model overlap] below.
"""
import argparse
import itertools
import json
import os
import re
import sys
from dataclasses import dataclass, field

import numpy as np

# Note [scaling model cost formulas]: a ring all-reduce over n ranks is a reduce-scatter and an
# all-gather of n - 1 steps each; in every step each rank sends a chunk of bytes/n to its neighbour,
# all at once, so a step costs alpha + (bytes/n) beta of the slowest link in the ring:
#     ring(n, bytes) = 2 (n - 1) alpha + 2 (n - 1)/n bytes beta.
# A flat ring over N nodes of L ranks each (ranks numbered node by node, as mpirun and srun place
# them) crosses N node boundaries; each boundary link carries one chunk per step, so with N > 1 the
# inter-node link sets every step's time: flat = ring(N L) with the inter parameters (with N = 1,
# the intra ones). The hierarchical all-reduce (issue #17 item 3) is
#     reduce-scatter inside the node:  (L - 1) alpha_i + (L - 1)/L bytes beta_i
#     ring across nodes, L rings at once, each over bytes/L:
#                                      2 (N - 1) alpha_e + 2 (N - 1)/N (bytes/L) s beta_e
#     all-gather inside the node:      (L - 1) alpha_i + (L - 1)/L bytes beta_i
# where s is the number of those L rings that share one inter-node port: s = L where the node has
# one port (the emulated nodes of scripts/multinode.sh: one veth per node), s = 1 where every GPU
# has its own port (rail-optimised InfiniBand clusters: one NDR port per GPU). Every formula is
# linear in (alpha_i, beta_i, alpha_e, beta_e), so the fit is a (non-negative) least-squares
# problem. Not modelled: tree or other latency-optimal algorithms (NCCL switches to trees at scale),
# congestion in the fabric, and compute slowed down by the collectives running beside it.

# Note [scaling model overlap]: during backward a parameter's gradient is ready once backward has
# passed its layer. Backward time is spread over the parameters in proportion to their matmul
# work (a Linear weight of k elements costs as much as k of any other; biases, LayerNorms and the
# position embedding cost nothing), in reverse registration order; the tied token embedding's work
# (the output layer's GEMM) comes first in backward, but its gradient is ready only at the end (the
# input embedding adds to it last). A bucket is ready when its last parameter is; buckets are
# reduced one after another, in bucket order, on one communicator (as kirzl's reducer does): start
# = max(ready, previous end). Exposed communication = last end - end of backward. Without overlap
# every bucket starts after backward (DDPOptions::overlap = false): exposed = the sum of the
# buckets' times. Weak-scaling efficiency = compute / (compute + exposed), compute being one GPU's
# forward + backward + optimizer step on its own batch.

MiB = 1 << 20

# ---------------------------------------------------------------------------------------------
# Links


@dataclass(frozen=True)
class Link:
    """One link class: alpha = seconds per ring step, beta = seconds per byte (1 / bandwidth)."""
    alpha: float
    beta: float


@dataclass(frozen=True)
class Machine:
    """Nodes of `gpus_per_node` GPUs: `intra` links inside a node, `inter` between nodes; `ports`
    inter-node ports per node (one per GPU on rail-optimised clusters)."""
    name: str
    gpus_per_node: int
    intra: Link
    inter: Link
    ports: int


# Public specifications (nominal, per direction), times an achieved fraction, stated here once:
# - NVLink 4 (H100/H200 SXM): 18 links x 25 GB/s = 450 GB/s per direction per GPU (NVIDIA's H100
#   datasheet: "900 GB/s" bidirectional). A ring all-reduce reaches ~80% of it as bus bandwidth
#   (nccl-tests on 8 x H100 report ~360-370 GB/s busbw): beta_i = 1 / 360 GB/s. alpha_i = 2 us per
#   ring step (kernel-launched NCCL steps inside a node are 1-3 us; assumption).
# - InfiniBand NDR: 400 Gbit/s = 50 GB/s per direction per port (ConnectX-7), ~90% achieved for
#   large messages: beta_e = 1 / 45 GB/s. alpha_e = 5 us per ring step (about 1 us of NIC and
#   switch hops through a 3-level fat tree plus NCCL's per-step protocol overhead; assumption).
# The default machine has one NDR port per GPU (4 per node, as DGX/HGX H100 systems have one per
# GPU); H100_NDR_PER_NODE, one 400 Gbit/s port shared by the node's 4 GPUs, is the other reading.
NVLINK4 = Link(alpha=2e-6, beta=1 / 360e9)
IB_NDR = Link(alpha=5e-6, beta=1 / 45e9)
H100_NDR_PER_GPU = Machine("4 x H100 SXM (NVLink 4) per node, IB NDR 400 Gbit/s per GPU", 4, NVLINK4, IB_NDR, 4)
H100_NDR_PER_NODE = Machine("4 x H100 SXM (NVLink 4) per node, IB NDR 400 Gbit/s per node", 4, NVLINK4, IB_NDR, 1)


def ring_time(n, nbytes, link):
    """Ring all-reduce of `nbytes` over `n` ranks: 2(n-1) alpha + 2(n-1)/n bytes beta (0 for n = 1)."""
    if n <= 1:
        return 0.0
    return 2 * (n - 1) * link.alpha + 2 * (n - 1) / n * nbytes * link.beta


def flat_time(nodes, local, nbytes, intra, inter):
    """Flat ring over nodes x local ranks, placed node by node: the inter link sets each step."""
    return ring_time(nodes * local, nbytes, inter if nodes > 1 else intra)


def hierarchical_time(nodes, local, nbytes, intra, inter, share):
    """Reduce-scatter inside the node, `local` rings across nodes over nbytes/local each (`share`
    of them on one port), all-gather inside the node."""
    if nodes <= 1:
        return ring_time(local, nbytes, intra)
    in_node = 2 * ((local - 1) * intra.alpha + (local - 1) / local * nbytes * intra.beta)
    across = 2 * (nodes - 1) * inter.alpha + 2 * (nodes - 1) / nodes * (nbytes / local) * share * inter.beta
    return in_node + across


def allreduce_time(algorithm, nodes, local, nbytes, intra, inter, share):
    if algorithm == "flat":
        return flat_time(nodes, local, nbytes, intra, inter)
    if algorithm == "hierarchical":
        return hierarchical_time(nodes, local, nbytes, intra, inter, share)
    raise ValueError(f"unknown algorithm '{algorithm}' (flat, hierarchical)")


def design_row(algorithm, nodes, local, nbytes, share):
    """Coefficients of (alpha_i, beta_i, alpha_e, beta_e) in allreduce_time: it is linear in them."""
    units = [Link(1, 0), Link(0, 1)]
    zero = Link(0, 0)
    row = []
    for cls in ("intra", "inter"):
        for u in units:
            intra, inter = (u, zero) if cls == "intra" else (zero, u)
            row.append(allreduce_time(algorithm, nodes, local, nbytes, intra, inter, share))
    return row


PARAM_NAMES = ("alpha_intra", "beta_intra", "alpha_inter", "beta_inter")

# ---------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Case:
    """One measured all-reduce: algorithm (flat|hierarchical|...), nodes, ranks, bytes, seconds."""
    algorithm: str
    nodes: int
    ranks: int
    nbytes: float
    seconds: float
    source: str = ""

    @property
    def local(self):
        return self.ranks // self.nodes


_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
_ALIASES = {"ring": "flat", "flat_ring": "flat", "hier": "hierarchical", "hierarchical_ring": "hierarchical"}


_FIELDS = ("algorithm", "ranks", "nodes", "bytes", "seconds", "ranks_per_node", "local_size")


def _fields_from_text(text):
    """key=value pairs in a label or name ("algorithm=flat ranks=4", "BM_X/algorithm:flat/...")."""
    return dict(re.findall(r"\b(algorithm|ranks|nodes|bytes|seconds|ranks_per_node|local_size)[=:]([\w.+-]+)", text or ""))


def _algorithm_from(entry):
    """A label that is just an algorithm's name, else the benchmark's name: bench_allreduce's sweep
    BM_Allreduce/<kirzl_flat|kirzl_hierarchical|kirzl_auto|kirzl_mpi|mpi|...>/<bytes>, or older
    names (BM_...Hier..., ...Flat...)."""
    label = str(entry.get("label", "")).strip().lower()
    if re.fullmatch(r"[a-z_]+", label or "-"):
        return label
    name = str(entry.get("name", "")).lower()
    parts = name.split("/")
    if parts[0] == "bm_allreduce" and len(parts) > 2 and re.fullmatch(r"[a-z_]+", parts[1]):
        return parts[1].removeprefix("kirzl_")
    for word, alg in (("hier", "hierarchical"), ("flat", "flat"), ("ring", "flat"), ("han", "mpi_han"), ("kirzl", "auto"), ("mpi", "mpi")):
        if word in name.split("/")[0]:
            return alg
    return None


def load_cases(path, defaults=None):
    """The all-reduce cases of one Google Benchmark JSON file of bench_allreduce.

    Each case needs algorithm, ranks, nodes, bytes and seconds (per all-reduce): read from the
    entry's own fields (counters), else key=value pairs of its label or name, else the file's
    context, else `defaults` (from the command line's PATH:key=value,...); seconds default to real_time in time_unit; ranks_per_node may stand for nodes.
    Aggregates: the median where there are repetitions, else the iterations' mean. Entries that
    are no all-reduce (no bytes, e.g. BM_Header) are skipped."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"scaling_model: cannot read measurements {path}: {e}")
    ctx = doc.get("context", {})
    entries = doc.get("benchmarks")
    if not isinstance(entries, list):
        raise SystemExit(f"scaling_model: {path} has no 'benchmarks' list (not Google Benchmark JSON?)")
    medians = [e for e in entries if e.get("run_type") == "aggregate" and e.get("aggregate_name") == "median"]
    chosen = medians if medians else [e for e in entries if e.get("run_type", "iteration") == "iteration"]
    groups, skipped = {}, []
    for e in chosen:
        f = {}
        for src in (defaults or {}, ctx, _fields_from_text(e.get("name", "")), _fields_from_text(e.get("label", "")), e):
            f.update({k: src[k] for k in _FIELDS if k in src})
            per_node = src.get("ranks_per_node", src.get("local_size"))
            if per_node is not None and "nodes" not in src and "ranks" in f:
                f["nodes"] = int(float(f["ranks"])) // int(float(per_node))
        if "bytes" not in f:
            continue
        if "algorithm" not in f:
            f.update({"algorithm": a for a in [_algorithm_from(e)] if a})
        if "seconds" not in f:
            if "real_time" not in e:
                raise SystemExit(f"scaling_model: {path}: '{e.get('name')}' has neither seconds nor real_time")
            f["seconds"] = float(e["real_time"]) * _UNIT[e.get("time_unit", "ns")]
        missing = [k for k in ("algorithm", "ranks", "nodes") if k not in f]
        if missing:
            skipped.append(f"'{e.get('name')}' lacks {', '.join(missing)}")
            continue
        alg = str(f["algorithm"]).lower()
        alg = _ALIASES.get(alg, alg)
        nodes, ranks = int(float(f["nodes"])), int(float(f["ranks"]))
        if nodes < 1 or ranks < nodes or ranks % nodes:
            raise SystemExit(f"scaling_model: {path}: '{e.get('name')}': {ranks} ranks on {nodes} nodes "
                             "(need equal ranks per node)")
        key = (alg, nodes, ranks, float(f["bytes"]))
        groups.setdefault(key, []).append(float(f["seconds"]))
    if skipped and not groups:
        raise SystemExit(f"scaling_model: {path}: no usable all-reduce case: {'; '.join(skipped[:3])}"
                         f"{' ...' if len(skipped) > 3 else ''} (bench_allreduce writes algorithm, ranks, nodes, "
                         "bytes, seconds per case)")
    if skipped:
        print(f"scaling_model: {path}: skipped {len(skipped)} entries ({skipped[0]}, ...)", file=sys.stderr)
    return [Case(a, n, r, b, float(np.mean(s)), path) for (a, n, r, b), s in sorted(groups.items())]


# ---------------------------------------------------------------------------------------------
# Fit


@dataclass
class Fit:
    intra: Link
    inter: Link
    fitted: tuple  # which of PARAM_NAMES had data
    r2: float
    max_rel_err: float
    n_cases: int
    share: dict = field(default_factory=dict)


def _nnls(a, b):
    """min |a x - b| with x >= 0, exactly, for few columns: the best non-negative least-squares
    solution over every support (the optimum is the unconstrained solution on its support)."""
    m = a.shape[1]
    best, best_res = np.zeros(m), float(np.sum(b * b))
    for k in range(1, m + 1):
        for cols in itertools.combinations(range(m), k):
            sub = a[:, cols]
            x, *_ = np.linalg.lstsq(sub, b, rcond=None)
            if np.any(x < 0):
                continue
            res = float(np.sum((sub @ x - b) ** 2))
            if res < best_res * (1 - 1e-12):
                best, best_res = np.zeros(m), res
                best[list(cols)] = x
    return best


def fittable(case):
    return case.algorithm in ("flat", "hierarchical") and case.ranks > 1


def port_share(case, ports_per_node=1):
    """Rings of the hierarchical algorithm sharing one inter-node port (emulated nodes: one port)."""
    return max(1, case.local // ports_per_node)


def fit(cases, ports_per_node=1):
    """Non-negative least squares of the cost model on `cases`, relative errors weighted equally
    (each row divided by its measured time, so 8 B and 256 MiB count alike). Parameters without
    data (e.g. inter with one node) are reported as not fitted (0)."""
    cases = [c for c in cases if fittable(c)]
    if not cases:
        raise SystemExit("scaling_model: no flat or hierarchical all-reduce with more than one rank to fit "
                         "(set the algorithm with PATH:algorithm=flat where a file does not say it)")
    a = np.array([design_row(c.algorithm, c.nodes, c.local, c.nbytes, port_share(c, ports_per_node)) for c in cases])
    t = np.array([c.seconds for c in cases])
    used = [j for j in range(4) if np.any(a[:, j] != 0)]
    x = np.zeros(4)
    x[used] = _nnls(a[:, used] / t[:, None], np.ones(len(t)))
    pred = a @ x
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    r2 = 1 - float(np.sum((t - pred) ** 2)) / ss_tot if ss_tot > 0 else 1.0
    return Fit(Link(x[0], x[1]), Link(x[2], x[3]), tuple(PARAM_NAMES[j] for j in used), r2,
               float(np.max(np.abs(pred - t) / t)), len(cases))


def predict_case(f, case, ports_per_node=1):
    return allreduce_time(case.algorithm, case.nodes, case.local, case.nbytes, f.intra, f.inter,
                          port_share(case, ports_per_node))


def errors(f, cases, ports_per_node=1):
    """Relative errors (predicted - measured) / measured of `f` on `cases`."""
    return [(predict_case(f, c, ports_per_node) - c.seconds) / c.seconds for c in cases]


def validate(cases, ports_per_node=1):
    """Fit on the runs with the fewest nodes, predict the runs on more nodes (train: nodes <= k,
    for every k that leaves both sides with data and the inter link fitted), and leave-one-run-out
    (a run = one file's algorithm, nodes and ranks). Returns (description, fit, test cases, errors)."""
    cases = [c for c in cases if fittable(c)]
    out = []
    node_counts = sorted({c.nodes for c in cases})
    for k in node_counts[:-1]:
        train = [c for c in cases if c.nodes <= k]
        test = [c for c in cases if c.nodes > k]
        f = fit(train, ports_per_node)
        if k > 1 or "beta_inter" in f.fitted:
            out.append((f"fit on <= {k} node(s), predict {', '.join(map(str, sorted({c.nodes for c in test})))} nodes",
                        f, test, errors(f, test, ports_per_node)))
    runs = sorted({(c.algorithm, c.nodes, c.ranks) for c in cases})
    for run in runs:
        train = [c for c in cases if (c.algorithm, c.nodes, c.ranks) != run]
        test = [c for c in cases if (c.algorithm, c.nodes, c.ranks) == run]
        needed = {"beta_inter"} if run[1] > 1 else {"beta_intra"}
        if not train:
            continue
        f = fit(train, ports_per_node)
        if needed <= set(f.fitted):
            out.append((f"leave out {run[0]} {run[1]} node(s) x {run[2] // run[1]}", f, test,
                        errors(f, test, ports_per_node)))
    return out


# ---------------------------------------------------------------------------------------------
# GPT-2 parameters and kirzl's DDP buckets


@dataclass(frozen=True)
class GPTShape:
    name: str
    n_layer: int
    n_embd: int
    vocab_size: int = 50257
    block_size: int = 1024
    vocab_padding: int = 128
    bias: bool = True

    @property
    def padded_vocab(self):
        return -(-self.vocab_size // self.vocab_padding) * self.vocab_padding


GPT2_124M = GPTShape("GPT-2 124M", 12, 768)
GPT2_1558M = GPTShape("GPT-2 1.5B", 48, 1600)


def gpt_parameters(cfg):
    """(name, elements, backward work) of kirzl's GPT (src/nn/gpt.cpp) in registration order, the
    order DDP sees (Module::named_parameters: own parameters, then children in order). wte is the
    padded [padded_vocab, C] matrix, registered once: the output layer is tied to it (no separate
    lm_head parameter). Work = elements of matmul weights (Note [scaling model overlap]); wte's
    (the output GEMM) counts at the start of backward, see bucket_ready_fractions."""
    c = cfg.n_embd
    out = [("wte.weight", cfg.padded_vocab * c, cfg.padded_vocab * c), ("wpe.weight", cfg.block_size * c, 0)]

    def linear(prefix, fan_in, fan_out):
        out.append((prefix + ".weight", fan_out * fan_in, fan_out * fan_in))
        if cfg.bias:
            out.append((prefix + ".bias", fan_out, 0))

    def norm(prefix):
        out.append((prefix + ".weight", c, 0))
        out.append((prefix + ".bias", c, 0))

    for i in range(cfg.n_layer):
        p = f"h.{i}."
        norm(p + "ln_1")
        linear(p + "attn.c_attn", c, 3 * c)
        linear(p + "attn.c_proj", c, c)
        norm(p + "ln_2")
        linear(p + "mlp.c_fc", c, 4 * c)
        linear(p + "mlp.c_proj", 4 * c, c)
    norm("ln_f")
    return out


def assign_buckets(sizes, cap_bytes, first_cap_bytes):
    """kirzl's ddp_detail::assign_buckets (src/comm/buckets.cpp) for parameters of one dtype and
    device: reverse registration order; a bucket closes when adding the next parameter would pass
    the cap (the first bucket's cap is first_cap_bytes); a larger parameter gets a bucket of its
    own. Returns lists of parameter indices, in bucket order."""
    buckets, current, current_bytes = [], [], 0
    for k in range(len(sizes) - 1, -1, -1):
        cap = first_cap_bytes if not buckets else cap_bytes
        if current and current_bytes + sizes[k] > cap:
            buckets.append(current)
            current, current_bytes = [], 0
        current.append(k)
        current_bytes += sizes[k]
    if current:
        buckets.append(current)
    return buckets


DTYPE_BYTES = {"f32": 4, "bf16": 2, "f16": 2}


@dataclass
class Bucket:
    params: list   # names, in bucket order
    nbytes: int    # bytes of the bucket's buffer (gradient dtype)
    wire_bytes: int  # bytes all-reduced (reduce_dtype)
    ready: float   # fraction of backward done when its last gradient is ready


def ddp_buckets(cfg, grad_dtype="f32", bucket_cap_mb=25.0, first_bucket_cap_mb=1.0, reduce_dtype=None):
    """The buckets kirzl's DDP builds for GPT `cfg` with gradients in `grad_dtype` (the model's
    dtype) and DDPOptions' caps (MiB, truncated to bytes as reducer.cpp does); reduce_dtype bf16
    with f32 gradients all-reduces a bf16 copy: same layout, half the bytes on the wire."""
    params = gpt_parameters(cfg)
    esize = DTYPE_BYTES[grad_dtype]
    wsize = DTYPE_BYTES[reduce_dtype or grad_dtype]
    sizes = [n * esize for _, n, _ in params]
    layout = assign_buckets(sizes, int(bucket_cap_mb * MiB), int(first_bucket_cap_mb * MiB))
    ready = param_ready_fractions(params)
    return [Bucket([params[i][0] for i in b], sum(sizes[i] for i in b), sum(params[i][1] for i in b) * wsize,
                   max(ready[i] for i in b)) for b in layout]


def param_ready_fractions(params):
    """Fraction of backward done when each parameter's gradient is ready (Note [scaling model
    overlap]): work accumulates in reverse registration order after the output GEMM (wte's work,
    done first); wte itself is ready at the very end."""
    total = sum(w for _, _, w in params)
    done = params[0][2]  # the tied output layer's GEMM runs first in backward
    ready = [0.0] * len(params)
    for k in range(len(params) - 1, 0, -1):
        done += params[k][2]
        ready[k] = done / total
    ready[0] = 1.0
    return ready


# ---------------------------------------------------------------------------------------------
# A training step


def step_flops_per_token(cfg):
    """6 N + 12 L C T (forward + backward, attention included; PaLM's appendix B), N without padding."""
    c, L = cfg.n_embd, cfg.n_layer
    n = cfg.vocab_size * c + cfg.block_size * c + L * (12 * c * c + 13 * c) + 2 * c
    return 6 * n + 12 * L * c * cfg.block_size


H100_PEAK_BF16 = 989.4e12  # FLOP/s dense bf16, H100 SXM datasheet (H200: the same compute)
DEFAULT_TOKENS_PER_GPU = 16 * 1024  # batch 16 x 1024 tokens per GPU, as bench_gpt2 runs
DEFAULT_MFU = 0.40


def compute_seconds(cfg, tokens=DEFAULT_TOKENS_PER_GPU, mfu=DEFAULT_MFU, peak=H100_PEAK_BF16):
    """One GPU's step: (6 N + 12 L C T) x tokens / (peak x MFU). MFU 0.40 is a well-tuned step
    (kirzl measured 0.11 on one H200 for 124M, bench/RESULTS.md 2026-12-04: a slower step hides
    communication more easily, so 0.40 is the harder case)."""
    return step_flops_per_token(cfg) * tokens / (peak * mfu)


@dataclass
class StepPrediction:
    comm: float       # sum of the buckets' all-reduce times
    exposed: float    # communication not hidden behind backward
    efficiency: float


def predict_step(buckets, compute, algorithm, nodes, machine, overlap=True, backward_share=2 / 3):
    """Exposed communication and weak-scaling efficiency of one step (Note [scaling model overlap]).
    Backward is `backward_share` of `compute` and ends it (the optimizer step is neglected)."""
    share = max(1, machine.gpus_per_node // machine.ports)
    times = [allreduce_time(algorithm, nodes, machine.gpus_per_node, b.wire_bytes, machine.intra, machine.inter, share)
             for b in buckets]
    backward = backward_share * compute
    if overlap:
        end = 0.0
        for b, t in zip(buckets, times):
            end = max(end, b.ready * backward) + t
        exposed = max(0.0, end - backward)
    else:
        exposed = sum(times)
    return StepPrediction(sum(times), exposed, compute / (compute + exposed))


# ---------------------------------------------------------------------------------------------
# Reports

NODE_COUNTS = (8, 16, 32, 64, 128, 256, 512, 1024)
BUCKET_CAPS_MB = (1, 5, 10, 25, 50, 100, 200)
ALGORITHMS = ("flat", "hierarchical")


def fmt_s(s):
    return f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def report_fit(f, out):
    out.append(f"fit of {f.n_cases} cases: R^2 = {f.r2:.4f}, max relative error {f.max_rel_err:.1%}")
    for cls, link in (("intra", f.intra), ("inter", f.inter)):
        if f"beta_{cls}" in f.fitted or f"alpha_{cls}" in f.fitted:
            bw = f"{1 / link.beta / 1e9:.3g} GB/s" if link.beta > 0 else "inf"
            out.append(f"  {cls}: alpha = {link.alpha * 1e6:.2f} us per step, beta = {link.beta:.4g} s/B ({bw})")
        else:
            out.append(f"  {cls}: not measured")


def data_ratio(nodes, local):
    """What issue #17 predicts the hierarchical algorithm gains over the flat ring for large
    messages on one port per node: the bytes each node sends across, 2(n-1)/n against 2(N-1)/N."""
    n = nodes * local
    return ((n - 1) / n) / ((nodes - 1) / nodes)


def hierarchical_gains(f, cases, min_bytes=MiB):
    """(nodes, ranks, bytes, measured flat/hierarchical, fitted model's ratio, data ratio) wherever
    both algorithms were measured on more than one node at >= min_bytes."""
    flat = {(c.nodes, c.ranks, c.nbytes): c.seconds for c in cases if c.algorithm == "flat"}
    rows = []
    for c in sorted(cases, key=lambda c: (c.nodes, c.ranks, c.nbytes)):
        key = (c.nodes, c.ranks, c.nbytes)
        if c.algorithm == "hierarchical" and c.nodes > 1 and c.nbytes >= min_bytes and key in flat:
            model = (flat_time(c.nodes, c.local, c.nbytes, f.intra, f.inter) /
                     hierarchical_time(c.nodes, c.local, c.nbytes, f.intra, f.inter, port_share(c)))
            rows.append((c.nodes, c.ranks, c.nbytes, flat[key] / c.seconds, model, data_ratio(c.nodes, c.local)))
    return rows


def report_gains(f, cases, out, markdown):
    rows = hierarchical_gains(f, cases)
    if not rows:
        out.append("hierarchical against flat: no size >= 1 MiB measured with both on more than one node")
        return
    head = ["nodes x ranks", "bytes", "measured flat / hierarchical", "fitted model", "data ratio 2(n-1)/n : 2(N-1)/N",
            "measured / data ratio"]
    if markdown:
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for nodes, ranks, b, meas, model, data in rows:
        cells = [f"{nodes} x {ranks // nodes}", f"{b / MiB:g} MiB", f"{meas:.2f}", f"{model:.2f}", f"{data:.2f}",
                 f"{meas / data:.2f}"]
        out.append("| " + " | ".join(cells) + " |" if markdown else "  ".join(cells))


def report_validation(cases, out, markdown):
    results = validate(cases)
    if not results:
        out.append("validation: needs runs on at least two node counts (or two runs) to hold one out")
        return
    if markdown:
        out += ["| validation | cases predicted | median abs. error | max abs. error |", "|---|---|---|---|"]
    for desc, _, test, errs in results:
        a = np.abs(errs)
        line = (desc, len(test), f"{np.median(a):.1%}", f"{np.max(a):.1%}")
        out.append("| " + " | ".join(map(str, line)) + " |" if markdown else
                   f"{line[0]}: {line[1]} cases, median |error| {line[2]}, max {line[3]}")


def scaling_rows(models, machine, dtypes=("f32", "bf16"), caps=BUCKET_CAPS_MB, nodes_list=NODE_COUNTS, mfu=DEFAULT_MFU):
    """Every (model, dtype, nodes, algorithm, cap, overlap) -> StepPrediction."""
    rows = []
    for cfg in models:
        compute = compute_seconds(cfg, mfu=mfu)
        for dt in dtypes:
            for cap in caps:
                buckets = ddp_buckets(cfg, dt, bucket_cap_mb=cap)
                for nodes in nodes_list:
                    for alg in ALGORITHMS:
                        for ov in (True, False):
                            rows.append((cfg, dt, nodes, alg, cap, ov, compute,
                                         predict_step(buckets, compute, alg, nodes, machine, ov)))
    return rows


def report_buckets(models, out):
    for cfg in models:
        for dt in ("f32", "bf16"):
            b = ddp_buckets(cfg, dt)
            sizes = [x.nbytes / MiB for x in b]
            out.append(f"{cfg.name} {dt}: {len(b)} buckets (25 MiB cap, first 1 MiB): "
                       f"first {sizes[0]:.2f} MiB [{', '.join(b[0].params)}], largest {max(sizes):.2f} MiB, "
                       f"last {sizes[-1]:.2f} MiB [{', '.join(b[-1].params[-3:])}], total {sum(sizes):.1f} MiB")


def report_scaling(rows, out, markdown):
    """Per model, dtype, algorithm and overlap: the first node count where the default 25 MiB
    buckets fall below 90%, and the best cap (and its efficiency) there and at 1024 nodes."""
    key = lambda r: (r[0].name, r[1], r[3], r[5])
    table = {}
    for r in rows:
        table.setdefault(key(r), {}).setdefault(r[2], {})[r[4]] = r
    head = ["model", "grads", "algorithm", "overlap", "compute/step", "25 MiB: eff. at 8 / 1024 nodes",
            "25 MiB < 90% from", "best cap at 1024 nodes (eff.)", "best cap keeps >= 90% up to"]
    if markdown:
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k, by_nodes in table.items():
        nodes_sorted = sorted(by_nodes)
        e25 = {n: by_nodes[n][25][7].efficiency for n in nodes_sorted}
        below = next((n for n in nodes_sorted if e25[n] < 0.9), None)
        last = nodes_sorted[-1]
        best_cap = max(by_nodes[last], key=lambda c: by_nodes[last][c][7].efficiency)
        keep = [n for n in nodes_sorted if max(r[7].efficiency for r in by_nodes[n].values()) >= 0.9]
        up_to = max((n for n in nodes_sorted if all(x in keep for x in nodes_sorted if x <= n)), default=None)
        compute = by_nodes[last][25][6]
        cells = [k[0], k[1], k[2], "yes" if k[3] else "no", fmt_s(compute),
                 f"{e25[nodes_sorted[0]]:.1%} / {e25[last]:.1%}", f"{below} nodes" if below else "never (<= 1024)",
                 f"{best_cap} MiB ({by_nodes[last][best_cap][7].efficiency:.1%})",
                 f"{up_to} nodes" if up_to else f"< {nodes_sorted[0]} nodes"]
        out.append("| " + " | ".join(cells) + " |" if markdown else "  ".join(cells))


def report_best(rows, out, markdown):
    """Per node count and model/gradient dtype: kirzl's default across nodes (hierarchical, 25 MiB
    buckets, overlap) and the best algorithm and cap with overlap."""
    cols = sorted({(r[0].name, r[1]) for r in rows}, key=lambda k: (k[0] != "GPT-2 124M", k[1] != "f32"))
    by = {}
    for r in rows:
        if r[5]:
            by.setdefault((r[2], r[0].name, r[1]), []).append(r)
    head = ["nodes (GPUs)"] + [f"{m} {d}: default -> best" for m, d in cols]
    if markdown:
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for nodes in sorted({r[2] for r in rows}):
        cells = [f"{nodes} ({nodes * 4})"]
        for m, d in cols:
            rs = by[(nodes, m, d)]
            default = next(r for r in rs if r[3] == "hierarchical" and r[4] == 25)[7].efficiency
            best = max(rs, key=lambda r: r[7].efficiency)
            mark = "**" if default < 0.9 and markdown else ""
            cells.append(f"{mark}{default:.1%}{mark} -> {best[7].efficiency:.1%} ({best[3][:4]}, {best[4]} MiB)")
        out.append("| " + " | ".join(cells) + " |" if markdown else "  ".join(cells))


def synthetic_cases(intra, inter, sizes=None, noise=0.0, seed=0, nodes_list=(1, 2, 3, 4), local=2):
    """Cases generated from known alpha/beta by the cost model (emulated nodes: one port per node),
    optionally with multiplicative Gaussian noise: for tests and --synthetic."""
    rng = np.random.default_rng(seed)
    sizes = sizes or [8 * 4 ** k for k in range(13)] + [256 * MiB]
    cases = []
    for nodes in nodes_list:
        for alg in (("flat",) if nodes == 1 else ALGORITHMS):
            for b in sizes:
                t = allreduce_time(alg, nodes, local, b, intra, inter, local)
                cases.append(Case(alg, nodes, nodes * local, float(b), t * (1 + noise * rng.standard_normal()), "synthetic"))
    return cases


def parse_measured(arg):
    """"a.json" or "a.json:algorithm=flat,ranks=2,nodes=1" (fields for entries that lack them)."""
    path, sep, spec = arg.partition(":")
    if not sep or os.path.exists(arg):
        return arg, {}
    defaults = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        if not eq or key not in _FIELDS:
            raise SystemExit(f"scaling_model: --measured {arg}: expected PATH:key=value,... with keys {', '.join(_FIELDS)}")
        defaults[key] = value
    return path, defaults


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--measured", nargs="+", metavar="JSON", help="bench_allreduce --benchmark_format=json outputs; PATH:algorithm=flat,ranks=2,nodes=1 supplies "
                     "fields that a file's entries lack (e.g. today's bench_allreduce --benchmark_filter=BM_KirzlMpi)")
    src.add_argument("--synthetic", action="store_true",
                     help="fit cases generated from known alpha/beta (1 Gbit/s, 200 us links; 5 GB/s shared memory) with 3%% noise")
    p.add_argument("--markdown", action="store_true", help="tables for bench/RESULTS.md")
    p.add_argument("--mfu", type=float, default=DEFAULT_MFU, help=f"model FLOP utilisation of the step (default {DEFAULT_MFU})")
    p.add_argument("--min-bytes", type=float, default=0, help="fit and validate only messages of at least this many bytes")
    p.add_argument("--per-node-port", action="store_true", help="one 400 Gbit/s port per node instead of one per GPU")
    args = p.parse_args(argv)
    if args.mfu <= 0 or args.mfu > 1:
        p.error(f"--mfu must be in (0, 1], got {args.mfu}")
    if args.synthetic:
        cases = synthetic_cases(Link(5e-6, 1 / 5e9), Link(200e-6, 1 / 0.125e9), noise=0.03)
    else:
        cases = [c for arg in args.measured for c in load_cases(*parse_measured(arg))]
    cases = [c for c in cases if c.nbytes >= args.min_bytes]
    machine = H100_NDR_PER_NODE if args.per_node_port else H100_NDR_PER_GPU
    out = []
    h = "### " if args.markdown else "== "
    what = "synthetic all-reduces (known alpha/beta, 3% noise)" if args.synthetic else "the measured all-reduces"
    out.append(f"{h}Fit of {what} ({len(cases)} cases; "
               f"{', '.join(sorted({f'{c.algorithm} {c.nodes}x{c.local}' for c in cases}))})")
    report_fit(fit(cases), out)
    out.append("")
    out.append(f"{h}Validation: predicting runs left out of the fit")
    report_validation(cases, out, args.markdown)
    out.append("")
    out.append(f"{h}Hierarchical against flat on the measured nodes (issue #17: the gain the data ratio predicts, within 20%)")
    report_gains(fit(cases), cases, out, args.markdown)
    out.append("")
    models = (GPT2_124M, GPT2_1558M)
    out.append(f"{h}DDP buckets (kirzl's rule; wte tied to the output layer, counted once, padded to 50304 rows)")
    report_buckets(models, out)
    out.append("")
    out.append(f"{h}Weak scaling on {machine.name}: {', '.join(map(str, NODE_COUNTS))} nodes; "
               f"compute = (6N + 12LCT) x {DEFAULT_TOKENS_PER_GPU} tokens / ({H100_PEAK_BF16 / 1e12:.1f} TFLOP/s x MFU {args.mfu})")
    rows = scaling_rows(models, machine, mfu=args.mfu)
    report_scaling(rows, out, args.markdown)
    out.append("")
    out.append(f"{h}Efficiency with overlap: kirzl's default across nodes (hierarchical, 25 MiB buckets) -> "
               "the best algorithm and bucket cap" + (" (bold: below 90%)" if args.markdown else ""))
    report_best(rows, out, args.markdown)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
