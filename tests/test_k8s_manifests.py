"""deploy/k8s: every rendered document passes `kubernetes-validate --strict` against a current Kubernetes,
and the Deployment holds what the fleet relies on (init fetcher, probes, limits, a locked-down pod)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.k8s
REPO = Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = "1.37.0"  # the newest schemas kubernetes-validate 1.37 bundles
OVERLAYS = ("cpu", "gpu")


def rendered(overlay: str) -> str:
    if not shutil.which("kubectl"):
        if os.environ.get("CI"):
            pytest.fail("CI must render the manifests, but kubectl is missing (scripts/install-fleet-tools.sh)")
        pytest.skip("kubectl is not installed")
    result = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "deploy/k8s/overlays" / overlay)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def documents(overlay: str) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(rendered(overlay)) if d}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_document_passes_strict_schema_validation(overlay, tmp_path):
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(rendered(overlay))
    validator = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run(
        [str(validator), "--strict", "-k", KUBERNETES_VERSION, str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passed = result.stdout.count(" passed for resource ") + result.stderr.count(" passed for resource ")
    assert passed == len(documents(overlay)) >= 13, result.stdout + result.stderr


def test_strict_validation_rejects_a_misspelt_field(tmp_path):
    """The validator is not a rubber stamp: one wrong key fails it."""
    path = tmp_path / "bad.yaml"
    path.write_text(rendered("cpu").replace("readOnlyRootFilesystem", "readOnlyRootFileSystem", 1))
    validator = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run(
        [str(validator), "--strict", "-k", KUBERNETES_VERSION, str(path)], capture_output=True, text=True
    )
    output = result.stdout + result.stderr
    # Rejected for that key, not for a crash or a missing schema.
    assert result.returncode != 0 and "'readOnlyRootFileSystem' was unexpected" in output, output


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serving_pod_fetches_at_start_and_is_locked_down(overlay):
    docs = documents(overlay)
    pod = docs[("Deployment", "langdetect")]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    (init,), (main,) = pod["initContainers"], pod["containers"]
    assert init["command"] == ["python", "-m", "langdetect_ops.fetch"] and "/models/langdetect" in init["args"]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in init["env"]} == {"langdetect-mlflow-reader"}
    for container in (init, main):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] and not context["allowPrivilegeEscalation"]
        assert context["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
    assert main["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert {"name": "LANGDETECT_MODEL_DIR", "value": "/models/langdetect"} in main["env"]
    grace = int(next(e["value"] for e in main["env"] if e["name"] == "LANGDETECT_GRACE_SECONDS"))
    pre_stop = int(main["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pre_stop + grace < pod["terminationGracePeriodSeconds"], "SIGKILL would cut the drain short"
    settings = docs[("ConfigMap", "langdetect-config")]["data"]
    assert settings["LANGDETECT_MODEL_ALIAS"] == "champion" and settings["MLFLOW_TRACKING_URI"].startswith("http")
    assert docs[("HorizontalPodAutoscaler", "langdetect")]["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert docs[("PodDisruptionBudget", "langdetect")]["spec"]["minAvailable"] == 1
    assert {
        ("Deployment", "mlflow"),
        ("PersistentVolumeClaim", "mlflow-store"),
        ("Service", "mlflow"),
        ("Service", "langdetect"),
    } <= set(docs)


def test_gpu_overlay_requests_a_gpu_and_fetches_torch_too():
    docs = documents("gpu")
    main = docs[("Deployment", "langdetect")]["spec"]["template"]["spec"]["containers"][0]
    assert main["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert main["image"].endswith("langdetect-gpu-modelless:latest")
    assert docs[("ConfigMap", "langdetect-config")]["data"]["LANGDETECT_FETCH_RUNTIME"] == "all"
    cpu = documents("cpu")[("Deployment", "langdetect")]["spec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in cpu["resources"]["limits"]


def test_only_serving_pods_reach_the_mlflow_server():
    docs = documents("cpu")
    policy = docs[("NetworkPolicy", "mlflow-ingress")]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "mlflow"}
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    allowed = rule["from"][0]["podSelector"]["matchLabels"]
    serving = docs[("Deployment", "langdetect")]["spec"]["template"]["metadata"]["labels"]
    assert allowed.items() <= serving.items()
    mlflow_pod = docs[("Deployment", "mlflow")]["spec"]["template"]["metadata"]["labels"]
    assert not allowed.items() <= mlflow_pod.items()
    args = docs[("Deployment", "mlflow")]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {"--serve-artifacts", "basic-auth"} <= set(args)
