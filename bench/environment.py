"""What the numbers were measured on: the machine, how busy it was, and the versions of everything."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

STACK = ("torch", "onnxruntime", "bentoml", "mlflow", "transformers", "tokenizers", "numpy")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    import psutil

    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "ram_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "python": platform.python_version(),
        # A bench under other load, or at low priority, reads low: say so beside the numbers.
        "load_average_1m": os.getloadavg()[0],
        "niceness": os.nice(0),
    }


def versions(packages: tuple[str, ...] | list[str]) -> dict[str, str]:
    found = {}
    for package in packages:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
