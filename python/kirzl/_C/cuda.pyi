"""
CUDA availability.
"""
from __future__ import annotations
__all__: list[str] = ['device_count', 'is_available']
def device_count() -> int:
    """
    CUDA devices this process can use (0 without CUDA).
    """
def is_available() -> bool:
    """
    True when device_count() > 0.
    """
