"""`langdetect bench`'s pure logic: slices, peer label mapping, scoring, percentiles, targets and the report.

No peers, servers, Docker or network needed; the one test that loads a peer skips when it is not installed.
"""

import math
import re

import pytest

from bench.accuracy import score
from bench.http_load import percentiles_ms
from bench.peers import per_text, to_label
from bench.report import render
from bench.targets import MISS, NOT_MEASURED, PASS, evaluate
from langdetect_ops.slices import (
    FULL,
    FULL_TEXT,
    char_slice,
    evaluation_sets,
    first_chars,
    first_words,
    stratified_sample,
    word_slice,
)


def test_first_words_and_chars_cut_only_long_enough_texts():
    assert first_words("  Guten   Morgen zusammen ", 2) == "Guten Morgen"
    assert first_words("Hallo", 2) is None
    assert first_chars("  abcdefghijkl ", 10) == "abcdefghij"
    assert first_chars("short", 10) is None


def test_word_slices_leave_out_languages_without_spaces_and_char_slices_keep_them():
    texts = ["Das ist gut", "早上好，大家好，今天天气很好", "Hola tú"]
    labels = ["de", "zh", "es"]
    two = word_slice(texts, labels, 2)
    assert two.texts == ["Das ist", "Hola tú"] and two.labels == ["de", "es"]
    assert word_slice(texts, labels, 3).labels == ["de"]
    ten = char_slice(texts, labels, 10)
    assert ten.labels == ["de", "zh"] and ten.texts == ["Das ist gu", "早上好，大家好，今天"]
    names = [s.name for s in evaluation_sets(texts, labels)]
    assert names == [FULL, "1 word", "2 words", "3 words", "10 chars", "20 chars"]


def test_stratified_sample_caps_each_language_and_keeps_pairs():
    texts = [f"{lang}{i}" for lang in ("de", "fr") for i in range(10)] + ["sw0"]
    labels = [t[:2] for t in texts]
    picked, picked_labels = stratified_sample(texts, labels, per_language=3)
    assert sorted(picked_labels) == ["de"] * 3 + ["fr"] * 3 + ["sw"]
    assert all(t.startswith(lab) for t, lab in zip(picked, picked_labels))
    assert stratified_sample(texts, labels, 3) == (picked, picked_labels)  # same seed, same sample


@pytest.mark.parametrize(
    "code, label",
    [
        ("zh-cn", "zh"),
        ("zh-tw", "zh"),
        ("ZH", "zh"),
        ("pt_BR", "pt"),
        ("zh-Hant", "zh"),
        ("fr", "fr"),
        ("zh-Latn", None),
        ("hi-Latn", None),
        ("ko", None),
        ("und", None),
        ("", None),
        (None, None),
        ("xx", None),
    ],
)
def test_peer_codes_map_into_the_20_labels_or_none(code, label):
    assert to_label(code) == label


def test_single_threaded_peer_maps_every_answer():
    answers = {"a": "zh-cn", "b": "ko", "c": None}
    predict = per_text(answers.get)(4)
    assert predict(["a", "b", "c"]) == ["zh", None, None]


def test_lingua_answers_map_to_our_labels():
    pytest.importorskip("lingua")
    from bench.peers import lingua_detector

    detector = lingua_detector("test")
    assert detector.load(1)(["Das ist ein ganz normaler deutscher Satz.", "12345"]) == ["de", None]


def test_score_counts_outside_labels_wrong_and_macro_weighs_languages_alike():
    labels = ["de", "de", "de", "de", "sw"]
    result = score(labels, ["de", "de", "de", None, "ko"])
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["per_language"] == {"de": 0.75, "sw": 0.0}
    assert result["macro"] == pytest.approx(0.375)
    with pytest.raises(ValueError):
        score(labels, ["de"])


