"""Prometheus signals of drift and of a bad rollout, served on /metrics beside BentoML's own.

`bentoml serve` runs prometheus_client in multiprocess mode (PROMETHEUS_MULTIPROC_DIR), so counts from
every worker add up on /metrics.
"""

from __future__ import annotations

from collections import Counter as Tally

import numpy as np
from prometheus_client import Counter, Histogram

PREDICTIONS = Counter(
    "langdetect_predictions_total",
    "Texts classified, by predicted language, model version "
    "and runtime: a shift in the mix is drift, a version whose mix differs is a bad rollout",
    ["language", "model_version", "runtime"],
)
SCORES = Histogram(
    "langdetect_prediction_score",
    "Probability of the predicted language: falling scores mean inputs unlike the training data",
    ["model_version", "runtime"],
    buckets=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)


def record(runtime: str, model_version: str, languages: Tally, scores: np.ndarray) -> None:
    for language, count in languages.items():
        PREDICTIONS.labels(language, model_version, runtime).inc(count)
    histogram = SCORES.labels(model_version, runtime)
    for score in scores.tolist():
        histogram.observe(score)
