"""kirzl.profiler from Python (the C++ contract: include/kirzl/core/profiler.hpp)."""
import threading

import pytest

import kirzl
from kirzl import profiler

needs_gpu = pytest.mark.skipif(not kirzl.cuda.is_available(), reason="needs a CUDA device")


def _rows(rows, name):
    return [r for r in rows if r.name == name]


def test_a_profile_counts_the_kernels_of_its_block_by_kernel_and_family():
    a, b = kirzl.randn(128, 256), kirzl.randn(256, 64)
    with profiler.Profile() as prof:
        assert prof.recording
        for _ in range(3):
            y = kirzl.relu(kirzl.matmul(a, b))
    assert not prof.recording
    gemm = _rows(prof.by_kernel(), "gemm")
    assert len(gemm) == 1 and gemm[0].calls == 3 and gemm[0].device == kirzl.DeviceType.CPU
    assert gemm[0].device_ms == gemm[0].host_ms > 0
    assert _rows(prof.by_kernel(), "unary")[0].calls == 3  # relu
    families = prof.by_family()
    assert {f.name for f in families} >= {"gemm", "elementwise"}
    assert abs(sum(f.device_ms for f in families) - prof.total_device_ms()) < 1e-9
    text = prof.table()
    assert "gemm" in text and "total device time" in text
    # Calls after the block are not counted.
    kirzl.matmul(a, b)
    assert _rows(prof.by_kernel(), "gemm")[0].calls == 3
    del y


def test_one_profile_at_a_time_and_other_threads_are_not_recorded():
    a = kirzl.randn(64, 64)
    with profiler.Profile() as prof:
        with pytest.raises(kirzl.InvalidArgumentError, match="one at a time"):
            profiler.Profile()
        t = threading.Thread(target=lambda: kirzl.matmul(a, a))
        t.start()
        t.join()
        assert _rows(prof.by_kernel(), "gemm") == []
        prof.reset()
        kirzl.matmul(a, a)
        assert _rows(prof.by_kernel(), "gemm")[0].calls == 1


def test_kernel_families():
    assert profiler.kernel_family("gemm_bias_gelu") == "gemm"
    assert profiler.kernel_family("flash_attention_forward") == "attention"
    assert profiler.kernel_family("nothing_like_it") == "other"


@needs_gpu
def test_cuda_kernels_are_timed_on_the_device():
    a = kirzl.randn(4096, 4096).to("cuda")
    kirzl.matmul(a, a)
    kirzl.cuda.synchronize()
    with profiler.Profile() as prof:
        for _ in range(3):
            kirzl.matmul(a, a)
    row = _rows(prof.by_kernel(), "gemm")[0]
    assert row.device == kirzl.DeviceType.CUDA and row.calls == 3 and row.untimed_calls == 0
    assert row.device_ms > 0
