#!/usr/bin/env python3
"""GPT-2 124M training steps in PyTorch: the peer of bench/bench_gpt2.cpp.

A minimal GPT-2 of its own (learned positions, pre-LN blocks, tied token embedding / classifier,
scaled_dot_product_attention with is_causal, tanh-GELU), trained with bf16 autocast over f32
parameters and fused AdamW (lr 6e-4, betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on the 2-D
parameters, none on biases and LayerNorm). Modes: `eager` and `compile` (torch.compile).

Throughput: tokens/s over --steps timed steps after --warmup untimed ones, on one fixed batch;
peak memory: torch.cuda.max_memory_allocated() over warm-up and timed steps; energy: the GPU's NVML
counter (nvmlDeviceGetTotalEnergyConsumption, read through ctypes) over the timed steps, as
joules_per_step and tokens_per_joule, with "energy" naming the GPU -- or, without the counter, both
null and "energy": "not available: <why>" (never 0), as bench_gpt2 reports kirzl's.

Correctness (--weights / --batch, as written by bench_gpt2's BM_gpt2_loss_check): loads initial
weights from a safetensors file in GPT-2's own names and layout (as Hugging Face's GPT-2 files and
kirzl's models::save_gpt2_safetensors write them: wte.weight, wpe.weight, h.{i}.ln_1.weight, ...,
ln_f.bias, with or without a "transformer." prefix; the four projections per block are Conv1D
weights [in, out] and are transposed into this model's Linear [out, in]; lm_head.weight is tied
to wte), and a batch of int32 tokens [B, T + 1] from a raw little-endian file (inputs [:, :-1],
targets [:, 1:]); prints the loss at step 0 and after --loss-steps optimizer steps on that batch.

Output: one JSON object on the last line of stdout.
"""
import argparse
import atexit
import ctypes
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(c)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(c, 3 * c)
        self.attn.c_proj = nn.Linear(c, c)
        self.ln_2 = nn.LayerNorm(c)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(c, 4 * c)
        self.mlp.c_proj = nn.Linear(4 * c, c)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))
        x = x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))
        return x


class GPT(nn.Module):
    def __init__(self, vocab=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768):
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(vocab, n_embd)
        self.transformer.wpe = nn.Embedding(block_size, n_embd)
        self.transformer.h = nn.ModuleList([Block(n_embd, n_head) for _ in range(n_layer)])
        self.transformer.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets):
        t = idx.size(1)
        pos = torch.arange(t, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))


class NvmlEnergy:
    """The NVML energy counter of CUDA device `index` (found by PCI bus id, as kirzl's EnergyMeter
    finds it), in joules since this object was made; `reason` says why not where it is missing."""

    def __init__(self, index):
        self.reason, self.source, self._start = None, None, 0
        try:
            self._lib = ctypes.CDLL("libnvidia-ml.so.1")
        except OSError as e:
            self.reason = f"NVML: cannot load libnvidia-ml.so.1: {e}"
            return
        lib = self._lib
        lib.nvmlErrorString.restype = ctypes.c_char_p
        rc = lib.nvmlInit_v2()
        if rc != 0:
            self.reason = f"NVML: nvmlInit_v2 failed: {self._error(rc)}"
            return
        atexit.register(lib.nvmlShutdown)
        p = torch.cuda.get_device_properties(index)
        self._handle = ctypes.c_void_p()
        count = ctypes.c_uint()
        if hasattr(p, "pci_bus_id"):
            bus = f"{getattr(p, 'pci_domain_id', 0):08x}:{p.pci_bus_id:02x}:{p.pci_device_id:02x}.0"
            rc = lib.nvmlDeviceGetHandleByPciBusId_v2(bus.encode(), ctypes.byref(self._handle))
            call = f"nvmlDeviceGetHandleByPciBusId_v2({bus})"
        elif lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) == 0 and count.value == 1:
            bus = "index 0"  # an older torch without the bus id, but only one GPU: it is the one
            rc = lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(self._handle))
            call = "nvmlDeviceGetHandleByIndex_v2(0)"
        else:
            self.reason = f"torch {torch.__version__} does not report the PCI bus id of cuda:{index}"
            return
        if rc != 0:
            self.reason = f"NVML: {call} failed: {self._error(rc)}"
            return
        mj = ctypes.c_ulonglong()
        rc = lib.nvmlDeviceGetTotalEnergyConsumption(self._handle, ctypes.byref(mj))
        if rc != 0:
            self.reason = f"NVML: nvmlDeviceGetTotalEnergyConsumption(GPU {bus}) failed: {self._error(rc)}"
            return
        self._start = mj.value
        self.source = f"NVML GPU {bus} ({torch.cuda.get_device_name(index)})"

    def _error(self, rc):
        s = self._lib.nvmlErrorString(rc)
        return f"{s.decode() if s else 'unknown NVML error'} (code {rc})"

    def joules(self):
        mj = ctypes.c_ulonglong()
        rc = self._lib.nvmlDeviceGetTotalEnergyConsumption(self._handle, ctypes.byref(mj))
        if rc != 0:
            raise RuntimeError(f"NVML: nvmlDeviceGetTotalEnergyConsumption failed: {self._error(rc)}")
        return (mj.value - self._start) * 1e-3


