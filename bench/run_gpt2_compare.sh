#!/usr/bin/env bash
# GPT-2 124M training, kirzl against PyTorch (eager and torch.compile), in one call on the GPU
# machine: throughput, peak memory and energy (tokens per joule from the GPU's NVML counter, or
# the reason it is missing) of each, then the loss check (identical weights and batch,
# loss at step 0 and after 10 steps within bf16 tolerance). Prints a summary; writes every raw
# result (JSON) to OUT_DIR. Exit status 1 when the loss check fails (a missed speed goal is
# reported, not an error).
#   usage: bench/run_gpt2_compare.sh [BUILD_DIR=build-gpu] [OUT_DIR=BUILD_DIR/gpt2_compare]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-gpu}
OUT=${2:-$BUILD/gpt2_compare}
PY=${PYTHON:-python3}
mkdir -p "$OUT/check"
export KIRZL_GPT2_CHECK_DIR="$OUT/check"
export PYTHONUNBUFFERED=1

echo "== kirzl (bench_gpt2: fused and model paths, loss check) =="
"$BUILD/bench/bench_gpt2" --benchmark_out="$OUT/kirzl.json" --benchmark_out_format=json

for mode in eager compile; do
  echo "== PyTorch $mode =="
  "$PY" bench/peers/gpt2_torch.py --mode "$mode" | tee "$OUT/torch_$mode.log"
  tail -n 1 "$OUT/torch_$mode.log" > "$OUT/torch_$mode.json"
done
echo "== PyTorch loss check (eager, weights and batch from kirzl) =="
"$PY" bench/peers/gpt2_torch.py --mode eager --weights "$OUT/check/weights.safetensors" \
  --batch "$OUT/check/batch.i32" --loss-steps 10 | tee "$OUT/torch_check.log"
tail -n 1 "$OUT/torch_check.log" > "$OUT/torch_check.json"

"$PY" - "$OUT" <<'PYEOF'
import json, sys
out = sys.argv[1]
k = json.load(open(f"{out}/kirzl.json"))
runs = {b["name"]: b for b in k["benchmarks"]}
def kirzl_row(name):
    b = next((v for n, v in runs.items() if n.startswith(name)), None)
    if b is None or b.get("error_occurred"):
        return None
    return b
# Each row: label, tokens/s, peak bytes, MFU, tokens per joule (None: not measured), energy note
# ("energy: <GPU>" or "energy not available: <why>"; bench_gpt2 puts it in the benchmark's label).
rows = []
for label, name in (("kirzl fused", "BM_gpt2_train_step/fused:1"), ("kirzl model", "BM_gpt2_train_step/fused:0")):
    b = kirzl_row(name)
    if b: rows.append((label, b["tokens/s"], b["peak_mem_GB"] * 1e9, b["MFU"], b.get("tokens_per_joule"), b.get("label", "")))
    else: rows.append((label, None, None, None, None, ""))
for mode in ("eager", "compile"):
    t = json.load(open(f"{out}/torch_{mode}.json"))
    energy = t.get("energy", "not available: the peer did not report energy")
    rows.append((f"PyTorch {mode}", t["tokens_per_s"], t["peak_mem_bytes"], t["mfu"], t.get("tokens_per_joule"),
                 ("energy: " + energy) if t.get("tokens_per_joule") is not None else "energy " + energy))
# The fused step captured as a CUDA graph (BM_gpt2_train_step_graph), after the peers so that the
# indices above stay.
b = kirzl_row("BM_gpt2_train_step_graph")
rows.append(("kirzl graph", b["tokens/s"], b["peak_mem_GB"] * 1e9, b["MFU"], None, b.get("label", "")) if b
            else ("kirzl graph", None, None, None, None, ""))
compiled = rows[3][1]
compiled_mem = rows[3][2]
print("\n%-16s %12s %10s %6s %14s %10s" % ("", "tokens/s", "peak GB", "MFU", "vs compiled", "tokens/J"))
for label, tps, mem, mfu, tpj, _ in rows:
    if tps is None:
        print("%-16s %12s" % (label, "failed")); continue
    print("%-16s %12.0f %10.2f %6.3f %13.2fx %10s" % (label, tps, mem / 1e9, mfu, tps / compiled,
                                                     "n/a" if tpj is None else "%.0f" % tpj))
for label, tps, _, _, tpj, note in rows:
    if tps is not None and tpj is None:
        print(f"  {label}: {note or 'energy not available'}")
best = rows[0]
if best[1] is not None:
    goal = best[1] >= 1.1 * compiled and best[2] <= compiled_mem
    print(f"goal (fused >= 1.1 x compiled tokens/s, peak memory no higher): {'met' if goal else 'NOT met'}")

kl = json.load(open(f"{out}/check/kirzl_losses.json"))
tl = json.load(open(f"{out}/torch_check.json"))
ok = True
print("\nloss check (identical bf16-exact weights and batch):")
for step, key_t in ((0, "loss_step0"), (10, "loss_step10")):
    a, b = kl[f"loss_step{step}"], tl[key_t]
    tol = (1e-2 if step == 0 else 2e-2) * max(1.0, abs(b))  # bf16 activations: ~3 significant digits
    good = abs(a - b) <= tol
    ok &= good
    print(f"  step {step:2d}: kirzl {a:.5f}  PyTorch {b:.5f}  |diff| {abs(a - b):.5f}  (tol {tol:.4f}) {'ok' if good else 'MISMATCH'}")
json.dump({"columns": ["label", "tokens_per_s", "peak_mem_bytes", "mfu", "tokens_per_joule", "energy"],
           "rows": rows, "loss_check_ok": ok, "kirzl_losses": kl["losses"], "torch_losses": tl["losses"]},
          open(f"{out}/summary.json", "w"), indent=1)
sys.exit(0 if ok else 1)
PYEOF