def test_percentiles_in_milliseconds():
    p50, p95, p99 = percentiles_ms([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert p50 == pytest.approx(50.5) and p95 == pytest.approx(95.05) and p99 == pytest.approx(99.01)
    assert all(math.isnan(p) for p in percentiles_ms([]))


def scores(accuracy: float, per_language: dict[str, float], slice_names: tuple[str, ...] = (FULL,)) -> dict:
    one = {"texts": 100, "accuracy": accuracy, "macro": accuracy, "per_language": per_language, "seconds": 1.0}
    return {name: dict(one) for name in slice_names}


OOD_SLICES = (FULL_TEXT, "1 word")


def ood_results(ours: float, peer: float = 0.85) -> dict:
    """accuracy["ood"]: the main set scored for ours and lingua on two slices, the UDHR not built."""
    detectors = {
        name: {"kind": kind, "scores": scores(acc, {"de": acc, "sw": acc}, OOD_SLICES)}
        for name, kind, acc in (("ours int8 ONNX", "ours", ours), ("lingua", "peer", peer))
    }
    return {
        "ood": {
            "name": "out of domain",
            "path": "data/ood/ood.csv",
            "built": True,
            "sha256": "ab" * 32,
            "manifest": "matches",
            "file_texts": 120,
            "counts": {
                "per_language": {"de": 100, "sw": 20},
                "per_source_type": {"appstream": {"de": 40}, "debconf": {"de": 60, "sw": 20}},
            },
            "texts_per_language": {"de": 100, "sw": 20},
            "sets": [{"name": n, "texts": 120, "languages": 2} for n in OOD_SLICES],
            "detectors": detectors,
        },
        "udhr": {
            "name": "UDHR",
            "path": "data/ood/udhr.csv",
            "built": False,
            "reason": "not built: run `langdetect ood-set`",
        },
    }


def run(route: str, concurrency: int, batch: int, rps: float, p99: float, errors: int = 0) -> dict:
    return {
        "backend": "onnx",
        "route": route,
        "concurrency": concurrency,
        "batch": batch,
        "requests": 100,
        "errors": errors,
        "seconds": 1.0,
        "rps": rps,
        "texts_per_s": rps * batch,
        "p50_ms": p99 / 2,
        "p95_ms": p99 * 0.9,
        "p99_ms": p99,
    }


def wrk(concurrency: int, rps: float, p99: float, errors: int = 0) -> dict:
    return {
        "tool": "wrk -t1",
        "route": "/detect",
        "concurrency": concurrency,
        "requests": 10_000,
        "errors": errors,
        "seconds": 10.0,
        "rps": rps,
        "p50_ms": p99 / 2,
        "p95_ms": p99 * 0.9,
        "p99_ms": p99,
        "max_ms": p99 * 2,
        "error_kinds": {"status_errors": errors} if errors else {},
    }


def fake_results(
    ours: float = 0.99,
    p99: float = 20.0,
    batch_rps: float = 30.0,
    cold: float = 0.8,
    cpu_mb: float = 200.0,
    rss: float = 250.0,
    recovery: float = 1.5,
    lost: int = 0,
    server_errors: int = 0,
    rps: float = 1200.0,
    fetch_s: float = 0.8,
    gpu_pull_s: float = 60.0,
    served: str = "2",
    modelless_mb: float | None = None,
    ood: float = 0.9,
    train_min: float = 13.0,
) -> dict:
    detectors = {
        "ours int8 ONNX": {
            "kind": "ours",
            "package": "langdetect-ops",
            "version": "v2",
            "note": "",
            "scores": scores(ours, {"de": ours, "es": ours}),
        },
        "lingua": {
            "kind": "peer",
            "package": "lingua-language-detector",
            "version": "2.1.1",
            "note": "",
            "scores": scores(0.98, {"de": 0.99, "es": 0.97}),
        },
    }
    runs = [run("/detect", 16, 1, 400.0, p99), run("/detect_batch", 2, 64, batch_rps, 500.0)]
    wrk_runs = [wrk(1, 900.0, p99 / 8), wrk(16, rps, p99), wrk(64, rps, p99 * 3, errors=0)]
    images = {
        "cpu": {
            "image": "langdetect-cpu:latest",
            "present": True,
            "size": cpu_mb * 1e6,
            "compressed": cpu_mb * 4e5,
            "cold_start_s": [cold] * 3,
            "cold_start_median_s": cold,
            "labels": {},
            "layers": [{"size": 1.5e8, "step": "runtime venv"}],
        },
        "gpu": {"image": "langdetect-gpu:latest", "present": True, "size": 5e9, "compressed": 3e9},
        "cpu-modelless": {
            "image": "langdetect-cpu-modelless:latest",
            "present": True,
            "size": (cpu_mb - 6 if modelless_mb is None else modelless_mb) * 1e6,
        },
    }
    fleet = {
        "champion_version": "2",
        "fetch": {"seconds": [fetch_s] * 5, "median_s": fetch_s, "max_s": fetch_s, "bytes": 6e6, "note": "n"},
        "registry": {
            kind: {"image": f"langdetect-{kind}:latest", "push_s": 1.0, "pull_s": pull, "pulled_bytes": 1e8}
            for kind, pull in (("cpu", 1.0), ("gpu", gpu_pull_s))
        },
        "restart": {"play_to_ready_s": 3.0, "restart_to_ready_s": 3.0, "served_version": served, "note": "n"},
    }
    drains = [
        {
            "concurrency": 16,
            "answered": 2000,
            "refused": 16,
            "failed": 0,
            "lost": lost,
            "stop_to_exit_s": 1.0,
            "exit_code": 0,
            "lost_kinds": {},
        }
    ]
    return {
        "training": {"profile": "default", "device": "cpu", "command_seconds": 60 * train_min, "train_seconds": 600},
        "meta": {
            "command": "langdetect bench --quick",
            "quick": True,
            "date": "2026-11-22",
            "seconds": 60.0,
            "section_seconds": {"accuracy": 30.0},
        },
        "machine": {"cores": 2, "cpu_model": "test CPU", "ram_bytes": 2**34},
        "accuracy": {
            "sets": [{"name": FULL, "texts": 100, "languages": 2}],
            "detectors": detectors,
            "unavailable": [{"name": "cld3", "package": "cld3-py", "reason": "not installed"}],
            "ood": ood_results(ood),
        },
        "speed": {
            "texts": 10,
            "repeats": 1,
            "detectors": {"ours int8 ONNX": {"single_thread": 900.0, "all_cores": 1500.0}},
        },
        "model": {"version": "2", "onnx_bundle_bytes": 6e6},
        "containers": {
            "available": True,
            "images": images,
            "fleet": fleet,
            "cpu_serving": {"runs": runs, "wrk": wrk_runs, "rss_idle_mb": rss - 20, "rss_peak_mb": rss},
            "faults": {
                "recovery": [{"killed_pid": 7, "recovery_s": recovery}],
                "recovery_max_s": recovery,
                "drain": drains,
                "lost_total": lost,
                "answered_during_drains": 2000,
            },
            "fuzz": {
                "tool": "schemathesis 4.32.5",
                "max_examples": 50,
                "generated": 600,
                "unique_failures": server_errors,
                "server_errors": server_errors,
                "phases": {"coverage": "success"},
                "exit_code": 0,
                "seconds": 5.0,
            },
        },
    }


def statuses(results: dict) -> dict[str, str]:
    return {t["name"]: t["status"] for t in evaluate(results)}


def test_targets_pass_when_every_goal_is_met():
    assert set(statuses(fake_results(batch_rps=20)).values()) == {PASS}


def test_targets_miss_with_a_reason_that_names_the_numbers():
    targets = {
        t["name"]: t
        for t in evaluate(
            fake_results(
                ours=0.95,
                p99=80,
                batch_rps=10,
                cold=4,
                cpu_mb=400,
                rss=350,
                recovery=9,
                lost=2,
                server_errors=3,
                rps=500,
                fetch_s=4.5,
                gpu_pull_s=10,
                served="1",
                modelless_mb=300,
                ood=0.8,
                train_min=16,
            )
        )
    }
    missed = {name for name, t in targets.items() if t["status"] == MISS}
    assert missed == set(targets) - {"/detect errors at concurrency 64"}
    accuracy = targets[f"accuracy: {FULL}"]
    assert "lingua is 3.0 points ahead" in accuracy["reason"] and "de 95% vs 99%" in accuracy["reason"]
    share = targets["/detect_batch texts/s vs the int8 model in process"]
    assert share["measured"].startswith("43%: 640 texts/s") and "37 points short" in share["reason"]
    assert "32 ms per request" in targets["/detect at concurrency 16"]["reason"]
    assert "at most 250 MB" in targets["CPU image size / GPU image size (uncompressed)"]["reason"]
    assert "50 MB over" in targets["CPU image RSS under load (whole server)"]["reason"]
    assert "3.0 s over" in targets["CPU image cold start to /readyz (median)"]["reason"]
    assert targets["requests lost on docker stop at concurrency 16"]["measured"].startswith("2 lost")
    assert targets["5xx under a schema-driven fuzzer (schemathesis, CPU image)"]["measured"].startswith("3 in 600")
    assert all(t["reason"] for t in targets.values() if t["status"] == MISS)
    assert targets["baked CPU image size"]["measured"] == "400.0 MB, 160.0 MB compressed"
    assert targets["model-less CPU image"]["measured"] == "300.0 MB vs 400.0 - 6.0 = 394.0 MB"
    assert targets["fetch-model on loopback (worst of the runs)"]["measured"].startswith("4.50 s")
    assert targets["cold pull, CPU vs GPU image"]["measured"].startswith("10.0x")
    assert "champion 2" in targets["a pod restart fetches @champion, no image built"]["reason"]
    ood = targets["out of domain: ours above every peer on every slice"]
    assert ood["reason"] == "full text: lingua 5.00 points ahead; 1 word: lingua 5.00 points ahead"
    assert ood["measured"] == "above on 0 of 2 slices; closest full text: -5.0 vs lingua"


def test_targets_not_measured_without_docker_or_peers():
    results = fake_results()
    results["containers"] = {"available": False, "reason": "no docker client"}
    results["accuracy"]["detectors"].pop("lingua")
    found = {t["name"]: t for t in evaluate(results)}
    assert found[f"accuracy: {FULL}"]["status"] == NOT_MEASURED
    assert found["CPU image cold start to /readyz (median)"] == {
        "name": "CPU image cold start to /readyz (median)",
        "goal": "<= 1.0 s",
        "status": NOT_MEASURED,
        "measured": "",
        "reason": "no docker client",
    }
    for name in (
        "/detect at concurrency 16",
        "requests lost on docker stop at concurrency 16",
        "5xx under a schema-driven fuzzer (schemathesis, CPU image)",
    ):
        assert found[name]["status"] == NOT_MEASURED and found[name]["reason"] == "no docker client"


def test_report_renders_targets_unavailable_peers_faults_and_charts():
    results = fake_results(p99=80)
    results["targets"] = evaluate(results)
    text = render(results, {"accuracy": "accuracy.png"}, "docs/bench")
    assert "| /detect at concurrency 16 | >= 1,000 req/s, p99 <= 25 ms | 1,200 req/s, p99 80.0 ms" in text
    assert "**MISS**" in text and "**PASS**" in text
    assert "cld3 (`cld3-py`): unavailable, not installed" in text and "pip install -e '.[bench]'" in text
    assert "![accuracy](docs/bench/accuracy.png)" in text
    assert "/detect under `wrk -t1`" in text and "| 16 | 10,000 | 1,200 |" in text
    assert "600 generated cases, 0 answered with a 5xx" in text
    assert "Not measured" in text  # bentoml serve was not part of these results


def test_an_image_with_another_model_is_not_judged_and_latency_falls_back_to_bentoml_serve():
    results = fake_results()
    results["model"] = {"version": "2", "run_id": "b" * 32}
    results["containers"]["images"]["cpu"]["labels"] = {
        "langdetect.onnx.mlflow_run_id": "a" * 32,
        "langdetect.onnx.mlflow_version": "1",
    }
    found = {t["name"]: t for t in evaluate(results)}
    for name in (
        "/detect_batch texts/s vs the int8 model in process",
        "CPU image cold start to /readyz (median)",
        "CPU image RSS under load (whole server)",
    ):
        assert found[name]["status"] == NOT_MEASURED and "carries MLflow version 1" in found[name]["reason"]
        assert found[name]["measured"]  # the number is still shown
    assert found["/detect at concurrency 16"]["status"] == NOT_MEASURED  # no bentoml serve numbers here
    results["serving"] = {"designs": {"variants": [{"name": "default", "wrk": [wrk(16, 1100.0, 20.0)]}]}}
    latency = {t["name"]: t for t in evaluate(results)}["/detect at concurrency 16"]
    assert latency["status"] == PASS and "bentoml serve" in latency["measured"]


def test_wrk_script_posts_json_strings_of_any_text():
    from bench.wrk import lua_script

    script = lua_script(["plain", 'it\'s "quoted"', "中文 \\ back"])
    assert "'\"plain\"'" in script and "it\\'s" in script and "\\u4e2d" in script


def test_load_results_count_only_answered_requests_as_throughput():
    """bench/http_load.py used to count failed requests in req/s."""
    import asyncio

    import httpx

    from bench import http_load

    calls = iter(range(1000))

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if next(calls) % 2 else 500, json={"results": []})

    result = asyncio.run(http_load.run_load("http://test", "/detect", 2, 100, transport=httpx.MockTransport(answer)))
    assert result.requests == 100 and result.errors == 50 and result.error_kinds == {"500": 50}
    assert result.rps == pytest.approx(50 / result.seconds)


def test_bench_without_a_champion_or_its_export_exits_2(tmp_path, monkeypatch, capsys):
    from mlflow import MlflowClient

    from langdetect_ops.cli import main

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--quick", "--allow-dirty"]) == 2
    assert "no registered model 'langdetect'" in capsys.readouterr().err
    client = MlflowClient(uri, uri)
    client.create_registered_model("langdetect")
    client.create_model_version("langdetect", source=str(tmp_path), run_id=None)
    client.set_registered_model_alias("langdetect", "champion", "1")
    assert main(["bench", "--quick", "--allow-dirty"]) == 2
    err = capsys.readouterr().err
    assert "version 1 has no export" in err and "langdetect export --version 1" in err and "Traceback" not in err


def test_readme_serving_block_is_rewritten_from_the_results(tmp_path):
    from bench.readme import BEGIN, END, update_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{BEGIN}\nold numbers typed by hand\n{END}\n\nafter\n")
    assert update_readme(readme, fake_results())
    text = readme.read_text()
    assert "old numbers" not in text and text.startswith("# title") and text.endswith("after\n")
    assert "concurrency 16 (`wrk -t1`): 1,200 requests/s" in text and "0 requests lost" in text
    (tmp_path / "other.md").write_text("no markers")
    assert not update_readme(tmp_path / "other.md", fake_results())


def test_readme_fleet_block_is_rewritten_from_the_results(tmp_path):
    from bench.readme import BEGIN, END, FLEET_BEGIN, FLEET_END, update_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\nx\n{END}\nmiddle\n{FLEET_BEGIN}\n255 MB typed by hand\n{FLEET_END}\nend\n")
    assert update_readme(readme, fake_results())
    text = readme.read_text()
    assert "typed by hand" not in text and "\nmiddle\n" in text and text.endswith("end\n")
    assert "- `langdetect-cpu:latest`: 200.0 MB, 80.0 MB compressed (runtime venv 150.0 MB)" in text
    assert "fetch-model` on loopback: 6.0 MB in 0.80 s" in text and "cold pull 60.0 s" in text
    assert "serving @champion = version 2" in text


def test_ood_target_passes_only_above_every_peer_on_every_slice_and_names_each_miss():
    results = fake_results()
    found = {t["name"]: t for t in evaluate(results)}
    assert found["out of domain: ours above every peer on every slice"]["status"] == PASS
    assert not any(name.startswith("UDHR") for name in found)  # not built: no target
    one_word = results["accuracy"]["ood"]["ood"]["detectors"]["ours int8 ONNX"]["scores"]["1 word"]
    one_word["accuracy"] = 0.85  # a tie is not above
    results["accuracy"]["ood"]["udhr"] = {**results["accuracy"]["ood"]["ood"], "name": "UDHR"}
    found = {t["name"]: t for t in evaluate(results)}
    assert found["out of domain: ours above every peer on every slice"]["status"] == MISS
    assert found["out of domain: ours above every peer on every slice"]["reason"] == "1 word: tied with lingua"
    assert found["UDHR: ours above every peer on every slice"]["status"] == MISS
    results["accuracy"].pop("ood")
    missing = {t["name"]: t for t in evaluate(results)}["out of domain: ours above every peer on every slice"]
    assert missing["status"] == NOT_MEASURED and "rerun `langdetect bench`" in missing["reason"]
    results["accuracy"]["ood"] = {"ood": ood_results(0.9)["udhr"]}
    missing = {t["name"]: t for t in evaluate(results)}["out of domain: ours above every peer on every slice"]
    assert missing["status"] == NOT_MEASURED and missing["reason"] == "not built: run `langdetect ood-set`"


def test_ood_target_counts_a_tie_at_100_percent_as_the_ceiling_and_ignores_the_ensembles_parts():
    results = {"accuracy": {"ood": ood_results(1.0, peer=1.0)}}
    ood = results["accuracy"]["ood"]["ood"]
    # each half of the ensemble alone is reported beside ours, never compared as a peer
    ood["detectors"]["ours n-grams alone"] = {**ood["detectors"]["lingua"], "kind": "ablation"}
    ood["detectors"]["ours n-grams alone"]["scores"] = scores(1.0, {"de": 1.0}, OOD_SLICES)
    found = {t["name"]: t for t in evaluate(results)}["out of domain: ours above every peer on every slice"]
    assert found["status"] == PASS, found
    ood["detectors"]["ours int8 ONNX"]["scores"]["1 word"]["accuracy"] = 0.999  # below a peer's 100%
    found = {t["name"]: t for t in evaluate(results)}["out of domain: ours above every peer on every slice"]
    assert found["status"] == MISS and found["reason"] == "1 word: lingua 0.10 points ahead"


def write_ood_csv(path, rows) -> str:
    import csv
    import hashlib

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["labels", "text", "source"])
        writer.writerows(rows)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ood_sets_are_checked_counted_sliced_and_subsampled_and_a_missing_one_is_not_built(tmp_path):
    import json

    from bench.ood_sets import load_ood_sets

    rows = [("de", f"Das ist Satz Nummer {i}", f"debconf:pkg{i % 2}") for i in range(5)]
    rows += [
        ("fr", "Voici une phrase en français", "appstream:gimp"),
        ("zh", "这是一个中文句子，很长很长", "appstream:gimp"),
    ]
    sha = write_ood_csv(tmp_path / "ood.csv", rows)
    (tmp_path / "manifest.json").write_text(json.dumps({"builder_version": "1.0", "sets": {"ood": {"sha256": sha}}}))
    ood, udhr = load_ood_sets(tmp_path, per_language=None)
    assert ood.record["built"] and ood.record["manifest"] == "matches" and ood.record["file_texts"] == 7
    assert ood.record["counts"] == {
        "per_language": {"de": 5, "fr": 1, "zh": 1},
        "per_source_type": {"appstream": {"fr": 1, "zh": 1}, "debconf": {"de": 5}},
    }
    assert [s.name for s in ood.slices] == [FULL_TEXT, "1 word", "2 words", "3 words", "10 chars", "20 chars"]
    assert ood.slices[1].labels == ["de"] * 5 + ["fr"]  # no word slices for zh
    assert udhr.slices == [] and udhr.record == {
        "name": "UDHR",
        "path": str(tmp_path / "udhr.csv"),
        "built": False,
        "reason": "not built: run `langdetect ood-set`",
    }
    quick, _ = load_ood_sets(tmp_path, per_language=2)
    assert quick.record["texts_per_language"] == {"de": 2, "fr": 1, "zh": 1} and quick.record["file_texts"] == 7
    write_ood_csv(tmp_path / "ood.csv", rows[:3])
    assert load_ood_sets(tmp_path, None)[0].record["manifest"].startswith("sha256 differs from manifest.json")


