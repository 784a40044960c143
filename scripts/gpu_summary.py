#!/usr/bin/env python3
"""Reads the logs of scripts/gpu-check.sh and writes gpu-summary.json; prints a table last.

The summary holds: the probe (device, driver, commit, date), every GPU test case with its outcome
(from the GoogleTest XML of each program; a program that crashed or timed out is named with the
case it was in), the compute-sanitizer findings per program and tool, the examples' final JSON,
every benchmark with its counters, the GPT-2 comparison, and the targets of the GPU bring-up issue,
each with its value, its goal and whether it was met. Missing logs are reported, never guessed.

Every GPU test program of the bundle must have run in the full and verify profiles: one that left
no log is reported as missing, and fails the summary. A program not started because the time
budget was spent is reported as "not run", not as a failure.

Exit status: 0 when every test that ran passed and the sanitizers found nothing; 1 otherwise
(a missed speed target is reported, not an error).
"""
import argparse
import csv
import glob
import json
import os
import re
import sys
import xml.etree.ElementTree as ET


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return None


def last_json_line(text):
    """The last line of a program's output that is a JSON object (the examples end with one)."""
    for line in reversed((text or "").splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def read_runs(logs):
    runs = {}
    path = os.path.join(logs, "runs.tsv")
    if os.path.exists(path):
        with open(path) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                runs[row["name"]] = row
    return runs


def parse_probe(logs):
    probe = {}
    for line in (read(os.path.join(logs, "probe.txt")) or "").splitlines():
        if ": " in line and not line.startswith(" "):
            k, v = line.split(": ", 1)
            probe[k.strip()] = v.strip()
    probe["missing_libraries"] = [l.split(" ", 1)[1] for l in (read(os.path.join(logs, "probe.txt")) or "").splitlines()
                                  if l.startswith("MISSING ")]
    probe["unresolved_libraries"] = [l.strip() for l in (read(os.path.join(logs, "probe.txt")) or "").splitlines()
                                     if l.startswith("  ") and "not found" not in l and ":" in l]
    return probe


def console_cases(text):
    """GoogleTest's console lines: [(case, outcome)] in the order the cases started; a case that
    started and never ended (crash, timeout) is "unfinished"."""
    ends = {}
    for status, case in re.findall(r"^\[ *(OK|FAILED|SKIPPED) *\] (\S+)", text, re.M):
        ends.setdefault(case, {"OK": "passed", "FAILED": "failed", "SKIPPED": "skipped"}[status])
    started = list(dict.fromkeys(re.findall(r"^\[ RUN      \] (\S+)", text, re.M)))
    return [(c, ends.get(c, "unfinished")) for c in started]


def test_logs(logs):
    """(name, log, xml) of every test program run: logs/tests/ (one run each, a shard of one, or
    the eager index-check rerun), and the MPI test programs under mpirun (logs/mpi/comm_mpi_*;
    only rank 0 prints, no XML)."""
    found = [(os.path.basename(p)[:-4], p, p[:-4] + ".xml") for p in sorted(glob.glob(os.path.join(logs, "tests", "*.log")))]
    found += [(os.path.basename(p)[:-4], p, None) for p in sorted(glob.glob(os.path.join(logs, "mpi", "comm_mpi_*.log")))]
    return found


def parse_tests(logs, runs):
    programs, cases = [], []
    for name, log, xml in test_logs(logs):
        run = runs.get(name, {})
        prog = {"program": name, "rc": run.get("rc"), "seconds": run.get("seconds"), "status": run.get("status", "unknown")}
        mine = []
        if xml and os.path.exists(xml):
            try:
                root = ET.parse(xml).getroot()
                for tc in root.iter("testcase"):
                    full = f"{tc.get('classname')}.{tc.get('name')}"
                    failure = tc.find("failure")
                    skipped = tc.find("skipped")
                    if failure is not None:
                        outcome, detail = "failed", (failure.get("message") or failure.text or "")[:600]
                    elif skipped is not None or tc.get("result") == "skipped" or tc.get("status") == "notrun":
                        outcome = "skipped"
                        detail = (skipped.get("message") if skipped is not None else "") or ""
                        # GoogleTest prefixes the reason with "file:line\n".
                        detail = re.sub(r"^\S+:\d+\n", "", detail)
                        detail = detail[:300]
                    else:
                        outcome, detail = "passed", ""
                    mine.append({"program": name, "case": full, "outcome": outcome, "detail": detail})
            except ET.ParseError as e:
                prog["xml_error"] = str(e)
        text = read(log) or ""
        tail = " | ".join(text.strip().splitlines()[-6:])[:600]
        if not mine:
            # No XML (crash, timeout, abort, or a program under mpirun): the console's cases, and
            # the case that was running when it ended.
            for case, outcome in console_cases(text):
                if outcome == "unfinished":
                    prog["crashed_in"] = case
                    mine.append({"program": name, "case": case, "outcome": "failed",
                                 "detail": f"the program ended inside this case ({prog['status']}, rc={prog['rc']}): " + tail})
                else:
                    mine.append({"program": name, "case": case, "outcome": outcome,
                                 "detail": tail if outcome == "failed" else ""})
        if not mine:
            if prog["status"].startswith("not run"):
                outcome = "not run"
            else:
                outcome = "passed" if prog["status"] == "ok" else "failed"
            mine.append({"program": name, "case": "(program)", "outcome": outcome, "detail": tail})
        prog["cases"] = len(mine)
        cases += mine
        programs.append(prog)
    return programs, cases


def missing_programs(bundle, programs, profile):
    """The bundle's GPU test programs that left no log in a profile that runs them all (full,
    verify): each is a defect of the check, never a pass."""
    if profile not in ("full", "verify"):
        return []
    try:
        names = sorted(os.listdir(os.path.join(bundle, "bin", "tests")))
    except OSError:
        return []
    ran = [p["program"] for p in programs]
    missing = []
    for n in names:
        if n.startswith("comm_mpi_"):
            # Under mpirun (lane_mpi): <program>-np<N>.
            if any(r.startswith(n + "-np") for r in ran):
                continue
        elif n in ran or any(r.startswith(n + "-shard") for r in ran):
            continue
        missing.append(n)
    return missing


def parse_sanitizer(logs, runs):
    found = []
    for log in sorted(glob.glob(os.path.join(logs, "sanitizer", "*.log"))):
        base = os.path.basename(log)[:-4]
        tool, program = base.split("-", 1)
        run = runs.get(f"{tool}:{program}", {})
        text = read(log) or ""
        m = re.search(r"ERROR SUMMARY: (\d+) error", text)
        r = re.search(r"RACECHECK SUMMARY: (\d+) hazards? displayed \((\d+) errors?, (\d+) warnings?\)", text)
        errors = int(m.group(1)) if m else (int(r.group(2)) if r else None)
        findings = re.findall(r"^========= (?:Invalid|Race|Barrier|Uninitialized|Program hit|Error).*$", text, re.M)
        entry = {"tool": tool, "program": program, "rc": run.get("rc"), "seconds": run.get("seconds"),
                 "status": run.get("status", "unknown"), "errors": errors}
        if errors is None and findings:
            # Killed before its summary line (timeout): what it had printed still counts.
            entry["errors"] = errors = len(findings)
            entry["errors_before_it_ended"] = True
        if r:
            entry["race_warnings"] = int(r.group(3))
        if errors:
            entry["first_findings"] = findings[:5]
        found.append(entry)
    return found


def parse_examples(logs, runs):
    ex = {}
    for sub in ("examples", "mpi"):
        for log in sorted(glob.glob(os.path.join(logs, sub, "*.log"))):
            name = os.path.basename(log)[:-4]
            if name.startswith("comm_mpi_"):
                continue  # an MPI test program (parse_tests)
            run = runs.get(name, {})
            text = read(log) or ""
            ex[name] = {"rc": run.get("rc"), "seconds": run.get("seconds"), "status": run.get("status", "unknown"),
                        "result": last_json_line(text),
                        "tail": " | ".join(text.strip().splitlines()[-4:])[:500] if run.get("status") != "ok" else ""}
    return ex


def parse_benchmarks(logs, runs):
    out = []
    sources = {os.path.basename(p)[:-4]: (os.path.join(logs, "bench", os.path.basename(p)[:-4] + ".json"), p)
               for p in glob.glob(os.path.join(logs, "bench", "bench_*.log"))}
    # The compare profile runs bench_gpt2 inside bench/run_gpt2_compare.sh, which writes its JSON
    # (and its console, into gpt2_compare.log) under gpt2_compare/.
    compare = os.path.join(logs, "bench", "gpt2_compare")
    if "bench_gpt2" not in sources and os.path.isdir(compare):
        sources["bench_gpt2"] = (os.path.join(compare, "kirzl.json"), os.path.join(logs, "bench", "gpt2_compare.log"))
    for run in sorted(sources):
        path, log = sources[run]
        prog = run.split("-")[0]  # a program run in parts (gpu-check.sh): bench_cuda_nn, bench_cuda_nn-rest
        try:
            data = json.load(open(path))
        except (OSError, ValueError):
            # Killed at its time limit: the JSON was never written; read the console lines it printed.
            data = {"benchmarks": console_benchmarks(read(log))}
        if "benchmarks" not in data:
            continue
        for b in data["benchmarks"]:
            if b.get("run_type") == "aggregate":
                continue
            known = {"name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
                     "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit", "label",
                     "error_occurred", "error_message", "skipped", "skip_message", "aggregate_name", "aggregate_unit"}
            entry = {"program": prog, "run": run, "name": b["name"], "real_time": b.get("real_time"), "time_unit": b.get("time_unit"),
                     "counters": {k: v for k, v in b.items() if k not in known and isinstance(v, (int, float))}}
            if b.get("label"):
                entry["label"] = b["label"]
            if b.get("error_occurred") or b.get("skipped"):
                entry["error"] = b.get("error_message") or b.get("skip_message") or "error"
            out.append(entry)
    for name, run in runs.items():
        if run.get("kind") == "bench" and run.get("status") != "ok":
            out.append({"program": name.split("-")[0], "run": name, "name": "(program)", "error": run.get("status")})
    return out


def console_benchmarks(text):
    """Benchmarks from Google Benchmark's console lines: name, time, unit, then key=value counters."""
    out = []
    for line in (text or "").splitlines():
        m = re.match(r"^(BM_\S+)\s+([\d.]+) (ns|us|ms|s)\s+[\d.]+ (?:ns|us|ms|s)\s+\d+(.*)$", line)
        if not m:
            continue
        b = {"name": m.group(1), "real_time": float(m.group(2)), "time_unit": m.group(3), "from_console": 1}
        for k, v, suffix in re.findall(r"(\S+?)=([\d.]+)([kMGT]?)(?:/s)?(?=\s|$)", m.group(4)):
            b[k] = float(v) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[suffix]
        out.append(b)
    return out


def target(what, value, goal, op, note=""):
    if value is None:
        met = None
    else:
        met = value >= goal if op == ">=" else value <= goal
    return {"what": what, "value": value, "goal": f"{op} {goal}", "met": met, "note": note}


def targets_from(examples, benches, gpt2):
    t = []

    def ex_value(name, key):
        e = examples.get(name) or {}
        r = e.get("result") or {}
        return r.get(key)

    t.append(target("MLP test accuracy on CUDA (2 epochs)", ex_value("mlp_cuda", "test_accuracy"), 0.88, ">=",
                    f"CPU, same seed: {ex_value('mlp_cpu', 'test_accuracy')}"))
    t.append(target("CNN test accuracy on CUDA (1 epoch)", ex_value("cnn_cuda", "test_accuracy"), 0.90, ">=",
                    f"CPU, same seed: {ex_value('cnn_cpu', 'test_accuracy')}"))
    g_cuda, g_cpu = ex_value("gpt_cuda", "val_loss"), ex_value("gpt_cpu", "val_loss")
    t.append(target("GPT val loss, |CUDA - CPU| (200 steps, same seed)",
                    abs(g_cuda - g_cpu) if g_cuda is not None and g_cpu is not None else None, 0.05, "<=",
                    f"CUDA {g_cuda}, CPU {g_cpu}"))
    t.append(target("MLP on 2 MPI ranks, one GPU (1 epoch)", ex_value("mlp_cuda_np2", "test_accuracy"), 0.85, ">="))

    def ratios(prog, pattern, counter="ratio", exclude=None):
        vals = []
        for b in benches:
            if b["program"] != prog or "error" in b or not re.search(pattern, b["name"]):
                continue
            if exclude and re.search(exclude, b["name"]):
                continue
            v = b["counters"].get(counter)
            if v is not None:
                vals.append((b["name"], v))
        return vals

    def worst(vals, lowest=True):
        if not vals:
            return None, ""
        pick = min(vals, key=lambda x: x[1]) if lowest else max(vals, key=lambda x: x[1])
        return pick[1], f"worst of {len(vals)}: {pick[0]}"

    v, n = worst(ratios("bench_cuda_elementwise", r"^BM_(Add|Gelu|Cast)"))
    t.append(target("elementwise bandwidth / device copy", v, 0.85, ">=", n))
    # GELU's two forms on their own (the elementwise goal): the erf form (gelu) and the tanh form
    # (GPT-2's, Note [16-bit tanh-GELU]); each is the worst of its forward and backward.
    for form, what in (("erf", "GELU (erf) fwd, bwd bf16"), ("tanh", "tanh-GELU fwd, bwd bf16")):
        v, n = worst(ratios("bench_cuda_elementwise", rf"^BM_Gelu(Forward|Backward)Bf16/{form}(/|$)"))
        t.append(target(f"{what} bandwidth / device copy", v, 0.85, ">=", n))
    v, n = worst(ratios("bench_cuda_optim", r"FusedAdamW_GPT2_vs_copy"))
    t.append(target("fused AdamW (GPT-2 124M) bandwidth / device copy", v, 0.85, ">=", n))
    v, n = worst(ratios("bench_cuda_nn", r"LayerNorm"))
    t.append(target("layer norm fwd+bwd bandwidth / device copy", v, 0.75, ">=", n))
    v, n = worst(ratios("bench_cuda_nn", r"CrossEntropy"))
    t.append(target("softmax-cross-entropy fwd+bwd bandwidth / device copy", v, 0.75, ">=", n))
    v, n = worst(ratios("bench_cuda_nn", r"BiasGelu"))
    t.append(target("bias + tanh-GELU fwd, bwd (GPT-2 MLP) bandwidth / device copy", v, 0.85, ">=", n))
    v, n = worst(ratios("bench_cuda_gemm", r"bf16"))
    t.append(target("GEMM through kirzl / cuBLASLt called directly (bf16)", v, 0.97, ">=", n))
    v, n = worst(ratios("bench_nccl_allreduce", r"DDPOverhead", counter="overhead_pct"), lowest=False)
    t.append(target("DDP overhead at world size 1 (%)", v, 3.0, "<=", n))
    v, n = worst(ratios("bench_nccl_allreduce", r"^BM_NcclAllReduce/"))
    t.append(target("all-reduce through kirzl / ncclAllReduce (world size 1)", v, 0.98, ">=", n))
    if gpt2.get("kirzl_tokens_per_s") and gpt2.get("torch_eager_tokens_per_s"):
        t.append(target("GPT-2 124M tokens/s, kirzl fused / PyTorch eager",
                        gpt2["kirzl_tokens_per_s"] / gpt2["torch_eager_tokens_per_s"], 1.0, ">=",
                        f"peak memory kirzl {gpt2.get('kirzl_peak_GB')} GB, PyTorch eager {gpt2.get('torch_eager_peak_GB')} GB"))
    else:
        t.append(target("GPT-2 124M tokens/s, kirzl fused / PyTorch eager", None, 1.0, ">=", "not measured"))
    if gpt2.get("torch_compile_tokens_per_s"):  # the compare profile (issue #15: >= 1.1 x compiled)
        t.append(target("GPT-2 124M tokens/s, kirzl fused / torch.compile",
                        gpt2["kirzl_tokens_per_s"] / gpt2["torch_compile_tokens_per_s"]
                        if gpt2.get("kirzl_tokens_per_s") else None, 1.1, ">=",
                        f"peak memory kirzl {gpt2.get('kirzl_peak_GB')} GB, torch.compile {gpt2.get('torch_compile_peak_GB')} GB"))
    if gpt2.get("loss_check"):
        lc = gpt2["loss_check"]
        t.append(target("GPT-2 loss after 10 steps, |kirzl - PyTorch| / PyTorch", lc.get("rel_diff_step10"), 0.02, "<=",
                        f"step 0: kirzl {lc.get('kirzl_step0')}, PyTorch {lc.get('torch_step0')}"))
    return t


def gpt2_variant(name):
    """The key of a bench_gpt2 training-step benchmark: kirzl (the fused step), kirzl_model (the
    model's plain ops), kirzl_graph (the fused step replayed as a CUDA graph); None for the others."""
    if re.match(r"BM_gpt2_train_step_graph(/|$)", name):
        return "kirzl_graph"
    if re.match(r"BM_gpt2_train_step/fused:1(/|$)", name):
        return "kirzl"
    if re.match(r"BM_gpt2_train_step/fused:0(/|$)", name):
        return "kirzl_model"
    return None


def figures_from(benches, gpt2):
    """Figures without a goal of the issue, shown beside the targets: the CUDA graph's gain on the
    GPT-2 step and the cuBLASLt epilogues against the unfused kernels (Note [GEMM epilogues])."""
    f = []
    if gpt2.get("kirzl_graph_gain") is not None:
        f.append({"what": "GPT-2 124M step, eager / CUDA graph replay (graph_gain)", "value": gpt2["kirzl_graph_gain"],
                  "note": f"eager {gpt2.get('kirzl_graph_eager_step_ms')} ms, replay {gpt2.get('kirzl_graph_step_ms')} ms"})
    elif any(gpt2_variant(b["name"]) == "kirzl_graph" for b in benches if b["program"] == "bench_gpt2"):
        err = next((b.get("error") for b in benches if gpt2_variant(b["name"]) == "kirzl_graph" and b.get("error")), None)
        f.append({"what": "GPT-2 124M step, eager / CUDA graph replay (graph_gain)", "value": None,
                  "note": f"error: {err}" if err else "no graph_gain counter"})
    if gpt2.get("breakdown"):
        bd = gpt2["breakdown"]
        parts = ", ".join(f"{k} {v:.2f}" for k, v in bd["ms_per_step"].items())
        f.append({"what": "GPT-2 124M fused step: share of the step in kernels (profiler)", "value": bd.get("kernels_share"),
                  "note": f"ms per step by family: {parts}; kernels {bd.get('kernels_ms')} ms of "
                          f"{bd.get('step_ms_profiled')} ms (profiled step)"})
    for b in benches:
        if b["program"] == "bench_cuda_gemm" and b["name"].startswith("BM_CudaGemmEpilogue/"):
            f.append({"what": "GEMM epilogue " + b["name"].split("/")[1] + " " + b["name"].split("/")[2]
                      + ", unfused / fused time (speedup)", "value": b["counters"].get("speedup"),
                      "note": b.get("error") or b.get("label", "")})
    return f


def parse_gpt2(logs, benches, work):
    g = {}
    for b in benches:
        key = gpt2_variant(b["name"]) if b["program"] == "bench_gpt2" else None
        if key and "error" not in b:
            g[f"{key}_tokens_per_s"] = b["counters"].get("tokens/s")
            g[f"{key}_peak_GB"] = b["counters"].get("peak_mem_GB")
            g[f"{key}_mfu"] = b["counters"].get("MFU")
            g[f"{key}_step_ms"] = b.get("real_time")
            # Energy (NVML): numbers, or None with the reason in the label ("energy not available: ...").
            g[f"{key}_tokens_per_joule"] = b["counters"].get("tokens_per_joule")
            g[f"{key}_joules_per_step"] = b["counters"].get("joules_per_step")
            g[f"{key}_energy"] = b.get("label", "")
            if key == "kirzl_graph":
                # The eager step of the same setup in the same run, over the replayed one.
                g["kirzl_graph_gain"] = b["counters"].get("graph_gain")
                g["kirzl_graph_eager_step_ms"] = b["counters"].get("eager_step_ms")
        if b["program"] == "bench_gpt2" and re.match(r"BM_gpt2_step_breakdown(/|$)", b["name"]) and "error" not in b:
            # Issue #15's whole-step breakdown: device ms per step by kernel family (profiler::Profile).
            c = b["counters"]
            g["breakdown"] = {"ms_per_step": {k[3:]: v for k, v in sorted(c.items(), key=lambda kv: -kv[1])
                                              if k.startswith("ms_")},
                              "kernels_ms": c.get("kernels_ms"), "kernels_share": c.get("kernels_share"),
                              "step_ms_profiled": b.get("real_time")}
        if b["program"] == "bench_gpt2" and "error" in b:
            g.setdefault("errors", []).append(f"{b['name']}: {b['error']}")
    # The peers: full profile (torch_gpt2_*.log), or compare profile (gpt2_compare/, with torch.compile).
    compare = os.path.join(logs, "bench", "gpt2_compare")
    for mode, paths in (("eager", ("torch_gpt2_eager.log", "gpt2_compare/torch_eager.json")),
                        ("compile", ("gpt2_compare/torch_compile.json",))):
        t = None
        for path in paths:
            t = t or last_json_line(read(os.path.join(logs, "bench", path)))
        if t and t.get("tokens_per_s") is not None:
            g[f"torch_{mode}_tokens_per_s"] = t.get("tokens_per_s")
            g[f"torch_{mode}_peak_GB"] = (t.get("peak_mem_bytes") or 0) / 1e9
            g[f"torch_{mode}_mfu"] = t.get("mfu")
            g[f"torch_{mode}_tokens_per_joule"] = t.get("tokens_per_joule")
            g[f"torch_{mode}_joules_per_step"] = t.get("joules_per_step")
            g[f"torch_{mode}_energy"] = t.get("energy", "not available: the peer did not report energy")
    kl = None
    for path in (os.path.join(work, "gpt2_check", "kirzl_losses.json"), os.path.join(compare, "check", "kirzl_losses.json")):
        try:
            kl = json.load(open(path))
            break
        except (OSError, ValueError):
            pass
    tl = (last_json_line(read(os.path.join(logs, "bench", "torch_gpt2_loss_check.log")))
          or last_json_line(read(os.path.join(compare, "torch_check.json"))))
    if kl and tl and tl.get("loss_step10") is not None:
        g["loss_check"] = {"kirzl_step0": kl["loss_step0"], "torch_step0": tl.get("loss_step0"),
                           "kirzl_step10": kl["loss_step10"], "torch_step10": tl["loss_step10"],
                           "rel_diff_step10": abs(kl["loss_step10"] - tl["loss_step10"]) / max(1e-9, abs(tl["loss_step10"])),
                           "kirzl_losses": kl.get("losses"), "torch_losses": tl.get("losses")}
    return g


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--profile", default="full")
    ap.add_argument("--dry-run", default="0")
    ap.add_argument("--seconds", type=int, default=0)
    a = ap.parse_args()

    runs = read_runs(a.logs)
    probe = parse_probe(a.logs)
    programs, cases = parse_tests(a.logs, runs)
    missing = missing_programs(a.bundle, programs, a.profile)
    sanitizer = parse_sanitizer(a.logs, runs)
    examples = parse_examples(a.logs, runs)
    benches = parse_benchmarks(a.logs, runs)
    gpt2 = parse_gpt2(a.logs, benches, os.path.dirname(a.logs))
    targets = targets_from(examples, benches, gpt2)
    figures = figures_from(benches, gpt2)
    manifest = read(os.path.join(a.bundle, "MANIFEST.txt")) or ""
    count = {o: sum(1 for c in cases if c["outcome"] == o) for o in ("passed", "failed", "skipped", "not run")}
    summary = {
        "kind": "kirzl gpu-check",
        "profile": a.profile,
        "dry_run": a.dry_run == "1",
        "date": probe.get("date"),
        "seconds": a.seconds,
        "bundle_commit": (re.search(r"^commit: (.*)$", manifest, re.M) or [None, None])[1],
        "probe": probe,
        "tests": {"count": count, "programs": programs, "missing_programs": missing,
                  "failed": [c for c in cases if c["outcome"] == "failed"],
                  "skipped": [c for c in cases if c["outcome"] == "skipped"],
                  "cases": [[c["program"], c["case"], c["outcome"]] for c in cases]},
        "sanitizer": sanitizer,
        "examples": examples,
        "gpt2": gpt2,
        "benchmarks": benches,
        "targets": targets,
        "figures": figures,
        "runs": list(runs.values()),
    }
    with open(a.out, "w") as f:
        json.dump(summary, f, indent=1)

    # The table, printed last.
    print("\n================ kirzl gpu-check summary ================")
    print(f"device: {probe.get('gpu')}  | cuda {probe.get('cuda driver')} | {probe.get('python')}")
    print(f"bundle: {summary['bundle_commit']} | profile {a.profile} | {a.seconds}s | dry run {summary['dry_run']}")
    if probe.get("unresolved_libraries"):
        print("UNRESOLVED LIBRARIES:", "; ".join(probe["unresolved_libraries"][:6]))
    if probe.get("missing_libraries"):
        print("MISSING CUDA LIBRARIES:", "; ".join(probe["missing_libraries"]))
    not_run = [p for p in programs if p["status"].startswith("not run")]
    bad_programs = [p for p in programs if p["status"] != "ok" and p not in not_run]
    print(f"tests: {len(programs)} program runs, cases passed {count['passed']}, failed {count['failed']}, "
          f"skipped {count['skipped']}; runs not ok: {len(bad_programs)}, not run: {len(not_run)}")
    # Every program run, one line each (status, seconds, its cases' outcomes).
    for p in programs:
        mine = [c["outcome"] for c in cases if c["program"] == p["program"]]
        print(f"  {p['program'][:52]:<52} {p['status'][:18]:<18} {str(p['seconds']):>4}s "
              f"{mine.count('passed'):>4} ok {mine.count('failed'):>3} fail {mine.count('skipped'):>3} skip"
              + (f"  in {p['crashed_in']}" if p.get("crashed_in") else ""))
    if missing:
        print(f"  MISSING (in the bundle, no run): {' '.join(missing)}")
    for c in summary["tests"]["failed"][:25]:
        print(f"  FAIL {c['case']}: {c['detail'][:200]}")
    skip_reasons = {}
    for c in summary["tests"]["skipped"]:
        skip_reasons.setdefault(c["detail"][:90], 0)
        skip_reasons[c["detail"][:90]] += 1
    for r, n in sorted(skip_reasons.items(), key=lambda x: -x[1])[:6]:
        print(f"  skip x{n}: {r}")
    san_bad = [s for s in sanitizer if s["errors"] or s["status"] != "ok"]
    print(f"sanitizer: {len(sanitizer)} runs, {sum(1 for s in sanitizer if s['errors'] == 0 and s['status'] == 'ok')} clean, "
          f"{len(san_bad)} with findings or not finished")
    if runs.get("compute-sanitizer"):
        print(f"  compute-sanitizer: {runs['compute-sanitizer']['status']}")
    for s in san_bad[:15]:
        print(f"  {s['tool']} {s['program']}: {s['status']} errors={s['errors']} {(s.get('first_findings') or [''])[0][:150]}")
    for name, e in sorted(examples.items()):
        r = e["result"] or {}
        figs = ", ".join(f"{k}={r[k]}" for k in ("test_accuracy", "val_loss", "samples_per_second", "tokens_per_second",
                                                  "seconds", "world_size") if k in r)
        print(f"example {name}: {e['status']} {figs} {e['tail'][:200]}")
    not_ok = [r for r in runs.values() if r["kind"] in ("bench", "mpi") and r["status"] != "ok"
              and not r["name"].startswith("comm_mpi_")]
    for r in not_ok:
        print(f"  {r['kind']} {r['name']}: {r['status']}")
    print("targets:")
    for t in targets:
        v = t["value"]
        vs = "n/a" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
        mark = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        print(f"  {t['what']:<58} {vs:>10} (goal {t['goal']}) {mark}  {t['note'][:80]}")
    if figures:
        print("figures:")
    for f in figures:
        v = f["value"]
        vs = "n/a" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
        print(f"  {f['what']:<58} {vs:>10}  {f['note'][:80]}")
    for k in ("kirzl_tokens_per_s", "kirzl_peak_GB", "kirzl_model_tokens_per_s", "kirzl_graph_tokens_per_s",
              "kirzl_graph_peak_GB", "torch_eager_tokens_per_s", "torch_eager_peak_GB", "torch_compile_tokens_per_s",
              "torch_compile_peak_GB", "kirzl_tokens_per_joule", "torch_eager_tokens_per_joule"):
        if gpt2.get(k) is not None:
            print(f"  gpt2 {k}: {gpt2[k]:.4g}")
    for k in ("kirzl_energy", "torch_eager_energy"):
        if gpt2.get(k):
            print(f"  gpt2 {k}: {gpt2[k][:100]}")
    ok = count["failed"] == 0 and not bad_programs and not missing and not any(s["errors"] for s in sanitizer)
    print("RESULT:", ("all tests that ran passed" if ok else "FAILURES (see above)")
          + (f"; {len(not_run)} program runs not run ({not_run[0]['status']})" if not_run else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
