"""bench/scaling_model.py: the cost formulas against hand-computed cases, the fit recovering known
alpha/beta from synthetic runs, kirzl's bucketing rule (against kirzl's own DDP where the package
imports), the overlap simulation, the JSON loader and the command line."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "scaling_model.py")
_spec = importlib.util.spec_from_file_location("scaling_model", SCRIPT)
sm = importlib.util.module_from_spec(_spec)
sys.modules["scaling_model"] = sm  # dataclasses look their module up by name
_spec.loader.exec_module(sm)

MiB = 1 << 20
SHM = sm.Link(alpha=5e-6, beta=1 / 5e9)       # the emulation's shared memory (synthetic)
WIRE = sm.Link(alpha=200e-6, beta=8 / 1e9)    # 1 Gbit/s, 200 us


# ---- cost formulas, by hand ----

def test_ring_time_by_hand():
    link = sm.Link(alpha=1e-5, beta=1e-9)
    # n = 4, 1 MB: 2*3 steps of 10 us + 2*3/4 * 1e6 B * 1 ns/B = 60 us + 1.5 ms
    assert sm.ring_time(4, 1e6, link) == pytest.approx(60e-6 + 1.5e-3, rel=1e-12)
    assert sm.ring_time(2, 8, link) == pytest.approx(2e-5 + 8e-9, rel=1e-12)
    assert sm.ring_time(1, 1e9, link) == 0.0


def test_flat_ring_across_nodes_runs_at_the_inter_node_link():
    # 2 nodes x 2 ranks = a ring of 4 whose two node-crossing hops set each step.
    assert sm.flat_time(2, 2, 1e6, SHM, WIRE) == pytest.approx(6 * 200e-6 + 1.5 * 1e6 * 8e-9, rel=1e-12)
    # one node: the intra link
    assert sm.flat_time(1, 4, 1e6, SHM, WIRE) == pytest.approx(6 * 5e-6 + 1.5 * 1e6 * 0.2e-9, rel=1e-12)


def test_hierarchical_by_hand():
    # 3 nodes x 2 ranks, 1.2 MB, one port per node (2 rings share it):
    # in node: 2 * (1 * 5 us + 1/2 * 1.2e6 * 0.2 ns) = 10 us + 240 us
    # across: 2*2 * 200 us + 2*2/3 * (1.2e6 / 2) * 2 * 8 ns = 800 us + 12.8 ms
    expected = 10e-6 + 240e-6 + 800e-6 + 12.8e-3
    assert sm.hierarchical_time(3, 2, 1.2e6, SHM, WIRE, share=2) == pytest.approx(expected, rel=1e-12)
    # a port per rank: the across part's bandwidth term halves
    assert sm.hierarchical_time(3, 2, 1.2e6, SHM, WIRE, share=1) == pytest.approx(expected - 6.4e-3, rel=1e-12)
    # one node: the intra ring
    assert sm.hierarchical_time(1, 4, 1e6, SHM, WIRE, 4) == sm.ring_time(4, 1e6, SHM)


def test_the_hierarchical_gain_over_flat_is_the_data_ratio_for_large_messages():
    # Issue #17: across the slow links the hierarchical algorithm moves 2(N-1)/N of the data per
    # node, the flat ring 2(n-1)/n: at 2 nodes x 2, 256 MiB, bandwidth terms dominate -> ~1.5x.
    fast = sm.Link(0, 1e-12)
    ratio = sm.flat_time(2, 2, 256 * MiB, fast, WIRE) / sm.hierarchical_time(2, 2, 256 * MiB, fast, WIRE, 2)
    assert ratio == pytest.approx((2 * 3 / 4) / (2 * 1 / 2), rel=1e-3)


def test_design_row_is_linear_in_the_four_parameters():
    for alg, nodes, local in (("flat", 1, 4), ("flat", 3, 2), ("hierarchical", 4, 2)):
        row = np.array(sm.design_row(alg, nodes, local, 3e6, local))
        x = np.array([SHM.alpha, SHM.beta, WIRE.alpha, WIRE.beta])
        assert row @ x == pytest.approx(sm.allreduce_time(alg, nodes, local, 3e6, SHM, WIRE, local), rel=1e-12)


def test_data_ratio_and_measured_gains():
    assert sm.data_ratio(2, 2) == pytest.approx(1.5)
    assert sm.data_ratio(4, 2) == pytest.approx((7 / 8) / (3 / 4))
    cases = sm.synthetic_cases(SHM, WIRE, nodes_list=(1, 2, 4))
    f = sm.fit(cases)
    rows = sm.hierarchical_gains(f, cases)
    sizes = [2 * MiB, 8 * MiB, 32 * MiB, 128 * MiB, 256 * MiB]  # the synthetic sizes >= 1 MiB
    assert sorted((r[0], r[2]) for r in rows) == [(n, b) for n in (2, 4) for b in sizes]
    for nodes, ranks, b, meas, model, data in rows:
        assert meas == pytest.approx(model, rel=1e-6)  # exact synthetic data: measured = fitted model
        if b == 256 * MiB:
            assert meas == pytest.approx(data, rel=0.05)  # large messages: the data ratio


# ---- fit ----

def test_fit_recovers_alpha_and_beta_from_exact_synthetic_runs():
    f = sm.fit(sm.synthetic_cases(SHM, WIRE))
    assert f.intra.alpha == pytest.approx(SHM.alpha, rel=1e-6)
    assert f.intra.beta == pytest.approx(SHM.beta, rel=1e-6)
    assert f.inter.alpha == pytest.approx(WIRE.alpha, rel=1e-6)
    assert f.inter.beta == pytest.approx(WIRE.beta, rel=1e-6)
    assert f.r2 == pytest.approx(1.0, abs=1e-9)
    assert f.max_rel_err < 1e-6


def test_fit_with_noise_recovers_within_a_few_percent_and_reports_the_error():
    f = sm.fit(sm.synthetic_cases(SHM, WIRE, noise=0.02, seed=3))
    assert f.inter.alpha == pytest.approx(WIRE.alpha, rel=0.05)
    assert f.inter.beta == pytest.approx(WIRE.beta, rel=0.05)
    assert f.intra.beta == pytest.approx(SHM.beta, rel=0.05)
    assert 0.99 < f.r2 < 1.0
    assert 0.02 < f.max_rel_err < 0.15


def test_one_node_fits_intra_only_and_says_inter_is_not_measured():
    f = sm.fit(sm.synthetic_cases(SHM, WIRE, nodes_list=(1,), local=4))
    assert set(f.fitted) == {"alpha_intra", "beta_intra"}
    assert f.intra.beta == pytest.approx(SHM.beta, rel=1e-6)
    out = []
    sm.report_fit(f, out)
    assert "inter: not measured" in out[-1]


def test_nnls_never_returns_a_negative_parameter():
    a = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 3.0]])
    x = sm._nnls(a, np.array([3.0, 2.0, 1.0]))  # unconstrained slope is -1
    assert np.all(x >= 0)
    assert x[0] == pytest.approx(2.0) and x[1] == 0.0


def test_validation_predicts_more_nodes_from_fewer():
    cases = sm.synthetic_cases(SHM, WIRE, noise=0.01, seed=1)
    results = sm.validate(cases)
    descs = [r[0] for r in results]
    assert "fit on <= 2 node(s), predict 3, 4 nodes" in descs
    for desc, _, test, errs in results:
        if desc.startswith("fit on"):
            assert all(c.nodes > int(desc.split("<= ")[1][0]) for c in test)
            assert np.max(np.abs(errs)) < 0.1


# ---- buckets ----

def test_assign_buckets_mirrors_kirzl_rule():
    # reverse order; first cap 10, then 25; a parameter larger than the cap gets its own bucket
    sizes = [30, 5, 5, 8, 4, 4]
    assert sm.assign_buckets(sizes, 25, 10) == [[5, 4], [3, 2, 1], [0]]
    assert sm.assign_buckets([4, 4, 4], 8, 8) == [[2, 1], [0]]      # exactly the cap fits
    assert sm.assign_buckets([], 8, 8) == []


def test_gpt2_124m_parameters_and_default_buckets():
    params = sm.gpt_parameters(sm.GPT2_124M)
    padding = (50304 - 50257) * 768
    assert sum(n for _, n, _ in params) == 124_439_808 + padding
    assert [n for n, _, _ in params].count("wte.weight") == 1  # tied: no lm_head
    b = sm.ddp_buckets(sm.GPT2_124M)
    assert len(b) == 18
    assert b[0].params == ["ln_f.bias", "ln_f.weight", "h.11.mlp.c_proj.bias"]
    assert b[-1].params == ["wte.weight"] and b[-1].nbytes == 50304 * 768 * 4
    assert b[0].nbytes <= MiB and all(x.nbytes <= 25 * MiB or len(x.params) == 1 for x in b)
    assert sum(x.nbytes for x in b) == 4 * sum(n for _, n, _ in params)
    half = sm.ddp_buckets(sm.GPT2_124M, "bf16")
    assert len(half) == 10 and sum(x.wire_bytes for x in half) * 2 == sum(x.wire_bytes for x in b)
    compressed = sm.ddp_buckets(sm.GPT2_124M, "f32", reduce_dtype="bf16")
    assert [x.params for x in compressed] == [x.params for x in b]
    assert [x.wire_bytes * 2 for x in compressed] == [x.nbytes for x in b]


def test_gpt2_1558m_parameter_count():
    assert sum(n for _, n, _ in sm.gpt_parameters(sm.GPT2_1558M)) == 1_557_611_200 + (50304 - 50257) * 1600


def _kirzl_buckets(cfg_kwargs, dtype, cap, first):
    kirzl = pytest.importorskip("kirzl")
    models = pytest.importorskip("kirzl.models")
    cfg = models.GPTConfig.gpt2_124m() if cfg_kwargs is None else models.GPTConfig(**cfg_kwargs)
    g = models.GPT(cfg)
    if dtype == "bf16":
        g.to(kirzl.bf16)
    comm = kirzl.comm.make_in_process_group(1)[0]
    d = kirzl.DistributedDataParallel(g, comm, bucket_cap_mb=cap, first_bucket_cap_mb=first)
    return [(list(b.param_names), b.bytes) for b in d.buckets()]


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_buckets_equal_kirzl_ddp_on_a_small_gpt(dtype):
    kw = dict(vocab_size=100, block_size=16, n_layer=3, n_head=2, n_embd=48)
    mine = sm.ddp_buckets(sm.GPTShape("small", 3, 48, vocab_size=100, block_size=16), dtype,
                          bucket_cap_mb=0.02, first_bucket_cap_mb=0.005)
    assert len(mine) > 4
    assert _kirzl_buckets(kw, dtype, 0.02, 0.005) == [(b.params, b.nbytes) for b in mine]


def test_buckets_equal_kirzl_ddp_for_gpt2_124m():
    mine = sm.ddp_buckets(sm.GPT2_124M)
    assert _kirzl_buckets(None, "f32", 25.0, 1.0) == [(b.params, b.nbytes) for b in mine]


# ---- a step ----

def test_compute_default_by_hand():
    # 124M: 6 * 124,439,808 + 12 * 12 * 768 * 1024 FLOP/token
    assert sm.step_flops_per_token(sm.GPT2_124M) == 6 * 124_439_808 + 12 * 12 * 768 * 1024
    assert sm.compute_seconds(sm.GPT2_124M, tokens=1000, mfu=0.5, peak=1e12) == \
        pytest.approx(sm.step_flops_per_token(sm.GPT2_124M) * 1000 / 0.5e12)


def test_ready_fractions_follow_reverse_order_and_wte_comes_last():
    params = [("wte", 10, 10), ("a", 5, 5), ("b", 1, 0), ("c", 5, 5)]
    # backward: wte's GEMM (10), then c (5), b (0), a (5); total 20
    assert sm.param_ready_fractions(params) == [1.0, 1.0, 0.75, 0.75]


def _machine(alpha, beta):
    link = sm.Link(alpha, beta)
    return sm.Machine("test", 2, link, link, 2)


def test_predict_step_overlap_by_hand():
    # two nodes x 2, flat ring: each bucket takes 6 alpha + 1.5 bytes beta
    m = _machine(1e-3, 1e-6)
    buckets = [sm.Bucket(["x"], 1000, 1000, 0.5), sm.Bucket(["y"], 2000, 2000, 1.0)]
    t1, t2 = 6e-3 + 1.5e-3, 6e-3 + 3e-3
    compute = 0.03  # backward = 20 ms
    p = sm.predict_step(buckets, compute, "flat", 2, m, overlap=True)
    # bucket 1 starts at 10 ms, ends 17.5 ms; bucket 2 ready at 20 ms, ends 29 ms: 9 ms exposed
    assert p.comm == pytest.approx(t1 + t2)
    assert p.exposed == pytest.approx(0.009)
    assert p.efficiency == pytest.approx(0.03 / 0.039)
    q = sm.predict_step(buckets, compute, "flat", 2, m, overlap=False)
    assert q.exposed == pytest.approx(t1 + t2)
    # a long first bucket delays the second: they run one after another
    slow = [sm.Bucket(["x"], 10000, 10000, 0.1), sm.Bucket(["y"], 2000, 2000, 0.2)]
    r = sm.predict_step(slow, compute, "flat", 2, m, overlap=True)
    assert r.exposed == pytest.approx(0.002 + 6e-3 + 15e-3 + t2 - 0.02)


# ---- measurements and command line ----

def _bench_json(path, cases, context=None, as_label=False):
    entries = []
    for c in cases:
        e = {"name": f"BM_AllReduce/{c.algorithm}/{int(c.nbytes)}", "run_type": "iteration", "iterations": 10,
             "real_time": c.seconds * 1e6, "time_unit": "us", "bytes": c.nbytes}
        if as_label:
            e["label"] = f"algorithm={c.algorithm} ranks={c.ranks} nodes={c.nodes}"
        else:
            e.update(algorithm=c.algorithm, ranks=c.ranks, nodes=c.nodes, seconds=c.seconds)
        entries.append(e)
    entries.append({"name": "BM_Header", "run_type": "iteration", "real_time": 1.0, "time_unit": "us"})
    path.write_text(json.dumps({"context": context or {}, "benchmarks": entries}))


def test_load_cases_reads_fields_or_labels(tmp_path):
    cases = sm.synthetic_cases(SHM, WIRE, nodes_list=(1, 2))
    _bench_json(tmp_path / "a.json", cases)
    _bench_json(tmp_path / "b.json", cases, as_label=True)
    for name in ("a.json", "b.json"):
        got = sm.load_cases(str(tmp_path / name))
        assert len(got) == len(cases)
        mine = {(c.algorithm, c.nodes, c.ranks, c.nbytes): c.seconds for c in cases}
        for c in got:
            assert c.seconds == pytest.approx(mine[(c.algorithm, c.nodes, c.ranks, c.nbytes)], rel=1e-9)


def test_load_cases_names_a_missing_field(tmp_path):
    p = tmp_path / "old.json"
    p.write_text(json.dumps({"context": {}, "benchmarks": [
        {"name": "BM_KirzlMpi/1024", "run_type": "iteration", "real_time": 3.0, "time_unit": "us", "bytes": 1024}]}))
    with pytest.raises(SystemExit, match="no usable all-reduce case: .BM_KirzlMpi/1024. lacks ranks, nodes"):
        sm.load_cases(str(p))


def test_load_cases_takes_the_algorithm_from_label_or_name_and_fields_from_the_command_line(tmp_path):
    p = tmp_path / "today.json"
    p.write_text(json.dumps({"context": {}, "benchmarks": [
        {"name": "BM_KirzlMpi/1024", "run_type": "iteration", "real_time": 3.0, "time_unit": "us", "bytes": 1024},
        {"name": "BM_AllReduce/4096", "label": "hierarchical", "run_type": "iteration", "real_time": 2.0,
         "time_unit": "ms", "bytes": 4096, "ranks": 4, "ranks_per_node": 2},
        {"name": "BM_InProcess/64", "run_type": "iteration", "real_time": 1.0, "time_unit": "us", "bytes": 64}]}))
    path, defaults = sm.parse_measured(f"{p}:ranks=2,nodes=1")
    assert path == str(p) and defaults == {"ranks": "2", "nodes": "1"}
    got = {(c.algorithm, c.nodes, c.ranks, c.nbytes): c.seconds for c in sm.load_cases(path, defaults)}
    assert got == {("auto", 1, 2, 1024.0): 3e-6, ("hierarchical", 2, 4, 4096.0): 2e-3}  # BM_InProcess: no algorithm
    with pytest.raises(SystemExit, match="expected PATH:key=value"):
        sm.parse_measured(f"{p}:speed=3")


def test_load_cases_reads_the_algorithm_of_bench_allreduces_sweep(tmp_path):
    p = tmp_path / "sweep.json"
    fields = {"run_type": "iteration", "real_time": 5.0, "time_unit": "ms", "bytes": 1048576, "ranks": 4, "nodes": 2,
              "ranks_per_node": 2, "seconds": 5e-3}
    p.write_text(json.dumps({"context": {}, "benchmarks": [
        {"name": f"BM_Allreduce/{a}/1048576/iterations:5/manual_time", **fields}
        for a in ("kirzl_flat", "kirzl_hierarchical", "kirzl_auto", "mpi")]}))
    got = sorted(c.algorithm for c in sm.load_cases(str(p)))
    assert got == ["auto", "flat", "hierarchical", "mpi"]


def test_command_line_on_measured_files(tmp_path):
    cases = sm.synthetic_cases(SHM, WIRE, noise=0.01)
    files = []
    for nodes in (1, 2, 3, 4):
        p = tmp_path / f"n{nodes}.json"
        _bench_json(p, [c for c in cases if c.nodes == nodes])
        files.append(str(p))
    r = subprocess.run([sys.executable, SCRIPT, "--measured", *files, "--markdown"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "R^2 = 0.99" in r.stdout
    assert "| fit on <= 2 node(s), predict 3, 4 nodes |" in r.stdout
    assert "| GPT-2 1.5B | bf16 | hierarchical | yes |" in r.stdout
    bad = subprocess.run([sys.executable, SCRIPT, "--measured", str(tmp_path / "none.json")], capture_output=True, text=True)
    assert bad.returncode != 0 and "cannot read measurements" in bad.stderr
