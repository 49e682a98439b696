"""Text -> language scores, shared by both runners and by the export parity gate.

Imports only numpy and tokenizers at module level; onnxruntime and torch are imported by the
classifier that needs them, so the CPU image never loads torch.

Long texts: the tokenizer truncates to the model's window (the first `max_length` tokens, which
is plenty to tell a language apart); texts are also cut to MAX_CHARS_SCORED characters first,
so a huge text costs no more than a long one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAX_CHARS_SCORED = 2000
PAD_ID = 1
LABELS_FILE = "labels.json"


def load_tokenizer(path: Path, max_length: int):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=PAD_ID, pad_token="<pad>")
    return tokenizer


def encode(tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    encodings = tokenizer.encode_batch([t[:MAX_CHARS_SCORED] for t in texts])
    ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
    mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def write_labels(directory: Path, languages: Sequence[str], max_length: int) -> Path:
    path = Path(directory) / LABELS_FILE
    path.write_text(json.dumps({"labels": list(languages), "max_length": max_length}, indent=1))
    return path


def read_labels(directory: Path) -> tuple[list[str], int]:
    spec = json.loads((Path(directory) / LABELS_FILE).read_text())
    return spec["labels"], int(spec["max_length"])


def load_ngrams(directory: Path):
    """The bundle's n-gram model, or None for a bundle of a run without one (the transformer alone)."""
    from service.ngrams import NGRAM_FILE, NgramModel

    path = Path(directory) / NGRAM_FILE
    return NgramModel.load(path) if path.is_file() else None


class Classifier:
    """Batches texts by length (less padding), returns probabilities in input order."""

    labels: list[str]
    batch_size = 64
    ngrams = None  # the bundle's n-gram model (service/ngrams.py), added to the logits when present

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return softmax(self.text_logits(texts))

    def text_logits(self, texts: Sequence[str]) -> np.ndarray:
        """float32 logits in input order (the export's fp32 check compares these, not probabilities)."""
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start : start + self.batch_size]
            ids, mask = encode(self.tokenizer, [texts[i] for i in idx])
            out[idx] = self.logits(ids, mask)
        return self.ngrams.combine(out, texts) if self.ngrams is not None else out

    def logits(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class OnnxClassifier(Classifier):
    """The CPU path: an (int8) ONNX graph with onnxruntime, tokenizers and numpy only."""

    def __init__(
        self, model_dir: Path, model_file: str = "model.int8.onnx", threads: int | None = None, spin: bool = True
    ):
        import onnxruntime as ort

        model_dir = Path(model_dir)
        self.labels, max_length = read_labels(model_dir)
        self.tokenizer = load_tokenizer(model_dir / "tokenizer.json", max_length)
        self.ngrams = load_ngrams(model_dir)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spin:  # idle pool threads sleep instead of spinning on cores the HTTP side needs
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_dir / model_file), options, providers=["CPUExecutionProvider"])

    def logits(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]


class TorchClassifier(Classifier):
    """The torch path of the GPU service: transformers on CUDA in fp16 when present, else CPU fp32."""

    def __init__(self, model_dir: Path, device: str | None = None, dtype=None):
        import torch
        from transformers import AutoModelForSequenceClassification

        model_dir = Path(model_dir)
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = dtype or (torch.float16 if self.device.startswith("cuda") else torch.float32)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=dtype)
        self.model.to(self.device).eval()
        self.labels, max_length = read_labels(model_dir)
        self.tokenizer = load_tokenizer(model_dir / "tokenizer.json", max_length)
        self.ngrams = load_ngrams(model_dir)

    def logits(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            out = self.model(
                input_ids=torch.from_numpy(ids).to(self.device), attention_mask=torch.from_numpy(mask).to(self.device)
            ).logits
        return out.float().cpu().numpy()
