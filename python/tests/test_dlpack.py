"""DLPack interop with PyTorch (CPU; CUDA too when a GPU is present), proven by mutation, and the
`stream` handshake of the DLPack protocol (Note [dlpack streams] in python/src/dlpack.cpp) with
fake producers. The torch tests skip where torch is not importable; the CUDA ones without a GPU."""
import gc
import sys

import numpy as np
import pytest

import kirzl

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
needs_cuda = pytest.mark.skipif(torch is None or not torch.cuda.is_available() or not kirzl.cuda.is_available(),
                                reason="no CUDA device (for both torch and kirzl)")


@needs_torch
@pytest.mark.parametrize("tdt,kdt", [("float32", kirzl.f32), ("float64", kirzl.f64), ("float16", kirzl.f16),
                                     ("bfloat16", kirzl.bf16), ("int32", kirzl.i32), ("int64", kirzl.i64),
                                     ("uint8", kirzl.u8)])
def test_torch_to_kirzl_shares_memory(tdt, kdt):
    x = torch.arange(12).to(getattr(torch, tdt)).reshape(3, 4)
    t = kirzl.from_dlpack(x)
    assert t.dtype == kdt and t.shape == (3, 4)
    x[1, 2] = 77
    assert t[1, 2].item() == 77
    t[0, 0] = 5
    assert x[0, 0].item() == 5


@needs_torch
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


@needs_torch
def test_producer_kept_alive():
    t = kirzl.from_dlpack(torch.full((1000,), 2.0))
    gc.collect()
    assert t.sum().item() == 2000.0
    x = torch.from_dlpack(kirzl.full((10,), 3.0))
    gc.collect()
    assert x.sum().item() == 30.0


@needs_torch
def test_capsule_consumed_once():
    cap = torch.ones(3).__dlpack__()
    kirzl.from_dlpack(cap)
    with pytest.raises(kirzl.InvalidArgumentError, match="consumed only once"):
        kirzl.from_dlpack(cap)


def test_refused_capsule_is_left_to_its_producer():
    # int8 has no kirzl dtype: the capsule is refused before it is consumed, so it stays unused and
    # its own destructor gives NumPy's array back (before: renamed "used", never released).
    a = np.arange(6, dtype=np.int8)
    base = sys.getrefcount(a)
    with pytest.raises(kirzl.UnsupportedError, match="int8|code 0, 8 bits"):
        kirzl.from_dlpack(a)
    cap = a.__dlpack__()
    for _ in range(2):  # still unused after a refusal: refused again, not "consumed only once"
        with pytest.raises(kirzl.UnsupportedError, match="has no kirzl dtype"):
            kirzl.from_dlpack(cap)
    del cap
    gc.collect()
    assert sys.getrefcount(a) == base, "the refused capsule kept the producer's array alive"


def test_numpy_dlpack_and_device():
    a = np.arange(4, dtype=np.float32)
    t = kirzl.from_dlpack(a)
    a[0] = 9
    assert t[0].item() == 9
    assert kirzl.ones(1).__dlpack_device__() == (1, 0)
    assert np.from_dlpack(kirzl.ones(3)).tolist() == [1, 1, 1]


@needs_torch
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


@needs_torch
def test_tensor_with_grad_to_torch():
    t = kirzl.ones(3, requires_grad=True)
    x = torch.from_dlpack(t.detach())
    assert x.tolist() == [1, 1, 1]


@needs_cuda
def test_cuda_tensor_shared():
    x = torch.ones(4, device="cuda")
    t = kirzl.from_dlpack(x)
    assert t.device.is_cuda


# ---- the `stream` handshake (Note [dlpack streams]) ----

kDLCPU, kDLCUDA, kDLCUDAHost, kDLCUDAManaged = 1, 2, 3, 13
NO_STREAM = object()  # what a fake producer records when __dlpack__ got no `stream` at all


class FakeProducer:
    """A DLPack producer that reports `device` from __dlpack_device__ and records the `stream` it is
    given; its capsule is a NumPy array's (real CPU memory), so from_dlpack can finish on any machine."""

    def __init__(self, device_type, device_id=0, versioned=True):
        self.device = (device_type, device_id)
        self.versioned = versioned
        self.array = np.arange(6, dtype=np.float32)
        self.streams = []

    def __dlpack_device__(self):
        return self.device

    def __dlpack__(self, **kwargs):
        if "max_version" in kwargs and not self.versioned:
            raise TypeError("__dlpack__() got an unexpected keyword argument 'max_version'")
        self.streams.append(kwargs.get("stream", NO_STREAM))
        return self.array.__dlpack__()


def kirzl_current_stream_value():
    # kirzl's current stream is the legacy default stream (1) unless a C++ StreamGuard is active,
    # which Python cannot make.
    return 1


