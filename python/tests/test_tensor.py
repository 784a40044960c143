import math

import numpy as np
import pytest

import kirzl


def test_factories_and_metadata():
    t = kirzl.zeros(2, 3)
    assert t.shape == (2, 3) and t.dtype == kirzl.f32 and str(t.device) == "cpu"
    assert kirzl.ones((4,), dtype=kirzl.f64).dtype == kirzl.float64
    assert t.numel() == 6 and t.dim() == 2 and t.size(1) == 3 and t.strides == (3, 1)
    a = kirzl.arange(5)
    assert a.dtype == kirzl.i64 and a.tolist() == [0, 1, 2, 3, 4]
    assert kirzl.full((2,), 7.5).tolist() == [7.5, 7.5]
    kirzl.manual_seed(3)
    r1 = kirzl.randn(3).tolist()
    kirzl.manual_seed(3)
    assert kirzl.randn(3).tolist() == r1


def test_python_scalars_and_lists():
    assert kirzl.tensor([1.5, 2.0]).dtype == kirzl.f32
    assert kirzl.tensor([[1, 2], [3, 4]]).dtype == kirzl.i64
    assert kirzl.tensor(3.0).shape == ()
    assert kirzl.tensor([1, 2], dtype=kirzl.f64).dtype == kirzl.f64


def test_operators():
    a = kirzl.tensor([1.0, 2.0, 3.0])
    b = kirzl.tensor([4.0, 5.0, 6.0])
    assert (a + b).tolist() == [5, 7, 9]
    assert (a - b).tolist() == [-3, -3, -3]
    assert (a * 2).tolist() == [2, 4, 6]
    assert (2 * a).tolist() == [2, 4, 6]
    assert (1 - a).tolist() == [0, -1, -2]
    assert (b / a).tolist() == [4, 2.5, 2]
    assert (6 / a).tolist() == [6, 3, 2]
    assert (-a).tolist() == [-1, -2, -3]
    assert (a ** 2).tolist() == [1, 4, 9]
    assert (a @ b).item() == 32.0
    m = kirzl.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert (m @ m).tolist() == [[7, 10], [15, 22]]
    assert (a < b).dtype == kirzl.u8 and (a > 2).tolist() == [0, 0, 1]
    assert (a == a).tolist() == [1, 1, 1]
    assert (a + np.ones(3, dtype=np.float32)).tolist() == [2, 3, 4]
    assert (np.ones(3, dtype=np.float32) + a).tolist() == [2, 3, 4]
    assert kirzl.add(a, b).tolist() == [5, 7, 9]
    assert kirzl.add(a, 1).tolist() == [2, 3, 4]
    c = kirzl.tensor([1.0, 1.0])
    c += 1
    assert c.tolist() == [2, 2]


def test_indexing_and_slicing():
    t = kirzl.arange(24).reshape(2, 3, 4)
    assert t[1].shape == (3, 4)
    assert t[1, 2, 3].item() == 23
    assert t[-1, -1, -1].item() == 23
    assert t[:, 1].tolist() == [[4, 5, 6, 7], [16, 17, 18, 19]]
    assert t[..., 0].tolist() == [[0, 4, 8], [12, 16, 20]]
    assert t[0, ::2, 1:3].tolist() == [[1, 2], [9, 10]]
    assert t[None].shape == (1, 2, 3, 4) and t[:, None, 0].shape == (2, 1, 4)
    with pytest.raises(IndexError):
        t[2]
    v = t[0]
    v[0, 0] = 100  # views share storage
    assert t[0, 0, 0].item() == 100
    t[1, :, 0] = kirzl.tensor([7, 8, 9])
    assert t[1, :, 0].tolist() == [7, 8, 9]
    assert [row.shape for row in kirzl.zeros(3, 2)] == [(2,)] * 3
    assert len(t) == 2


def test_repr_readable():
    t = kirzl.tensor([1.0, 2.0], requires_grad=True)
    s = repr(t)
    assert s.startswith("tensor([1.0000, 2.0000]") and "f32" in s and "requires_grad" in s
    assert "grad_fn=" in repr(t * 2)
    assert repr(kirzl.Device("cuda:1")) == "kirzl.Device('cuda:1')"


def test_views_and_conversions():
    t = kirzl.arange(6, dtype=kirzl.f32).reshape(2, 3)
    assert t.t().shape == (3, 2) and not t.t().is_contiguous()
    assert t.T.contiguous().tolist() == [[0, 3], [1, 4], [2, 5]]
    assert t.to(kirzl.f64).dtype == kirzl.f64 and t.to("f16").dtype == kirzl.f16
    assert t.to(dtype="float64").dtype == kirzl.f64
    assert t.flatten().shape == (6,) and t.unsqueeze(0).shape == (1, 2, 3)
    assert t.sum().item() == 15.0 and t.mean(dim=1).tolist() == [1.0, 4.0]
    assert math.isclose(t.max().item(), 5.0) and t.argmax(1).tolist() == [2, 2]
    assert [x.shape for x in kirzl.split(t, 1, dim=1)] == [(2, 1)] * 3
    assert kirzl.cat([t, t]).shape == (4, 3) and kirzl.stack([t, t]).shape == (2, 2, 3)
    c = t.clone()
    c[0, 0] = 9
    assert t[0, 0].item() == 0
