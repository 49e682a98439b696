"""The fleet path, measured: fetch time on loopback, registry push and cold pull of each image, and a
pod's restart onto @champion (the model outside the image).

Runs on the project's own store through `langdetect mlflow-server` (basic auth, artifact proxy); the
champion's serving bundle is logged through it first if it has none (as `langdetect deploy local`
does). Pulls go into an empty podman store, so they are cold whatever Docker holds.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import attempt

FETCH_RUNS = 5
PULLED = ("cpu", "cpu-modelless", "gpu")  # the GPU model-less pull adds minutes and nothing the GPU one lacks


def measure_fleet(images: dict[str, dict], log_dir: Path, quick: bool) -> dict:
    from deploy.local import ensure_bundle
    from langdetect_ops.tracking_server import StoreLayout, TrackingServer

    state = log_dir / "mlflow-server"
    with TrackingServer(StoreLayout.from_tracking_uri(), state_dir=state) as server:
        version = ensure_bundle(server, "champion")
        results = {"champion_version": version, "fetch": attempt(measure_fetch, server, FETCH_RUNS)}
        results["registry"] = attempt(measure_registry, images, log_dir, quick)
        results["restart"] = attempt(measure_restart, server, images.get("cpu-modelless", {}))
    return results


def measure_fetch(server, runs: int) -> dict:
    """`python -m langdetect_ops.fetch` as the init container runs it: its own process, read-only user."""
    seconds, bytes_ = [], 0
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}, **server.reader_env()}
    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as tmp:
        for run in range(runs):
            out = Path(tmp) / f"run{run}" / "langdetect"
            started = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "langdetect_ops.fetch", "--alias", "champion", "--out", str(out)],
                env=env,
                check=True,
                capture_output=True,
            )
            seconds.append(time.monotonic() - started)
            bytes_ = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"  fetch: {', '.join(f'{s:.2f}' for s in seconds)} s", flush=True)
    return {
        "seconds": seconds,
        "median_s": statistics.median(seconds),
        "max_s": max(seconds),
        "bytes": bytes_,
        "note": "process start included (python -m langdetect_ops.fetch), loopback, basic auth",
    }


def measure_registry(images: dict[str, dict], log_dir: Path, quick: bool) -> dict:
    from deploy.registry import LocalRegistry, cold_pull

    kinds = [k for k in PULLED if images.get(k, {}).get("present") and not (quick and k.startswith("gpu"))]
    results = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-registry-", dir=log_dir) as tmp,
        LocalRegistry(Path(tmp)) as registry,
    ):
        for kind in kinds:
            pushed = registry.push(images[kind]["image"])
            pulled = cold_pull(pushed.remote)
            results[kind] = {
                "image": images[kind]["image"],
                "push_s": pushed.seconds,
                "pull_s": pulled.seconds,
                "pulled_bytes": pulled.stored_bytes,
            }
            print(f"  {kind}: push {pushed.seconds:.1f} s, cold pull {pulled.seconds:.1f} s", flush=True)
    return results


def measure_restart(server, image: dict) -> dict:
    """A pod played onto @champion, then played again (`kubectl rollout restart`): seconds from the play
    to /readyz, each time, and the version served."""
    from deploy import local, podman
    from langdetect_ops.processes import free_port

    if not image.get("present"):
        return {"error": image.get("reason", "model-less CPU image not built")}
    target = podman.LocalTarget(
        server.url, free_port(), image["image"], pod_name="langdetect-bench", secret="langdetect-bench-reader"
    )
    from langdetect_ops.containers import docker

    images_before = sorted(docker("images", "-q", "--no-trunc").stdout.split())
    with tempfile.TemporaryDirectory(prefix="bench-pod-") as tmp:
        manifest = Path(tmp) / "pod.yaml"
        try:
            plays = []
            for _ in range(2):  # the first play, then the restart
                started = time.monotonic()
                local.play(server, target.image, target.port, "champion", target=target, manifest=manifest)
                plays.append(time.monotonic() - started)
            served = local.served_version(f"http://127.0.0.1:{target.port}")
        finally:
            podman.down(manifest)
            podman.podman("secret", "rm", target.secret, check=False)
    print(f"  pod: ready {plays[0]:.1f} s after play, {plays[1]:.1f} s after a restart", flush=True)
    built = len(set(docker("images", "-q", "--no-trunc").stdout.split()) - set(images_before))
    return {
        "play_to_ready_s": plays[0],
        "restart_to_ready_s": plays[1],
        "served_version": served,
        "images_built": built,
        "note": "podman kube play of the CPU overlay: the init container fetches, then the server starts",
    }
