"""A build step of every image: serve the bento once, so Python writes bytecode for exactly the
modules that serving imports, then stop; with --finalize, turn the venv into what ships.

Why: the venv is root-owned, so the service cannot cache bytecode at run time, and compiling every
installed module (uv --compile-bytecode) ships bytecode for test helpers, CLIs and code paths that
never run: 38 MB in the CPU image. Runs inside `docker build` (stdlib only, the bento's own paths).

A model-less image (LANGDETECT_MODEL_DIR set, nothing fetched yet) cannot answer a request at build
time: its serve stops where the model would load, after the server stack is imported, and the model
stack and the fetcher are then imported on their own.

--finalize VENV (the `runtime-venv` stage of images/bento.Dockerfile.j2): in an image without torch, the
modules serving imported ship as bytecode only (`mod.pyc` where `mod.py` was, which Python loads
without the source; the rest keep their sources); the standard library's new bytecode is copied to
--stdlib-out for a layer of its own; every timestamp is fixed, so that the same packages always give
the same layer, whatever model the bento carries.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

READY_TIMEOUT_S = 300
FIXED_MTIME = 315532800  # 1980-01-01, the earliest time a zip (wheel) can hold
STDLIB = f"/usr/lib/python{sys.version_info[0]}.{sys.version_info[1]}"
TAG = sys.implementation.cache_tag  # cpython-311
# Sources that serving never imported (the warm-up proved it) and that nothing can ask for by accident:
# Pygments' 500 lexers (rich would highlight a traceback with one; it falls back to plain text), and
# numpy's SIMD test module.
DROP_UNIMPORTED = ("pygments/lexers/*.py", "numpy/_core/_simd.*.so")
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
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def model_less() -> bool:
    model_dir = os.environ.get("LANGDETECT_MODEL_DIR")
    return bool(model_dir) and not os.path.exists(os.path.join(model_dir, "bundle.json"))


def warm_imports_only(port: int, env: dict[str, str]) -> None:
    server = subprocess.run(
        ["bentoml", "serve", os.environ["BENTO_PATH"], "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        timeout=READY_TIMEOUT_S,
        capture_output=True,
    )
    if b"bundle.json" not in server.stdout + server.stderr:
        sys.exit(
            "warm_bytecode: the model-less serve did not stop at the missing bundle:\n"
            + (server.stdout + server.stderr).decode(errors="replace")[-3000:]
        )
    modules = ["onnxruntime", "tokenizers", "numpy", "service.inference", "langdetect_ops.fetch"]
    if importlib.util.find_spec("torch"):  # the GPU image
        modules += ["torch", "transformers", "safetensors"]
    code = "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]"
    subprocess.run(
        [sys.executable, "-c", code, *modules], env=env, cwd=os.path.join(os.environ["BENTO_PATH"], "src"), check=True
    )


def fix_mtimes(tree: str) -> None:
    for directory, dirs, files in os.walk(tree):
        for name in [*files, *dirs]:
            os.utime(os.path.join(directory, name), (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
    os.utime(tree, (FIXED_MTIME, FIXED_MTIME))


def site_packages(venv: str) -> str:
    return os.path.join(venv, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")


def bytecode_only(site: str) -> int:
    """Moves each `__pycache__/mod.TAG.pyc` over its `mod.py`; returns the bytes of source removed."""
    removed = 0
    for directory, _, files in list(os.walk(site)):
        if os.path.basename(directory) != "__pycache__":
            continue
        package = os.path.dirname(directory)
        for name in files:
            module, _, suffix = name.partition(f".{TAG}.")
            source = os.path.join(package, module + ".py")
            if suffix == "pyc" and os.path.isfile(source):
                removed += os.path.getsize(source)
                os.replace(os.path.join(directory, name), os.path.join(package, module + ".pyc"))
                os.unlink(source)
        if not os.listdir(directory):
            os.rmdir(directory)
    return removed


def copy_stdlib_bytecode(out: str) -> None:
    for directory, _, files in os.walk(STDLIB):
        if os.path.basename(directory) == "__pycache__":
            target = out + directory
            os.makedirs(target, exist_ok=True)
            for name in files:
                shutil.copy2(os.path.join(directory, name), os.path.join(target, name))


def finalize(venv: str, stdlib_out: str) -> None:
    site = site_packages(venv)
    if not os.path.isdir(os.path.join(site, "torch")):  # the GPU image keeps sources (torch, transformers
        removed = bytecode_only(site)  # read their own with inspect)
        print(f"warm_bytecode: {removed / 1e6:.1f} MB of sources replaced by their bytecode")
        dropped = 0
        for pattern in DROP_UNIMPORTED:
            for path in glob.glob(os.path.join(site, pattern)):
                dropped += os.path.getsize(path)
                os.unlink(path)
        print(f"warm_bytecode: {dropped / 1e6:.1f} MB of never-imported files dropped")
    os.makedirs(stdlib_out, exist_ok=True)
    copy_stdlib_bytecode(stdlib_out)
    fix_mtimes(venv)
    fix_mtimes(stdlib_out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--finalize", metavar="VENV", help="ship serving's modules as bytecode only (no torch)")
    parser.add_argument("--stdlib-out", default="/stdlib-bytecode")
    args = parser.parse_args()
    if args.finalize:  # bytecode headers record the sources' times: fix them first
        fix_mtimes(args.finalize)
    warm()
    if args.finalize:
        finalize(args.finalize, args.stdlib_out)


def bento_envs() -> dict[str, str]:
    """The bento's own `envs` (the pinned model tags, LANGDETECT_MODEL_DIR): the image sets them in its
    final stage, the stage that runs this one does not."""
    import yaml

    with open(os.path.join(os.environ["BENTO_PATH"], "bento.yaml")) as handle:
        info = yaml.safe_load(handle)
    return {item["name"]: str(item["value"]) for item in info.get("envs") or []}


def warm() -> None:
    port = free_port()
    # PYTHONHASHSEED: marshal writes set constants in hash order, so bytecode is reproducible only with a fixed seed.
    env = {**bento_envs(), **os.environ, "BENTOML_DO_NOT_TRACK": "true", "PYTHONHASHSEED": "0"}
    os.environ.update({k: v for k, v in env.items() if k not in os.environ})  # model_less() reads them
    if model_less():
        return warm_imports_only(port, env)
    server = subprocess.Popen(
        ["bentoml", "serve", os.environ["BENTO_PATH"], "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, server)
        post(f"{url}/detect", SAMPLE)
        post(f"{url}/detect_batch", {"texts": [SAMPLE["text"]] * 2})
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