def test_accuracy_scores_every_set_with_each_detector_loaded_once_and_keeps_the_test_split_shape(tmp_path):
    from bench.detectors import Detector
    from bench.ood_sets import load_ood_sets
    from bench.run import accuracy

    write_ood_csv(tmp_path / "ood.csv", [("de", "Guten Morgen allerseits und willkommen", "udhr")])
    loads = []

    def load(threads):
        loads.append(threads)
        return lambda texts: ["de"] * len(texts)

    detectors = [
        Detector("ours int8 ONNX", "ours", "p", "v1", load, True),
        Detector("lingua", "peer", "l", "2", load, True),
    ]
    result = accuracy(detectors, [], ["Hallo Welt wie geht es"], ["de"], load_ood_sets(tmp_path, None))
    assert len(loads) == 2  # one load per detector, whatever the number of sets
    assert [s["name"] for s in result["sets"]][0] == FULL and result["texts_per_language"] == {"de": 1}
    assert result["detectors"]["lingua"]["scores"][FULL]["accuracy"] == 1.0
    ood = result["ood"]["ood"]
    assert ood["detectors"]["lingua"]["kind"] == "peer" and ood["detectors"]["lingua"]["scores"]["1 word"]["texts"] == 1
    assert result["ood"]["udhr"]["built"] is False


