"""The HTTP API of a real `bentoml serve` (both runners, torch on CPU) over loopback."""
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from langdetect_ops.config import LANGUAGES

from conftest import longest_per_language

pytestmark = pytest.mark.slow
MAX_BATCH_TEXTS = 256


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def multilingual():
    texts, labels = longest_per_language()
    assert set(labels) == set(LANGUAGES)
    return texts, labels


def detect(http, **body):
    response = http.post("/detect", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_detect_contract(http):
    result = detect(http, text="Dies ist ein ganz normaler deutscher Satz über das Wetter.")
    assert set(result) == {"language", "score", "backend", "candidates"}
    assert result["language"] in LANGUAGES and 0 < result["score"] <= 1
    assert result["backend"] == "cpu"  # auto without CUDA
    assert result["candidates"] is None


def test_top_k_candidates_are_sorted_and_consistent(http):
    result = detect(http, text="Ceci est une phrase en français.", top_k=5)
    scores = [c["score"] for c in result["candidates"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True) and sum(scores) <= 1.0001
    assert result["candidates"][0] == {"language": result["language"], "score": result["score"]}
    assert len({c["language"] for c in result["candidates"]}) == 5


def test_explicit_backends(http):
    text = "Это предложение написано на русском языке."
    assert detect(http, text=text, backend="gpu")["backend"] == "gpu"
    assert detect(http, text=text, backend="cpu")["backend"] == "cpu"


def test_cpu_and_gpu_runners_agree(http, multilingual):
    texts, _ = multilingual
    cpu = http.post("/detect_batch", json={"texts": texts, "backend": "cpu"}).json()["results"]
    gpu = http.post("/detect_batch", json={"texts": texts, "backend": "gpu"}).json()["results"]
    same = [c["language"] == g["language"] for c, g in zip(cpu, gpu)]
    assert sum(same) >= 0.98 * len(texts)  # int8 vs fp32: rare near-ties may flip
    diffs = [abs(c["score"] - g["score"]) for c, g, s in zip(cpu, gpu, same) if s]
    assert sum(diffs) / len(diffs) < 0.02 and max(diffs) < 0.1


def test_model_detects_languages_on_clear_sentences(http, multilingual):
    texts, labels = multilingual
    results = http.post("/detect_batch", json={"texts": texts}).json()["results"]
    accuracy = sum(r["language"] == label for r, label in zip(results, labels)) / len(labels)
    assert accuracy > 0.7  # the tiny smoke model; the default model is benchmarked separately


def test_batch_equals_single(http, multilingual):
    texts = multilingual[0][::3]
    batch = http.post("/detect_batch", json={"texts": texts, "top_k": 2}).json()["results"]
    singles = [detect(http, text=t, top_k=2) for t in texts]
    assert [b["language"] for b in batch] == [s["language"] for s in singles]
    # int8 activations are quantized per batch, so scores move a little with the batch's content.
    diffs = [abs(b["score"] - s["score"]) for b, s in zip(batch, singles)]
    assert sum(diffs) / len(diffs) < 0.02 and max(diffs) < 0.1


@pytest.mark.parametrize("text", [
    "x" * 5000,  # far longer than the model's window: truncated, 200
    "😀🎉🚀", "\x00\x01\x02 control characters \x7f", "mixed Ελληνικά и русский 中文 العربية",
    "\u200b\u200e zero-width and RTL marks \u202e", "123 456 789", "🙂" * 3000,
])
def test_any_unicode_is_answered(http, text):
    result = detect(http, text=text)
    assert result["language"] in LANGUAGES


@pytest.mark.parametrize("route, body", [
    ("/detect", {"text": ""}),
    ("/detect", {"text": "   \n\t "}),
    ("/detect", {"text": 42}),
    ("/detect", {"text": None}),
    ("/detect", {"text": ["a list"]}),
    ("/detect", {}),
    ("/detect", {"text": "hello", "backend": "tpu"}),
    ("/detect", {"text": "hello", "top_k": 0}),
    ("/detect", {"text": "hello", "top_k": 21}),
    ("/detect", {"text": "x" * 100_001}),
    ("/detect_batch", {"texts": []}),
    ("/detect_batch", {"texts": "not a list"}),
    ("/detect_batch", {"texts": ["fine", ""]}),
    ("/detect_batch", {"texts": ["fine", "  "]}),
    ("/detect_batch", {"texts": ["fine", 3]}),
    ("/detect_batch", {"texts": ["t"] * (MAX_BATCH_TEXTS + 1)}),
])
def test_bad_json_input_gets_4xx_with_message(http, route, body):
    response = http.post(route, json=body)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert "error" in response.text


@pytest.mark.parametrize("content", [b"not json at all", b"\xff\xfe\x00\x01binary", b"", b"[1, 2, 3]", b"\"text\""])
def test_malformed_bodies_get_4xx(http, content):
    response = http.post("/detect", content=content, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, (response.status_code, response.text)


def test_service_still_healthy_after_bad_input(http):
    http.post("/detect", content=b"\xff" * 1000, headers={"content-type": "application/json"})
    http.post("/detect_batch", json={"texts": [""] * 10})
    assert http.get("/readyz").status_code == 200
    assert detect(http, text="Questa è una frase italiana.")["language"] in LANGUAGES


def test_info_lineage_matches_the_exported_version(http, exported, smoke_model):
    import bentoml

    info = http.get("/info").json()
    assert info["available_backends"] == ["cpu", "gpu"] and info["auto_backend"] == "cpu"
    for kind in ("cpu", "gpu"):
        model = info["runners"][kind]["model"]
        assert model["mlflow_version"] == exported.version == smoke_model.model_version
        assert model["mlflow_run_id"] == smoke_model.run_id
        stored = bentoml.models.get(exported.tags["onnx" if kind == "cpu" else "torch"])
        assert model["tag"] == str(stored.tag) and model["sha256"] == stored.info.metadata["sha256"]
    assert info["runners"]["gpu"]["device"] == "cpu" and info["runners"]["cpu"]["runtime"] == "onnxruntime-int8"
    assert http.post("/info", json={}).json() == info  # POST /info is the OpenAPI-documented twin


def test_health_metrics_and_openapi(http):
    assert http.get("/livez").status_code == 200 and http.get("/readyz").status_code == 200
    detect(http, text="Metrics should count this request.")
    metrics = http.get("/metrics").text
    assert "bentoml_service_request_total" in metrics or "request_total" in metrics
    paths = http.get("/docs.json").json()["paths"]
    assert {"/detect", "/detect_batch", "/info"} <= set(paths)


def test_concurrent_clients_get_no_errors(http, server):
    """16 concurrent clients, 2,000 requests, zero errors, and the service stays ready."""
    texts = ["Hola, ¿cómo estás?", "Guten Morgen zusammen", "Bom dia a todos", "Καλημέρα σε όλους"]

    def client_loop(worker: int) -> list[int]:
        codes = []
        with httpx.Client(base_url=server.url, timeout=60) as own:
            for i in range(125):
                codes.append(own.post("/detect", json={"text": texts[(worker + i) % 4]}).status_code)
        return codes

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = [c for chunk in pool.map(client_loop, range(16)) for c in chunk]
    assert len(codes) == 2000
    assert [c for c in codes if c != 200] == []
    assert http.get("/readyz").status_code == 200
