import os

import numpy as np
import pytest

import kirzl
from kirzl import data


def test_dataloader_over_numpy_arrays():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10, dtype=np.int64)
    ds = data.TensorDataset(x, y)
    assert len(ds) == 10 and ds[3][1].item() == 3
    x[3, 0] = -5  # TensorDataset shares the arrays
    assert ds[3][0].tolist() == [-5, 7]
    loader = data.DataLoader(ds, batch_size=4)
    batches = [(bx.shape, by.tolist()) for bx, by in loader]
    assert batches == [((4, 2), [0, 1, 2, 3]), ((4, 2), [4, 5, 6, 7]), ((2, 2), [8, 9])]
    assert len(data.DataLoader(ds, batch_size=4, drop_last=True)) == 2
    seen = sorted(v for _, by in data.DataLoader(ds, batch_size=3, shuffle=True, seed=1) for v in by.tolist())
    assert seen == list(range(10))


def test_distributed_sampler_partitions():
    parts = []
    for r in range(3):
        s = data.DistributedSampler(10, r, 3, shuffle=True, seed=0)
        s.set_epoch(1)
        parts.append(s.indices())
    assert all(len(p) == 4 for p in parts)
    assert set().union(*map(set, parts)) == set(range(10))
    world = kirzl.init()
    s = data.DistributedSampler(10, world)
    assert s.world_size() == world.size()


def test_python_dataset_through_prefetch_thread():
    class Squares(data.Dataset):
        def size(self):
            return 6

        def get(self, i):
            return np.full(2, i, np.float32), np.int64(i * i)

    loader = data.DataLoader(Squares(), batch_size=4, prefetch=2)
    out = [(bx.tolist(), by.tolist()) for bx, by in loader]
    assert out[0][1] == [0, 1, 4, 9] and out[1][0] == [[4, 4], [5, 5]]


@pytest.mark.skipif(not os.path.isdir(data.kFashionMnistDir), reason="Fashion-MNIST is not installed")
def test_fashion_mnist():
    ds = data.FashionMNIST(split="test", limit=100)
    assert len(ds) == 100 and ds.inputs().shape == (100, 1, 28, 28) and ds.targets().dtype == kirzl.i64
    assert data.FashionMNIST.class_names()[0] == "T-shirt/top"
    with pytest.raises(OSError):
        data.FashionMNIST("/nonexistent")
