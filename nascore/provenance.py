"""Provenance records: what produced a number (GUIDE.md, "Results").

Every table and every cached model carries one: git commit, torch version, device, data source,
profile, seed, wall time. :func:`collect` gathers the machine part; callers add the rest.
"""
from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import subprocess
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The checkout's HEAD commit (``+dirty`` if tracked files other than the outputs in ``book/`` and
    ``results/`` changed), or ``"unknown"``."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        # Executed chapters and result tables are this code's outputs, not its inputs: a book run that
        # rewrites them is still a run of the clean commit.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)book", ":(exclude)results"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}x{torch.get_num_threads()}threads"


#: CPU feature flags that change which kernels oneDNN/ATen pick (and so the floating-point results).
_ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
              "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile")
#: Packages whose versions can change numbers (kernels, JPEG decoding, statistics).
_PACKAGES = ("torch", "torchvision", "numpy", "pillow", "scipy", "statsmodels", "pandas", "matplotlib")


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict:
    """CPU model name and the ISA flags relevant to kernel selection (Linux ``/proc/cpuinfo``),
    plus the CPU capability torch dispatches to."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()
    return {"model": model, "isa_flags": [f for f in _ISA_FLAGS if f in flags], "torch_cpu_capability": capability}


@functools.lru_cache(maxsize=1)
def package_versions() -> dict:
    """Installed versions of the packages that can change numbers."""
    from importlib import metadata

    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def collect(device: torch.device | str = "cpu", **extra) -> dict:
    """Machine/software provenance plus any ``extra`` fields (profile, seed, data source, ...)."""
    record = {
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "packages": package_versions(),
        "device": device_name(device),
        "cpu": cpu_info(),
        "host_cpus": os.cpu_count(),
        "utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    record.update(extra)
    return record


#: Instruction-set settings an older or other CPU imposes (README, "Determinism"): the environment caps
#: ATen (``ATEN_CPU_CAPABILITY``) and oneDNN (``ONEDNN_MAX_CPU_ISA``) read at start-up. Used by the
#: portable-test sweep, the cross-ISA benchmark, the work-around benchmark and its tests.
ISA_CAP_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")
ISA_SETTINGS = {
    "uncapped": {},
    "ATen AVX2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "oneDNN AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "oneDNN AVX-512, no AMX": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"},
}


def env_with_isa_caps(caps: dict, base: dict | None = None) -> dict:
    """``base`` (default ``os.environ``) with exactly ``caps``'s ISA variables: any cap set in ``base``
    is dropped first, so a subprocess started with it runs the setting asked for."""
    base = os.environ if base is None else base
    return {**{k: v for k, v in base.items() if k not in ISA_CAP_VARIABLES}, **caps}
