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


def wait_http(url: str, alive: Callable[[], bool], timeout: float, ok: Callable[[int], bool] = lambda s: s == 200,
              what: str = "server") -> float:
    """Seconds until GET `url` answers a status that `ok` accepts; RuntimeError if `alive()` turns false,
    TimeoutError after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if ok(response.status):
                    return time.monotonic() - started
        except urllib.error.HTTPError as exc:
            if ok(exc.code):
                return time.monotonic() - started
        except (urllib.error.URLError, OSError):
            pass
        if not alive():
            raise RuntimeError(f"the {what} behind {url} exited before it answered")
        time.sleep(0.25)
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
