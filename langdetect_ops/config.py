"""Configuration shared by every stage: labels, names, paths and environment variables.

The service package never imports this module (it must stay importable in the slim
CPU image without the training stack); it reads labels from the model's own config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from langdetect_ops.errors import UserError

# The label set of papluca/language-identification, in a fixed order (class index = position).
LANGUAGES: tuple[str, ...] = (
    "ar",
    "bg",
    "de",
    "el",
    "en",
    "es",
    "fr",
    "hi",
    "it",
    "ja",
    "nl",
    "pl",
    "pt",
    "ru",
    "sw",
    "th",
    "tr",
    "ur",
    "vi",
    "zh",
)
# Written without spaces between words: "words" mean nothing there (corpus filters, short-text slices).
UNSPACED_LANGUAGES = frozenset({"ja", "zh", "th"})

REGISTERED_MODEL = "langdetect"
CHAMPION_ALIAS = "champion"
# the export's ONNX files, which the bench reads back (service/inference.py names the int8 one itself: the
# serving image carries no config)
FP32_FILE, INT8_FILE = "model.onnx", "model.int8.onnx"
# int8 activation scales (registry/onnx_export.quantize_int8): one per token (the default: a text's answer
# depends on that text alone), or onnxruntime's one per batch tensor (a few % faster, batch-dependent)
INT8_ACTIVATION_SCALES = ("token", "batch")
DEFAULT_INT8_ACTIVATION_SCALES = INT8_ACTIVATION_SCALES[0]
EXPERIMENT = "langdetect"
BENTO_ONNX_MODEL = "langdetect-onnx"
BENTO_TORCH_MODEL = "langdetect-torch"

DATA_DIR = Path("data")
CORPUS_DIR = DATA_DIR / "corpus"
DOWNLOAD_CACHE = DATA_DIR / "debs"
# Held-out splits get 10% each of CORPUS_CAP texts per language; train takes up to CORPUS_TRAIN_CAP.
# More distinct training texts cost no training time (the profiles fix the steps) and generalise better
# to unseen packages than a few texts seen many times.
CORPUS_CAP = 12000
CORPUS_TRAIN_CAP = 36000
# Out-of-domain evaluation sets (training/ood.py): source types the corpus never reads.
OOD_DIR = DATA_DIR / "ood"
OOD_SETS = (("ood", "out of domain"), ("udhr", "UDHR"))  # OOD_DIR/<key>.csv (and manifest key), title
ARTIFACTS_DIR = Path("artifacts")

# papluca's dataset ships train.csv / valid.csv / test.csv with columns labels,text.
SPLITS: tuple[str, ...] = ("train", "valid", "test")


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else an embedded sqlite store in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}"


def artifact_location() -> str | None:
    """Artifacts of an embedded sqlite store live beside the database file (not in ./mlruns of
    whatever directory a command ran from); a tracking server decides for itself."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").resolve().as_uri()
    return None


