"""A build step of both images: serve the bento once, so Python writes bytecode for exactly the
modules that serving imports, then stop.

Why: the venv is root-owned, so the service cannot cache bytecode at run time, and compiling every
installed module (uv --compile-bytecode) ships bytecode for test helpers, CLIs and code paths that
never run: 38 MB in the CPU image. Runs inside `docker build` (stdlib only, the bento's own paths).

A model-less image (LANGDETECT_MODEL_DIR set, nothing fetched yet) cannot answer a request at build
time: its serve stops where the model would load, after the server stack is imported, and the model
stack and the fetcher are then imported on their own.
"""
from __future__ import annotations

import importlib.util
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


def model_less() -> bool:
    model_dir = os.environ.get("LANGDETECT_MODEL_DIR")
    return bool(model_dir) and not os.path.exists(os.path.join(model_dir, "bundle.json"))


def warm_imports_only(port: int, env: dict[str, str]) -> None:
    server = subprocess.run(["bentoml", "serve", os.environ["BENTO_PATH"], "--host", "127.0.0.1",
                             "--port", str(port)], env=env, timeout=READY_TIMEOUT_S, capture_output=True)
    if b"bundle.json" not in server.stdout + server.stderr:
        sys.exit("warm_bytecode: the model-less serve did not stop at the missing bundle:\n"
                 + (server.stdout + server.stderr).decode(errors="replace")[-3000:])
    modules = ["onnxruntime", "tokenizers", "numpy", "service.inference", "langdetect_ops.fetch"]
    if importlib.util.find_spec("torch"):  # the GPU image
        modules += ["torch", "transformers", "safetensors"]
    code = "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]"
    subprocess.run([sys.executable, "-c", code, *modules], env=env, cwd=os.path.join(os.environ["BENTO_PATH"], "src"),
                   check=True)


def main() -> None:
    port = free_port()
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true"}
    if model_less():
        return warm_imports_only(port, env)
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
