"""`langdetect train`: dataset -> tokenizer -> model -> evaluation -> MLflow run -> registered version."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from langdetect_ops import config
from langdetect_ops.errors import UserError
from langdetect_ops.mlflow_setup import setup_mlflow
from langdetect_ops.provenance import git_commit
from langdetect_ops.slices import read_labelled_rows
from service.ngrams import NGRAM_FILE, NgramModel
from training import distributed, evaluate, ngram_model
from training import tokenizer as tok
from training.dataset import Split, load_dataset
from training.model import build_model, count_parameters, load_checkpoint
from training.tracking import log_transformers_model, register
from training.train import fit

# What promotion selects on (registry/promote.py reads the same name).
SELECTION_SCORE = "valid_selection_score"


@dataclass
class TrainSummary:
    run_id: str
    model_version: str
    test_accuracy: float
    test_macro_f1: float
    worst_languages: list[tuple[str, float]]
    parameters: int
    train_seconds: float
    total_seconds: float


def run_training(
    data_dir: Path,
    profile_name: str = "default",
    init_from: str | None = None,
    steps: int | None = None,
    overrides: dict[str, str] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> TrainSummary | None:
    """One process, or one rank of a torchrun job (training/distributed.py): every rank trains on its share
    of the data; rank 0 alone logs, evaluates and registers, and the other ranks return None."""
    if profile_name not in config.PROFILES:
        raise UserError(f"unknown profile {profile_name!r}; choose one of {', '.join(config.PROFILES)}")
    profile = config.PROFILES[profile_name]
    if steps:
        profile = replace(profile, steps=steps)
    if overrides:
        profile = config.override_profile(profile, overrides)
    started = time.perf_counter()
    splits = load_dataset(Path(data_dir))
    world = distributed.join()
    try:
        model, hf_tokenizer = _model_and_tokenizer(profile, splits["train"], init_from, seed, world)
        if not world.is_main:
            fit(model, hf_tokenizer, splits["train"], splits["valid"], profile, seed=seed, progress=False, world=world)
            return None
        return _train_and_register(
            profile_name, profile, splits, data_dir, init_from, model, hf_tokenizer, world, seed, progress, started
        )
    finally:
        distributed.leave(world)


def _train_and_register(
    profile_name, profile, splits, data_dir, init_from, model, hf_tokenizer, world, seed, progress, started
) -> TrainSummary:
    device = world.device
    mlflow = setup_mlflow()
    with mlflow.start_run(run_name=f"{profile_name}-{time.strftime('%Y%m%d-%H%M%S')}") as run:
        _log_inputs(mlflow, profile_name, profile, splits, data_dir, init_from, model, device, world)
        fitted = fit(
            model,
            hf_tokenizer,
            splits["train"],
            splits["valid"],
            profile,
            on_epoch=lambda step, m: mlflow.log_metrics(m, step=step),
            seed=seed,
            progress=progress,
            world=world,
        )
        # Every rank leaves the group at the same point, right after fit's last barrier, not minutes apart
        # (rank 1 left before rank 0's evaluation and once aborted at exit in gloo's teardown, SIGABRT).
        distributed.leave(world)
        mlflow.log_metrics({"train_seconds": fitted.seconds})
        logits = {}  # the transformer scores each evaluation set once, for the ensemble and for it alone
        ngram = _fit_ngrams(mlflow, profile, splits, evaluate.predictor(model, hf_tokenizer, None, device, logits))
        predict = evaluate.predictor(model, hf_tokenizer, ngram, device, logits)
        reports = {name: _evaluate(mlflow, predict, splits[name]) for name in ("valid", "test")}
        reports["valid"]["selection_score"] = score_valid_slices(mlflow, predict, splits["valid"])
        _log_out_of_domain(mlflow, evaluate.predictor(model, hf_tokenizer, None, device, logits), ngram)
        logits.clear()
        model.to("cpu")
        _log_tokenizer(mlflow, hf_tokenizer)
        info = log_transformers_model(mlflow, model, hf_tokenizer)
        test = reports["test"]
        version = register(
            mlflow,
            info.model_uri,
            tags=_version_tags(splits, reports, profile_name),
            description=f"profile {profile_name}, test accuracy {test['accuracy']:.4%}",
        )
        # The whole command so far (data, tokenizer, steps, evaluation, logging): the profile's time budget.
        mlflow.log_metric("command_seconds", time.perf_counter() - started)
        return TrainSummary(
            run_id=run.info.run_id,
            model_version=str(version.version),
            test_accuracy=test["accuracy"],
            test_macro_f1=test["macro_f1"],
            worst_languages=evaluate.worst_languages(test),
            parameters=count_parameters(model),
            train_seconds=fitted.seconds,
            total_seconds=time.perf_counter() - started,
        )


def score_valid_slices(mlflow, predict, valid: Split) -> float:
    """Logs the validation split's accuracy on its full texts and every short slice, and their mean, the
    score promotion selects on (registry/promote.py); returns that mean. `predict`: evaluate.predictor."""
    labels = [config.LANGUAGES[i] for i in valid.labels]
    accuracies = evaluate.slice_accuracies(predict, valid.texts, labels)
    score = evaluate.selection_score(accuracies)
    mlflow.log_metrics({**{evaluate.metric_name("valid", k): v for k, v in accuracies.items()}, SELECTION_SCORE: score})
    return score


def _fit_ngrams(mlflow, profile, splits, transformer) -> NgramModel | None:
    """The ensemble's n-gram model (training/ngram_model.py), fitted on the train split; its weight is
    chosen on the validation split's slices, where weight 0 (the transformer alone) competes too. Logged
    as ngrams/ngrams.npz, which export copies into both serving bundles."""
    if not profile.ngram_per_language:
        return None
    started = time.perf_counter()
    train, valid = splits["train"], splits["valid"]
    ngram = ngram_model.fit(
        train.texts,
        train.labels,
        len(config.LANGUAGES),
        profile.ngram_per_language,
        words_per_language=profile.ngram_words_per_language,
    )
    labels = [config.LANGUAGES[i] for i in valid.labels]
    choice = ngram_model.choose_weight(
        ngram, [(logits, s.texts, gold) for s, logits, gold in evaluate.slice_logits(transformer, valid.texts, labels)]
    )
    mlflow.log_params(
        {
            "ngram_weight": choice.weight,
            "ngram_length_power": choice.length_power,
            "ngram_word_weight": choice.word_weight,
            "ngram_last_word_whole": choice.last_word_whole,
            "ngram_gram_scoring": choice.gram_scoring,
            "ngram_chain_end_whole": choice.chain_end_whole,
            "ngram_grams": len(ngram.grams),
            "ngram_words": len(ngram.word_keys),
        }
    )
    mlflow.log_metrics(
        {
            "transformer_valid_selection_score": choice.transformer_only,
            "ngram_seconds": time.perf_counter() - started,
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.log_artifact(str(ngram.save(Path(tmp) / NGRAM_FILE)), artifact_path=ngram_model.ARTIFACT_DIR)
    return ngram


def _log_out_of_domain(mlflow, transformer, ngram) -> None:
    """Accuracy on every slice of the out-of-domain sets (`langdetect ood-set`), when they are built.

    Reported so that the experiment history shows how each recipe does out of domain; never used to choose
    (promotion reads valid_selection_score). Metrics: ood_full_accuracy, ood_1_word_accuracy, udhr_10_chars_...
    of the ensemble (what is served), and transformer_ood_... of the transformer alone when there is an
    n-gram model, to show what it adds. `transformer`: evaluate.predictor without the n-gram model.
    """
    for key, _ in config.OOD_SETS:
        path = config.OOD_DIR / f"{key}.csv"
        if not path.is_file():
            continue
        data = path.read_bytes()
        labels, texts, _ = read_labelled_rows(data)
        metrics = {}
        for text_set, logits, gold in evaluate.slice_logits(transformer, texts, labels):
            name = evaluate.metric_name(key, text_set.name)
            served = ngram.combine(logits, text_set.texts) if ngram is not None else logits
            metrics[name] = float(np.mean(served.argmax(1) == gold))
            if ngram is not None:
                metrics[f"transformer_{name}"] = float(np.mean(logits.argmax(1) == gold))
        mlflow.log_metrics(metrics)
        mlflow.set_tag(f"data_sha256_{key}", hashlib.sha256(data).hexdigest())


def _model_and_tokenizer(
    profile: config.TrainingProfile, train: Split, init_from: str | None, seed: int, world: distributed.World
):
    import torch
    from tokenizers import Tokenizer

    if init_from:
        return load_checkpoint(init_from)

    def tokenizer_json() -> str:
        sample = tok.balanced_sample(train.texts, train.labels, profile.tokenizer_sample_per_language, seed)
        return tok.train_tokenizer(sample, profile.vocab_size).to_str()

    # Trained once, on rank 0: the Unigram trainer gives slightly different pieces run to run.
    hf_tokenizer = tok.to_transformers(
        Tokenizer.from_str(distributed.from_main(world, tokenizer_json)), profile.max_length
    )
    torch.manual_seed(seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    return build_model(profile, len(hf_tokenizer)), hf_tokenizer


def _log_inputs(mlflow, profile_name, profile, splits, data_dir, init_from, model, device, world) -> None:
    mlflow.log_params(
        {
            **asdict(profile),
            "profile": profile_name,
            "init_from": init_from or "scratch",
            "data_dir": str(Path(data_dir).resolve()),
            "device": device,
            "world_size": world.size,
            "parameters": count_parameters(model),
            **{f"{name}_texts": len(split) for name, split in splits.items()},
        }
    )
    mlflow.set_tags(
        {"git_commit": git_commit(), **{f"data_sha256_{name}": split.sha256 for name, split in splits.items()}}
    )
    manifest = Path(data_dir) / "manifest.json"
    if manifest.is_file():
        mlflow.log_artifact(str(manifest), artifact_path="data")


def _log_tokenizer(mlflow, hf_tokenizer) -> None:
    """tokenizer.json on its own, as the CPU runner loads it with `tokenizers` alone."""
    with tempfile.TemporaryDirectory() as tmp:
        tok.save(hf_tokenizer, Path(tmp))
        mlflow.log_artifacts(tmp, artifact_path="tokenizer")


def _evaluate(mlflow, predict, split: Split) -> dict:
    logits = predict(split.texts)
    report = evaluate.classification_report(split.labels, logits.argmax(1).tolist(), config.LANGUAGES)
    mlflow.log_metrics(
        {
            f"{split.name}_accuracy": report["accuracy"],
            f"{split.name}_macro_f1": report["macro_f1"],
            **{f"{split.name}_recall_{lang}": s["recall"] for lang, s in report["per_language"].items()},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / f"{split.name}_report.json").write_text(json.dumps(report, indent=1))
        (out / f"{split.name}_report.md").write_text(evaluate.report_markdown(report, f"{split.name} split"))
        evaluate.plot_confusion(
            report,
            config.LANGUAGES,
            out / f"{split.name}_confusion.png",
            f"{split.name}: accuracy {report['accuracy']:.2%}",
        )
        mlflow.log_artifacts(tmp, artifact_path="evaluation")
    return report


def _version_tags(splits: dict[str, Split], reports: dict[str, dict], profile_name: str) -> dict[str, str]:
    # Promotion selects on the valid_* tags (test_* are reported, never used to choose), so they are plain
    # strings that parse as floats, with the sha256 of the split they were measured on.
    metrics = {
        f"{split}_{key}": f"{reports[split][key]:.6f}"
        for split in ("valid", "test")
        for key in ("accuracy", "macro_f1")
    }
    metrics[SELECTION_SCORE] = f"{reports['valid']['selection_score']:.6f}"
    return {
        **metrics,
        "data_sha256": splits["train"].sha256,
        "data_sha256_valid": splits["valid"].sha256,
        "data_sha256_test": splits["test"].sha256,
        "git_commit": git_commit(),
        "profile": profile_name,
    }
