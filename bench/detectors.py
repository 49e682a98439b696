"""Every detector the bench compares, behind one shape: `load(threads)` gives `predict(texts) -> codes`.

A prediction is one of the 20 labels or None (no answer, or a language outside the 20): None is
counted wrong. Ours: the int8 ONNX model (what the CPU runner serves), the fp32 ONNX model and the
torch checkpoint, all from the champion's export directory, each with the bundle's n-gram model as served;
and each half of that ensemble alone (kind "ablation").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Predict = Callable[[list[str]], list]


@dataclass
class Detector:
    name: str
    kind: str  # "ours" | "peer"
    package: str  # what `pip show` knows it as
    version: str
    load: Callable[[int], Predict]  # threads -> predict; ours build a session per thread count
    multithreaded: bool  # False: the API uses one core whatever `threads` says
    note: str = ""


@dataclass
class Unavailable:
    name: str
    package: str
    reason: str


def our_detectors(export_dir: Path, version: str) -> list[Detector]:
    from langdetect_ops.config import FP32_FILE, INT8_FILE

    onnx_dir, fp32 = export_dir / "onnx", str((export_dir / FP32_FILE).resolve())
    threads_note = "onnxruntime intra_op_num_threads = threads"
    return [
        Detector(
            "ours int8 ONNX",
            "ours",
            "langdetect-ops",
            version,
            lambda threads: _onnx(onnx_dir, INT8_FILE, threads),
            True,
            threads_note,
        ),
        Detector(
            "ours fp32 ONNX",
            "ours",
            "langdetect-ops",
            version,
            lambda threads: _onnx(onnx_dir, fp32, threads),
            True,
            threads_note,
        ),
        Detector(
            "ours torch",
            "ours",
            "langdetect-ops",
            version,
            lambda threads: _torch(export_dir / "torch", threads),
            True,
            "torch.set_num_threads(threads)",
        ),
        *_ensemble_parts(onnx_dir, version),
    ]


def _ensemble_parts(onnx_dir: Path, version: str) -> list[Detector]:
    """Each half of the served ensemble alone (kind "ablation"): what the n-gram model adds, and what the
    transformer adds to it. Scored for accuracy, never timed or held to a target."""
    from langdetect_ops.config import INT8_FILE
    from service.ngrams import NGRAM_FILE

    if not (onnx_dir / NGRAM_FILE).is_file():
        return []
    return [
        Detector(
            "ours int8, transformer alone",
            "ablation",
            "langdetect-ops",
            version,
            lambda threads: _onnx(onnx_dir, INT8_FILE, threads, ngrams=False),
            True,
            "the int8 model without the n-gram scores",
        ),
        Detector(
            "ours n-grams alone",
            "ablation",
            "langdetect-ops",
            version,
            lambda threads: _ngrams_alone(onnx_dir),
            False,
            f"the character n-gram naive Bayes of {NGRAM_FILE}",
        ),
    ]


def _onnx(onnx_dir: Path, model_file: str, threads: int, ngrams: bool = True) -> Predict:
    from service.inference import OnnxClassifier

    classifier = OnnxClassifier(onnx_dir, model_file=model_file, threads=threads)
    if not ngrams:
        classifier.ngrams = None
    return _argmax_labels(classifier)


def _ngrams_alone(onnx_dir: Path) -> Predict:
    from service.inference import load_ngrams, read_labels

    ngram, (labels, _) = load_ngrams(onnx_dir), read_labels(onnx_dir)

    def predict(texts: list[str]) -> list[str]:
        return [labels[i] for i in np.argmax(ngram.scores(texts), axis=1)]

    return predict


def _torch(torch_dir: Path, threads: int) -> Predict:
    import torch

    from service.inference import TorchClassifier

    classify = _argmax_labels(TorchClassifier(torch_dir, device="cpu"))

    def predict(texts: list[str]) -> list[str]:
        torch.set_num_threads(threads)  # process-wide: set again before each use
        return classify(texts)

    return predict


def _argmax_labels(classifier) -> Predict:
    def predict(texts: list[str]) -> list[str]:
        return [classifier.labels[i] for i in np.argmax(classifier.probabilities(texts), axis=1)]

    return predict
