"""kirzl.nn.init: in-place initialisation from a seeded generator (the default one unless given)."""
from ..._C.nn.init import *  # noqa: F401,F403
