"""kirzl.autograd (see the C++ header of the same name for the full contract of each entry)."""
from ._C.autograd import *  # noqa: F401,F403
