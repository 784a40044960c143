"""
The autograd engine.
"""
from __future__ import annotations
import collections.abc
import kirzl._C
__all__: list[str] = ['backward', 'grad']
def backward(tensors: collections.abc.Sequence[kirzl._C.Tensor], grad_tensors: collections.abc.Sequence[kirzl._C.Tensor] = [], retain_graph: bool = False) -> None:
    """
    Runs one backward pass from several roots (grad_tensors: one per root; empty: ones for one-element roots). Releases the GIL.
    """
def grad(outputs: collections.abc.Sequence[kirzl._C.Tensor], inputs: collections.abc.Sequence[kirzl._C.Tensor], grad_outputs: collections.abc.Sequence[kirzl._C.Tensor] = [], retain_graph: bool = False) -> list:
    """
    d(outputs)/d(inputs) without touching .grad; None where an input does not influence the outputs.
    """
