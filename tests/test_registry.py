"""Promotion by alias, the export + parity gate, and the import into the BentoML store."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, session_client

from langdetect_ops.cli import main
from langdetect_ops.config import BENTO_ONNX_MODEL, BENTO_TORCH_MODEL, REGISTERED_MODEL
from langdetect_ops.errors import UserError
from langdetect_ops.integrity import file_sha256

# --- promotion and resolution, on a throwaway registry with hand-made versions --------------------


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A fresh sqlite registry with versions 1..3 of validation scores 0.90, 0.95 and 0.80; their test
    accuracies, and their full-text validation accuracies, run the other way, so a guard that looked at
    either would choose differently."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(uri, uri)
    client.create_registered_model(REGISTERED_MODEL)
    for valid, test in (("0.90", "0.95"), ("0.95", "0.90"), ("0.80", "0.99")):
        tags = {"valid_selection_score": valid, "valid_accuracy": test, "test_accuracy": test}
        client.create_model_version(REGISTERED_MODEL, source=str(tmp_path), tags=tags)
    return client


def aliases(client, version):
    return client.get_model_version(REGISTERED_MODEL, str(version)).aliases


def test_promote_sets_alias_and_leaves_a_trace(registry):
    from registry.promote import promote

    first = promote("1")
    assert (first.version, first.previous, first.changed) == ("1", None, True)
    second = promote("2", actor="ci-bot")
    assert second.previous == "1"
    assert aliases(registry, 2) == ["champion"] and aliases(registry, 1) == []
    tags = registry.get_model_version(REGISTERED_MODEL, "2").tags
    assert tags["promoted_by"] == "ci-bot" and tags["previous_champion"] == "1"
    assert tags["promoted_at"].startswith("20") and tags["promotion_forced"] == "false"


def test_promote_selects_on_the_validation_split_never_on_test(registry):
    from registry.promote import NotPromoted, promote

    promote("1")
    assert promote("2").changed  # valid 0.95 > 0.90, although test 0.90 < 0.95
    with pytest.raises(
        NotPromoted,
        match=r"not better than @champion \(version 2\) on the validation split: "
        r"80\.0000% vs 95\.0000%",
    ):
        promote("3")  # test 0.99 would win; valid 0.80 does not
    registry.set_model_version_tag(REGISTERED_MODEL, "3", "valid_selection_score", "0.95")
    with pytest.raises(NotPromoted, match="not better"):
        promote("3")  # a tie keeps the champion
    assert aliases(registry, 2) == ["champion"]


def test_promote_cannot_compare_with_a_champion_that_has_no_validation_tag(registry):
    from registry.promote import NotPromoted, promote

    promote("1")
    registry.delete_model_version_tag(REGISTERED_MODEL, "1", "valid_selection_score")
    with pytest.raises(
        NotPromoted, match=r"predates selection on the validation slices.*langdetect rescore --version 1"
    ):
        promote("2")
    assert promote("2", force=True).changed


def test_promote_refuses_a_worse_model_unless_forced(registry):
    from registry.promote import promote

    promote("2")
    with pytest.raises(UserError, match=r"not better than @champion \(version 2\)"):
        promote("3")
    assert aliases(registry, 2) == ["champion"]
    assert promote("3", force=True).changed
    assert registry.get_model_version(REGISTERED_MODEL, "3").tags["promotion_forced"] == "true"


def test_promote_refuses_to_compare_accuracies_on_different_validation_splits(registry):
    from registry.promote import promote

    registry.set_model_version_tag(REGISTERED_MODEL, "1", "data_sha256_valid", "a" * 64)
    registry.set_model_version_tag(REGISTERED_MODEL, "2", "data_sha256_valid", "b" * 64)
    promote("1")
    with pytest.raises(UserError, match=r"different splits \(sha256 bbbbbbbbbbbb… vs aaaaaaaaaaaa…\)"):
        promote("2")  # better on paper, but on another split
    assert aliases(registry, 1) == ["champion"]
    registry.set_model_version_tag(REGISTERED_MODEL, "2", "data_sha256_valid", "a" * 64)
    assert promote("2").changed  # same split: the accuracies compare


def test_promote_same_version_is_a_no_op(registry):
    from registry.promote import promote

    promote("1")
    assert not promote("1").changed


def test_promote_other_alias_does_not_touch_champion(registry):
    from registry.promote import promote

    promote("2")
    promote("3", alias="challenger")
    assert aliases(registry, 3) == ["challenger"] and aliases(registry, 2) == ["champion"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["promote", "9"], "has no version 9 (versions: 1, 2, 3)"),
        (["promote", "two"], "must be a positive integer or 'latest'"),
        (["export", "--alias", "nope"], "no version of langdetect has the alias @nope"),
        (["export", "--version", "42"], "has no version 42"),
    ],
)
def test_bad_references_exit_2_with_a_message(registry, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_out_folder_named_like_a_version_gets_a_note(registry, tmp_path, capsys):
    """`--out` is the root (files go to OUT/vN): `--out artifacts/export/v6` would nest v6/v6."""
    assert main(["export", "--alias", "nope", "--out", str(tmp_path / "v6")]) == 2
    assert "--out is the export root" in capsys.readouterr().err
    assert main(["export", "--alias", "nope", "--out", str(tmp_path / "export")]) == 2
    assert "--out is the export root" not in capsys.readouterr().err


def test_empty_registry_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    assert main(["export"]) == 2
    assert "no registered model 'langdetect'" in capsys.readouterr().err
    assert main(["promote", "1"]) == 2


def test_resolve_prefers_version_over_alias(registry):
    from registry.models import resolve

    registry.set_registered_model_alias(REGISTERED_MODEL, "champion", "1")
    assert str(resolve(registry).version) == "1"
    assert str(resolve(registry, alias="champion", version="3").version) == "3"


# --- export, parity gate and BentoML import, on the session's smoke model ---------------------------

pytest_slow = pytest.mark.slow


@pytest_slow
def test_export_imports_both_models_with_lineage(exported, smoke_model):
    import bentoml

    assert exported.version == smoke_model.model_version and exported.alias == "champion"
    for kind, name in (("onnx", BENTO_ONNX_MODEL), ("torch", BENTO_TORCH_MODEL)):
        model = bentoml.models.get(exported.tags[kind])
        assert model.tag.name == name
        labels = model.info.labels
        assert labels["mlflow_model"] == REGISTERED_MODEL and labels["mlflow_version"] == exported.version
        assert labels["mlflow_run_id"] == smoke_model.run_id and labels["mlflow_alias"] == "champion"
        files = {p.name for p in Path(model.path).iterdir() if p.is_file() and p.name != "model.yaml"}
        recorded = model.info.metadata["sha256"]
        assert set(recorded) == files
        assert all(file_sha256(Path(model.path) / name) == digest for name, digest in recorded.items())


@pytest_slow
def test_cpu_bundle_holds_only_what_the_cpu_runner_needs(exported):
    import bentoml

    onnx = bentoml.models.get(exported.tags["onnx"])
    assert set(onnx.info.metadata["sha256"]) == {"model.int8.onnx", "tokenizer.json", "labels.json", "ngrams.npz"}
    torch_files = set(bentoml.models.get(exported.tags["torch"]).info.metadata["sha256"])
    assert {"config.json", "model.safetensors", "tokenizer.json", "labels.json", "ngrams.npz"} <= torch_files


@pytest_slow
def test_both_bundles_serve_the_runs_ensemble(exported, smoke_model):
    import bentoml
    import numpy as np
    from conftest import longest_per_language

    from service.inference import OnnxClassifier, TorchClassifier, softmax

    texts, _ = longest_per_language(2)
    texts = [*texts, *(t.split()[0] for t in texts)]  # long texts and single words
    onnx = OnnxClassifier(bentoml.models.get(exported.tags["onnx"]).path)
    torch_ = TorchClassifier(bentoml.models.get(exported.tags["torch"]).path, device="cpu")
    weight = float(session_client().get_run(smoke_model.run_id).data.params["ngram_weight"])
    assert onnx.ngrams.weight == torch_.ngrams.weight == pytest.approx(weight)
    assert onnx.ngrams.grams == torch_.ngrams.grams  # one file, copied into both
    served = onnx.probabilities(texts)
    ngrams, onnx.ngrams = onnx.ngrams, None
    alone = onnx.text_logits(texts)
    np.testing.assert_allclose(served, softmax(alone + weight * ngrams.scores(texts)), atol=1e-6)
    if weight:
        assert not np.allclose(served, softmax(alone), atol=1e-3), "the n-gram scores changed nothing"


@pytest_slow
def test_the_int8_answer_for_a_text_does_not_depend_on_its_batch(exported, tmp_path):
    """Adaptive batching puts a request beside whatever else arrived: with per-token activation scales
    (the export's default) its logits are those it gets alone. One scale per batch (`--activation-scales
    batch`) moves them."""
    import shutil

    import bentoml
    import numpy as np
    from conftest import isolated_out, longest_per_language

    from langdetect_ops import config
    from registry.onnx_export import quantize_int8
    from service.inference import OnnxClassifier

    texts, _ = longest_per_language(2)
    texts = [*texts, *(t[:12] for t in texts), "OK", "x" * 400]  # mixed lengths: padding inside the batch
    bundle = shutil.copytree(bentoml.models.get(exported.tags["onnx"]).path, tmp_path / "bundle")
    fp32 = isolated_out(None) / f"v{exported.version}" / config.FP32_FILE  # the export's fp32 graph
    quantize_int8(fp32, bundle / "batch.onnx", activation_scales="batch")
    differences = {}
    for name in (config.INT8_FILE, "batch.onnx"):
        onnx = OnnxClassifier(bundle, model_file=name)
        onnx.ngrams = None  # the transformer's logits, the part quantisation touches
        batched = onnx.text_logits(texts)
        alone = np.concatenate([onnx.text_logits([text]) for text in texts])
        differences[name] = float(np.abs(batched - alone).max())
    assert differences[config.INT8_FILE] <= 1e-5, differences  # the exported default, "token"
    assert differences["batch.onnx"] > 1e-5, differences  # why "token" is the default
    tags = session_client().get_model_version(REGISTERED_MODEL, exported.version).tags
    assert tags["int8_activation_scales"] == "token"


@pytest_slow
def test_export_is_logged_and_linked_to_the_version(exported):
    import bentoml

    client = session_client()
    tags = client.get_model_version(REGISTERED_MODEL, exported.version).tags
    onnx = bentoml.models.get(exported.tags["onnx"])
    assert tags["onnx_int8_sha256"] == onnx.info.metadata["sha256"]["model.int8.onnx"]
    assert float(tags["parity_agreement"]) >= 0.995 and tags["parity_passed"] == "true"
    assert int(tags["onnx_int8_bytes"]) < int(tags["onnx_fp32_bytes"]) / 2
    logged = {a.path for a in client.list_artifacts(tags["export_run_id"], "onnx")}
    assert logged == {"onnx/model.onnx", "onnx/model.int8.onnx", "onnx/parity.json"}


@pytest_slow
def test_parity_report_is_consistent(exported):
    report = exported.report
    assert report.passed and report.texts > 100
    assert report.accuracy_torch - report.accuracy_onnx_int8 <= 0.003
    assert abs(report.accuracy_onnx_fp32 - report.accuracy_torch) < 0.002  # fp32 ONNX == torch


@pytest_slow
def test_export_twice_creates_no_duplicate(exported, tmp_path):
    import bentoml

    from registry.export import run_export

    before = {m: len(bentoml.models.list(m)) for m in (BENTO_ONNX_MODEL, BENTO_TORCH_MODEL)}
    again = run_export(version=exported.version, out_dir=tmp_path)
    assert again.tags == exported.tags and again.created == {"onnx": False, "torch": False}
    assert {m: len(bentoml.models.list(m)) for m in before} == before


def test_import_finds_an_existing_version_instead_of_duplicating_it(isolated_env, tmp_path):
    import bentoml

    from registry.bento_store import import_bundle

    name = "bundle-under-test"  # not a name the services load
    (tmp_path / "weights.bin").write_text("weights of 1")
    lineage = {"mlflow_version": "1", "mlflow_run_id": "run1" * 4}
    first = import_bundle(name, tmp_path, lineage)
    again = import_bundle(name, tmp_path, lineage)
    assert first.created and not again.created and again.tag == first.tag
    assert len(bentoml.models.list(name)) == 1
    # other files under the same version (a re-export by newer code): the stale copy is replaced
    (tmp_path / "weights.bin").write_text("weights of 1, repacked")
    replaced = import_bundle(name, tmp_path, lineage)
    assert replaced.created and replaced.tag == first.tag and len(bentoml.models.list(name)) == 1
    stored = Path(bentoml.models.get(first.tag).path) / "weights.bin"
    assert stored.read_text() == "weights of 1, repacked"


def test_a_failed_replacement_puts_the_stale_copy_back(isolated_env, tmp_path, monkeypatch):
    import bentoml

    from registry import bento_store

    name = "bundle-under-test-2"  # the store is the session's: a name of its own keeps the count exact
    lineage = {"mlflow_version": "2", "mlflow_run_id": "run2" * 4}
    (tmp_path / "weights.bin").write_text("weights of 2")
    first = bento_store.import_bundle(name, tmp_path, lineage)
    (tmp_path / "weights.bin").write_text("weights of 2, repacked")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bento_store.shutil, "copy2", full_disk)
    with pytest.raises(OSError, match="No space left"):
        bento_store.import_bundle(name, tmp_path, lineage)
    stored = Path(bentoml.models.get(first.tag).path) / "weights.bin"
    assert stored.read_text() == "weights of 2" and len(bentoml.models.list(name)) == 1


def break_classifier_bias(int8_path: Path) -> None:
    """Pushes one class's output bias far up: the model then answers that class for everything."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(int8_path))
    biases = [t for t in graph.graph.initializer if list(t.dims) == [20] and t.data_type == onnx.TensorProto.FLOAT]
    assert biases, "no 20-way bias in the exported graph"
    for tensor in biases:
        values = numpy_helper.to_array(tensor).copy()
        values[0] += 1000.0
        tensor.CopyFrom(numpy_helper.from_array(values.astype(np.float32), tensor.name))
    onnx.save(graph, str(int8_path))


@pytest_slow
def test_parity_gate_rejects_a_broken_quantized_model(exported, smoke_model, tmp_path):
    import bentoml

    from registry.export import run_export
    from registry.parity import ParityError

    client = session_client()
    original = client.get_model_version(REGISTERED_MODEL, smoke_model.model_version)
    twin = client.create_model_version(REGISTERED_MODEL, original.source, run_id=original.run_id)
    before = len(bentoml.models.list(BENTO_ONNX_MODEL))
    with pytest.raises(ParityError, match="parity gate failed.*nothing was imported"):
        run_export(version=str(twin.version), out_dir=tmp_path, tamper=break_classifier_bias)
    assert len(bentoml.models.list(BENTO_ONNX_MODEL)) == before
    assert client.get_model_version(REGISTERED_MODEL, str(twin.version)).tags["parity_passed"] == "false"


@pytest_slow
def test_fp32_onnx_computes_the_torch_logits_and_the_figures_are_logged(exported):
    from registry.parity import MAX_FP32_LOGIT_DIFF

    fp32 = exported.fp32
    assert fp32.passed and fp32.texts == exported.report.texts
    assert fp32.max_abs_logit_diff <= MAX_FP32_LOGIT_DIFF and fp32.argmax_agreement == 1.0
    client = session_client()
    tags = client.get_model_version(REGISTERED_MODEL, exported.version).tags
    assert tags["fp32_check_passed"] == "true"
    metrics = client.get_run(tags["export_run_id"]).data.metrics
    assert metrics["fp32_max_abs_logit_diff"] == pytest.approx(fp32.max_abs_logit_diff)
    assert metrics["fp32_argmax_agreement"] == 1.0 and metrics["fp32_passed"] == 1.0


@pytest_slow
def test_fp32_check_rejects_an_onnx_graph_that_is_not_the_torch_model(twin, tmp_path, monkeypatch):
    """A wrong fp32 graph (as from a broken exporter) fails the export before the int8 gate is looked at."""
    import bentoml

    from langdetect_ops.fetch import BUNDLE_PATH_TAG
    from registry import export as export_step
    from registry.onnx_export import export_onnx
    from registry.parity import ParityError

    def export_wrongly(model, out_path, max_length):
        break_classifier_bias(export_onnx(model, out_path, max_length))
        return out_path

    monkeypatch.setattr(export_step, "export_onnx", export_wrongly)
    before = len(bentoml.models.list(BENTO_ONNX_MODEL))
    with pytest.raises(ParityError, match=r"fp32 ONNX check failed.*nothing was imported"):
        export_step.run_export(version=str(twin.version), out_dir=tmp_path)
    assert len(bentoml.models.list(BENTO_ONNX_MODEL)) == before
    tags = session_client().get_model_version(REGISTERED_MODEL, str(twin.version)).tags
    assert tags["fp32_check_passed"] == "false" and float(tags["fp32_max_abs_logit_diff"]) > 100
    assert BUNDLE_PATH_TAG not in tags  # no fetcher may take an older bundle for this version


@pytest_slow
def test_cpu_bundle_runs_without_torch_or_transformers(exported):
    import bentoml

    model_dir = bentoml.models.get(exported.tags["onnx"]).path
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('torch', 'transformers'):
                    raise ImportError('blocked: ' + name)
        sys.meta_path.insert(0, Block())
        from service.inference import OnnxClassifier
        clf = OnnxClassifier({str(model_dir)!r})
        probs = clf.probabilities(['Dies ist ein deutscher Satz.', 'これは日本語の文です。'])
        assert probs.shape == (2, 20), probs.shape
        assert not any(m.split('.')[0] in ('torch', 'transformers') for m in sys.modules)
        print('ok', [clf.labels[i] for i in probs.argmax(1)])
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")


def test_promote_latest_picks_the_newest_version(registry):
    from registry.promote import promote

    promote("2")
    assert promote("latest", force=True).version == "3"


def test_promote_cli_exits_3_and_keeps_the_champion_when_not_better(registry, capsys):
    from registry.promote import promote

    promote("2")
    with pytest.raises(SystemExit) as exited:
        main(["promote", "3"])
    assert exited.value.code == 3
    assert "not promoted: version 3 is not better than @champion (version 2)" in capsys.readouterr().err
    assert aliases(registry, 2) == ["champion"]


def test_a_champion_without_validation_tags_is_judged_by_its_runs_metrics(registry, tmp_path):
    """Versions registered before the tag: their training run logged valid_selection_score (`rescore`)."""
    from registry.promote import NotPromoted, promote

    run = registry.create_run(registry.create_experiment("legacy"))
    registry.log_metric(run.info.run_id, "valid_selection_score", 0.97)
    legacy = registry.create_model_version(
        REGISTERED_MODEL, source=str(tmp_path), run_id=run.info.run_id, tags={"test_accuracy": "0.50"}
    )
    promote(legacy.version)
    with pytest.raises(NotPromoted, match=r"95\.0000% vs 97\.0000%"):
        promote("2")
