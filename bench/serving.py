"""Serving numbers on loopback: `bentoml serve` of the full service (int8 ONNX and torch in the API process,
no CUDA here), and the CPU service's design choices (workers, batching) measured side by side.

Load comes from bench.http_load (ours, bounded in requests and seconds) and from `wrk -t1` (bench/wrk.py):
/detect at several concurrencies, /detect_batch at several batch sizes, and the memory of the serving
process tree while it runs. Servers get a free loopback port, are waited on through /readyz, and are
always killed with their process group.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.http_load import run_load
from langdetect_ops.processes import BentoServer

FULL_SERVICE = "service.service:LanguageDetector"
CPU_SERVICE = "service.cpu_service:LanguageDetectorCPU"
MB = 1e6
# The CPU service's design, chosen by these measurements (BENCHMARKS.md): the first one is the default.
DESIGNS = {
    "1 worker, continuous batching (default)": {},
    "1 worker, one model call per request": {"LANGDETECT_BATCHING": "0"},
    "2 workers, continuous batching": {"LANGDETECT_WORKERS": "2"},
}


@dataclass(frozen=True)
class LoadPlan:
    detect_requests: int  # per concurrency level
    batch_texts: int  # texts per batch size: at least `min_batch_calls`, at most `detect_requests` calls
    max_seconds: float  # per run: the bound on wall time
    wrk_seconds: float = 10  # per wrk run
    concurrencies: tuple[int, ...] = (1, 4, 16, 64)
    wrk_concurrencies: tuple[int, ...] = (1, 16, 64)
    batch_sizes: tuple[int, ...] = (1, 16, 64, 256)
    batch_concurrency: int = 2
    min_batch_calls: int = 20
    # The torch runtime (fp32 on CPU here) against int8 ONNX: a subset of the same runs.
    torch_concurrencies: tuple[int, ...] = (1, 16)
    torch_batch_sizes: tuple[int, ...] = (64,)


def niceness(pid: int) -> int | None:
    """A server that runs at lower priority than the load generator (or other jobs) answers slower."""
    import psutil

    try:
        return psutil.Process(pid).nice()
    except psutil.NoSuchProcess:
        return None


class RssSampler:
    """Samples the serving tree's RSS in a thread: the first sample is the idle footprint, the max the peak."""

    def __init__(self, rss: Callable[[], int], every: float = 0.5):
        self.rss, self.every = rss, every
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.rss())
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self.samples.append(self.rss())
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        return {"rss_idle_mb": self.samples[0] / MB, "rss_peak_mb": max(self.samples) / MB}


def load_suite(
    url: str,
    texts: list[str],
    plan: LoadPlan,
    rss: Callable[[], int],
    backends: tuple[str, ...] = ("onnx",),
    with_wrk: bool = True,
) -> dict:
    """Every run of the plan against one server (wrk first, then ours), with its memory while under load."""
    from bench.wrk import missing

    runs, wrk_runs = [], []
    with RssSampler(rss) as memory:
        if with_wrk and not missing():
            wrk_runs = wrk_suite(url, texts, plan.wrk_concurrencies, plan.wrk_seconds)
        for backend in backends:
            torch = backend == "torch"
            for concurrency in plan.torch_concurrencies if torch else plan.concurrencies:
                runs.append(_run(url, "/detect", concurrency, plan.detect_requests, 1, plan, backend, texts))
            for batch in plan.torch_batch_sizes if torch else plan.batch_sizes:
                calls = min(plan.detect_requests, max(plan.min_batch_calls, plan.batch_texts // batch))
                runs.append(_run(url, "/detect_batch", plan.batch_concurrency, calls, batch, plan, backend, texts))
    return {"runs": runs, "wrk": wrk_runs or {"reason": missing() or "not run"}, **memory.summary()}


def wrk_suite(url: str, texts: list[str], concurrencies: tuple[int, ...], seconds: float) -> list[dict]:
    from bench.wrk import run_wrk

    runs = []
    for concurrency in concurrencies:
        run = run_wrk(url, concurrency, seconds, texts)
        print(
            f"  wrk /detect c={concurrency}: {run['rps']:,.0f} req/s, p50 {run['p50_ms']:.1f} ms, "
            f"p99 {run['p99_ms']:.1f} ms, {run['errors']} errors",
            flush=True,
        )
        runs.append(run)
    return runs


def _run(
    url: str, route: str, concurrency: int, requests: int, batch: int, plan: LoadPlan, backend: str, texts: list[str]
) -> dict:
    result = asyncio.run(
        run_load(
            url, route, concurrency, requests, batch=batch, max_seconds=plan.max_seconds, backend=backend, texts=texts
        )
    )
    print(
        f"  {backend} {route} c={concurrency} batch={batch}: {result.rps:,.0f} req/s, "
        f"{result.texts_per_s:,.0f} texts/s, p99 {result.p99_ms:,.0f} ms, {result.errors} errors",
        flush=True,
    )
    return {"backend": backend, **asdict(result)}


def serving_env(store_tags: dict[str, str], **extra: str) -> dict[str, str]:
    """The benchmarked model's store tags, whatever is pinned; no CUDA (CI machines have none)."""
    return {
        **os.environ,
        "LANGDETECT_ONNX_MODEL": store_tags["onnx"],
        "LANGDETECT_TORCH_MODEL": store_tags["torch"],
        "CUDA_VISIBLE_DEVICES": "",
        "BENTOML_DO_NOT_TRACK": "true",
        **extra,
    }


def measure_bentoml(store_tags: dict[str, str], texts: list[str], plan: LoadPlan, log_dir: Path) -> dict:
    """The GPU image's service (int8 ONNX and torch in one process) on CPU, from BENTOML_HOME."""
    with BentoServer(FULL_SERVICE, serving_env(store_tags), log_dir / "bentoml-serve.log") as server:
        ready = server.wait_ready()
        print(f"  bentoml serve ready in {ready:.1f} s on {server.url}", flush=True)
        return {
            "target": FULL_SERVICE,
            "ready_s": ready,
            "niceness": niceness(server.proc.pid),
            **load_suite(server.url, texts, plan, server.rss, backends=("onnx", "torch"), with_wrk=False),
        }


def measure_designs(store_tags: dict[str, str], texts: list[str], plan: LoadPlan, log_dir: Path) -> list[dict]:
    """The CPU service under wrk in each design of DESIGNS: what chose the default."""
    variants = []
    for i, (name, env) in enumerate(DESIGNS.items()):
        with BentoServer(CPU_SERVICE, serving_env(store_tags, **env), log_dir / f"design-{i}.log") as server:
            ready = server.wait_ready()
            print(f"  design: {name}", flush=True)
            with RssSampler(server.rss) as memory:
                runs = wrk_suite(server.url, texts, plan.wrk_concurrencies, plan.wrk_seconds)
            variants.append({"name": name, "env": env, "ready_s": ready, "wrk": runs, **memory.summary()})
    return variants
