"""DLPack interop with PyTorch (CPU; CUDA too when a GPU is present), proven by mutation.
Skipped where torch is not importable."""
import numpy as np
import pytest

import kirzl

torch = pytest.importorskip("torch", reason="PyTorch is not installed")


@pytest.mark.parametrize("tdt,kdt", [(torch.float32, kirzl.f32), (torch.float64, kirzl.f64), (torch.float16, kirzl.f16),
                                     (torch.bfloat16, kirzl.bf16), (torch.int32, kirzl.i32), (torch.int64, kirzl.i64),
                                     (torch.uint8, kirzl.u8)])
def test_torch_to_kirzl_shares_memory(tdt, kdt):
    x = torch.arange(12).to(tdt).reshape(3, 4)
    t = kirzl.from_dlpack(x)
    assert t.dtype == kdt and t.shape == (3, 4)
    x[1, 2] = 77
    assert t[1, 2].item() == 77
    t[0, 0] = 5
    assert x[0, 0].item() == 5


def test_kirzl_to_torch_shares_memory():
    t = kirzl.arange(6, dtype=kirzl.f32).reshape(2, 3)
    x = torch.from_dlpack(t)
    assert x.shape == (2, 3) and x.dtype == torch.float32
    x[0, 1] = -1
    assert t[0, 1].item() == -1
    t[1, 2] = 42
    assert x[1, 2].item() == 42
    tt = t.t()  # strided views keep their strides
    xt = torch.from_dlpack(tt)
    assert xt.stride() == (1, 3) and torch.equal(xt, x.t())


def test_producer_kept_alive():
    t = kirzl.from_dlpack(torch.full((1000,), 2.0))
    import gc
    gc.collect()
    assert t.sum().item() == 2000.0
    x = torch.from_dlpack(kirzl.full((10,), 3.0))
    gc.collect()
    assert x.sum().item() == 30.0


def test_capsule_consumed_once():
    cap = torch.ones(3).__dlpack__()
    kirzl.from_dlpack(cap)
    with pytest.raises(kirzl.InvalidArgumentError, match="consumed only once"):
        kirzl.from_dlpack(cap)


def test_numpy_dlpack_and_device():
    a = np.arange(4, dtype=np.float32)
    t = kirzl.from_dlpack(a)
    a[0] = 9
    assert t[0].item() == 9
    assert kirzl.ones(1).__dlpack_device__() == (1, 0)
    assert np.from_dlpack(kirzl.ones(3)).tolist() == [1, 1, 1]


def test_all_reduce_on_torch_tensor_in_place():
    g = torch.ones(8)
    out = kirzl.all_reduce(g, op="avg")  # world of one: unchanged, but through DLPack and in place
    assert out is g and torch.equal(g, torch.ones(8))
    import threading
    comms = kirzl.comm.make_in_process_group(2, timeout=30)
    xs = [torch.full((5,), float(r + 1)) for r in range(2)]
    ths = [threading.Thread(target=kirzl.all_reduce, args=(xs[r],), kwargs={"group": comms[r]}) for r in range(2)]
    [t.start() for t in ths]
    [t.join() for t in ths]
    assert xs[0].tolist() == [3.0] * 5 and xs[1].tolist() == [3.0] * 5


def test_tensor_with_grad_to_torch():
    t = kirzl.ones(3, requires_grad=True)
    x = torch.from_dlpack(t.detach())
    assert x.tolist() == [1, 1, 1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensor_shared():
    x = torch.ones(4, device="cuda")
    t = kirzl.from_dlpack(x)
    assert t.device.is_cuda
