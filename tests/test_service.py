"""The HTTP API of a real `bentoml serve` of LanguageDetector (int8 ONNX and torch in the API process,
torch on CPU) over loopback."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import longest_per_language, session_client

from langdetect_ops.config import LANGUAGES

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


def test_detect_contract(http, exported):
    result = detect(http, text="Dies ist ein ganz normaler deutscher Satz über das Wetter.")
    assert set(result) == {"language", "score", "runtime", "model_version", "candidates"}
    assert result["language"] in LANGUAGES and 0 < result["score"] <= 1
    assert result["runtime"] == "onnx-int8-cpu"  # auto without CUDA: int8 is the faster CPU path
    assert result["model_version"] == exported.version
    assert result["candidates"] == [{"language": result["language"], "score": result["score"]}]


def test_top_k_candidates_are_sorted_and_consistent(http):
    result = detect(http, text="Ceci est une phrase en français.", top_k=5)
    scores = [c["score"] for c in result["candidates"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True) and sum(scores) <= 1.0001
    assert result["candidates"][0] == {"language": result["language"], "score": result["score"]}
    assert len({c["language"] for c in result["candidates"]}) == 5


@pytest.mark.parametrize(
    "backend, runtime",
    [("onnx", "onnx-int8-cpu"), ("cpu", "onnx-int8-cpu"), ("torch", "torch-fp32-cpu"), ("auto", "onnx-int8-cpu")],
)
def test_each_backend_names_what_runs(http, backend, runtime):
    text = "Это предложение написано на русском языке."
    assert detect(http, text=text, backend=backend)["runtime"] == runtime


def test_gpu_backend_without_cuda_is_refused_not_faked(http):
    response = http.post("/detect", json={"text": "Una frase qualsiasi.", "backend": "gpu"})
    assert response.status_code == 400
    assert "needs a CUDA device" in response.json()["error"] and "torch-fp32-cpu" in response.json()["error"]


def test_onnx_and_torch_agree(http, multilingual):
    texts, _ = multilingual
    cpu = http.post("/detect_batch", json={"texts": texts, "backend": "onnx"}).json()["results"]
    gpu = http.post("/detect_batch", json={"texts": texts, "backend": "torch"}).json()["results"]
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
    # int8 activations have one scale per token (the export's default): a text's scores do not depend
    # on the texts batched with it (with one scale per batch they moved by up to ~0.05)
    diffs = [abs(b["score"] - s["score"]) for b, s in zip(batch, singles)]
    assert max(diffs) < 1e-4, diffs


@pytest.mark.parametrize(
    "text",
    [
        "x" * 5000,  # far longer than the model's window: truncated, 200
        "😀🎉🚀",
        "\x00\x01\x02 control characters \x7f",
        "mixed Ελληνικά и русский 中文 العربية",
        "\u200b\u200e zero-width and RTL marks \u202e",
        "123 456 789",
        "🙂" * 3000,
    ],
)
def test_any_unicode_is_answered(http, text):
    result = detect(http, text=text)
    assert result["language"] in LANGUAGES


@pytest.mark.parametrize(
    "route, body",
    [
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
    ],
)
def test_bad_json_input_gets_4xx_with_message(http, route, body):
    response = http.post(route, json=body)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    error = response.json()  # one documented shape for every refusal
    assert set(error) == {"error", "detail"} and error["error"], error


@pytest.mark.parametrize("content", [b"not json at all", b"\xff\xfe\x00\x01binary", b"", b"[1, 2, 3]", b'"text"'])
def test_malformed_bodies_get_4xx(http, content):
    response = http.post("/detect", content=content, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert set(response.json()) == {"error", "detail"}


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "application/octet-stream"],
)
def test_wrong_content_type_gets_415(http, content_type):
    response = http.post("/detect", content=b'{"text": "hello"}', headers={"content-type": content_type})
    assert response.status_code == 415 and "application/json" in response.json()["detail"]


def test_wrong_method_gets_405_and_huge_body_413(http):
    assert http.get("/detect").status_code == 405
    huge = b'{"text": "' + b"a" * (33 * 1024 * 1024) + b'"}'
    response = http.post("/detect", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "request body too large"


def test_service_still_healthy_after_bad_input(http):
    http.post("/detect", content=b"\xff" * 1000, headers={"content-type": "application/json"})
    http.post("/detect_batch", json={"texts": [""] * 10})
    assert http.get("/readyz").status_code == 200
    assert detect(http, text="Questa è una frase italiana.")["language"] in LANGUAGES


def test_info_lineage_matches_the_pinned_champion(http, exported, smoke_model):
    import bentoml

    info = http.get("/info").json()
    assert info["auto_runtime"] == "onnx-int8-cpu"
    assert info["backends"] == {
        "auto": "onnx-int8-cpu",
        "onnx": "onnx-int8-cpu",
        "cpu": "onnx-int8-cpu",
        "torch": "torch-fp32-cpu",
    }  # no "gpu": this server has no CUDA
    assert info["labels"] == list(LANGUAGES)
    for kind, runtime in (("onnx", "onnx-int8-cpu"), ("torch", "torch-fp32-cpu")):
        loaded = info["runtimes"][kind]
        assert loaded["runtime"] == runtime and loaded["device"] == "cpu"
        params = session_client().get_run(smoke_model.run_id).data.params
        chosen = float(params["ngram_weight"])
        assert loaded["ngram_weight"] == pytest.approx(chosen)  # the ensemble the run chose on valid
        words = float(params["ngram_word_weight"]) if chosen else 0.0
        assert loaded["ngram_word_weight"] == pytest.approx(words)
        whole = float(params["ngram_last_word_whole"]) if words else 1.0
        assert loaded["ngram_last_word_whole"] == pytest.approx(whole)
        scoring = params["ngram_gram_scoring"] if chosen else "sum"
        assert loaded["ngram_gram_scoring"] == scoring
        end = float(params["ngram_chain_end_whole"]) if scoring == "chain" else 1.0
        assert loaded["ngram_chain_end_whole"] == pytest.approx(end)
        model = loaded["model"]
        assert model["mlflow_version"] == exported.version == smoke_model.model_version
        assert model["mlflow_run_id"] == smoke_model.run_id and model["mlflow_alias"] == "champion"
        stored = bentoml.models.get(exported.tags[kind])
        assert model["tag"] == str(stored.tag) and model["sha256"] == stored.info.metadata["sha256"]


def predictions_counted(metrics_text: str, language: str, version: str, runtime: str) -> float:
    """The value of langdetect_predictions_total for one label set (0 when the series does not exist yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "langdetect_predictions_total" and sample.labels == {
                "language": language,
                "model_version": version,
                "runtime": runtime,
            }:
                return sample.value
    return 0.0


def test_a_prediction_moves_its_language_counter(http, exported):
    text = "Questa frase serve a contare una previsione nelle metriche."
    language = detect(http, text=text)["language"]
    counted = lambda lang: predictions_counted(http.get("/metrics").text, lang, exported.version, "onnx-int8-cpu")  # noqa: E731
    before = {lang: counted(lang) for lang in LANGUAGES}
    detect(http, text=text)
    http.post("/detect_batch", json={"texts": [text, text]})
    after = {lang: counted(lang) for lang in LANGUAGES}
    assert after[language] - before[language] == 3
    assert all(after[lang] == before[lang] for lang in LANGUAGES if lang != language)
    assert "langdetect_prediction_score_bucket" in http.get("/metrics").text


def test_health_and_openapi_declare_every_answer(http):
    assert http.get("/livez").status_code == 200 and http.get("/readyz").status_code == 200
    paths = http.get("/docs.json").json()["paths"]
    assert {"/detect", "/detect_batch", "/info"} <= set(paths)
    assert "get" in paths["/info"]
    for route in ("/detect", "/detect_batch"):
        assert {"200", "400", "405", "413", "415"} <= set(paths[route]["post"]["responses"])


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
