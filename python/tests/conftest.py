"""pytest setup: import kirzl from the build tree when it is not installed (scripts/test.sh sets
PYTHONPATH=build-py/python; an installed kirzl works too)."""
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_root = os.path.dirname(os.path.dirname(_here))
try:
    import kirzl  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(_root, "build-py", "python"))
