#!/usr/bin/env python3
"""CPU tests of scripts/gpu_summary.py, the summary of the GPU check (scripts/gpu-check.sh): logs
as the check leaves them, written here by hand, and the JSON and table the summary makes of them;
and of scripts/gpu_check_order.py, the order in which the check starts its runs.

    python3 tests/scripts/test_gpu_summary.py        (ctest: scripts_gpu_summary)
    KIRZL_GPU_SUMMARY=other/gpu_summary.py ...       (the same tests of another summary script)
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUMMARY = os.environ.get("KIRZL_GPU_SUMMARY", os.path.join(ROOT, "scripts", "gpu_summary.py"))


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def xml(cases):
    """GoogleTest XML: cases as (suite, name, outcome)."""
    rows = []
    for suite, name, outcome in cases:
        if outcome == "failed":
            rows.append(f'<testcase name="{name}" status="run" result="completed" classname="{suite}">'
                        f'<failure message="x.cpp:1\nExpected equality" type=""/></testcase>')
        elif outcome == "skipped":
            rows.append(f'<testcase name="{name}" status="run" result="skipped" classname="{suite}">'
                        f'<skipped message="x.cpp:2\nno second GPU"/></testcase>')
        else:
            rows.append(f'<testcase name="{name}" status="run" result="completed" classname="{suite}"/>')
    return '<?xml version="1.0"?><testsuites><testsuite name="s">' + "".join(rows) + "</testsuite></testsuites>"


def bench(name, real_time, unit="us", label=None, error=None, **counters):
    b = {"name": name, "run_name": name, "run_type": "iteration", "iterations": 10, "real_time": real_time,
         "cpu_time": real_time, "time_unit": unit, **counters}
    if label:
        b["label"] = label
    if error:
        b["error_occurred"] = True
        b["error_message"] = error
    return b


class Check:
    """A bundle and the logs of one check, in a temporary folder."""

    def __init__(self, tmp, programs):
        self.bundle = os.path.join(tmp, "kirzl-gpu")
        self.logs = os.path.join(tmp, "logs")
        for p in programs:
            write(os.path.join(self.bundle, "bin", "tests", p), "")
        write(os.path.join(self.bundle, "MANIFEST.txt"), "commit: abc123\n")
        self.rows = ["name\tkind\trc\tseconds\tstatus"]
        write(os.path.join(self.logs, "probe.txt"), "date: 2026-12-08T00:00:00Z\ngpu: NVIDIA H200, 143771 MiB\n"
              "found libcudart.so.13\nMISSING libcudnn.so.9\nunresolved libraries:\n")

    def run_row(self, name, kind, rc, seconds, status):
        self.rows.append(f"{name}\t{kind}\t{rc}\t{seconds}\t{status}")

    def test(self, name, cases=None, console="", status="ok", rc=0, sub="tests", seconds=3):
        write(os.path.join(self.logs, sub, name + ".log"), console)
        if cases is not None:
            write(os.path.join(self.logs, sub, name + ".xml"), xml(cases))
        self.run_row(name, "test" if sub == "tests" else "mpi", rc, seconds, status)

    def bench_json(self, prog, benchmarks, status="ok", rc=0, path=None):
        write(path or os.path.join(self.logs, "bench", prog + ".json"), json.dumps({"benchmarks": benchmarks}))
        if not path:
            write(os.path.join(self.logs, "bench", prog + ".log"), "")
            self.run_row(prog, "bench", rc, 10, status)

    def summarize(self, profile="full"):
        write(os.path.join(self.logs, "runs.tsv"), "\n".join(self.rows) + "\n")
        out = os.path.join(os.path.dirname(self.logs), "gpu-summary.json")
        p = subprocess.run([sys.executable, SUMMARY, "--logs", self.logs, "--bundle", self.bundle, "--out", out,
                            "--profile", profile, "--dry-run", "0", "--seconds", "100"],
                           capture_output=True, text=True)
        with open(out) as f:
            return p.returncode, json.load(f), p.stdout


class GpuSummaryTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def check(self, programs=("core_test_a_cuda",)):
        return Check(self.tmp.name, programs)

    def test_every_program_of_the_bundle_is_listed_and_a_missing_one_fails(self):
        c = self.check(("core_test_a_cuda", "core_test_b_cuda", "kernels_cuda_test_new_cuda"))
        c.test("core_test_a_cuda", [("A", "one", "passed"), ("A", "two", "skipped")])
        c.test("core_test_b_cuda", [("B", "one", "passed")])
        rc, s, out = c.summarize()
        self.assertEqual(s["tests"]["missing_programs"], ["kernels_cuda_test_new_cuda"])
        self.assertIn("MISSING (in the bundle, no run): kernels_cuda_test_new_cuda", out)
        self.assertEqual(rc, 1)
        for p in ("core_test_a_cuda", "core_test_b_cuda"):
            self.assertIn(p, out)  # one line per program in the table
        c.test("kernels_cuda_test_new_cuda", [("N", "one", "passed")])
        rc, s, out = c.summarize()
        self.assertEqual(s["tests"]["missing_programs"], [])
        self.assertEqual(s["tests"]["count"], {"passed": 3, "failed": 0, "skipped": 1, "not run": 0})
        self.assertEqual(rc, 0, out)
        # compare runs no tests: nothing is missing there.
        self.assertEqual(Check(self.tmp.name + "/c", ("core_test_a_cuda",)).summarize("compare")[1]["tests"]["missing_programs"], [])

    def test_shards_and_the_mpi_program_count_as_runs_of_their_program(self):
        c = self.check(("ops_op_table_cuda", "comm_mpi_test_mpi_ddp_cuda"))
        c.test("ops_op_table_cuda-shard0of2", [("Ops/add.f32.x", "cuda", "passed")])
        # Shard 1 was killed inside a case: no XML, the console names it.
        c.test("ops_op_table_cuda-shard1of2", None, "[ RUN      ] Ops/mul.f32.x.cuda\n[       OK ] Ops/mul.f32.x.cuda (1 ms)\n"
               "[ RUN      ] Ops/div.f32.x.cuda\n", status="timeout (60s)", rc=124)
        c.test("comm_mpi_test_mpi_ddp_cuda-np2", None,
               "[ RUN      ] MpiDDPCuda.Matches\n[       OK ] MpiDDPCuda.Matches (9 ms)\n"
               "[ RUN      ] MpiDDPCuda.Other\n[  SKIPPED ] MpiDDPCuda.Other (0 ms)\n", sub="mpi")
        rc, s, out = c.summarize()
        self.assertEqual(s["tests"]["missing_programs"], [])
        cases = {(p, c_): o for p, c_, o in s["tests"]["cases"]}
        self.assertEqual(cases[("comm_mpi_test_mpi_ddp_cuda-np2", "MpiDDPCuda.Matches")], "passed")
        self.assertEqual(cases[("comm_mpi_test_mpi_ddp_cuda-np2", "MpiDDPCuda.Other")], "skipped")
        self.assertEqual(cases[("ops_op_table_cuda-shard1of2", "Ops/mul.f32.x.cuda")], "passed")
        self.assertEqual(cases[("ops_op_table_cuda-shard1of2", "Ops/div.f32.x.cuda")], "failed")
        self.assertNotIn("comm_mpi_test_mpi_ddp_cuda-np2", s["examples"])
        self.assertEqual(rc, 1)

    def test_a_program_cut_by_the_budget_is_not_run_not_failed(self):
        c = self.check(("core_test_a_cuda", "optim_test_x_cuda"))
        c.test("core_test_a_cuda", [("A", "one", "passed")])
        c.test("optim_test_x_cuda", None, "not run: the check's time budget was spent", status="not run (budget)", rc="-")
        rc, s, out = c.summarize()
        self.assertEqual(s["tests"]["count"]["failed"], 0)
        self.assertEqual(s["tests"]["count"]["not run"], 1)
        self.assertIn("1 program runs not run (not run (budget))", out)
        self.assertEqual(rc, 0, out)

    def test_a_crash_without_xml_is_a_failure(self):
        c = self.check()
        c.test("core_test_a_cuda", None, "[ RUN      ] A.one\nSegmentation fault\n", status="failed", rc=139)
        rc, s, out = c.summarize()
        self.assertEqual(s["tests"]["programs"][0]["crashed_in"], "A.one")
        self.assertEqual(rc, 1)

    def test_gpt2_graph_variant_keeps_its_own_figures(self):
        c = self.check()
        c.test("core_test_a_cuda", [("A", "one", "passed")])
        c.bench_json("bench_gpt2", [
            bench("BM_gpt2_train_step/fused:1/iterations:20/manual_time", 125.0, "ms", "energy: GPU 0",
                  **{"tokens/s": 130000.0, "peak_mem_GB": 8.7, "MFU": 0.11, "tokens_per_joule": 300.0}),
            bench("BM_gpt2_train_step/fused:0/iterations:20/manual_time", 128.0, "ms",
                  **{"tokens/s": 128000.0, "peak_mem_GB": 10.3, "MFU": 0.10}),
            bench("BM_gpt2_train_step_graph/iterations:20/manual_time", 100.0, "ms", "energy not measured (graph variant)",
                  **{"tokens/s": 163840.0, "peak_mem_GB": 9.1, "MFU": 0.14, "graph_gain": 1.25, "eager_step_ms": 125.0}),
            bench("BM_gpt2_loss_check/iterations:1", 900.0, "ms", loss_step0=10.97, loss_step10=9.7),
        ])
        rc, s, out = c.summarize()
        g = s["gpt2"]
        self.assertEqual(g["kirzl_tokens_per_s"], 130000.0)
        self.assertEqual(g["kirzl_model_tokens_per_s"], 128000.0)  # not the graph's
        self.assertEqual(g["kirzl_model_peak_GB"], 10.3)
        self.assertEqual(g["kirzl_graph_tokens_per_s"], 163840.0)
        self.assertEqual(g["kirzl_graph_gain"], 1.25)
        self.assertEqual(g["kirzl_graph_eager_step_ms"], 125.0)
        fig = [f for f in s["figures"] if "graph_gain" in f["what"]]
        self.assertEqual(len(fig), 1)
        self.assertEqual(fig[0]["value"], 1.25)
        self.assertIn("graph_gain", out)

    def test_gpt2_step_breakdown_by_family(self):
        c = self.check()
        c.test("core_test_a_cuda", [("A", "one", "passed")])
        c.bench_json("bench_gpt2", [
            bench("BM_gpt2_train_step/fused:1/iterations:20/manual_time", 125.0, "ms",
                  **{"tokens/s": 130000.0, "peak_mem_GB": 8.7, "MFU": 0.11}),
            bench("BM_gpt2_step_breakdown/iterations:5/manual_time", 131.0, "ms",
                  **{"ms_gemm": 60.5, "ms_attention": 30.25, "ms_layer_norm": 4.0, "kernels_ms": 110.0,
                     "kernels_share": 0.84}),
        ])
        rc, s, out = c.summarize()
        bd = s["gpt2"]["breakdown"]
        self.assertEqual(bd["ms_per_step"], {"gemm": 60.5, "attention": 30.25, "layer_norm": 4.0})
        self.assertEqual(list(bd["ms_per_step"]), ["gemm", "attention", "layer_norm"])  # largest first
        self.assertEqual(bd["kernels_share"], 0.84)
        self.assertEqual(bd["step_ms_profiled"], 131.0)
        self.assertEqual(s["gpt2"]["kirzl_tokens_per_s"], 130000.0)  # the breakdown is not a throughput figure
        fig = [f for f in s["figures"] if "share of the step in kernels" in f["what"]]
        self.assertEqual(len(fig), 1)
        self.assertEqual(fig[0]["value"], 0.84)
        self.assertIn("gemm 60.50", fig[0]["note"])

    def test_graph_variant_error_is_reported(self):
        c = self.check()
        c.test("core_test_a_cuda", [("A", "one", "passed")])
        c.bench_json("bench_gpt2", [bench("BM_gpt2_train_step_graph/iterations:20/manual_time", 0, "ms",
                                          error="cannot run inside CUDA graph capture")])
        rc, s, out = c.summarize()
        fig = [f for f in s["figures"] if "graph_gain" in f["what"]][0]
        self.assertIsNone(fig["value"])
        self.assertIn("cannot run inside CUDA graph capture", fig["note"])
        self.assertNotIn("kirzl_model_tokens_per_s", s["gpt2"])

    def test_gelu_forms_bias_gelu_and_epilogues(self):
        c = self.check()
        c.test("core_test_a_cuda", [("A", "one", "passed")])
        c.bench_json("bench_cuda_elementwise", [
            bench("BM_Add/f32/manual_time", 50.0, ratio=1.05),
            bench("BM_GeluForwardBf16/erf/manual_time", 50.0, ratio=0.9),
            bench("BM_GeluBackwardBf16/erf/manual_time", 50.0, ratio=0.88),
            bench("BM_GeluForwardBf16/tanh/manual_time", 50.0, ratio=0.6),
            bench("BM_GeluBackwardBf16/tanh/manual_time", 50.0, ratio=0.7),
        ])
        c.bench_json("bench_cuda_gemm", [
            bench("BM_CudaGemm/bf16/gemm/4096x4096x4096/iterations:10/manual_time", 200.0, ratio=1.0),
            bench("BM_CudaGemmEpilogue/bf16/fwd/gpt2_fc_16384x768x3072/iterations:10/manual_time", 300.0,
                  label="bf16 GELU_AUX_BIAS", fused_us=300.0, unfused_us=360.0, speedup=1.2),
        ])
        # bench_cuda_nn killed at its limit: no JSON, the console lines it printed.
        write(os.path.join(c.logs, "bench", "bench_cuda_nn.log"),
              "BM_BiasGeluFwdBf16/manual_time        45.2 us         45.3 us         1000 GB/s=3.5k/s memcpy_GB/s=4.1k/s ratio=0.86\n"
              "BM_BiasGeluBwdBf16/manual_time        70.1 us         70.2 us         1000 GB/s=3.0k/s memcpy_GB/s=4.1k/s ratio=0.74\n")
        c.run_row("bench_cuda_nn", "bench", 124, 90, "timeout (90s)")
        rc, s, out = c.summarize()
        t = {x["what"]: x for x in s["targets"]}
        self.assertEqual(t["elementwise bandwidth / device copy"]["value"], 0.6)
        self.assertEqual(t["GELU (erf) fwd, bwd bf16 bandwidth / device copy"]["value"], 0.88)
        self.assertTrue(t["GELU (erf) fwd, bwd bf16 bandwidth / device copy"]["met"])
        self.assertEqual(t["tanh-GELU fwd, bwd bf16 bandwidth / device copy"]["value"], 0.6)
        self.assertFalse(t["tanh-GELU fwd, bwd bf16 bandwidth / device copy"]["met"])
        bg = t["bias + tanh-GELU fwd, bwd (GPT-2 MLP) bandwidth / device copy"]
        self.assertEqual(bg["value"], 0.74)
        self.assertIn("BM_BiasGeluBwdBf16", bg["note"])
        self.assertEqual(t["GEMM through kirzl / cuBLASLt called directly (bf16)"]["value"], 1.0)  # not the epilogue
        ep = [f for f in s["figures"] if f["what"].startswith("GEMM epilogue bf16 fwd")]
        self.assertEqual(ep[0]["value"], 1.2)

    def test_a_benchmark_program_run_in_two_parts_counts_as_one(self):
        c = self.check()
        c.test("core_test_a_cuda", [("A", "one", "passed")])
        c.bench_json("bench_cuda_elementwise", [bench("BM_GeluForwardBf16/tanh/manual_time", 50.0, ratio=0.9)])
        c.bench_json("bench_cuda_elementwise-rest", [bench("BM_Add/bf16/manual_time", 50.0, ratio=0.8)])
        c.run_row("bench_cuda_nn-rest", "bench", "-", 0, "not run (budget)")
        rc, s, out = c.summarize()
        t = {x["what"]: x for x in s["targets"]}
        self.assertEqual(t["elementwise bandwidth / device copy"]["value"], 0.8)
        add = [b for b in s["benchmarks"] if b["name"].startswith("BM_Add")][0]
        self.assertEqual((add["program"], add["run"]), ("bench_cuda_elementwise", "bench_cuda_elementwise-rest"))
        cut = [b for b in s["benchmarks"] if b.get("run") == "bench_cuda_nn-rest"][0]
        self.assertEqual((cut["program"], cut["error"]), ("bench_cuda_nn", "not run (budget)"))
        self.assertIn("bench bench_cuda_nn-rest: not run (budget)", out)

    def test_compare_profile_reads_run_gpt2_compare_outputs(self):
        c = self.check()
        cmp = os.path.join(c.logs, "bench", "gpt2_compare")
        c.bench_json("bench_gpt2", [
            bench("BM_gpt2_train_step/fused:1/iterations:20/manual_time", 125.0, "ms",
                  **{"tokens/s": 260000.0, "peak_mem_GB": 8.7, "MFU": 0.2}),
            bench("BM_gpt2_train_step_graph/iterations:20/manual_time", 100.0, "ms",
                  **{"tokens/s": 280000.0, "graph_gain": 1.1}),
        ], path=os.path.join(cmp, "kirzl.json"))
        write(os.path.join(c.logs, "bench", "gpt2_compare.log"), "== kirzl ==\n")
        c.run_row("gpt2_compare", "bench", 0, 200, "ok")
        write(os.path.join(cmp, "torch_eager.json"), json.dumps({"tokens_per_s": 237000.0, "peak_mem_bytes": 15.5e9}) + "\n")
        write(os.path.join(cmp, "torch_compile.json"), json.dumps({"tokens_per_s": 250000.0, "peak_mem_bytes": 12e9}) + "\n")
        write(os.path.join(cmp, "check", "kirzl_losses.json"),
              json.dumps({"loss_step0": 10.98, "loss_step10": 9.70, "losses": [10.98, 9.70]}))
        write(os.path.join(cmp, "torch_check.json"), json.dumps({"loss_step0": 10.98, "loss_step10": 9.69, "losses": []}))
        rc, s, out = c.summarize("compare")
        g = s["gpt2"]
        self.assertEqual(g["kirzl_tokens_per_s"], 260000.0)
        self.assertEqual(g["torch_compile_tokens_per_s"], 250000.0)
        self.assertEqual(g["kirzl_graph_gain"], 1.1)
        t = {x["what"]: x for x in s["targets"]}
        self.assertAlmostEqual(t["GPT-2 124M tokens/s, kirzl fused / torch.compile"]["value"], 1.04)
        self.assertFalse(t["GPT-2 124M tokens/s, kirzl fused / torch.compile"]["met"])
        self.assertAlmostEqual(t["GPT-2 124M tokens/s, kirzl fused / PyTorch eager"]["value"], 260000 / 237000)
        self.assertIn("GPT-2 loss after 10 steps, |kirzl - PyTorch| / PyTorch", t)
        self.assertEqual(rc, 0, out)

    def test_sanitizer_findings_of_a_run_killed_at_its_limit_count(self):
        c = self.check()
        c.test("core_test_a_cuda", [("A", "one", "passed")])
        write(os.path.join(c.logs, "sanitizer", "memcheck-ops_op_table_cuda-shard0of3.log"),
              "========= COMPUTE-SANITIZER\n[ RUN      ] Ops/add.f32.x.cuda\n"
              "========= Invalid __global__ read of size 4 bytes\n=========     at add_kernel+0x70\n")
        c.run_row("memcheck:ops_op_table_cuda-shard0of3", "sanitizer", 124, 150, "timeout (150s)")
        write(os.path.join(c.logs, "sanitizer", "racecheck-kernels_cuda_test_x_cuda.log"),
              "========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)\n")
        c.run_row("racecheck:kernels_cuda_test_x_cuda", "sanitizer", 0, 20, "ok")
        rc, s, out = c.summarize()
        san = {(x["tool"], x["program"]): x for x in s["sanitizer"]}
        killed = san[("memcheck", "ops_op_table_cuda-shard0of3")]
        self.assertEqual((killed["errors"], killed["status"]), (1, "timeout (150s)"))
        self.assertTrue(killed["errors_before_it_ended"])
        self.assertIn("Invalid __global__ read", killed["first_findings"][0])
        self.assertEqual(san[("racecheck", "kernels_cuda_test_x_cuda")]["errors"], 0)
        self.assertEqual(rc, 1)

    def test_missing_cuda_library_is_printed(self):
        c = self.check()
        c.test("core_test_a_cuda", [("A", "one", "passed")])
        rc, s, out = c.summarize()
        self.assertEqual(s["probe"]["missing_libraries"], ["libcudnn.so.9"])
        self.assertIn("MISSING CUDA LIBRARIES: libcudnn.so.9", out)


class GpuCheckOrderTest(unittest.TestCase):
    """scripts/gpu_check_order.py: new runs first, then the known ones longest first."""

    def order(self, names, summaries, new_only=False):
        with tempfile.TemporaryDirectory() as d:
            for i, (date, runs) in enumerate(summaries):
                write(os.path.join(d, f"gpu-{i}.json"), json.dumps(
                    {"date": date, "runs": [{"name": n, "seconds": str(s)} for n, s in runs]}))
            args = [sys.executable, os.path.join(ROOT, "scripts", "gpu_check_order.py")] + (["--new"] if new_only else [])
            p = subprocess.run(args + [d] + names, capture_output=True, text=True, check=True)
            return p.stdout.split()

    def test_new_first_then_longest_first_by_the_newest_summary(self):
        summaries = [("2026-12-04T10:00:00Z", [("a", 5), ("b", 150), ("c", 20)]),
                     ("2026-12-04T20:00:00Z", [("b", 22)])]  # b's newest time counts
        names = ["a", "b", "c", "new1", "x-shard0of2", "new2", "x-shard1of2"]
        self.assertEqual(self.order(names, summaries), ["new1", "x-shard0of2", "new2", "x-shard1of2", "b", "c", "a"])
        self.assertEqual(self.order(names, summaries, new_only=True), ["new1", "x-shard0of2", "new2", "x-shard1of2"])
        # A shard counts as its program.
        self.assertEqual(self.order(["a", "c-shard0of2"], summaries), ["c-shard0of2", "a"])

    def test_without_summaries_the_order_given_is_kept(self):
        self.assertEqual(self.order(["z", "a", "m"], []), ["z", "a", "m"])


if __name__ == "__main__":
    unittest.main()