def test_report_shows_each_ood_set_with_the_best_of_each_column_in_bold():
    results = fake_results()
    results["targets"] = evaluate(results)
    text = render(results, {}, "docs/bench")
    assert "### Out of domain (`data/ood/ood.csv`)" in text and "No text for ar, bg," in text
    assert "| detector | full text | 1 word |" in text and "| ours int8 ONNX | **90.0%** | **90.0%** |" in text
    assert "| lingua | 85.0% | 85.0% |" in text
    assert "weakest languages on the full texts: de 90.0% (of 100), sw 90.0% (of 20)." in text
    assert "| language | appstream | debconf | texts |" in text and "| sw | 0 | 20 | 20 |" in text
    assert "### UDHR (`data/ood/udhr.csv`)\n\nNot built: run `langdetect ood-set`." in text


def test_readme_blocks_are_what_the_committed_results_render():
    """A figure edited by hand inside a generated block fails here: rerun `langdetect bench` instead."""
    import json
    from pathlib import Path

    from bench.readme import BLOCKS, with_blocks

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    assert all(b.begin in readme and b.end in readme for b in BLOCKS)
    assert with_blocks(readme, json.loads((root / "docs/bench/results.json").read_text())) == readme


def test_benchmarks_md_is_what_the_committed_results_render():
    """BENCHMARKS.md edited by hand, or left behind by results.json, fails here: rerun `langdetect bench`."""
    import json
    from pathlib import Path

    from bench.plots import CHARTS

    root = Path(__file__).resolve().parent.parent
    assets = root / "docs/bench"
    charts = {name: f"{name}.png" for name in CHARTS if (assets / f"{name}.png").is_file()}
    results = json.loads((assets / "results.json").read_text())
    assert render(results, charts, "docs/bench") == (root / "BENCHMARKS.md").read_text()


