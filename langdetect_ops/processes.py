"""Process plumbing shared by the stages, the bench and the tests: free loopback ports, waiting for an
HTTP endpoint, stopping a process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable


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
