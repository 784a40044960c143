"""
The Fashion-MNIST models of the examples and benchmarks.
"""
from __future__ import annotations
import kirzl._C.nn
__all__: list[str] = ['fashion_cnn', 'fashion_mlp']
def fashion_cnn() -> kirzl._C.nn.Sequential:
    """
    conv32-pool-conv64-pool-fc128-fc10.
    """
def fashion_mlp() -> kirzl._C.nn.Sequential:
    """
    Flatten, 784-256-128-10 with ReLU.
    """
