"""NumPy round trips: dtypes, strides, zero-copy proven by mutation, documented copies."""
import numpy as np
import pytest

import kirzl

SHARED = [np.float32, np.float64, np.float16, np.int32, np.int64, np.uint8, np.uint16]


@pytest.mark.parametrize("dt", SHARED)
def test_round_trip_dtypes_zero_copy(dt):
    a = np.arange(12).astype(dt).reshape(3, 4)
    t = kirzl.from_numpy(a)
    assert t.shape == (3, 4) and t.dtype.itemsize == a.itemsize
    back = np.asarray(t)
    assert back.dtype == a.dtype and np.array_equal(back, a)
    a[1, 2] = 99  # mutation through NumPy is seen by kirzl ...
    assert t[1, 2].item() == 99
    back[0, 0] = 7  # ... and through the kirzl-backed array by the original
    assert a[0, 0] == 7
    assert np.shares_memory(back, a)


def test_strided_views_shared():
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    v = a[::2, 1::2]  # non-contiguous, positive strides: shared
    t = kirzl.tensor(v)
    assert t.shape == (2, 3) and t.strides == (12, 2)
    a[2, 3] = -1
    assert t[1, 1].item() == -1
    tt = kirzl.tensor(a.T)
    assert tt.strides == (1, 6) and np.array_equal(np.asarray(tt), a.T)


def test_tensor_to_numpy_strides_in_bytes():
    t = kirzl.arange(12, dtype=kirzl.f64).reshape(3, 4).t()
    a = t.numpy()
    assert a.strides == (8, 32) and np.array_equal(a, np.arange(12.0).reshape(3, 4).T)
    t[0, 0] = 5
    assert a[0, 0] == 5


def test_copies_where_documented():
    neg = np.arange(5, dtype=np.float32)[::-1]
    t = kirzl.tensor(neg)
    assert t.tolist() == [4, 3, 2, 1, 0]
    neg[0] = 100  # negative strides are copied
    assert t[0].item() == 4
    ro = np.arange(3, dtype=np.float32)
    ro.setflags(write=False)
    assert not np.shares_memory(np.asarray(kirzl.tensor(ro)), ro)
    assert kirzl.tensor(np.arange(3, dtype=np.int8)).dtype == kirzl.i32
    assert kirzl.tensor(np.arange(3, dtype=np.uint32)).dtype == kirzl.i64
    b = np.array([True, False])
    assert kirzl.tensor(b).dtype == kirzl.u8 and kirzl.tensor(b).tolist() == [1, 0]
    a = np.ones(3, dtype=np.float32)
    c = kirzl.from_numpy(a, copy=True)
    a[0] = 5
    assert c[0].item() == 1


def test_keeps_array_alive():
    t = kirzl.from_numpy(np.full(1000, 3.0, dtype=np.float32))
    import gc
    gc.collect()
    assert t.sum().item() == 3000.0


def test_bf16_has_no_numpy_dtype():
    t = kirzl.ones(3, dtype=kirzl.bf16)
    with pytest.raises(kirzl.UnsupportedError, match="bf16"):
        t.numpy()
    assert t.to(kirzl.f32).numpy().tolist() == [1, 1, 1]


def test_zero_dim_and_empty():
    t = kirzl.tensor(np.float32(2.5))
    assert t.shape == () and float(t) == 2.5
    assert np.asarray(kirzl.zeros(0, 3)).shape == (0, 3)
