"""Every detector the bench compares, behind one shape: `load(threads)` gives `predict(texts) -> codes`.

A prediction is one of the 20 labels or None (no answer, or a language outside the 20): None is
counted wrong. Ours: the int8 ONNX model (what the CPU runner serves), the fp32 ONNX model and the
torch checkpoint, all from the champion's export directory.
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
    from registry.export import FP32_FILE, INT8_FILE

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
    ]


def _onnx(onnx_dir: Path, model_file: str, threads: int) -> Predict:
    from service.inference import OnnxClassifier

    return _argmax_labels(OnnxClassifier(onnx_dir, model_file=model_file, threads=threads))


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
