"""Fits the character n-gram naive Bayes of the ensemble (service/ngrams.py) and chooses its weight.

Counting: every 1- to 5-gram of every training text, per language. Vocabulary: each language's
`per_language` most frequent grams, so a scarce language (sw) keeps as many features as English.
Smoothing: additive (`alpha`), over that vocabulary. The weight of the n-gram scores against the
transformer's logits, and how they scale with length, are chosen on the validation split's full texts
and short slices (the selection score), never on test or the out-of-domain sets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.ngrams import MAX_ALPHABET, NGRAM_FILE, ORDERS, NgramModel, ngrams

ARTIFACT_DIR = "ngrams"  # where a training run logs NGRAM_FILE

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
LENGTH_POWERS = (0.0, 0.25, 0.5)


def count_grams(
    texts: Sequence[str], labels: Sequence[int], n_languages: int, orders: Sequence[int] = ORDERS
) -> list[Counter]:
    counts = [Counter() for _ in range(n_languages)]
    for text, label in zip(texts, labels, strict=True):
        counts[label].update(ngrams(text, orders))
    return counts


def fit(
    texts: Sequence[str],
    labels: Sequence[int],
    n_languages: int,
    per_language: int = 15000,
    alpha: float = 0.5,
    orders: Sequence[int] = ORDERS,
) -> NgramModel:
    """Naive Bayes over the union of every language's most frequent grams; weight 1, length power 0 until
    choose_weight sets them."""
    counts = count_grams(texts, labels, n_languages, orders)
    grams = sorted(within_alphabet({g for c in counts for g, _ in c.most_common(per_language)}, counts))
    matrix = np.array([[c.get(g, 0) for c in counts] for g in grams], dtype=np.float64)
    log_probs = np.log(matrix + alpha) - np.log(matrix.sum(axis=0, keepdims=True) + alpha * len(grams))
    return NgramModel(grams, log_probs.astype(np.float32), weight=1.0, length_power=0.0, orders=orders)


def within_alphabet(grams: set[str], counts: Sequence[Counter]) -> set[str]:
    """The grams the scorer can key (service/ngrams.py): no NUL, and characters among the MAX_ALPHABET
    commonest when the vocabulary would use more (30,000 grams per language use about 3,000)."""
    grams = {g for g in grams if "\0" not in g}
    alphabet = {ch for g in grams for ch in g}
    if len(alphabet) <= MAX_ALPHABET:
        return grams
    frequency = Counter()
    for language in counts:
        frequency.update({g: n for g, n in language.items() if len(g) == 1})
    keep = {" "} | {ch for ch, _ in frequency.most_common(MAX_ALPHABET - 1)}
    return {g for g in grams if set(g) <= keep}


@dataclass(frozen=True)
class WeightChoice:
    weight: float
    length_power: float
    score: float  # the mean accuracy over the slices with that weight
    transformer_only: float  # the same mean with weight 0


def choose_weight(model: NgramModel, slices: Sequence[tuple[np.ndarray, Sequence[str], np.ndarray]]) -> WeightChoice:
    """Sets and returns the grid point with the best mean accuracy over `slices`, each (transformer logits,
    texts, label indices); ties go to the smaller weight, so weight 0 (the transformer alone) wins unless
    the n-grams help."""
    transformer_only = float(np.mean([np.mean(logits.argmax(1) == gold) for logits, _, gold in slices]))
    best = WeightChoice(0.0, 0.0, transformer_only, transformer_only)
    sums = [model.sums(texts) for _, texts, _ in slices]  # once: each power only rescales them
    for power in LENGTH_POWERS:
        model.length_power = power
        scored = [(logits, model.scale(*raw), gold) for (logits, _, gold), raw in zip(slices, sums, strict=True)]
        for weight in WEIGHTS[1:]:
            score = float(np.mean([np.mean((lg + weight * ng).argmax(1) == gold) for lg, ng, gold in scored]))
            if score > best.score + 1e-9:
                best = WeightChoice(weight, power, score, transformer_only)
    model.weight, model.length_power = best.weight, best.length_power
    return best


def download_logged(run_id: str, dst: Path) -> Path | None:
    """The run's NGRAM_FILE, downloaded into `dst`; None for a run without an n-gram model."""
    import mlflow

    if not mlflow.MlflowClient().list_artifacts(run_id, ARTIFACT_DIR):
        return None
    return Path(
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"{ARTIFACT_DIR}/{NGRAM_FILE}", dst_path=dst)
    )
