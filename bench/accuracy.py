"""Accuracy of every detector on every evaluation set: overall, macro and per language.

Macro is the mean of the per-language accuracies (balanced accuracy), so a language with few
test texts (Swahili) weighs as much as the others.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bench.detectors import Detector, Predict
from langdetect_ops.slices import TextSet


def score(labels: Sequence[str], predictions: Sequence[str | None]) -> dict:
    """Accuracy numbers for one set; a None or out-of-set prediction is simply not equal to the label."""
    if len(labels) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    hits: dict[str, list[bool]] = {}
    for label, predicted in zip(labels, predictions):
        hits.setdefault(label, []).append(predicted == label)
    per_language = {lang: sum(h) / len(h) for lang, h in sorted(hits.items())}
    total = sum(sum(h) for h in hits.values())
    return {
        "texts": len(labels),
        "accuracy": total / len(labels) if labels else 0.0,
        "macro": sum(per_language.values()) / len(per_language) if per_language else 0.0,
        "per_language": per_language,
    }


def evaluate(detector: Detector, groups: dict[str, list[TextSet]], threads: int) -> dict:
    """{group: {set name: score + seconds}} for one detector, loaded once with `threads` for every group
    (the test split and each out-of-domain set)."""
    predict = detector.load(threads)
    return {group: score_sets(predict, sets) for group, sets in groups.items()}


def score_sets(predict: Predict, sets: list[TextSet]) -> dict:
    scores = {}
    for text_set in sets:
        started = time.perf_counter()
        predictions = predict(text_set.texts)
        scores[text_set.name] = {**score(text_set.labels, predictions), "seconds": time.perf_counter() - started}
    return scores
