"""Plays the rendered Kubernetes manifests with podman (4.3, Debian), offline, on loopback.

No cluster exists here, so `podman kube play` runs the serving Deployment of an overlay as a pod. The
manifest is the one `kubectl kustomize` renders, patched only where podman 4.3 differs from Kubernetes
(shared/NOTES.md):
- it applies the pod's restartPolicy to init containers: OnFailure here, Always in the real manifest;
- it reads no Secret documents: the reader's credentials become a `podman secret`;
- ConfigMap values are inlined, the MLflow URI points at the server on 127.0.0.1;
- host networking, the server bound to 127.0.0.1 on a free port (never podman's bridge network);
- images come from Docker through `docker save | podman load`, as localhost/NAME:TAG.
Probes, Services, HPA, PDB and NetworkPolicy have no podman equivalent and are validated, not played.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from langdetect_ops.errors import UserError

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy" / "k8s"
STATE = REPO / "artifacts" / "podman"
SECRET = "langdetect-mlflow-reader"
# podman 4.3 here: runc (crun refuses the hybrid cgroup layout), ulimits the sandbox allows.
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
"""


def podman_env() -> dict[str, str]:
    conf = STATE / "containers.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def podman(*args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
    if not shutil.which("podman"):
        raise UserError("podman is not installed: apt-get install podman runc (scripts/install-fleet-tools.sh)")
    result = subprocess.run(["podman", *args], env=podman_env(), capture_output=True, input=input)
    if check and result.returncode != 0:
        raise UserError(
            f"podman {' '.join(args[:3])} failed ({result.returncode}): "
            f"{result.stderr.decode(errors='replace')[-2000:]}"
        )
    return result