def energy_fields(meter, joules, steps, tokens_per_step):
    """The result's energy fields: numbers, or null next to the reason (never 0)."""
    if meter.reason is None and joules > 0:
        return {"energy": meter.source, "energy_joules": joules, "joules_per_step": joules / steps,
                "tokens_per_joule": tokens_per_step * steps / joules}
    why = meter.reason or f"the counter did not move in {steps} steps"
    return {"energy": f"not available: {why}", "energy_joules": None, "joules_per_step": None,
            "tokens_per_joule": None}


def load_safetensors(path):
    try:
        from safetensors.torch import load_file
        return load_file(path)
    except ImportError:  # a plain reader: 8-byte header length, JSON header, raw little-endian data
        dtypes = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64}
        with open(path, "rb") as f:
            raw = f.read()
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + n])
        out = {}
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            a, b = meta["data_offsets"]
            buf = bytearray(raw[8 + n + a:8 + n + b])
            out[name] = torch.frombuffer(buf, dtype=dtypes[meta["dtype"]]).reshape(meta["shape"]).clone()
        return out


CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def load_weights(model, path):
    tensors = {k[len("transformer."):] if k.startswith("transformer.") else k: v
               for k, v in load_safetensors(path).items()}
    own = {k[len("transformer."):]: p for k, p in model.named_parameters() if k.startswith("transformer.")}
    missing = [k for k in own if k not in tensors]
    if missing:
        sys.exit(f"gpt2_torch: {path} lacks {missing[:5]} ({len(missing)} missing)")
    with torch.no_grad():
        for name, p in own.items():
            src = tensors[name]
            if name.endswith(CONV1D):
                src = src.t()
            if tuple(src.shape) != tuple(p.shape):
                sys.exit(f"gpt2_torch: {name} has shape {tuple(src.shape)} in {path}, expected {tuple(p.shape)}")
            p.copy_(src.to(torch.float32))


def load_batch(path, b, t):
    data = torch.frombuffer(bytearray(open(path, "rb").read()), dtype=torch.int32)
    if data.numel() != b * (t + 1):
        sys.exit(f"gpt2_torch: {path} holds {data.numel()} tokens, expected {b} x {t + 1}")
    data = data.view(b, t + 1).long()
    return data[:, :-1].contiguous(), data[:, 1:].contiguous()


def make_optimizer(model, lr, wd):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8, fused=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["eager", "compile"], default="eager")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation happens here)")
    ap.add_argument("--weights", help="initial weights (safetensors, GPT-2 names) for the loss check")
    ap.add_argument("--batch", help="int32 tokens [B, T + 1] for the loss check")
    ap.add_argument("--loss-steps", type=int, default=10)
    ap.add_argument("--peak-tflops", type=float, default=989.4,
                    help="dense bf16 peak of the GPU for MFU (H100 SXM: 989.4)")
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dev = torch.device("cuda")
    b, t = args.batch_size, args.seq
    model = GPT(vocab=args.vocab, block_size=t).to(dev)
    if args.weights:
        load_weights(model, args.weights)
    opt = make_optimizer(model, 6e-4, 0.1)
    step_model = torch.compile(model) if args.mode == "compile" else model

    if args.batch:
        x, y = load_batch(args.batch, b, t)
    else:
        g = torch.Generator().manual_seed(1)
        data = torch.randint(0, args.vocab, (b, t + 1), generator=g)
        x, y = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    x, y = x.to(dev), y.to(dev)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step_model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    result = {"framework": "pytorch", "torch": torch.__version__, "mode": args.mode, "batch": b, "seq": t,
              "device": torch.cuda.get_device_name(0)}
    torch.cuda.reset_peak_memory_stats()
    if args.weights or args.batch:
        losses = []
        for i in range(args.loss_steps + 1):
            losses.append(step().item())
        result["loss_step0"] = losses[0]
        result[f"loss_step{args.loss_steps}"] = losses[-1]
        result["losses"] = losses
        print(f"{args.mode}: loss at step 0 {losses[0]:.6f}, after {args.loss_steps} steps {losses[-1]:.6f}",
              flush=True)
    else:
        for _ in range(args.warmup):
            step()
        meter = NvmlEnergy(dev.index or 0)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        j0 = meter.joules() if meter.reason is None else 0.0
        for _ in range(args.steps):
            loss = step()
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        joules = meter.joules() - j0 if meter.reason is None else 0.0
        tokens_per_s = b * t * args.steps / dt
        n_params = sum(p.numel() for p in model.parameters()) - model.transformer.wpe.weight.numel()
        cfg_l, cfg_c = len(model.transformer.h), model.transformer.wte.weight.shape[1]
        flops_per_token = 6 * n_params + 12 * cfg_l * cfg_c * t
        result.update({
            "step_ms": 1e3 * dt / args.steps,
            "tokens_per_s": tokens_per_s,
            "last_loss": loss.item(),
            "flops_per_token": flops_per_token,
            "mfu": flops_per_token * tokens_per_s / (args.peak_tflops * 1e12),
            "peak_tflops": args.peak_tflops,
        })
        result.update(energy_fields(meter, joules, args.steps, b * t))
    result["peak_mem_bytes"] = torch.cuda.max_memory_allocated()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
