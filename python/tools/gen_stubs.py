#!/usr/bin/env python3
"""Regenerates the type stubs python/kirzl/_C/**/*.pyi from the built extension.

    python3 -m pip install pybind11-stubgen
    PYTHONPATH=build-py/python python3 python/tools/gen_stubs.py

pybind11-stubgen reads the signatures and docstrings of kirzl._C; this script then defines the
exception classes (created with PyErr_NewException, which stubgen only imports) in the stub.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEST = os.path.join(ROOT, "python", "kirzl", "_C")

ERRORS = {
    "Error": "Exception", "InvalidArgumentError": "Error, ValueError", "UnsupportedError": "Error, NotImplementedError",
    "CudaError": "Error, RuntimeError", "NcclError": "Error, RuntimeError", "MpiError": "Error, RuntimeError",
    "CommTimeoutError": "Error, TimeoutError", "IoError": "Error, OSError", "InternalError": "Error, RuntimeError",
}


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pybind11_stubgen", "kirzl._C", "-o", tmp], check=True)
        shutil.rmtree(DEST, ignore_errors=True)
        shutil.copytree(os.path.join(tmp, "kirzl", "_C"), DEST)
    init = os.path.join(DEST, "__init__.pyi")
    text = open(init).read()
    text = re.sub(r"^from kirzl import \w+Error\n|^from kirzl import Error\n", "", text, flags=re.M)
    classes = "".join(
        f"class {name}({bases}):\n    code: ErrorCode\n    message: str\n" if name == "Error" else f"class {name}({bases}): ...\n"
        for name, bases in ERRORS.items())
    text = text.replace("class ErrorCode:", classes + "class ErrorCode:", 1)
    open(init, "w").write(text)
    # `generator: Generator = None` -> `generator: Generator | None = None` (PEP 484: no implicit Optional)
    for dirpath, _, files in os.walk(DEST):
        for f in files:
            path = os.path.join(dirpath, f)
            t = open(path).read()
            t = re.sub(r"(\w+): ([\w.]+(?:\[[^\]=]*\])?) = None", lambda m: m.group(0) if "None" in m.group(2) or m.group(2) == "typing.Any"
                       else f"{m.group(1)}: {m.group(2)} | None = None", t)
            open(path, "w").write(t)
    print("stubs written to", DEST)


if __name__ == "__main__":
    main()
