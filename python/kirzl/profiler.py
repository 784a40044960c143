"""kirzl.profiler (see the C++ header kirzl/core/profiler.hpp for the full contract)."""
from ._C.profiler import *  # noqa: F401,F403
