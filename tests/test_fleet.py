"""The fleet path, for real on one machine: the model-less image, an MLflow server with basic auth, the
CPU overlay's Deployment played by podman (its init container fetches @champion), a promotion through
MLflow's REST API followed by a restart with no image built, and a push/pull through a local registry.

Needs Docker, podman, kubectl and docker-registry (scripts/install-fleet-tools.sh); skips with the reason
where they are missing, except under CI.
"""

from __future__ import annotations

import os
import shutil

import httpx
import pytest
from conftest import longest_per_language

from langdetect_ops.config import CHAMPION_ALIAS, REGISTERED_MODEL
from langdetect_ops.containers import Container
from langdetect_ops.processes import free_port

pytestmark = [pytest.mark.k8s, pytest.mark.container, pytest.mark.slow]
TOOLS = ("podman", "kubectl", "docker-registry")


@pytest.fixture(scope="module")
def fleet_tools():
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must play the manifests, but {', '.join(missing)} is missing")
        pytest.skip(f"{', '.join(missing)} not installed: scripts/install-fleet-tools.sh")


@pytest.fixture(scope="module")
def modelless(fleet_tools, image_builder):
    return image_builder("cpu-modelless")


@pytest.fixture(scope="module")
def texts():
    return longest_per_language()[0]


@pytest.fixture
def pod(tracking_server, modelless, tmp_path):
    """Plays the CPU overlay's Deployment as a pod (deploy/podman.py) against the session's MLflow server;
    yields play(password=None) -> base URL, and takes the pod and its secret down afterwards."""
    from deploy import local, podman

    target = podman.LocalTarget(
        tracking_server.url,
        free_port(),
        modelless.repository + ":latest",
        pod_name="langdetect-test",
        secret="langdetect-test-reader",
    )
    manifest = tmp_path / "pod.yaml"

    def play(password: str | None = None) -> str:
        local.play(
            tracking_server,
            target.image,
            target.port,
            CHAMPION_ALIAS,
            target=target,
            manifest=manifest,
            password=password,
        )
        return f"http://127.0.0.1:{target.port}"

    yield play
    podman.down(manifest)
    podman.podman("secret", "rm", target.secret, check=False)


def detect_batch(url: str, texts: list[str]) -> list[str]:
    response = httpx.post(f"{url}/detect_batch", json={"texts": texts}, timeout=60)
    assert response.status_code == 200, response.text
    return [(r["language"], round(r["score"], 4)) for r in response.json()["results"]]


def info(url: str) -> dict:
    return httpx.get(f"{url}/info", timeout=10).json()["runtimes"]["onnx"]["model"]


def test_modelless_image_carries_no_model(modelless, image_builder):
    from langdetect_ops.containers import docker

    baked = image_builder("cpu")
    found = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        modelless.image,
        "-c",
        "find / -xdev \\( -name '*.onnx' -o -name '*.safetensors' \\) -print 2>/dev/null; "
        "find /app/.venv -name onnxruntime -maxdepth 5 -print",
        check=False,
    )
    assert found.returncode == 0, found.stderr
    assert "onnxruntime" in found.stdout, "the probe ran in the wrong place"
    assert ".onnx" not in found.stdout and ".safetensors" not in found.stdout, found.stdout
    assert not any(key.endswith(".model") for key in modelless.labels), modelless.labels
    assert modelless.labels["langdetect.model_dir"] == "/models/langdetect"
    assert modelless.size_bytes < baked.size_bytes, (modelless.size_bytes, baked.size_bytes)


@pytest.mark.parametrize("kind", ["cpu-modelless", "gpu-modelless"])
def test_modelless_bentos_declare_no_model_and_point_at_the_fetched_bundle(exported, kind, tmp_path):
    """`bentoml build` alone (no image): what the model-less images are made from."""
    import bentoml

    from images.build import FLEET_MODEL_DIR, SPECS, build_bento

    bento = bentoml.bentos.get(build_bento(SPECS[kind], tmp_path / "build.log"))
    try:
        assert bento.info.all_models == [], bento.info.all_models
        envs = {env.name: env.value for env in bento.info.envs}
        assert envs == {"LANGDETECT_MODEL_DIR": FLEET_MODEL_DIR}, envs
        assert bento.tag.name == f"langdetect-{kind}"
    finally:
        bentoml.bentos.delete(str(bento.tag))


def test_pod_fetches_the_champion_and_answers_like_the_baked_image(pod, exported, image_builder, texts):
    url = pod()
    lineage = info(url)
    assert lineage["mlflow_version"] == exported.version and lineage["mlflow_alias"] == CHAMPION_ALIAS
    assert lineage["tag"] == f"models:/{REGISTERED_MODEL}/{exported.version}"
    with Container(image_builder("cpu").image) as baked:
        baked.wait_ready(timeout=120)
        assert detect_batch(url, texts) == detect_batch(baked.url, texts)


def test_promotion_reaches_the_pod_on_restart_with_no_image_built(pod, tracking_server, twin, modelless, texts):
    """Promote through MLflow's REST API (what the UI calls), restart: the pod serves the new version."""
    from langdetect_ops.containers import docker
    from registry.export import run_export

    url = pod()
    before = info(url)["mlflow_version"]
    run_export(version=str(twin.version), out_dir=tracking_server.state_dir / "export")  # logs its bundle
    images_before = docker("images", "-q", "--no-trunc").stdout.split()
    tracking_server.set_alias(REGISTERED_MODEL, CHAMPION_ALIAS, str(twin.version))
    assert info(url)["mlflow_version"] == before, "a running pod must not change model under its clients"
    pod()  # kubectl rollout restart
    after = info(url)
    assert after["mlflow_version"] == str(twin.version) != before
    assert after["mlflow_alias"] == CHAMPION_ALIAS
    assert docker("images", "-q", "--no-trunc").stdout.split() == images_before, "an image was built"
    assert len(detect_batch(url, texts)) == len(texts)


def test_pod_with_a_wrong_password_never_serves(pod):
    from langdetect_ops.errors import UserError

    # the fetcher's exit for 401 (code 3), or its message when podman restarted it before we saw the exit
    with pytest.raises(UserError, match=r"exited with code 3|refused the credentials \(401\)"):
        pod(password="not-the-password")


def test_cpu_image_round_trips_through_the_local_registry(image_builder, fleet_tools, tmp_path):
    from deploy.registry import LocalRegistry, cold_pull
    from langdetect_ops.containers import docker

    image = image_builder("cpu").image
    with LocalRegistry(tmp_path / "registry") as registry:
        pushed = registry.push(image)
        pulled = cold_pull(pushed.remote)
    assert "sha256:" + pulled.image_id == docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
    assert pulled.stored_bytes > 50e6
