"""The Docker engine as the project uses it (image builds, the bench, the fleet, the tests): Debian's
client, BuildKit, host networking; and a container on a free loopback port."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from langdetect_ops.errors import UserError
from langdetect_ops.processes import free_port, tail, wait_readyz

# Debian's client talks to the daemon's built-in BuildKit; a /usr/local/bin/docker without the
# buildx plugin makes BentoML's BuildKit build fail, so /usr/bin goes first on PATH.
PREFERRED_BIN = "/usr/bin"
INSTALL_HINT = "run scripts/install-docker.sh (installs docker.io and starts dockerd; root)"
SETUP_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install-docker.sh"


def tool_env(**extra: str) -> dict[str, str]:
    """The environment for docker and bentoml subprocesses."""
    path = os.environ.get("PATH", "")
    return {**os.environ, "PATH": f"{PREFERRED_BIN}:{path}", "DOCKER_BUILDKIT": "1", **extra}


def docker_binary() -> str | None:
    return shutil.which("docker", path=tool_env()["PATH"])


def engine_problem() -> str | None:
    """Why the engine cannot build and run images, or None when it can."""
    binary = docker_binary()
    if binary is None:
        return f"no docker client; {INSTALL_HINT}"
    result = subprocess.run(
        [binary, "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True, env=tool_env()
    )
    if result.returncode != 0:
        return f"the docker engine does not answer ({result.stderr.strip()[:200]}); {INSTALL_HINT}"
    if not binary.startswith(PREFERRED_BIN + "/") and not has_buildx(binary):
        return f"{binary} has no buildx plugin, which BentoML's BuildKit build needs; {INSTALL_HINT}"
    return None


def engine_problem_after_setup() -> str | None:
    """engine_problem(), after running scripts/install-docker.sh (root only: installs docker.io and starts
    dockerd) when the engine does not answer."""
    problem = engine_problem()
    if problem and os.geteuid() == 0:
        setup = subprocess.run([str(SETUP_SCRIPT)], capture_output=True, text=True)
        problem = engine_problem()
        if problem:
            problem += f"\nscripts/install-docker.sh said: {setup.stdout[-500:]}{setup.stderr[-500:]}"
    return problem


def has_buildx(binary: str) -> bool:
    return subprocess.run([binary, "buildx", "version"], capture_output=True, env=tool_env()).returncode == 0


_engine_answered = False


def require_engine() -> str:
    """The docker client's path, once the engine has answered (checked once per process)."""
    global _engine_answered
    if not _engine_answered:
        problem = engine_problem()
        if problem:
            raise UserError(problem)
        _engine_answered = True
    return docker_binary()


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs a short docker command and returns its captured text output."""
    result = subprocess.run([require_engine(), *args], capture_output=True, text=True, env=tool_env())
    if check and result.returncode != 0:
        raise UserError(f"docker {' '.join(args[:3])} failed: {result.stderr[-2000:]}")
    return result


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


def inspect_image(ref: str) -> dict:
    return json.loads(docker("image", "inspect", ref).stdout)[0]


def run_logged(cmd: Sequence[str], log_path: Path | None, cwd: Path | None = None) -> None:
    """Runs a long command (a build), its output going to log_path (or the terminal)."""
    if log_path is None:
        result = subprocess.run(list(cmd), env=tool_env(), cwd=cwd)
    else:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            log.write(f"\n$ {' '.join(cmd)}\n".encode())
            log.flush()
            result = subprocess.run(list(cmd), env=tool_env(), cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise UserError(
            f"{' '.join(cmd[:3])} failed (exit {result.returncode})" + (f":\n{tail(log_path)}" if log_path else "")
        )


class Container:
    """`docker run -d --network host` of an image on a free loopback port; removed on exit."""

    def __init__(self, image: str, *docker_args: str):
        """`docker_args` go before the image: limits (`--memory=256m`), `--read-only`, env..."""
        self.image, self.port = image, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.started = time.monotonic()
        self.id = docker(
            "run",
            "-d",
            "--network",
            "host",
            "-e",
            f"BENTOML_PORT={self.port}",
            "-e",
            "BENTOML_HOST=127.0.0.1",
            *docker_args,
            image,
        ).stdout.strip()

    def running(self) -> bool:
        return docker("inspect", "-f", "{{.State.Running}}", self.id, check=False).stdout.strip() == "true"

    def wait_ready(self, timeout: float = 180) -> float:
        """The cold start: seconds from `docker run` until /readyz answered 200."""
        try:
            return wait_readyz(self.url, self.running, timeout, self.started)
        except (RuntimeError, TimeoutError) as exc:
            logs = docker("logs", "--tail", "40", self.id, check=False)
            raise RuntimeError(f"{self.image}: {exc}\n{logs.stdout}{logs.stderr}") from exc

    def exit_code(self) -> int | None:
        """None while it runs; its exit code once it has stopped."""
        state = docker("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", self.id, check=False).stdout.split()
        return None if not state or state[0] == "true" else int(state[1])

    def pid(self) -> int:
        """The container's first process, as the host sees it (0 once it has stopped)."""
        return int(docker("inspect", "-f", "{{.State.Pid}}", self.id).stdout.strip() or 0)

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        docker("rm", "-f", self.id, check=False)
