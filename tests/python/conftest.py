"""Shared skips for tests/python: the package loads from the source tree (PYTHONPATH=python,
GDNGRAPH_LIBRARY=the build tree's libgdngraph.so, as the CTest `python` test sets) or from
an installed wheel. Torch tests skip without torch, GPU tests without a CUDA device."""
import importlib.util
import os
import shutil
import subprocess

import pytest

HAVE_TORCH = importlib.util.find_spec("torch") is not None


def _cuda():
    if not HAVE_TORCH:
        return False
    import torch
    return torch.cuda.is_available()


HAVE_CUDA = _cuda()

needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
needs_cuda = pytest.mark.skipif(not HAVE_CUDA, reason="no CUDA device (or torch without CUDA)")


def needs_forward():
    """Skips when the library lacks gdn_forward (built before graph/forward.c landed)."""
    import gdngraph
    if not gdngraph.has_forward():
        pytest.skip(f"{gdngraph.library_path} has no gdn_forward (graph/forward.c not in this build)")


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cuda_include():
    cands = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        cands.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    for c in filter(None, cands):
        inc = os.path.join(c, "include")
        if os.path.exists(os.path.join(inc, "cuda_runtime_api.h")):
            return inc
    return None


@pytest.fixture(scope="session")
def probe(tmp_path_factory):
    """sizeof / offsetof of the C structs: {"struct.field": offset, "struct.sizeof": n}."""
    exe = os.environ.get("GDN_LAYOUT_PROBE")
    if not exe:
        cc, inc = shutil.which("cc") or shutil.which("gcc"), _cuda_include()
        if not cc or not inc:
            pytest.skip("no C compiler or CUDA headers to build layout_probe.c (CTest builds it)")
        exe = str(tmp_path_factory.mktemp("probe") / "layout_probe")
        src = os.path.join(ROOT, "tests", "python", "layout_probe.c")
        subprocess.check_call([cc, "-std=c11", "-I", os.path.join(ROOT, "include"), "-I", inc, src, "-o", exe])
    out = {}
    for line in subprocess.check_output([exe], text=True).splitlines():
        key, value = line.split()
        out[key] = int(value)
    return out


def check_layout(probe, cname, mirror):
    """A ctypes mirror has the C struct's size and its fields, in order, at its offsets."""
    import ctypes
    assert ctypes.sizeof(mirror) == probe[f"{cname}.sizeof"], cname
    fields = [f for f, _ in mirror._fields_]
    probed = [k.split(".", 1)[1] for k in probe if k.startswith(cname + ".") and not k.endswith(".sizeof")]
    assert fields == probed, f"{cname}: ctypes fields {fields} vs C fields {probed}"
    for f in fields:
        assert getattr(mirror, f).offset == probe[f"{cname}.{f}"], f"{cname}.{f}"
