"""The CPU and GPU images: built from the session smoke model, compared by size, run, compared by answers.

Needs a Docker engine: the module runs scripts/install-docker.sh when none answers (root), and skips
with the reason when that fails, except under CI, where a skip would hide a broken set-up. Images
and the uv download cache persist between runs, so a re-run mostly reuses layers.
"""

from __future__ import annotations

import subprocess

import httpx
import pytest
from conftest import longest_per_language

from images.report import SITE_PACKAGES
from langdetect_ops.config import LANGUAGES
from langdetect_ops.containers import Container
from langdetect_ops.faults import drain_under_load, recovery_after_kill, worker_pids

pytestmark = [pytest.mark.container, pytest.mark.slow]
MAX_CPU_IMAGE_BYTES = 230e6  # loose: the diet targets 200 MB (langdetect bench measures it)
MAX_CPU_TO_GPU_RATIO = 1 / 10
TRAINING_STACK = ("torch", "transformers", "mlflow")
BUILD_TOOLS = ("gcc", "cc", "g++", "make", "git", "uv", "pip")


@pytest.fixture(scope="module")
def built(image_builder):
    """Both images with the model baked in (the model-less ones: tests/test_fleet.py)."""
    return {kind: image_builder(kind) for kind in ("cpu", "gpu")}


@pytest.fixture(scope="module")
def containers(built):
    """Both images running at once; answers `{kind: base url}`."""
    running = {}
    try:
        for kind, image in built.items():
            running[kind] = Container(image.image)
        for container in running.values():
            print(f"\n{container.image}: cold start {container.wait_ready(timeout=240):.1f} s")
        yield {kind: container.url for kind, container in running.items()}
    finally:
        for container in running.values():
            container.stop()


@pytest.fixture(scope="module")
def multilingual():
    texts, labels = longest_per_language()
    assert set(labels) == set(LANGUAGES) and len(texts) >= 100
    return texts


def run_in(image: str, entrypoint: str, *args: str) -> subprocess.CompletedProcess:
    from langdetect_ops.containers import docker

    return docker("run", "--rm", "--network", "none", "--entrypoint", entrypoint, image, *args, check=False)


