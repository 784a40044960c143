"""What `pip install .` builds, checked by configuring (not building) the project the way
scikit-build-core does, with the CMake defines of pyproject.toml:

- the wheel may be copied to another machine, so nothing in it is compiled for the building
  machine's CPU (no -march=native or the like, whatever the compiler supports);
- with the CUDA toolkit installed, the configure step says in one line how to get the CUDA backend
  (the wheel itself builds without CUDA, see pyproject.toml), and says nothing without it.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = pytest.importorskip("tomli")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CUDA_HINT = ("kirzl: CUDA toolkit found but this wheel builds without CUDA; to build the CUDA backend: "
             "pip install . -C cmake.define.KIRZL_WITH_CUDA=ON")


def _pybind11_3_or_skip():
    pybind11 = pytest.importorskip("pybind11")
    if int(pybind11.__version__.split(".")[0]) < 3:
        pytest.skip(f"pybind11 {pybind11.__version__} < 3: the Python module cannot be configured")
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not on PATH")


def wheel_settings():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["tool"]["scikit-build"]


def configure_like_the_wheel(build_dir, env=None, extra=()):
    """Configures ROOT into build_dir as scikit-build-core would; returns the configure output."""
    settings = wheel_settings()
    defines = settings["cmake"]["define"]
    args = ["cmake", "-S", ROOT, "-B", str(build_dir), f"-DCMAKE_BUILD_TYPE={settings['cmake']['build-type']}",
            "-DSKBUILD=2", f"-DPython_EXECUTABLE={sys.executable}", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"]
    if shutil.which("ninja"):
        args += ["-G", "Ninja"]
    args += [f"-D{k}={v}" for k, v in defines.items()]
    args += list(extra)
    r = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, r.stdout
    return r.stdout


def env_with_fake_nvcc(tmp_path):
    """os.environ with a directory holding an executable `nvcc` first on PATH: what the configure
    step looks for to decide that the CUDA toolkit is installed."""
    bin_dir = tmp_path / "fake-cuda-bin"
    bin_dir.mkdir()
    nvcc = bin_dir / "nvcc"
    nvcc.write_text("#!/bin/sh\nexit 1\n")
    nvcc.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_wheel_settings_ask_for_a_portable_build():
    defines = wheel_settings()["cmake"]["define"]
    assert defines.get("KIRZL_NATIVE_ARCH") == "OFF"


def test_the_wheel_compiles_nothing_for_the_building_machine(tmp_path):
    _pybind11_3_or_skip()
    out = configure_like_the_wheel(tmp_path / "build", env=env_with_fake_nvcc(tmp_path))
    with open(tmp_path / "build" / "compile_commands.json") as f:
        commands = json.load(f)
    files = [os.path.relpath(c["file"], ROOT) for c in commands]
    # Not vacuous: the library and the Python module are both compiled.
    assert any(f.startswith("src/") for f in files), files
    assert any(f.startswith("python/src/") for f in files), files
    for c in commands:
        cmd = c.get("command") or " ".join(c["arguments"])
        host_specific = [a for a in cmd.split() if a.endswith("=native")]
        assert not host_specific, f"{c['file']} is compiled with {host_specific}: {cmd}"
    # The CUDA toolkit was "found" (the fake nvcc): the one-line hint is printed as it is.
    assert CUDA_HINT in out.splitlines(), out


def test_no_cuda_hint_without_the_toolkit(tmp_path):
    _pybind11_3_or_skip()
    # Hide every nvcc this machine has from the configure step.
    nvcc_dirs = {"/usr/local/cuda/bin"}
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            nvcc_dirs.add(os.path.join(os.environ[var], "bin"))
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if d and os.path.exists(os.path.join(d, "nvcc")):
            nvcc_dirs.add(d)
    out = configure_like_the_wheel(tmp_path / "build", extra=[f"-DCMAKE_IGNORE_PATH={';'.join(sorted(nvcc_dirs))}"])
    assert "CUDA toolkit found" not in out, out
