"""Process plumbing shared by the stages, the bench and the tests: free loopback ports, waiting for an
HTTP endpoint, stopping a process group, the memory of a process tree, and `bentoml serve` run as such a
process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(
    url: str,
    alive: Callable[[], bool],
    timeout: float,
    what: str = "server",
    started: float | None = None,
    alive_every: int = 1,
    poll_s: float = 0.25,
) -> float:
    """Seconds from `started` (default: now) until GET `url` answers 200; RuntimeError if `alive()` turns
    false (asked every `alive_every` polls: it may be a process of its own, e.g. `docker inspect`),
    TimeoutError after `timeout`."""
    started = time.monotonic() if started is None else started
    polls = 0
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, OSError):  # refused, reset, or an HTTP error status
            pass
        if polls % alive_every == 0 and not alive():
            raise RuntimeError(f"the {what} behind {url} exited before it answered")
        polls += 1
        time.sleep(poll_s)
    raise TimeoutError(f"the {what} behind {url} did not answer within {timeout:.0f} s")


def stop_group(proc: subprocess.Popen, grace_s: float = 20) -> None:
    """SIGTERM to the process group (started with start_new_session), SIGKILL after `grace_s`."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def wait_readyz(url: str, alive: Callable[[], bool], timeout: float, started: float | None = None) -> float:
    """Seconds from `started` (default: now) until GET /readyz answers 200. alive() may start a process
    (`docker inspect`): once a second, not on every poll of the cold start being timed."""
    return wait_http(f"{url}/readyz", alive, timeout, started=started, alive_every=5, poll_s=0.2)


def process_tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes (shared pages counted per process)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for an error message."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class BentoServer:
    """`bentoml serve TARGET` in its own process group on a free loopback port; a context manager."""

    def __init__(self, target: str, env: dict[str, str], log_path: Path):
        self.target, self.port = target, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.started = time.monotonic()
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bentoml", "serve", target, "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 180) -> float:
        try:
            return wait_readyz(self.url, lambda: self.proc.poll() is None, timeout, self.started)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(
                f"bentoml serve {self.target}: {exc}; log {self.log_path}:\n{tail(self.log_path, 15)}"
            ) from exc

    def rss(self) -> int:
        return process_tree_rss(self.proc.pid)

    def __enter__(self) -> BentoServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        stop_group(self.proc)
