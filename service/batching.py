"""Continuous batching inside the API process: the texts of concurrent requests share one model call.

Requests queue their texts; one drain task at a time takes everything queued (up to `max_texts`), runs the
model in a worker thread (onnxruntime and torch release the GIL, so the event loop keeps parsing the next
requests meanwhile) and hands each request its rows. There is no waiting timer: a request that arrives
when the model is idle runs at once, alone; under load, requests batch themselves while the previous
batch computes. Measured on 2 cores at concurrency 16 (BENCHMARKS.md): more requests/s than one model
call per request on the event loop, where the model took 42% of the worker's time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np


class ContinuousBatcher:
    def __init__(self, predict: Callable[[Sequence[str]], np.ndarray], max_texts: int = 256):
        self.predict, self.max_texts = predict, max_texts
        self.queue: deque[tuple[list[str], asyncio.Future]] = deque()
        self.draining = False

    async def __call__(self, texts: list[str]) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        self.queue.append((texts, future))
        if not self.draining:
            self.draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        from anyio import to_thread

        try:
            while self.queue:
                batch = self._take()
                texts = [text for request_texts, _ in batch for text in request_texts]
                try:
                    probs = await to_thread.run_sync(self.predict, texts)
                except Exception as exc:  # every waiting request hears of it, none hangs
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                start = 0
                for request_texts, future in batch:
                    if not future.done():  # a client that went away cancelled its future
                        future.set_result(probs[start : start + len(request_texts)])
                    start += len(request_texts)
        finally:
            self.draining = False

    def _take(self) -> list[tuple[list[str], asyncio.Future]]:
        """Queued requests in arrival order, up to max_texts texts (always at least one request)."""
        batch = [self.queue.popleft()]
        size = len(batch[0][0])
        while self.queue and size + len(self.queue[0][0]) <= self.max_texts:
            texts, future = self.queue.popleft()
            batch.append((texts, future))
            size += len(texts)
        return batch