def detect_batch(url: str, texts: list[str], **options) -> list[dict]:
    response = httpx.post(f"{url}/detect_batch", json={"texts": texts, **options}, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_cpu_image_is_at_most_a_tenth_of_the_gpu_image(built):
    cpu, gpu = built["cpu"].size_bytes, built["gpu"].size_bytes
    assert cpu <= MAX_CPU_IMAGE_BYTES, f"CPU image {cpu / 1e6:.0f} MB"
    assert cpu <= MAX_CPU_TO_GPU_RATIO * gpu, f"CPU {cpu / 1e6:.0f} MB vs GPU {gpu / 1e6:.0f} MB"


def test_images_are_tagged_with_the_bento_and_labelled_with_the_model(built, exported):
    import bentoml

    from images.build import image_repository
    from langdetect_ops.containers import image_exists, inspect_image

    for kind, runtimes in (("cpu", ["onnx"]), ("gpu", ["onnx", "torch"])):
        image = built[kind]
        name, version = image.bento.split(":")
        repository = image_repository(kind)
        assert repository.startswith("test-")  # never the user's langdetect-*:latest
        assert image.image == f"{repository}:{version}" and image_exists(f"{repository}:latest")
        config = inspect_image(image.image)["Config"]
        labels, env = config["Labels"], dict(e.split("=", 1) for e in config["Env"])
        assert labels["org.opencontainers.image.version"] == version
        for runtime in runtimes:
            stored = bentoml.models.get(labels[f"langdetect.{runtime}.model"])
            assert str(stored.tag) == exported.tags[runtime]
            assert env[f"LANGDETECT_{runtime.upper()}_MODEL"] == exported.tags[runtime]  # pinned, not :latest
            assert labels[f"langdetect.{runtime}.mlflow_version"] == exported.version
            assert labels[f"langdetect.{runtime}.mlflow_alias"] == "champion"
            weights = labels[f"langdetect.{runtime}.weights"]
            assert labels[f"langdetect.{runtime}.sha256"] == stored.info.metadata["sha256"][weights]
    assert "langdetect.torch.model" not in inspect_image(built["cpu"].image)["Config"]["Labels"]


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_image_runs_as_a_non_root_user(built, kind):
    uid = run_in(built[kind].image, "id", "-u")
    assert uid.returncode == 0 and uid.stdout.strip() not in ("", "0"), uid


def test_cpu_image_serves_without_training_stack_or_build_tools(built):
    image = built["cpu"].image
    serving = run_in(image, "python", "-c", "import bentoml, onnxruntime, tokenizers, numpy")
    assert serving.returncode == 0, serving.stderr
    for module in TRAINING_STACK:
        result = run_in(image, "python", "-c", f"import {module}")
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, (module, result)
    found = run_in(image, "sh", "-c", " || ".join(f"command -v {tool}" for tool in BUILD_TOOLS))
    assert found.returncode != 0, f"build tools in the CPU image: {found.stdout}"


def test_cpu_image_has_bytecode_for_what_serving_imports_only(built):
    """images/warm_bytecode.py serves the bento once at build time: the modules on the serving path ship
    as bytecode only (the venv is root-owned, so none could be written at run time), installed modules
    serving never imports keep their sources and get no bytecode."""
    listing = run_in(
        built["cpu"].image,
        "sh",
        "-c",
        f"ls {SITE_PACKAGES}/onnxruntime/capi/ {SITE_PACKAGES}/bentoml/_internal/frameworks/ "
        f"{SITE_PACKAGES}/bentoml/_internal/frameworks/__pycache__ src/service/__pycache__ 2>&1; true",
    ).stdout
    assert "onnxruntime_inference_collection.pyc" in listing, listing
    assert "onnxruntime_inference_collection.py\n" not in listing, "an imported module kept its source"
    assert "inference.cpython-311.pyc" in listing and "cpu_service.cpython-311.pyc" in listing, listing
    assert "keras.py\n" in listing and "keras.cpython-311.pyc" not in listing and "keras.pyc" not in listing
    c_api = run_in(
        built["cpu"].image, "sh", "-c", f"ls {SITE_PACKAGES}/onnxruntime/capi/ | grep -c '^libonnxruntime.so'; true"
    )
    assert c_api.stdout.strip() == "0", "onnxruntime's C-API library (unused by Python) is in the image"


# Run in the image (no binutils there): the site-packages ELF files that still hold a symbol table, but
# for the libraries auditwheel grafted into *.libs/ (left as they are: strip breaks their layout).
UNSTRIPPED_SCRIPT = """
import pathlib, struct, sys
paths, found = list(pathlib.Path(sys.argv[1]).rglob("*.so*")), []
for path in paths:
    data = path.read_bytes() if path.is_file() and not path.parent.name.endswith(".libs") else b""
    if data[:5] != b"\\x7fELF\\x02":  # 64-bit ELF
        continue
    shoff, = struct.unpack_from("<Q", data, 0x28)
    size, count, names = struct.unpack_from("<HHH", data, 0x3A)
    section = lambda i: struct.unpack_from("<IIQQQQ", data, shoff + i * size)
    strtab = section(names)[4]
    found += [str(path) for i in range(count) if data.startswith(b".symtab\\0", strtab + section(i)[0])]
print(len(paths), *found, sep="\\n")
"""


def test_cpu_image_shared_objects_are_stripped(built):
    """Wheels ship their extension modules with symbol tables (aiohttp's parser: 3.3 MB, 0.6 MB
    stripped); the CPU image's build strips them with langdetect-strip, and then serves with them."""
    result = run_in(built["cpu"].image, "python", "-c", UNSTRIPPED_SCRIPT, SITE_PACKAGES)
    assert result.returncode == 0, result.stderr
    scanned, *unstripped = result.stdout.split()
    assert int(scanned) >= 20, result.stdout  # onnxruntime, numpy, tokenizers, pydantic_core, aiohttp...
    assert unstripped == [], f"shared objects with a symbol table: {unstripped}"


def requests_counted(metrics_text: str, endpoint: str, status: int) -> float:
    """BentoML 1.4.39's own request counter (namespace bentoml_service) for one route and status code."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "bentoml_service_request_total"
        and sample.labels.get("endpoint") == endpoint
        and sample.labels.get("http_response_code") == str(status)
    )


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_container_serves_health_and_metrics(containers, kind):
    url = containers[kind]
    assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200

    def detect_answered() -> float:
        metrics = httpx.get(f"{url}/metrics", timeout=10)
        assert metrics.status_code == 200
        return requests_counted(metrics.text, "/detect", 200)

    before = detect_answered()
    assert httpx.post(f"{url}/detect", json={"text": "Guten Morgen zusammen"}, timeout=30).status_code == 200
    assert detect_answered() == before + 1


def test_containers_report_what_they_run(containers, exported):
    cpu = httpx.get(f"{containers['cpu']}/info", timeout=30).json()
    gpu = httpx.get(f"{containers['gpu']}/info", timeout=30).json()
    assert {k: r["runtime"] for k, r in cpu["runtimes"].items()} == {"onnx": "onnx-int8-cpu"}
    assert {k: r["runtime"] for k, r in gpu["runtimes"].items()} == {
        "onnx": "onnx-int8-cpu",
        "torch": "torch-fp32-cpu",
    }  # no GPU here
    assert cpu["runtimes"]["onnx"]["model"] == gpu["runtimes"]["onnx"]["model"]
    assert cpu["runtimes"]["onnx"]["model"]["mlflow_version"] == exported.version


def test_cpu_and_gpu_images_give_the_same_answers(containers, multilingual):
    cpu = detect_batch(containers["cpu"], multilingual)
    gpu = detect_batch(containers["gpu"], multilingual)
    assert [r["language"] for r in cpu] == [r["language"] for r in gpu]
    assert max(abs(c["score"] - g["score"]) for c, g in zip(cpu, gpu)) <= 0.02


def test_gpu_image_torch_runner_agrees_with_the_cpu_image(containers, multilingual):
    cpu = detect_batch(containers["cpu"], multilingual)
    torch = detect_batch(containers["gpu"], multilingual, backend="torch")
    assert {r["runtime"] for r in torch} == {"torch-fp32-cpu"}
    same = [c["language"] == t["language"] for c, t in zip(cpu, torch)]
    assert sum(same) >= 0.98 * len(same)  # int8 vs fp32/fp16: rare near-ties may flip
    diffs = [abs(c["score"] - t["score"]) for c, t, s in zip(cpu, torch, same) if s]
    assert sum(diffs) / len(diffs) < 0.02 and max(diffs) < 0.1


def post_concurrently(url: str, texts: list[str], clients: int = 16, per_client: int = 25) -> list[int]:
    from concurrent.futures import ThreadPoolExecutor

    def client(worker: int) -> list[int]:
        with httpx.Client(base_url=url, timeout=60) as http:
            return [
                http.post("/detect", json={"text": texts[(worker + i) % len(texts)]}).status_code
                for i in range(per_client)
            ]

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return [code for codes in pool.map(client, range(clients)) for code in codes]


def test_cpu_image_serves_read_only_in_256_mb(built, multilingual):
    """A read-only root (a writable /tmp, as an emptyDir gives it) and a 256 MB memory limit."""
    with Container(built["cpu"].image, "--read-only", "--tmpfs", "/tmp", "--memory=256m") as container:
        container.wait_ready(timeout=120)
        codes = post_concurrently(container.url, multilingual)
        assert codes == [200] * len(codes)
        assert container.exit_code() is None  # not OOM-killed


def test_killed_worker_in_the_cpu_container_is_replaced(built):
    with Container(built["cpu"].image) as container:
        container.wait_ready(timeout=120)
        workers = worker_pids(container.pid())
        recovery = recovery_after_kill(container.url, lambda: workers[0])
        assert recovery["recovery_s"] <= 10, recovery
        assert container.exit_code() is None and worker_pids(container.pid()) not in ([], workers)


def test_docker_stop_under_load_loses_no_accepted_request(built):
    from langdetect_ops.containers import docker

    with Container(built["cpu"].image) as container:
        container.wait_ready(timeout=120)
        result = drain_under_load(
            container.url, lambda: docker("stop", "-t", "30", container.id), container.exit_code, concurrency=16
        )
    assert result.answered > 100 and result.lost == 0 and result.failed == 0, result
    assert result.exit_code == 0, result


def test_gpu_image_holds_a_cuda_build_of_torch(built):
    result = run_in(built["gpu"].image, "python", "-c", "import torch; print(torch.version.cuda or '')")
    assert result.returncode == 0 and result.stdout.strip(), result
