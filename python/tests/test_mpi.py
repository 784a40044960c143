"""Two real ranks under mpirun: all_reduce on NumPy arrays, DDP, and the Python example.
Skipped (with the reason) when mpirun or kirzl's MPI backend is missing."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import kirzl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MPIRUN = shutil.which("mpirun")
pytestmark = [
    pytest.mark.skipif(MPIRUN is None, reason="mpirun is not installed"),
    pytest.mark.skipif(not kirzl._C.has_mpi, reason="kirzl was built without MPI"),
]


def mpirun(n, args, timeout=240, **extra_env):
    env = dict(os.environ, **extra_env, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
               OMP_WAIT_POLICY="passive", KIRZL_TIMEOUT="60",
               PYTHONPATH=os.pathsep.join(p for p in [os.path.dirname(os.path.dirname(kirzl.__file__)),
                                                       os.environ.get("PYTHONPATH", "")] if p))
    cmd = [MPIRUN, "-np", str(n), "--oversubscribe", "--bind-to", "none", sys.executable] + args
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


SCRIPT = textwrap.dedent("""
    import json, os, numpy as np, kirzl, kirzl.nn as nn
    world = kirzl.init()
    r = world.rank()
    a = np.full(100000, r + 1, dtype=np.float32)          # ring path (>= 32 KiB)
    assert kirzl.all_reduce(a, op="sum") is a
    b = np.array([r + 1.0, -r], dtype=np.float64)         # small path
    kirzl.all_reduce(b, op="avg")
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)
        def forward(self, x):
            return self.fc(x)
    kirzl.manual_seed(r)                                   # different on purpose: DDP broadcasts rank 0's
    net = Net()
    ddp = kirzl.DistributedDataParallel(net, world)
    x = kirzl.full((2, 4), float(r + 1))
    ddp(x).sum().backward()
    with open(os.path.join(os.environ["KIRZL_TEST_OUT"], f"rank{r}.json"), "w") as f:  # own file: no interleaving
        json.dump({"rank": r, "size": world.size(), "a": [float(a.min()), float(a.max())], "b": b.tolist(),
                      "w": net.fc.weight.numpy().ravel().tolist(), "g": net.fc.weight.grad.numpy().ravel().tolist()}, f)
""")


def test_all_reduce_numpy_two_ranks(tmp_path):
    mpirun(2, ["-c", SCRIPT], KIRZL_TEST_OUT=str(tmp_path))
    out = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert sorted(o["rank"] for o in out) == [0, 1]
    for o in out:
        assert o["size"] == 2 and o["a"] == [3.0, 3.0] and o["b"] == [1.5, -0.5]
        assert o["g"] == [3.0] * 8  # mean over ranks of 2 * (r + 1)
    assert out[0]["w"] == out[1]["w"]


@pytest.mark.skipif(not os.path.isdir(kirzl.data.kFashionMnistDir), reason="Fashion-MNIST is not installed")
def test_example_under_mpirun():
    out = mpirun(2, [os.path.join(ROOT, "examples", "python", "fashion_mnist.py"), "--epochs", "1",
                     "--train-limit", "2048", "--test-limit", "500", "--batch-size", "64"])
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["example"] == "fashion_mnist" and summary["world_size"] == 2 and summary["test_accuracy"] > 0.5
