"""kirzl.comm (see the C++ header of the same name for the full contract of each entry)."""
from ._C.comm import *  # noqa: F401,F403
from ._C.comm import ReduceOp, Work, Communicator, ProcessGroup, make_in_process_group, init  # noqa: F401
