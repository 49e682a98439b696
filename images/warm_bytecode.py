"""A build step of both images: serve the bento once, so Python writes bytecode for exactly the
modules that serving imports, then stop.

Why: the venv is root-owned, so the service cannot cache bytecode at run time, and compiling every
installed module (uv --compile-bytecode) ships bytecode for test helpers, CLIs and code paths that
never run: 38 MB in the CPU image. Runs inside `docker build` (stdlib only, the bento's own paths).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

READY_TIMEOUT_S = 300
SAMPLE = {"text": "Ceci est une phrase en français, pour charger tout le chemin d'une requête."}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"warm_bytecode: the bento exited with {server.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    sys.exit(f"warm_bytecode: not ready after {READY_TIMEOUT_S} s")


def post(url: str, payload: dict) -> None:
    """One real request, so modules imported lazily on the request path are compiled too."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def main() -> None:
    port = free_port()
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true"}
    server = subprocess.Popen(["bentoml", "serve", os.environ["BENTO_PATH"], "--host", "127.0.0.1",
                               "--port", str(port)], env=env, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, server)
        post(f"{url}/detect", SAMPLE)
        post(f"{url}/detect_batch", {"texts": [SAMPLE["text"]] * 2})
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
