"""kirzl.amp: mixed precision (see the C++ header kirzl/amp.hpp for the policy and the full contract)."""
from ._C.amp import *  # noqa: F401,F403