@pytest.mark.parametrize("device_type", [kDLCUDA, kDLCUDAManaged])
@pytest.mark.parametrize("versioned", [True, False])
def test_from_dlpack_passes_kirzl_stream_to_cuda_producer(device_type, versioned):
    p = FakeProducer(device_type, versioned=versioned)
    t = kirzl.from_dlpack(p)
    assert p.streams[-1] == kirzl_current_stream_value()
    assert isinstance(p.streams[-1], int) and p.streams[-1] != 0  # 0 is disallowed for CUDA
    assert t.tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("device_type", [kDLCPU, kDLCUDAHost])
def test_from_dlpack_passes_no_stream_to_cpu_producer(device_type):
    p = FakeProducer(device_type)
    t = kirzl.from_dlpack(p)
    assert p.streams == [NO_STREAM]
    assert t.tolist() == [0, 1, 2, 3, 4, 5]


def test_from_dlpack_producer_without_dlpack_device_gets_no_stream():
    class NoDevice:
        def __init__(self):
            self.kwargs = None

        def __dlpack__(self, **kwargs):
            self.kwargs = kwargs
            return np.ones(2, dtype=np.float32).__dlpack__()

    p = NoDevice()
    assert kirzl.from_dlpack(p).tolist() == [1, 1]
    assert "stream" not in p.kwargs


def test_from_dlpack_bad_dlpack_device():
    class Bad(FakeProducer):
        def __dlpack_device__(self):
            return (2,)

    with pytest.raises(kirzl.InvalidArgumentError, match="__dlpack_device__"):
        kirzl.from_dlpack(Bad(kDLCUDA))


@pytest.mark.parametrize("stream", [None, -1, 1, 2, 3, 0x7F00DEADBEEF, np.int64(-1)])
def test_cpu_dlpack_accepts_valid_streams(stream):
    t = kirzl.arange(4, dtype=kirzl.f32)
    cap = t.__dlpack__(stream=stream)
    assert kirzl.from_dlpack(cap).tolist() == [0, 1, 2, 3]
    assert t.__dlpack__(stream=stream, max_version=(1, 0)) is not None


@pytest.mark.parametrize("stream", [0, -2, -(1 << 70), 1 << 70])
def test_dlpack_rejects_bad_stream_values(stream):
    with pytest.raises(kirzl.InvalidArgumentError, match=r"__dlpack__: stream=-?\d+ is not a DLPack stream.*0 is disallowed"):
        kirzl.ones(2).__dlpack__(stream=stream)


@pytest.mark.parametrize("stream", [1.0, "1", True, object()])
def test_dlpack_rejects_bad_stream_types(stream):
    with pytest.raises(TypeError, match="stream must be an int or None"):
        kirzl.ones(2).__dlpack__(stream=stream)


def test_numpy_consumes_kirzl_with_its_stream_protocol():
    # NumPy calls __dlpack__ without a stream (stream=None for CPU): unchanged behaviour.
    assert np.from_dlpack(kirzl.full((2,), 7.0)).tolist() == [7, 7]


# ---- CUDA: a kernel still running on the producer's stream when the consumer takes the data ----

# Each round doubles the values, so no buffer of an earlier round (which the caching allocators may
# hand out again) holds the final answer: reading too early gives a wrong sum, not a lucky one.

@needs_cuda
def test_torch_side_stream_to_kirzl_is_ordered():
    n, rounds = 8192, 8
    s = torch.cuda.Stream()  # a non-blocking stream: no implicit order with the legacy default stream
    with torch.cuda.stream(s):
        a = torch.eye(n, device="cuda") * 2.0
        y = torch.eye(n, device="cuda")
        for _ in range(rounds):
            y = y @ a  # pending on s
        t = kirzl.from_dlpack(y)  # kirzl passes stream=1: torch must make the legacy stream wait for s
    assert not s.query(), "the torch work finished too early for this test to mean anything"
    assert t.sum().item() == float(2 ** rounds * n)  # runs on kirzl's (legacy default) stream
    s.synchronize()


@needs_cuda
def test_kirzl_to_torch_side_stream_is_ordered():
    n, rounds = 8192, 8
    a = kirzl.full((n, n), 2.0 / n, device="cuda:0")
    y = kirzl.full((n, n), 3.0, device="cuda:0")
    for _ in range(rounds):
        y = kirzl.matmul(y, a)  # 3 * 2^k everywhere; pending on kirzl's (legacy default) stream
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        x = torch.from_dlpack(y)  # torch passes stream=s.cuda_stream: kirzl must make s wait
        total = x.sum(dtype=torch.float64)
    s.synchronize()
    assert total.item() == 3.0 * 2 ** rounds * n * n


@needs_cuda
def test_kirzl_dlpack_stream_values_on_cuda():
    t = kirzl.full((1 << 20,), 1.0, device="cuda:0")
    s = torch.cuda.Stream()
    for stream in [None, -1, 1, 2, s.cuda_stream]:
        x = torch.utils.dlpack.from_dlpack(t.__dlpack__(stream=stream))
        assert x.device.type == "cuda"
    with pytest.raises(kirzl.InvalidArgumentError, match="0 is disallowed"):
        t.__dlpack__(stream=0)
    torch.cuda.synchronize()