def quiet_telemetry() -> None:
    """Both libraries phone home by default; this machine (and many users') cannot."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")


# Training profiles. At this budget, examples seen matter more than depth (shared/NOTES.md):
# a 2x192 model beat a 4x256 one on every slice in less time.
@dataclass(frozen=True)
class TrainingProfile:
    """The tokenizer, model size and training schedule of one `langdetect train --profile`."""

    vocab_size: int  # tokenizer pieces
    tokenizer_sample_per_language: int  # texts per language the tokenizer is trained on
    hidden_size: int
    layers: int
    heads: int
    intermediate_size: int
    max_length: int  # the model's window in tokens: its position embeddings and the truncation
    batch_size: int
    steps: int  # optimiser steps: the budget (`--steps` overrides it)
    epochs: int  # the steps split into this many epochs, each ending in a validation
    lr: float
    warmup_ratio: float  # share of the steps with a rising learning rate
    label_smoothing: float
    short_text_ratio: float  # share of training texts cut to their first words (training/train.py shorten)
    sampling_power: float  # a language with n texts is drawn with mass n ** power (1: as found, 0: uniform)
    eval_max_texts: int | None  # per-epoch validation subset; None: the whole split
    # share of the shortened texts cut after 5-30 characters, mid-word, rather than after whole words:
    # "10 chars" inputs end inside a word, which whole-word prefixes never teach
    char_cut_share: float = 0.0
    # the ensemble's character n-gram model (training/ngram_model.py): each language's most frequent
    # 1- to 5-grams kept; 0: the transformer alone
    ngram_per_language: int = 0
    # and each language's most frequent whole words (0: none); the validation split chose 10,000 over 20,000
    # and 50,000 per language, which scored within 0.03 points of it at about twice and three times the size
    ngram_words_per_language: int = 0


def override_profile(profile: TrainingProfile, overrides: dict[str, str]) -> TrainingProfile:
    """`--set field=value` of `langdetect train`: an experiment without a new profile; the run logs every field."""
    types = {f.name: f.type for f in fields(TrainingProfile)}
    changes = {}
    for name, text in overrides.items():
        if name not in types:
            raise UserError(f"--set {name}: no such profile field; fields: {', '.join(types)}")
        kind = float if "float" in str(types[name]) else int
        try:
            changes[name] = None if text == "None" and "None" in str(types[name]) else kind(text)
        except ValueError:
            raise UserError(f"--set {name}={text}: not a {kind.__name__}") from None
    return replace(profile, **changes)


PROFILES: dict[str, TrainingProfile] = {
    # Tests: a tiny model that still learns scripts; well under 2 minutes on 2 cores. 128 wide, not 64:
    # the tokenizer trainer is not deterministic (tokenizers#1794), and a 64-wide model flipped 3 to 10 of
    # ~2,000 labels under int8 from run to run, against the parity gate's 9.75; 128 wide flips 2 to 3.
    "smoke": TrainingProfile(
        vocab_size=2000,
        tokenizer_sample_per_language=400,
        hidden_size=128,
        layers=1,
        heads=2,
        intermediate_size=256,
        max_length=48,
        batch_size=32,
        steps=1200,
        epochs=3,
        lr=3e-3,
        warmup_ratio=0.05,
        label_smoothing=0.05,
        short_text_ratio=0.35,
        sampling_power=0.3,
        eval_max_texts=2000,
        ngram_per_language=2000,
        ngram_words_per_language=1000,
    ),
    # README main command: at most 15 minutes on 2 cores. Chosen on the validation split's slices among the
    # runs that BENCHMARKS.md lists under "Training experiments" (MLflow): shorter training texts made steps
    # faster. The character n-gram model of the ensemble (about 2.5 minutes to fit and weigh) is paid for
    # with 4,400 steps instead of 7,200: with it, 6,400 and 5,600 steps scored the same on validation, and
    # took 16.0 and 16.6 minutes in all on a machine that ran 8.5 steps/s instead of 11.
    "default": TrainingProfile(
        vocab_size=24000,
        tokenizer_sample_per_language=10000,
        hidden_size=192,
        layers=2,
        heads=4,
        intermediate_size=768,
        max_length=40,
        batch_size=64,
        steps=4400,
        epochs=5,
        lr=1e-3,
        warmup_ratio=0.03,
        label_smoothing=0.05,
        short_text_ratio=0.5,
        sampling_power=0.3,
        eval_max_texts=4000,
        char_cut_share=0.4,
        ngram_per_language=30000,
        ngram_words_per_language=10000,
    ),
    # Longer run that aims higher: 60 minutes on 2 cores (minutes on a GPU), but it scored below the default
    # (versions 8 and 7, README "Training"): here examples seen beat depth and a wider window.
    "full": TrainingProfile(
        vocab_size=24000,
        tokenizer_sample_per_language=10000,
        hidden_size=256,
        layers=4,
        heads=4,
        intermediate_size=1024,
        max_length=96,
        batch_size=64,
        steps=8000,
        epochs=8,
        lr=8e-4,
        warmup_ratio=0.03,
        label_smoothing=0.05,
        short_text_ratio=0.35,
        sampling_power=0.3,
        eval_max_texts=None,
        ngram_per_language=30000,
        ngram_words_per_language=10000,
    ),
}
