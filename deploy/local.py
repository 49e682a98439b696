"""`langdetect deploy local`: the fleet path on one machine, for real.

1. `mlflow server` (basic auth, artifact proxy) over the project's store, left running;
2. the @champion version gets its serving bundle logged if it has none (`langdetect export` through
   the server);
3. the model-less CPU image (built if missing) goes from Docker to podman;
4. the reader's credentials become a podman secret, and the CPU overlay's Deployment plays as a pod:
   its init container fetches the champion from the server, the server starts on 127.0.0.1.

`--restart` plays it again (what `kubectl rollout restart` does): the pod fetches whatever @champion is
now, with no image built. `--down` stops the pod and the MLflow server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from deploy import podman
from langdetect_ops import config
from langdetect_ops.errors import UserError
from langdetect_ops.fetch import BUNDLE_PATH_TAG, NotFoundError, Server, resolve_version
from langdetect_ops.processes import wait_http
from langdetect_ops.tracking_server import READER, STATE_DIR, StoreLayout, TrackingServer

STATE_FILE = podman.STATE / "deploy-local.json"
MANIFEST = podman.STATE / "langdetect-pod.yaml"


@dataclass
class Deployed:
    url: str
    mlflow_url: str
    version: str
    alias: str
    ready_s: float


def start_or_reuse_server(port: int) -> TrackingServer:
    """The MLflow server this command left running, if it still answers; else a new one, detached."""
    url, state = f"http://127.0.0.1:{port}", read_state()
    if state.get("mlflow_pid") and state.get("mlflow_url") == url:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            return TrackingServer.attach(url, STATE_DIR)
        except OSError:
            pass
    stop_server(state.get("mlflow_pid"))  # one started on another --mlflow-port: not left behind
    server = TrackingServer(StoreLayout.from_tracking_uri(), STATE_DIR, port=port)
    server.start()  # not stopped on return: `--down` does that
    write_state(mlflow_pid=server.proc.pid, mlflow_url=server.url)
    return server


def ensure_bundle(server: TrackingServer, alias: str) -> str:
    """The alias's version number, after logging its serving bundle through the server if it has none."""
    reader = Server(server.url, READER, server.credentials.reader_password)
    try:
        record = resolve_version(reader, config.REGISTERED_MODEL, alias, None)
    except NotFoundError as exc:
        raise UserError(f"{exc}: train and promote a model first (scripts/main.sh)") from None
    if not any(tag["key"] == BUNDLE_PATH_TAG for tag in record.get("tags", [])):
        print(
            f"version {record['version']} (@{alias}) has no serving bundle yet: exporting it through {server.url}",
            flush=True,
        )
        subprocess.run(
            [sys.executable, "-m", "langdetect_ops.cli", "export", "--alias", alias],
            env={**os.environ, **server.admin_env()},
            check=True,
        )
    return str(record["version"])


def ensure_image(kind: str = "cpu-modelless") -> str:
    from images.build import build_images, image_repository
    from langdetect_ops.containers import image_exists

    image = f"{image_repository(kind)}:latest"
    if not image_exists(image):
        print(f"{image} is missing: building it", flush=True)
        build_images([kind])
    return image


def play(
    server: TrackingServer,
    image: str,
    port: int,
    alias: str,
    overlay: str = "cpu",
    target: podman.LocalTarget | None = None,
    manifest: Path = MANIFEST,
    password: str | None = None,
) -> float:
    """Seconds from `podman kube play` returning (the init container has fetched) to /readyz answering."""
    target = target or podman.LocalTarget(server.url, port, image, alias)
    podman.load_image(image)
    podman.create_secret(
        {
            "MLFLOW_TRACKING_USERNAME": READER,
            "MLFLOW_TRACKING_PASSWORD": password or server.credentials.reader_password,
        },
        target.secret,
    )
    podman.play(podman.local_manifest(podman.render(overlay), target), manifest)
    try:
        return wait_http(
            f"http://127.0.0.1:{target.port}/readyz",
            lambda: podman.pod_running(target.pod_name),
            120,
            what="langdetect pod",
        )
    except (RuntimeError, TimeoutError) as exc:
        raise UserError(f"{exc}:\n{podman.pod_logs(target.pod_name)[-3000:]}") from None


def served_version(url: str) -> str:
    with urllib.request.urlopen(f"{url}/info", timeout=10) as response:
        return json.loads(response.read())["runtimes"]["onnx"]["model"]["mlflow_version"]


def up(mlflow_port: int = 5001, port: int = 3000, alias: str = config.CHAMPION_ALIAS) -> Deployed:
    server = start_or_reuse_server(mlflow_port)
    ensure_bundle(server, alias)  # logs the bundle through the server if the version has none
    image = ensure_image()
    ready = play(server, image, port, alias)
    write_state(port=port, alias=alias, image=image)
    url = f"http://127.0.0.1:{port}"
    return Deployed(url, server.url, served_version(url), alias, ready)


def restart() -> Deployed:
    state = read_state()
    if not state.get("port"):
        raise UserError("nothing deployed: run `langdetect deploy local` first")
    server = start_or_reuse_server(int(state["mlflow_url"].rsplit(":", 1)[1]))
    ensure_bundle(server, state["alias"])
    ready = play(server, state["image"], state["port"], state["alias"])
    url = f"http://127.0.0.1:{state['port']}"
    return Deployed(url, server.url, served_version(url), state["alias"], ready)


def down() -> list[str]:
    stopped = []
    if MANIFEST.exists():
        podman.down(MANIFEST)
        podman.podman("secret", "rm", podman.SECRET, check=False)  # the reader's password goes with the pod
        stopped.append("pod")
    if stop_server(read_state().get("mlflow_pid")):
        stopped.append("MLflow server")
    STATE_FILE.unlink(missing_ok=True)
    return stopped


def stop_server(pid: int | None) -> bool:
    """SIGTERM to the MLflow server this command started, if that pid still is one (pids get reused)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if pid else []
    except OSError:
        return False
    if b"mlflow" not in b" ".join(command) or b"server" not in command:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def read_state() -> dict:
    try:
        return json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return {}


def write_state(**values) -> None:
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps({**read_state(), **values}, indent=1))
