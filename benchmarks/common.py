"""Shared helpers for the benchmarks: machine peak (4096² matmul) and JSON output."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def matmul_peak_gflops(dtype: torch.dtype, n: int = 4096, reps: int = 3) -> float:
    """GFLOP/s of an n x n torch.mm. Without native bf16 units (CPU without AVX512-BF16/AMX) bf16 is
    emulated at ~1 GFLOP/s, so there it is measured at 1024² once instead of 4096² (minutes otherwise)."""
    from mri_cyclegan.runtime import cpu_has_bf16

    if dtype == torch.bfloat16 and not torch.cuda.is_available() and not cpu_has_bf16():
        n, reps = 1024, 1
    a = torch.randn(n, n).to(dtype)
    torch.mm(a, a)
    t = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, a)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from mri_cyclegan.runtime import cpu_has_bf16

    lscpu = {}
    try:
        import subprocess

        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU family", "Model", "Flags"):
                lscpu[k.strip()] = v.strip() if k.strip() != "Flags" else " ".join(f for f in v.split() if f.startswith(("avx", "amx")))
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu": cpu, "lscpu": lscpu, "threads": torch.get_num_threads(), "torch": torch.__version__, "native_bf16": cpu_has_bf16(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def results_path(name: str) -> Path:
    """Where ``--json NAME`` goes: a bare file name into ``benchmarks/results/``; a path with a folder as given
    (relative to the working directory), so a path copied from a README line or a shell completion works too."""
    p = Path(name)
    return RESULTS / p if p.parent == Path(".") else p


def write_json(name: str, payload) -> Path:
    path = results_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    return path


def random_slices(size: int, n: int = 8):
    """A SliceSet of n random size x size model-space slices (for speed benchmarks)."""
    from mri_cyclegan.data.dataset import SliceSet, Stack

    return SliceSet([Stack("random", (torch.rand(n, size, size) * 2 - 1).half(), list(range(n)))])
