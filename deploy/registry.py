"""A local image registry (Debian's docker-registry) on 127.0.0.1, pushes, and cold pulls.

A pull is cold only into an empty image store: the build host's Docker already holds every layer, so
the pull goes into a throwaway podman store (`--root` in a temp dir), which is what a fresh node does.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from langdetect_ops.errors import UserError
from langdetect_ops.processes import free_port, stop_group, wait_http

CONFIG = """version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


class LocalRegistry:
    """`docker-registry serve` on a loopback port with its storage in `root`; a context manager."""

    def __init__(self, root: Path, port: int | None = None):
        self.root, self.port = Path(root), port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> LocalRegistry:
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        if not Path(binary).exists():
            raise UserError(
                "docker-registry is not installed: scripts/install-fleet-tools.sh (Debian's docker-registry)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.yml"
        config.write_text(CONFIG.format(root=self.root / "data", port=self.port))
        self.log = open(self.root / "registry.log", "w")
        self.proc = subprocess.Popen(
            [binary, "serve", str(config)], stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_http(f"http://{self.address}/v2/", lambda: self.proc.poll() is None, 30, what="registry")
        except BaseException as exc:
            self.__exit__()
            if isinstance(exc, (RuntimeError, TimeoutError)):
                raise UserError(f"{exc}; log {self.root / 'registry.log'}") from None
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            stop_group(self.proc, grace_s=5)
            self.log.close()

    def push(self, image: str) -> PushResult:
        """`docker push` of a local image under this registry's name."""
        from langdetect_ops.containers import docker

        remote = f"{self.address}/{image}"
        docker("tag", image, remote)
        started = time.monotonic()
        docker("push", remote)
        seconds = time.monotonic() - started
        docker("rmi", remote, check=False)  # the tag only: the layers stay with `image`
        return PushResult(image, remote, seconds)


@dataclass
class PushResult:
    image: str
    remote: str
    seconds: float


@dataclass
class PullResult:
    remote: str
    seconds: float
    image_id: str
    stored_bytes: int


def cold_pull(remote: str) -> PullResult:
    """Pulls `remote` into an empty podman store (nothing cached), then throws the store away."""
    from deploy.podman import podman_env

    with tempfile.TemporaryDirectory(prefix="cold-pull-") as tmp:
        store = ["--root", f"{tmp}/root", "--runroot", f"{tmp}/run", "--storage-driver", "overlay"]
        started = time.monotonic()
        pulled = subprocess.run(
            ["podman", *store, "pull", "--quiet", "--tls-verify=false", remote],
            env=podman_env(),
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
        if pulled.returncode != 0:
            raise UserError(f"podman pull {remote} failed: {pulled.stderr[-1500:]}")
        stored = sum(p.stat().st_size for p in Path(tmp, "root").rglob("*") if p.is_file() and not p.is_symlink())
        subprocess.run(["podman", *store, "rmi", "-a", "-f"], env=podman_env(), capture_output=True)
    return PullResult(remote, seconds, pulled.stdout.strip(), stored)