def render(overlay: str) -> list[dict]:
    """`kubectl kustomize deploy/k8s/overlays/OVERLAY`, parsed."""
    if not shutil.which("kubectl"):
        raise UserError("kubectl is not installed (Google's kubectl package): scripts/install-fleet-tools.sh")
    result = subprocess.run(["kubectl", "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"kubectl kustomize {overlay} failed: {result.stderr[-2000:]}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(docs: list[dict], kind: str, name: str) -> dict:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise UserError(f"the rendered manifests have no {kind}/{name}")


@dataclass
class LocalTarget:
    tracking_uri: str  # the MLflow server on loopback
    port: int  # where the pod's server listens, on 127.0.0.1
    image: str  # local image (Docker's name); played as localhost/<image>
    alias: str = "champion"
    pod_name: str = "langdetect"
    secret: str = SECRET  # the podman secret that stands for the reader's Kubernetes Secret


def local_manifest(docs: list[dict], target: LocalTarget) -> dict:
    """The overlay's Deployment, as podman 4.3 can play it on this machine (see the module docstring)."""
    deployment = copy.deepcopy(find(docs, "Deployment", "langdetect"))
    settings = dict(find(docs, "ConfigMap", "langdetect-config")["data"])
    settings.update(MLFLOW_TRACKING_URI=target.tracking_uri, LANGDETECT_MODEL_ALIAS=target.alias)
    deployment["metadata"]["name"] = target.pod_name
    spec = deployment["spec"]
    spec["replicas"] = 1
    pod = spec["template"]["spec"]
    pod["restartPolicy"] = "OnFailure"
    pod["hostNetwork"] = True
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        container["image"] = f"localhost/{target.image}"
        container.pop("envFrom", None)
        env = [{"name": k, "value": v} for k, v in settings.items()]
        if container in pod["containers"]:
            env += [{"name": "BENTOML_HOST", "value": "127.0.0.1"}, {"name": "BENTOML_PORT", "value": str(target.port)}]
        names = {e["name"] for e in env}
        container["env"] = env + [e for e in container.get("env", []) if e["name"] not in names]
        for variable in container["env"]:
            if ref := variable.get("valueFrom", {}).get("secretKeyRef"):
                ref["name"] = target.secret
        container.pop("ports", None)  # host network: podman refuses port mappings there
    return deployment


def load_image(image: str) -> None:
    """Docker's image into podman, unless podman already holds the same image id."""
    from langdetect_ops.containers import docker

    docker_id = docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
    held = podman("image", "inspect", "-f", "{{.Id}}", f"localhost/{image}", check=False)
    if held.returncode == 0 and held.stdout.decode().strip() in (docker_id, docker_id.removeprefix("sha256:")):
        return
    saved = subprocess.run(["/usr/bin/docker", "save", image], capture_output=True, check=True).stdout
    podman("load", input=saved)


def create_secret(credentials: dict[str, str], name: str = SECRET) -> None:
    """podman resolves secretKeyRef against a podman secret holding a JSON map of base64 values (a Secret's
    `data`); a Secret document in the played YAML is broken in 4.3."""
    podman("secret", "rm", name, check=False)
    data = json.dumps({k: base64.b64encode(v.encode()).decode() for k, v in credentials.items()}).encode()
    with tempfile.NamedTemporaryFile(suffix=".json") as handle:
        handle.write(data)
        handle.flush()
        podman("secret", "create", name, handle.name)


def play(manifest: dict, path: Path, timeout_s: float = 300) -> None:
    """`podman kube play`, which waits for the init containers. With OnFailure (above) a failing init
    container restarts, and podman 4.3 then sometimes waits forever instead of reporting the exit (seen
    with a wrong password: 1,888 restarts in 9 minutes). So the init containers are watched here: the
    first failure ends the play, with the container's last log line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    if not shutil.which("podman"):
        podman("version")  # the clear "not installed" error
    spec = manifest["spec"]["template"]["spec"]
    inits = [f"{manifest['metadata']['name']}-pod-0-{c['name']}" for c in spec.get("initContainers", [])]
    command = ["podman", "kube", "play", "--replace", "--network", "host", str(path)]
    with subprocess.Popen(command, env=podman_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        deadline = time.monotonic() + timeout_s
        while proc.poll() is None:
            failure = next((f for f in map(_init_failure, inits) if f), None)
            if failure or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise UserError(f"podman kube play failed: {failure or f'no end after {timeout_s:.0f} s'}")
            time.sleep(0.5)
        stderr = proc.stderr.read()
    if proc.returncode != 0:
        raise UserError(f"podman kube play failed ({proc.returncode}): {stderr.decode(errors='replace')[-2000:]}")


def _init_failure(container: str) -> str | None:
    """What went wrong, once an init container has exited non-zero (under OnFailure, any restart means it
    did; podman shows exit code 0 again while the restarted one runs)."""
    state = podman(
        "inspect", "--format", "{{.State.ExitCode}} {{.RestartCount}} {{.State.Status}}", container, check=False
    )
    if state.returncode != 0:
        return None  # not created yet
    code, restarts, status = state.stdout.decode().split()
    if status == "exited" and code != "0":
        how = f"exited with code {code}"
    elif restarts != "0":
        how = f"failed and was restarted {restarts} times"
    else:
        return None
    return f"init container {container} {how}; its last log line: {_last_log_line(container)}"


def _last_log_line(container: str, wait_s: float = 10.0) -> str:
    """Right after a restart, podman can show no log line yet (the restarted run has not failed again):
    wait for one, within a bound, so the error says why."""
    deadline = time.monotonic() + wait_s
    while True:
        logs = podman("logs", "--tail", "5", container, check=False)
        lines = [line.strip() for line in (logs.stdout + logs.stderr).decode(errors="replace").splitlines()]
        lines = [line for line in lines if line]
        if lines or time.monotonic() > deadline:
            return lines[-1] if lines else "(none)"
        time.sleep(0.5)


def down(path: Path) -> None:
    if path.exists():
        podman("kube", "down", str(path), check=False)


def pod_running(pod_name: str) -> bool:
    """Whether the pod `kube play` made of the Deployment still runs (podman names it NAME-pod-0)."""
    result = podman("pod", "inspect", "--format", "{{.State}}", f"{pod_name}-pod-0", check=False)
    return result.returncode == 0 and result.stdout.decode().strip() in ("Running", "Degraded")


def pod_logs(pod_name: str) -> str:
    result = podman("pod", "logs", f"{pod_name}-pod-0", check=False)
    return (result.stdout + result.stderr).decode(errors="replace")
