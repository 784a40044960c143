"""kirzl: data-parallel neural-network training (Python bindings of the C++ library).

The names are the C++ ones: ``kirzl.add``, ``kirzl.cross_entropy``, ``kirzl.nn.Linear``,
``kirzl.optim.AdamW``, ``kirzl.data.DataLoader``, ``kirzl.io.save_checkpoint``,
``kirzl.init()`` / ``kirzl.all_reduce`` and ``kirzl.DistributedDataParallel``.

NumPy: ``np.asarray(t)`` / ``t.numpy()`` share a CPU tensor's memory; ``kirzl.tensor(a)`` and
``kirzl.from_numpy(a)`` share a NumPy array's memory when its dtype is one of kirzl's and its
layout allows (see ``kirzl.from_numpy``), otherwise they copy. bf16 tensors have no NumPy dtype:
``numpy()`` raises ``kirzl.UnsupportedError`` (convert with ``t.to(kirzl.f32)``).

DLPack: ``kirzl.from_dlpack(x)`` shares the memory of a torch tensor / CuPy array, and
``torch.from_dlpack(t)`` that of a kirzl tensor.

The GIL is released during collectives, backward, optimizer steps, large kernels and data loading.
"""
from __future__ import annotations

import contextlib as _contextlib
import functools as _functools

from . import _C
from ._C import *  # noqa: F401,F403  (Tensor, ops, factories, errors, dtypes, comm functions)
from ._C import (  # noqa: F401  (explicit for readers and type checkers)
    Tensor, DType, Device, Error, InvalidArgumentError, UnsupportedError, CommTimeoutError, IoError,
    CudaError, NcclError, MpiError, InternalError, ErrorCode, DistributedDataParallel, BucketInfo,
    DDPStepStats, Generator, Node, from_dlpack, from_numpy, init, rank, world_size, all_reduce,
    broadcast, all_gather, reduce_scatter, barrier, manual_seed, set_grad_enabled, grad_enabled,
)
import importlib as _importlib

# `from ._C import *` brought in the extension's submodules (kirzl._C.nn, ...); replace them with
# the package's own modules, which add the Python parts (e.g. nn.Module attribute registration).
nn = _importlib.import_module(".nn", __name__)
optim = _importlib.import_module(".optim", __name__)
data = _importlib.import_module(".data", __name__)
io = _importlib.import_module(".io", __name__)
comm = _importlib.import_module(".comm", __name__)
models = _importlib.import_module(".models", __name__)
autograd = _importlib.import_module(".autograd", __name__)
cuda = _importlib.import_module(".cuda", __name__)
amp = _importlib.import_module(".amp", __name__)
profiler = _importlib.import_module(".profiler", __name__)

__version__ = _C.__version__

__all__ = [n for n in dir(_C) if not n.startswith("_")] + ["tensor", "no_grad", "enable_grad"]


def tensor(data, dtype=None, requires_grad: bool = False, copy: bool | None = None) -> Tensor:
    """A kirzl tensor from ``data``.

    - a NumPy array: shared, not copied, when its dtype and layout allow (see ``from_numpy``);
      ``copy=True`` always copies;
    - an object with ``__dlpack__`` (torch, CuPy): shared;
    - a kirzl Tensor: returned as is (or cloned with ``copy=True``);
    - Python numbers and (nested) lists: copied; floats become f32 and ints i64, as in PyTorch.

    ``dtype`` converts (a copy when it differs); ``requires_grad`` marks the result as a leaf
    that needs a gradient.
    """
    if isinstance(data, Tensor):
        t = data.clone() if copy else data
    elif copy and hasattr(data, "__array_interface__"):
        t = from_numpy(data, copy=True)
    else:
        t = _C._to_tensor(data)
        if copy:
            t = t.clone()
    if dtype is not None and t.dtype != _dtype(dtype):
        t = t.to(_dtype(dtype))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _dtype(d):
    if isinstance(d, DType):
        return d
    import numpy as _np
    names = {"float32": f32, "float64": f64, "float16": f16, "int32": i32, "int64": i64,  # noqa: F405
             "uint8": u8, "uint16": u16, "bool": u8, "bfloat16": bf16}  # noqa: F405
    if isinstance(d, str) and hasattr(_C, d):
        return getattr(_C, d)
    return names[_np.dtype(d).name]


class no_grad(_contextlib.ContextDecorator):
    """Context manager (and decorator): ops inside record no autograd graph. Per thread; nests."""

    def __enter__(self):
        self._prev = _C.grad_enabled()
        _C.set_grad_enabled(False)
        return self

    def __exit__(self, *exc):
        _C.set_grad_enabled(self._prev)
        return False


class enable_grad(_contextlib.ContextDecorator):
    """Context manager (and decorator) that turns grad mode back on inside a no_grad block."""

    def __enter__(self):
        self._prev = _C.grad_enabled()
        _C.set_grad_enabled(True)
        return self

    def __exit__(self, *exc):
        _C.set_grad_enabled(self._prev)
        return False


# Every live DistributedDataParallel is closed at interpreter exit, before C++ static destructors
# finalise MPI: Python's shutdown does not reliably deallocate every object, and a reducer that
# outlived it would keep the world communicator alive, so MPI_Finalize would never run and mpirun
# would report an improper exit.
import atexit as _atexit
import weakref as _weakref

_live_ddps: "_weakref.WeakSet" = _weakref.WeakSet()
_ddp_init = _C.DistributedDataParallel.__init__


def _ddp_init_tracked(self, *args, **kwargs):
    _ddp_init(self, *args, **kwargs)
    _live_ddps.add(self)


_ddp_init_tracked.__doc__ = _ddp_init.__doc__
_C.DistributedDataParallel.__init__ = _ddp_init_tracked  # type: ignore[method-assign]


@_atexit.register
def _close_ddps():
    for d in list(_live_ddps):
        d.close()
