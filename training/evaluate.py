"""Evaluation: batched predictions, accuracy, macro-F1, per-language report, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def predict_logits(
    model, tokenizer, texts: Sequence[str], max_length: int, batch_size: int = 256, device: str = "cpu"
) -> np.ndarray:
    """Logits in input order; batches are formed by length so padding stays small."""
    import torch

    model.eval()
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            ).to(device)
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
            out[idx] = logits.float().cpu().numpy()
    return out


def predictor(model, tokenizer, ngram=None, device: str = "cpu", cache: dict | None = None):
    """texts -> logits of what the service answers with: the transformer in its own window, plus the
    n-gram model's weighted scores when the run has one (service/ngrams.py). `cache` keeps the transformer's
    logits by text list, so that a run scores each evaluation set once however many predictors it uses."""
    max_length = model.config.max_position_embeddings - 2  # XLM-R positions start after the padding index

    def transformer(texts: Sequence[str]) -> np.ndarray:
        if cache is None:
            return predict_logits(model, tokenizer, texts, max_length, device=device)
        key = tuple(texts)
        if key not in cache:
            cache[key] = predict_logits(model, tokenizer, texts, max_length, device=device)
        return cache[key]

    def predict(texts: Sequence[str]) -> np.ndarray:
        logits = transformer(texts)
        return ngram.combine(logits, texts) if ngram is not None else logits

    return predict


def slice_logits(predict, texts: Sequence[str], labels: Sequence[str]) -> list[tuple]:
    """(text set, logits of `predict`, gold label indices) for the full texts and each short slice cut from
    them (langdetect_ops/slices.py)."""
    from langdetect_ops.config import LANGUAGES
    from langdetect_ops.slices import evaluation_sets

    index = {lang: i for i, lang in enumerate(LANGUAGES)}
    return [
        (s, predict(s.texts), np.asarray([index[x] for x in s.labels], dtype=np.int64))
        for s in evaluation_sets(list(texts), list(labels))
    ]


def slice_accuracies(predict, texts: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """Accuracy of `predict` (texts -> logits) on the full texts and on each short slice."""
    return {
        s.name: float(np.mean(logits.argmax(1) == gold)) for s, logits, gold in slice_logits(predict, texts, labels)
    }


def selection_score(accuracies: dict[str, float]) -> float:
    """The mean over the full texts and every slice: the service answers single words as well as
    paragraphs, so a recipe that trades short texts for long ones (or back) must win on the sum."""
    return float(np.mean(list(accuracies.values())))


def metric_name(prefix: str, slice_name: str) -> str:
    """valid + "1 word" -> valid_1_word_accuracy; the full texts are valid_full_accuracy."""
    from langdetect_ops.slices import slice_key

    return f"{prefix}_{slice_key(slice_name)}_accuracy"


def classification_report(y_true: Sequence[int], y_pred: Sequence[int], languages: Sequence[str]) -> dict:
    """Overall accuracy and macro-F1, plus precision/recall/F1/support per language."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(languages)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    per_language = {
        lang: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, lang in enumerate(languages)
    }
    return {
        "accuracy": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))),
        "macro_f1": float(np.mean(f1)),
        "per_language": per_language,
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def worst_languages(report: dict, n: int = 3) -> list[tuple[str, float]]:
    """Languages with the lowest recall (per-language accuracy)."""
    ranked = sorted(report["per_language"].items(), key=lambda kv: kv[1]["recall"])
    return [(lang, stats["recall"]) for lang, stats in ranked[:n]]


def report_markdown(report: dict, title: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"accuracy {report['accuracy']:.4%}, macro-F1 {report['macro_f1']:.4f}",
        "",
        "| language | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for lang, s in report["per_language"].items():
        lines.append(f"| {lang} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | {s['support']} |")
    return "\n".join(lines) + "\n"


def plot_confusion(report: dict, languages: Sequence[str], path: Path, title: str) -> Path:
    """Row-normalised confusion matrix, so scarce languages (sw) are as visible as large ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(report["confusion"], dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(9, 8))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(languages)), languages)
    ax.set_yticks(range(len(languages)), languages)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(languages)):
        for j in range(len(languages)):
            if counts[i, j]:
                ax.text(
                    j,
                    i,
                    int(counts[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if rates[i, j] > 0.5 else "black",
                )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
