"""A smoke training run: MLflow tracking, registration, and fine-tuning from a local checkpoint."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import MINI_CORPUS, session_client

from langdetect_ops.config import EXPERIMENT, LANGUAGES, PROFILES, REGISTERED_MODEL
from langdetect_ops.errors import UserError
from langdetect_ops.integrity import file_sha256
from langdetect_ops.provenance import git_commit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(smoke_model):
    return session_client()


def test_smoke_model_learns(smoke_model):
    # 20 classes: chance is 5%. The tiny smoke model on 120 lines per language reaches ~85%.
    assert smoke_model.test_accuracy > 0.6
    assert 0 < smoke_model.test_macro_f1 <= 1
    assert len(smoke_model.worst_languages) == 3
    assert smoke_model.parameters > 50_000


def test_version_is_registered_with_lineage_tags(smoke_model, client):
    version = client.get_model_version(REGISTERED_MODEL, smoke_model.model_version)
    assert version.run_id == smoke_model.run_id
    assert float(version.tags["test_accuracy"]) == pytest.approx(smoke_model.test_accuracy, abs=1e-6)
    run = client.get_run(smoke_model.run_id)  # promotion selects on these: the valid split's own numbers
    assert float(version.tags["valid_accuracy"]) == pytest.approx(run.data.metrics["valid_accuracy"], abs=1e-6)
    slices = [run.data.metrics[f"valid_{name}_accuracy"] for name in ("full", "1_word", "2_words", "3_words",
                                                                        "10_chars", "20_chars")]  # fmt: skip
    assert slices[0] == pytest.approx(run.data.metrics["valid_accuracy"], abs=1e-6)
    score = float(version.tags["valid_selection_score"])
    assert score == pytest.approx(sum(slices) / len(slices), abs=1e-6) and min(slices) < score < max(slices)
    assert version.tags["data_sha256_valid"] == file_sha256(MINI_CORPUS / "valid.csv")
    assert version.tags["data_sha256"] == file_sha256(MINI_CORPUS / "train.csv")
    commit = version.tags["git_commit"]  # this checkout's HEAD, marked when tracked files differed from it
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", commit) and commit.startswith(git_commit().removesuffix("-dirty"))
    assert version.current_stage == "None"  # no stages: aliases only


def test_run_logs_params_metrics_and_artifacts(smoke_model, client):
    run = client.get_run(smoke_model.run_id)
    assert run.data.params["profile"] == "smoke"
    assert int(run.data.params["parameters"]) == smoke_model.parameters
    history = client.get_metric_history(smoke_model.run_id, "epoch_valid_accuracy")
    assert len(history) == PROFILES["smoke"].epochs
    assert run.data.metrics["test_accuracy"] == pytest.approx(smoke_model.test_accuracy)
    paths = {a.path for a in client.list_artifacts(smoke_model.run_id, "evaluation")}
    assert {"evaluation/test_confusion.png", "evaluation/test_report.json", "evaluation/test_report.md"} <= paths
    assert "tokenizer/tokenizer.json" in {a.path for a in client.list_artifacts(smoke_model.run_id, "tokenizer")}


def test_run_logs_the_ensembles_ngram_model_with_the_weight_chosen_on_valid(smoke_model, client):
    import mlflow

    from service.ngrams import NgramModel

    run = client.get_run(smoke_model.run_id)
    path = mlflow.artifacts.download_artifacts(run_id=smoke_model.run_id, artifact_path="ngrams/ngrams.npz")
    ngram = NgramModel.load(Path(path))
    assert ngram.weight == float(run.data.params["ngram_weight"]) and len(ngram.grams) == int(
        run.data.params["ngram_grams"]
    )
    assert ngram.word_weight == float(run.data.params["ngram_word_weight"])
    assert ngram.last_word_whole == float(run.data.params["ngram_last_word_whole"])
    assert ngram.gram_scoring == run.data.params["ngram_gram_scoring"] and ngram.gram_totals is not None
    assert ngram.chain_end_whole == float(run.data.params["ngram_chain_end_whole"])
    assert len(ngram.words) == int(run.data.params["ngram_words"]) > 0  # the smoke profile keeps words
    # weight 0 (the transformer alone) is on the grid, so the chosen ensemble can only match or beat it
    alone, served = run.data.metrics["transformer_valid_selection_score"], run.data.metrics["valid_selection_score"]
    assert served >= alone - 1e-9
    if ngram.weight == 0:
        assert served == pytest.approx(alone, abs=1e-9)


def test_per_language_report_covers_all_labels(smoke_model):
    import mlflow

    local = mlflow.artifacts.download_artifacts(run_id=smoke_model.run_id, artifact_path="evaluation/test_report.json")
    report = json.loads(Path(local).read_text())
    assert list(report["per_language"]) == list(LANGUAGES)
    assert len(report["confusion"]) == len(LANGUAGES)
    assert sum(map(sum, report["confusion"])) == sum(s["support"] for s in report["per_language"].values())


def test_logged_model_loads_and_predicts(smoke_model):
    import mlflow

    pipe = mlflow.transformers.load_model(f"models:/{REGISTERED_MODEL}/{smoke_model.model_version}")
    (prediction,) = pipe(["Привет, как дела? Это текст на русском языке."])
    assert prediction["label"] in LANGUAGES


def test_init_from_local_checkpoint(smoke_model, client, tmp_path):
    import mlflow

    from training.pipeline import run_training

    components = mlflow.transformers.load_model(
        f"models:/{REGISTERED_MODEL}/{smoke_model.model_version}", return_type="components"
    )
    components["model"].save_pretrained(tmp_path)
    components["tokenizer"].save_pretrained(tmp_path)
    tuned = run_training(MINI_CORPUS, "smoke", init_from=str(tmp_path), steps=30, progress=False)
    assert int(tuned.model_version) > int(smoke_model.model_version)
    assert client.get_run(tuned.run_id).data.params["init_from"] == str(tmp_path)
    # Fine-tuning keeps the checkpoint's tokenizer (no new one is trained) and starts from its weights.
    assert tuned.parameters == smoke_model.parameters
    assert tuned.test_accuracy > 0.5


def test_init_from_rejects_a_directory_without_checkpoint(isolated_env, tmp_path):
    from training.model import load_checkpoint

    with pytest.raises(UserError, match="no config.json"):
        load_checkpoint(str(tmp_path))


def test_unknown_profile_is_a_user_error(isolated_env):
    from training.pipeline import run_training

    with pytest.raises(UserError, match="unknown profile 'huge'"):
        run_training(MINI_CORPUS, "huge")


def test_killed_training_ends_its_mlflow_run_as_failed(tmp_path):
    """`kill` on `langdetect train` must not leave a run RUNNING forever in the store."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    client = MlflowClient(uri, uri)
    client.search_experiments()  # creates the store's schema now, not concurrently with the trainer
    log = tmp_path / "train.log"
    with log.open("w") as stderr:  # a file: a pipe nobody reads could fill up and stall the trainer
        train = subprocess.Popen(
            [sys.executable, "-m", "langdetect_ops.cli", "train", "--profile", "smoke", "--data", str(MINI_CORPUS)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        runs = []
        for _ in range(240):  # the run starts once the data is read and the tokenizer trained
            time.sleep(0.5)
            if train.poll() is not None:
                break
            experiment = client.get_experiment_by_name(EXPERIMENT)
            runs = client.search_runs([experiment.experiment_id]) if experiment else []
            if runs:
                break
        assert runs and train.poll() is None, f"no MLflow run while training: {log.read_text()[-2000:]}"
        train.send_signal(signal.SIGTERM)
        assert train.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        train.kill()
    assert client.get_run(runs[0].info.run_id).info.status == "FAILED"
    assert not client.search_model_versions(f"name='{REGISTERED_MODEL}'")  # nothing half-registered


def test_shorten_gives_word_prefixes_or_a_few_characters():
    import random

    from training.train import shorten

    rng = random.Random(0)
    text = "Die ausgewählte Datei konnte nicht geöffnet werden, bitte erneut versuchen"
    short = [shorten(text, rng) for _ in range(200)]
    assert all(text.startswith(s) and text[len(s) : len(s) + 1] == " " for s in short)  # whole words
    assert {len(s.split()) for s in short} == {1, 2, 3, 4, 5}
    assert all(2 <= len(shorten("無法將文件保存到所選文件夾無法將文件保存", rng)) <= 10 for _ in range(50))


def test_torchrun_with_two_cpu_ranks_registers_exactly_one_version(client, tmp_path):
    """DDP over gloo: both ranks train on their own share, rank 0 alone logs and registers."""
    from pathlib import Path

    before = client.search_model_versions(f"name='{REGISTERED_MODEL}'")
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "langdetect_ops.cli",
            "train",
            "--profile",
            "smoke",
            "--data",
            str(MINI_CORPUS),
            "--steps",
            "400",
        ],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    after = client.search_model_versions(f"name='{REGISTERED_MODEL}'")
    new = [v for v in after if v.version not in {b.version for b in before}]
    assert len(new) == 1, [v.version for v in new]
    assert result.stdout.count("registered langdetect version") == 1  # rank 1 printed nothing
    params = client.get_run(new[0].run_id).data.params
    assert params["world_size"] == "2" and params["device"] == "cpu"
    assert float(new[0].tags["test_accuracy"]) > 0.3  # 20 classes, chance 5%; a short run of the smoke model


def test_rescore_recomputes_a_versions_selection_score_on_its_own_split_only(smoke_model, client, tmp_path):
    """`langdetect rescore`: versions registered before the score get it from the same code, on the split
    they were validated on (sha256), never on another one."""
    import shutil

    from training.rescore import rescore

    number = smoke_model.model_version
    logged = float(client.get_model_version(REGISTERED_MODEL, number).tags["valid_selection_score"])
    client.delete_model_version_tag(REGISTERED_MODEL, number, "valid_selection_score")
    assert rescore(number, MINI_CORPUS) == pytest.approx(logged, abs=1e-6)
    assert float(client.get_model_version(REGISTERED_MODEL, number).tags["valid_selection_score"]) == pytest.approx(
        logged, abs=1e-6
    )
    other = shutil.copytree(MINI_CORPUS, tmp_path / "corpus")
    with open(other / "valid.csv", "a", encoding="utf-8") as fh:
        fh.write("en,One more sentence makes this another validation split.\n")
    with pytest.raises(UserError, match="is not the split version"):
        rescore(number, other)


def test_the_run_reports_every_out_of_domain_slice_and_the_command_time(smoke_model, client):
    """Reported (never used to choose): one metric per slice of each built set; the fixture has no UDHR set."""
    run = client.get_run(smoke_model.run_id)
    ood = {k: v for k, v in run.data.metrics.items() if k.startswith(("ood_", "udhr_"))}
    names = ("full", "1_word", "2_words", "3_words", "10_chars", "20_chars")
    assert sorted(ood) == sorted(f"ood_{name}_accuracy" for name in names)
    # the stand-in set is the test split: its full-text score is the run's own test accuracy
    assert ood["ood_full_accuracy"] == pytest.approx(run.data.metrics["test_accuracy"], abs=1e-6)
    assert len(run.data.tags["data_sha256_ood"]) == 64
    assert 0 < run.data.metrics["command_seconds"] < 600
