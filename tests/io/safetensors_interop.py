#!/usr/bin/env python3
"""kirzl <-> Python safetensors interoperability.

Run by ctest as `safetensors_interop.py TOOL` (TOOL: the safetensors_tool executable), or by
pytest with KIRZL_SAFETENSORS_TOOL set. Checks that

  * Python's safetensors reads the files kirzl writes (every dtype, 0-d and empty tensors,
    metadata), values bit for bit;
  * kirzl reads the files Python's safetensors writes (checked by `TOOL check`).

bf16: safetensors.numpy needs ml_dtypes (or torch) for bfloat16. Without them the bf16 tensor is
checked through its raw bytes (uint16) in kirzl's file, and Python's file carries no bf16 tensor.

Exit status 77 (ctest SKIP_RETURN_CODE) with the reason printed when numpy or safetensors is
missing; 0 when everything matches; 1 otherwise.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

SKIP = 77


def _imports():
    try:
        import numpy as np  # noqa: F401
        import safetensors  # noqa: F401
        import safetensors.numpy  # noqa: F401
    except ImportError as e:
        return str(e)
    return None


def reference():
    """name -> (safetensors dtype, shape, numpy array). Mirrors safetensors_tool.cpp."""
    import numpy as np

    def idx(shape):
        return np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)

    bf16_bits = ((idx((2, 2)) - 1) * 0.5).astype(np.float32).view(np.uint32) >> 16
    return {
        "f32": ("F32", (2, 3), ((idx((2, 3)) - 2.5) * 0.75).astype(np.float32)),
        "f64": ("F64", (3, 2), (idx((3, 2)) - 3) * 0.1),
        "f16": ("F16", (4,), ((idx((4,)) - 2) * 0.25).astype(np.float16)),
        "bf16": ("BF16", (2, 2), bf16_bits.astype(np.uint16)),  # raw bits
        "i32": ("I32", (5,), np.arange(5, dtype=np.int32) * 1000 - 2000),
        "i64": ("I64", (2,), np.arange(2, dtype=np.int64) * (1 << 40) - 7),
        "u8": ("U8", (6,), (np.arange(6) * 50).astype(np.uint8)),
        "u16": ("U16", (3,), (np.arange(3) * 30000).astype(np.uint16)),
        "scalar": ("F32", (), np.array(3.5, dtype=np.float32)),
        "empty": ("F32", (0, 4), np.zeros((0, 4), dtype=np.float32)),
        "f32_special": ("F32", (6,), np.array([0.0, -0.0, np.inf, -np.inf, np.float32(1e-45), 3.4e38],
                                              dtype=np.float32)),
    }


METADATA = {"unicode": "caf\u00e9 \u2713"}


def bf16_dtype():
    """A numpy bfloat16 dtype if ml_dtypes (or torch) is installed, else None."""
    try:
        import ml_dtypes

        return ml_dtypes.bfloat16
    except ImportError:
        return None


def raw_entry(path, name):
    """(header entry, raw bytes) of tensor `name`, parsed by hand (independent of the library)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    entry = header[name]
    begin, end = entry["data_offsets"]
    return entry, data[8 + n + begin:8 + n + end]


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def check_kirzl_file(tool, tmp):
    """kirzl writes, Python reads."""
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import load_file

    path = os.path.join(tmp, "from_kirzl.safetensors")
    subprocess.run([tool, "write", path], check=True)
    ref = reference()
    failures = []
    with safe_open(path, framework="np") as f:
        meta = f.metadata()
        if meta != {"writer": "kirzl", **METADATA}:
            failures.append(f"metadata {meta!r}")
        keys = set(f.keys())
        if keys != set(ref):
            failures.append(f"keys {sorted(keys)} != {sorted(ref)}")
        for name, (st_dtype, shape, want) in ref.items():
            sl = f.get_slice(name)
            if sl.get_dtype() != st_dtype or tuple(sl.get_shape()) != shape:
                failures.append(f"{name}: {sl.get_dtype()}{sl.get_shape()} != {st_dtype}{list(shape)}")
                continue
            if st_dtype == "BF16":
                entry, raw = raw_entry(path, name)
                got = np.frombuffer(raw, dtype="<u2").reshape(shape)
                if not same_bits(got, want):
                    failures.append(f"{name}: bits {got} != {want}")
                bf16 = bf16_dtype()
                if bf16 is not None and not same_bits(f.get_tensor(name).view(np.uint16), want):
                    failures.append(f"{name}: via ml_dtypes")
                continue
            got = f.get_tensor(name)
            if not same_bits(got, want):
                failures.append(f"{name}: {got!r} != {want!r}")
    # load_file reads the whole file at once (a file without bf16, unless ml_dtypes is present).
    path2 = os.path.join(tmp, "from_kirzl_no_bf16.safetensors")
    subprocess.run([tool, "write", path2, "--no-bf16"], check=True)
    loaded = load_file(path2)
    for name, (_, _, want) in ref.items():
        if name == "bf16":
            if name in loaded:
                failures.append("bf16 present in the --no-bf16 file")
            continue
        if name not in loaded or not same_bits(loaded[name], want):
            failures.append(f"load_file: {name}")
    return failures


def check_python_file(tool, tmp):
    """Python writes, kirzl reads."""
    import numpy as np
    from safetensors.numpy import save_file

    tensors = {}
    for name, (st_dtype, _, arr) in reference().items():
        if st_dtype == "BF16":
            bf16 = bf16_dtype()
            if bf16 is None:
                print("note: no ml_dtypes; Python's file has no bf16 tensor")
                continue
            arr = arr.view(bf16)
        tensors[name] = np.array(arr, order="C", copy=True)  # ascontiguousarray would make 0-d 1-d
    path = os.path.join(tmp, "from_python.safetensors")
    save_file(tensors, path, metadata={"writer": "python", **METADATA})
    r = subprocess.run([tool, "check", path], capture_output=True, text=True)
    print(r.stdout, end="")
    print(r.stderr, end="", file=sys.stderr)
    return [] if r.returncode == 0 else [f"safetensors_tool check exited {r.returncode}"]


def run(tool):
    with tempfile.TemporaryDirectory(prefix="kirzl_interop_") as tmp:
        failures = check_kirzl_file(tool, tmp) + check_python_file(tool, tmp)
    for f in failures:
        print("FAIL:", f)
    return failures


# ---- pytest entry points ----

def _tool_or_skip():
    import pytest

    reason = _imports()
    if reason:
        pytest.skip(f"safetensors interop needs numpy and safetensors: {reason}")
    tool = os.environ.get("KIRZL_SAFETENSORS_TOOL")
    if not tool:
        pytest.skip("set KIRZL_SAFETENSORS_TOOL to the safetensors_tool executable")
    return tool


def test_kirzl_file_reads_in_python(tmp_path):
    assert check_kirzl_file(_tool_or_skip(), str(tmp_path)) == []


def test_python_file_reads_in_kirzl(tmp_path):
    assert check_python_file(_tool_or_skip(), str(tmp_path)) == []


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} SAFETENSORS_TOOL", file=sys.stderr)
        return 2
    reason = _imports()
    if reason:
        print(f"SKIPPED: the safetensors interop test needs numpy and safetensors ({reason}); "
              "scripts/setup.sh installs them")
        return SKIP
    import safetensors

    print(f"safetensors {safetensors.__version__}")
    return 1 if run(argv[1]) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
