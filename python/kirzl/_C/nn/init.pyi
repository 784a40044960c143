"""
In-place parameter initialisation from a seeded generator.
"""
from __future__ import annotations
import kirzl._C
import typing
__all__: list[str] = ['constant_', 'fans', 'kaiming_uniform_', 'normal_', 'ones_', 'uniform_', 'xavier_uniform_', 'zeros_']
def constant_(t: kirzl._C.Tensor, value: typing.SupportsFloat | typing.SupportsIndex) -> kirzl._C.Tensor:
    """
    Fills `t` with `value` in place.
    """
def fans(weight: kirzl._C.Tensor) -> tuple[int, int]:
    """
    (fan_in, fan_out) of a weight.
    """
def kaiming_uniform_(t: kirzl._C.Tensor, a: typing.SupportsFloat | typing.SupportsIndex = 0.0, generator: kirzl._C.Generator | None = None) -> kirzl._C.Tensor:
    """
    Kaiming-uniform in place: U(-b, b) with b = sqrt(6 / ((1 + a^2) fan_in)) (PyTorch's Linear/Conv2d default uses a = sqrt(5)).
    """
def normal_(t: kirzl._C.Tensor, mean: typing.SupportsFloat | typing.SupportsIndex = 0.0, std: typing.SupportsFloat | typing.SupportsIndex = 1.0, generator: kirzl._C.Generator | None = None) -> kirzl._C.Tensor:
    """
    Fills `t` from N(mean, std^2) in place.
    """
def ones_(t: kirzl._C.Tensor) -> kirzl._C.Tensor:
    """
    Fills `t` with ones in place.
    """
def uniform_(t: kirzl._C.Tensor, low: typing.SupportsFloat | typing.SupportsIndex, high: typing.SupportsFloat | typing.SupportsIndex, generator: kirzl._C.Generator | None = None) -> kirzl._C.Tensor:
    """
    Fills `t` from U(low, high) in place.
    """
def xavier_uniform_(t: kirzl._C.Tensor, gain: typing.SupportsFloat | typing.SupportsIndex = 1.0, generator: kirzl._C.Generator | None = None) -> kirzl._C.Tensor:
    """
    Xavier/Glorot-uniform in place: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
    """
def zeros_(t: kirzl._C.Tensor) -> kirzl._C.Tensor:
    """
    Fills `t` with zeros in place.
    """
