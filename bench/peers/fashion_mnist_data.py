"""Fashion-MNIST's training set for the PyTorch peers, normalised as kirzl's examples do
(mean 0.2860, standard deviation 0.3530), as [N, 1, 28, 28] f32 images and i64 labels."""
import gzip
import os
import struct

import numpy as np
import torch


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndims = data[3]
    dims = struct.unpack(">" + "I" * ndims, data[4 : 4 + 4 * ndims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndims).reshape(dims)


def load_train(data_dir):
    x = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    y = read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    return torch.from_numpy((x - 0.2860) / 0.3530).reshape(-1, 1, 28, 28), torch.from_numpy(y)
