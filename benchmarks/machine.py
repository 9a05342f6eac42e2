"""What machine a benchmark ran on, said the same way by every benchmark: speed figures hold only for the CPU they
were measured on, so each result names its model, family/model numbers, cores and the SIMD features that decide
which kernels run (AVX2, AVX-512, VNNI, bf16); and how much memory a benchmark's process used at its peak."""

from __future__ import annotations

import os
import platform
from pathlib import Path

#: the CPU flags that change which kernels run (and so which speed figures carry over)
RELEVANT_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_name() -> str:
    """The CPU's model name, e.g. "AMD EPYC"."""
    return _cpuinfo().get("model name") or platform.processor() or "unknown"


def describe_cpu() -> str:
    """Model name, family/model, cores and the relevant SIMD flags, e.g.
    "AMD EPYC (family 25 model 17; 2 cores; avx2 fma avx512f avx512_vnni avx512_bf16)"."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    present = " ".join(f for f in RELEVANT_FLAGS if f in flags) or "no AVX2"
    family = f"family {info['cpu family']} model {info['model']}; " if "cpu family" in info and "model" in info else ""
    return f"{cpu_name()} ({family}{os.cpu_count() or 1} cores; {present})"


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets this process's VmHWM (peak resident set), e.g. in a spawned child that
    starts with its parent's high-water mark."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM) in MB since start or the last `reset_peak_rss`; NaN off Linux."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")
