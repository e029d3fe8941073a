"""Description of the machine a benchmark ran on, saved with every result."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def describe() -> dict:
    """CPU model, cores usable by this process, memory, Python, torch, load average, busy processes."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        torch_version = None
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch_version,
        "load_average": os.getloadavg(),
        "busy_processes": busy_processes(),
    }


def busy_processes() -> list[str]:
    """Other processes using more than 10 % CPU right now (one ``top`` snapshot): are timings contended?"""
    try:
        out = subprocess.run(["top", "-bn1"], capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return []
    rows = [line.split() for line in out[7:] if line.strip()]
    return [f"{r[-1]} {r[8]}%" for r in rows if len(r) > 11 and _float(r[8]) > 10.0 and r[0] != str(os.getpid())]


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0
