"""In-process texts/second, on one thread and on all cores.

Ours set their thread count (onnxruntime intra_op_num_threads, torch.set_num_threads); among the
peers only lingua has a parallel API, so the others get no all-cores number (they would need one
process per core, which is a deployment choice, not the library's speed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from bench.detectors import Detector


def texts_per_second(predict: Callable[[list[str]], object], texts: list[str], repeats: int = 2) -> float:
    """Best of `repeats` passes over `texts`, after a small warm-up."""
    predict(texts[:64])
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        predict(texts)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def measure(detector: Detector, texts: list[str], cores: int = os.cpu_count() or 1, repeats: int = 2) -> dict:
    single = texts_per_second(detector.load(1), texts, repeats)
    all_cores = texts_per_second(detector.load(cores), texts, repeats) if detector.multithreaded and cores > 1 else None
    return {
        "single_thread": single,
        "all_cores": all_cores,
        "cores": cores,
        "note": "" if detector.multithreaded else "single-threaded API",
    }
