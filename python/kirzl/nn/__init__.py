"""kirzl.nn: modules (C++ layers, and Python subclasses of ``Module``).

Writing a module in Python (see Note [python modules] in python/src/nn.cpp)::

    class Net(kirzl.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = kirzl.nn.Linear(4, 8)                       # a child module
            self.scale = kirzl.nn.Parameter(kirzl.ones(8))        # a parameter
        def forward(self, x):
            return kirzl.relu(self.fc(x)) * self.scale

Attributes are registered in assignment order; ``parameters()`` lists a module's own parameters first,
then its children's (depth first), as in C++ (the order DDP buckets follow). A Python
module is a C++ ``Module``: it works in ``Sequential``, ``DistributedDataParallel`` and
checkpoints. ``forward`` takes one tensor when called from C++ (Sequential, DDP).
"""
from __future__ import annotations

from .._C import Tensor as _Tensor
from .._C.nn import *  # noqa: F401,F403
from .._C.nn import Module, Sequential, ModuleList  # noqa: F401
from . import init  # type: ignore[no-redef]  # noqa: F401


def Parameter(data, requires_grad: bool = True) -> _Tensor:  # noqa: N802 (PyTorch's spelling)
    """A leaf tensor that requires a gradient: assign it to a Module attribute to register it."""
    import kirzl
    t = kirzl.tensor(data).detach()
    if requires_grad:
        t.requires_grad_(True)
    return t


def _module_setattr(self, name, value):
    cls_attr = getattr(type(self), name, None)
    if isinstance(cls_attr, property) or hasattr(cls_attr, "__set__"):
        object.__setattr__(self, name, value)
        return
    if isinstance(value, Module) and not name.startswith("_"):
        if not any(n == name for n, _ in self.named_children()):
            self.register_module(name, value)
    elif isinstance(value, _Tensor) and value.requires_grad and value.is_leaf and not name.startswith("_"):
        for n, p in self.named_parameters(recurse=False):
            if n == name:
                if not p.is_same(value):  # the C++ module would keep training the old tensor
                    raise ValueError(f"{type(self).__name__}: parameter '{name}' is already registered; "
                                     f"change its values in place (e.g. self.{name}.copy_(...)) instead")
                break
        else:
            self.register_parameter(name, value)
    object.__setattr__(self, name, value)


def _module_call(self, *args, **kwargs):
    # What C++'s Module::operator() does, for any arguments: the forward pre-hooks (sharded DDP
    # waits for the module's parameters in one), then forward.
    self.run_forward_pre_hooks()
    return self.forward(*args, **kwargs)


Module.__setattr__ = _module_setattr  # type: ignore[method-assign,assignment]
Module.__call__ = _module_call  # type: ignore[method-assign,attr-defined]