# Figures in README.md outside the generated blocks that are settings or bounds, not measurements.
NOT_MEASUREMENTS = (
    "1,200 texts per language each (`--cap 12000`: 10% each)",  # corpus caps
    "mid-word cuts for 40% of the shortened texts",  # training profile settings
    "with half the texts shortened instead of 35%",
    "at least 99.5% of texts",  # the parity gate
    "a body over 32 MiB",  # request limit
    "256 MB of memory",  # the container's limit
    "a 5 s `preStop`",  # deployment settings
    "a 45 s grace period",
)
MEASUREMENT = re.compile(
    r"(?<![\w.])\d[\d,]*(?:\.\d+)?\s?(?:%|ms\b|s\b|min\b|minutes?\b|seconds?\b|hours?\b|[KMG]i?B\b|"
    r"(?:req|requests|texts|steps)/s\b|x\b(?! \d)|parameters\b)|macro-F1 \d"
)


def test_readme_has_no_measurement_typed_outside_the_generated_blocks():
    from pathlib import Path

    from bench.readme import outside_blocks

    text = outside_blocks((Path(__file__).resolve().parent.parent / "README.md").read_text())
    for allowed in NOT_MEASUREMENTS:
        assert allowed in text, f"stale allow-list entry: {allowed!r}"
        text = text.replace(allowed, "")
    typed = [m.group(0) + " in: " + text[max(0, m.start() - 40) : m.end() + 20] for m in MEASUREMENT.finditer(text)]
    assert not typed, "measurements typed by hand in README.md (generate them in bench/readme.py):\n" + "\n".join(typed)


