"""Faults a replica must survive, measured on loopback: a killed worker and a SIGTERM under load.

- recovery: `kill -9` of a worker, then seconds until /detect answers 200 again;
- drain: clients that open a new connection per request (as behind a load balancer) while the server
  is told to stop. Each request ends as `answered` (200), `refused` (the connection was never accepted:
  the server had stopped listening), `failed` (an HTTP error) or `lost` (the connection was accepted, the
  request sent, and no answer came). A clean drain loses none.

Used by the tests (loose bounds) and by `langdetect bench` (the numbers).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

BODY = json.dumps({"text": "Une phrase en français pour vérifier que rien ne se perd."}).encode()


@dataclass
class DrainResult:
    concurrency: int
    answered: int
    refused: int
    failed: int
    lost: int
    stop_to_exit_s: float | None  # from the stop signal until the server process ended
    exit_code: int | None
    lost_kinds: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def one_request(host: str, port: int, timeout: float = 30) -> str:
    """One POST /detect on a fresh connection: 'answered', 'refused', 'failed:<status>' or 'lost:<why>'."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"refused:{type(exc).__name__}"
    try:
        with sock:
            request = (
                f"POST /detect HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n"
            ).encode() + BODY
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    except OSError as exc:
        return f"lost:{type(exc).__name__}"
    if not answer:
        return "lost:closed without an answer"
    status = answer.split(b" ", 2)[1:2]
    return "answered" if status == [b"200"] else f"failed:{status[0].decode() if status else '?'}"


def drain_under_load(
    url: str,
    stop: Callable[[], None],
    exited: Callable[[], int | None],
    concurrency: int = 16,
    load_before_s: float = 1.5,
    timeout_s: float = 60,
) -> DrainResult:
    """Clients hammer /detect (a connection per request); after `load_before_s`, `stop()` (SIGTERM, docker
    stop...); clients go on until the server refuses them; then waits for `exited()` to give an exit code."""
    parts = urlsplit(url)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + timeout_s

    def client() -> None:
        while time.monotonic() < deadline:
            outcome = one_request(parts.hostname, parts.port)
            with lock:
                outcomes[outcome] += 1
            if outcome.startswith("refused"):
                return

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    time.sleep(load_before_s)
    stopped = time.monotonic()
    stop()
    code = None
    while time.monotonic() < deadline and (code := exited()) is None:
        time.sleep(0.05)
    stop_to_exit = time.monotonic() - stopped if code is not None else None
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    lost = {k.split(":", 1)[1]: v for k, v in outcomes.items() if k.startswith("lost:")}
    return DrainResult(
        concurrency,
        outcomes["answered"],
        sum(v for k, v in outcomes.items() if k.startswith("refused")),
        sum(v for k, v in outcomes.items() if k.startswith("failed")),
        sum(lost.values()),
        stop_to_exit,
        code,
        lost,
    )


def recovery_after_kill(url: str, worker_pid: Callable[[], int], timeout_s: float = 60) -> dict:
    """`kill -9` of the worker that serves, then seconds until /detect answers 200 again (polled every 50 ms)."""
    parts = urlsplit(url)
    victim = worker_pid()
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    while time.monotonic() - killed < timeout_s:
        if one_request(parts.hostname, parts.port, timeout=5) == "answered":
            return {"killed_pid": victim, "recovery_s": time.monotonic() - killed}
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f} s of kill -9 of worker {victim}")


def worker_pids(server_pid: int) -> list[int]:
    """The serving workers under a `bentoml serve` arbiter (its Python children), oldest first."""
    import psutil

    try:
        children = psutil.Process(server_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    workers = [c for c in children if "_bentoml_impl.worker" in " ".join(_cmdline(c))]
    return [c.pid for c in sorted(workers, key=lambda c: c.create_time())]


def _cmdline(process) -> list[str]:
    import psutil

    try:
        return process.cmdline()
    except psutil.Error:
        return []
