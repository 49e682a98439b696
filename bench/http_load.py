"""A bounded HTTP load generator for the served API (loopback only).

python -m bench.http_load --url http://127.0.0.1:3000 --concurrency 1 16 --requests 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import httpx
import numpy as np

TEXTS = [
    "Hola, ¿cómo estás hoy?",
    "Guten Morgen zusammen, wie geht's?",
    "Bom dia a todos, tudo bem?",
    "Καλημέρα σε όλους",
    "Доброе утро всем",
    "こんにちは、元気ですか",
    "早上好，大家好",
    "Good morning everyone",
    "Bonjour à tous",
    "Buongiorno a tutti",
    "Goedemorgen allemaal",
    "Dzień dobry wszystkim",
    "Günaydın herkese",
    "Chào buổi sáng mọi người",
    "सुप्रभात सभी को",
    "صباح الخير للجميع",
    "سب کو صبح بخیر",
    "สวัสดีตอนเช้าทุกคน",
    "Habari za asubuhi kila mtu",
    "Добро утро на всички",
]


@dataclass
class LoadResult:
    route: str
    concurrency: int
    batch: int
    requests: int
    errors: int
    seconds: float
    rps: float
    texts_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    error_kinds: dict[str, int] = field(default_factory=dict)  # HTTP status or exception name -> count


def percentiles_ms(latencies_s: list[float], quantiles: tuple[float, ...] = (50, 95, 99)) -> list[float]:
    """Latency percentiles in milliseconds (linear interpolation); NaN when nothing was measured."""
    if not latencies_s:
        return [float("nan")] * len(quantiles)
    return [float(q) for q in np.percentile(np.asarray(latencies_s) * 1000, quantiles)]


async def run_load(
    url: str,
    route: str,
    concurrency: int,
    requests: int,
    batch: int = 1,
    max_seconds: float = 120,
    backend: str = "onnx",
    texts: list[str] = TEXTS,
    transport: httpx.AsyncBaseTransport | None = None,
) -> LoadResult:
    """`requests` calls spread over `concurrency` clients; stops early after `max_seconds`."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    counter = iter(range(requests))
    deadline = time.perf_counter() + max_seconds

    def body(i: int) -> dict:
        if route == "/detect":
            return {"text": texts[i % len(texts)], "backend": backend}
        return {"texts": [texts[(i * batch + k) % len(texts)] for k in range(batch)], "backend": backend}

    async def client_loop(client: httpx.AsyncClient) -> None:
        for i in counter:
            if time.perf_counter() > deadline:
                return
            start = time.perf_counter()
            try:
                response = await client.post(route, json=body(i))
                failure = None if response.status_code == 200 else str(response.status_code)
            except httpx.HTTPError as exc:
                failure = type(exc).__name__
            latencies.append(time.perf_counter() - start)
            if failure:
                errors[failure] += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits, transport=transport) as client:
        await client.post(route, json=body(0))  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    done = len(latencies)
    answered = done - errors.total()  # failed requests are not throughput
    return LoadResult(
        route,
        concurrency,
        batch,
        done,
        errors.total(),
        seconds,
        answered / seconds,
        answered * batch / seconds,
        *percentiles_ms(latencies),
        dict(errors),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--backend", default="onnx")
    args = parser.parse_args()
    results = [
        asyncio.run(run_load(args.url, "/detect", c, args.requests, backend=args.backend)) for c in args.concurrency
    ]
    results += [
        asyncio.run(run_load(args.url, "/detect_batch", 4, max(20, args.requests // b), batch=b, backend=args.backend))
        for b in args.batch_sizes
    ]
    for result in results:
        print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