def git_repo(path):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "bench@test")
    git("config", "user.name", "bench test")
    (path / ".gitignore").write_text("/data/\n")
    (path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("commit", "-qm", "first")
    return git


def test_bench_refuses_a_dirty_tree_unless_allowed_and_then_marks_every_output(tmp_path):
    from bench.readme import BLOCKS, rendered
    from bench.run import git_tree, require_clean_tree
    from langdetect_ops.errors import UserError

    git = git_repo(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.csv").write_text("ignored\n")
    clean = require_clean_tree(False, tmp_path)
    assert len(clean.commit) == 40 and clean.dirty_paths == ()
    (tmp_path / "code.py").write_text("x = 2\n")
    (tmp_path / "new file.py").write_text("")
    with pytest.raises(UserError, match=r"differs from commit .* \(2 paths: code.py, new file.py\).*--allow-dirty"):
        require_clean_tree(False, tmp_path)
    assert require_clean_tree(True, tmp_path).dirty_paths == ("code.py", "new file.py")
    git("add", "-A")
    git("commit", "-qm", "second")
    git("mv", "code.py", "moved.py")
    assert git_tree(tmp_path).dirty_paths == ("moved.py",)  # a rename: its source path is not a second entry
    assert git_tree(tmp_path / "not-a-repo").commit == "unknown"

    results = fake_results()
    results["meta"] |= {"git_commit": clean.commit, "dirty": True, "dirty_paths": ["code.py", "new file.py"]}
    note = f"**Generated from a dirty tree (commit `{clean.commit[:12]}` + changes: `code.py`, `new file.py`).**"
    results["targets"] = evaluate(results)
    assert note in render(results, {}, "docs/bench")
    assert all(rendered(block, results).startswith(note) for block in BLOCKS)
    results["meta"]["dirty"] = False
    assert not any("dirty tree" in rendered(block, results) for block in BLOCKS)


def test_training_time_target_passes_within_the_budget_only():
    from bench.targets import training_time_target

    run = {"profile": "default", "device": "cpu", "train_seconds": 600.0}
    assert training_time_target({**run, "command_seconds": 899.0})["status"] == PASS
    over = training_time_target({**run, "command_seconds": 960.0})
    assert over["status"] == MISS and "1.0 min over" in over["reason"]
    assert training_time_target({**run, "profile": "smoke", "command_seconds": 10.0})["status"] == NOT_MEASURED
    assert training_time_target({"profile": "default", "train_seconds": 600.0})["status"] == NOT_MEASURED


def test_experiment_rows_say_what_differs_from_the_default_and_render_as_a_table():
    from types import SimpleNamespace

    from bench.report import experiments_section
    from bench.run import experiment_row

    default = {"steps": 7200, "vocab_size": 24000, "lr": 0.001, "char_cut_share": 0.4}
    params = {"steps": "7200", "vocab_size": "12000", "lr": "0.001", "profile": "default"}
    metrics = {"valid_selection_score": 0.904, "test_accuracy": 0.9956, "ood_10_chars_accuracy": 0.8028}
    run = SimpleNamespace(
        info=SimpleNamespace(run_id="r1", start_time=1), data=SimpleNamespace(params=params, metrics=metrics)
    )
    row = experiment_row(run, default, "5")
    assert row["changed_from_default"] == {"vocab_size": "12000"}
    assert row["fields_not_logged"] == ["char_cut_share"]
    assert row["ood"]["10_chars"] == 0.8028 and row["ood"]["full"] is None
    text = experiments_section({"experiments": {"runs": [row]}})
    assert "| v5 | vocab_size=12000 | 90.40% | 99.56% | – | – | – | – | 80.28% | – | – |" in text
    assert "Not recorded" in experiments_section({"experiments": {}})
    assert ", transformer alone |" not in text and "transformer_alone" not in row
    metrics.update({"transformer_valid_selection_score": 0.89, "transformer_ood_10_chars_accuracy": 0.79})
    row = experiment_row(run, default, "6")
    assert row["transformer_alone"] == {
        "valid_selection_score": 0.89,
        "ood": {"full": None, "1_word": None, "2_words": None, "3_words": None, "10_chars": 0.79, "20_chars": None},
    }
    text = experiments_section({"experiments": {"runs": [row]}})
    assert "| v6, transformer alone |  | 89.00% |  | – | – | – | – | 79.00% | – |  |" in text


def test_slice_keys_name_every_slice_that_evaluation_sets_cuts_in_its_order():
    from langdetect_ops.slices import SLICE_KEYS, slice_key

    sets = evaluation_sets(["Una frase con varias palabras en ella"], ["es"])
    assert tuple(slice_key(s.name) for s in sets) == SLICE_KEYS
    assert slice_key(FULL) == slice_key(FULL_TEXT) == "full"


def test_readme_accuracy_block_shows_each_half_of_the_ensemble_beside_ours():
    from bench.readme import accuracy_block

    results = fake_results()
    plain = accuracy_block(results)
    assert (
        "transformer alone" not in plain
        and "| set | slice | texts | ours (int8 ONNX, as served) | best peer |" in plain
    )
    detectors = results["accuracy"]["detectors"]
    detectors["ours int8, transformer alone"] = {**detectors["lingua"], "kind": "ablation"}
    detectors["ours int8, transformer alone"]["scores"] = scores(0.95, {"de": 0.95})
    block = accuracy_block(results)
    header = "| set | slice | texts | ours (int8 ONNX, as served) | ours int8, transformer alone | best peer |"
    assert header in block
    assert "| 99.00% | 95.00% | 98.00% (lingua) |" in block  # an ablation row is never "the best peer"
