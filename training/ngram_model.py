"""Fits the character n-gram naive Bayes of the ensemble (service/ngrams.py) and chooses its weight.

Counting: every 1- to 5-gram of every training text, per language. Vocabulary: each language's
`per_language` most frequent grams, so a scarce language (sw) keeps as many features as English.
Smoothing: additive (`alpha`), over that vocabulary. Words: each language's `words_per_language` most
frequent whole words, with their counts (the model smooths them with `word_alpha`). The weight of the
n-gram scores against the transformer's logits, how they scale with length, how much a known word
counts, how likely a text's last word is whole (rather than cut off) and whether the grams are read as a
sum or as a chain (service/ngrams.py) are chosen on the validation split's full texts and short slices
(the selection score), never on test or the out-of-domain sets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

from service.ngrams import (
    GRAM_SCORINGS,
    MAX_ALPHABET,
    MAX_WORD,
    NGRAM_FILE,
    ORDERS,
    NgramModel,
    mix_chain_end,
    mix_last_word,
    ngrams,
    normalise,
)

ARTIFACT_DIR = "ngrams"  # where a training run logs NGRAM_FILE

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
LENGTH_POWERS = (0.0, 0.25, 0.5)
WORD_WEIGHTS = (0.0, 2.0, 4.0, 8.0)  # how many grams a known word counts as; 0: grams only
# how likely a text's last word is whole rather than cut off (service/ngrams.py); 1: always whole
LAST_WORD_WHOLE = (1.0, 0.8, 0.5, 0.2)
# read as a chain, how likely a text's end is a word's end (service/ngrams.py); 1: always
CHAIN_END_WHOLE = (1.0, 0.8, 0.5, 0.2)


def count_grams(
    texts: Sequence[str], labels: Sequence[int], n_languages: int, orders: Sequence[int] = ORDERS
) -> list[Counter]:
    return count_features(texts, labels, n_languages, lambda text: ngrams(text, orders))


def count_words(texts: Sequence[str], labels: Sequence[int], n_languages: int) -> list[Counter]:
    return count_features(texts, labels, n_languages, lambda text: normalise(text).split())


def count_features(
    texts: Sequence[str], labels: Sequence[int], n_languages: int, features: Callable[[str], list[str]]
) -> list[Counter]:
    """Per language, how often each feature of its texts occurs."""
    counts = [Counter() for _ in range(n_languages)]
    for text, label in zip(texts, labels, strict=True):
        counts[label].update(features(text))
    return counts


def fit(
    texts: Sequence[str],
    labels: Sequence[int],
    n_languages: int,
    per_language: int = 15000,
    alpha: float = 0.5,
    orders: Sequence[int] = ORDERS,
    words_per_language: int = 0,
    word_alpha: float = 0.1,
) -> NgramModel:
    """Naive Bayes over the union of every language's most frequent grams (and words); weight 1, length
    power 0 and word weight 1 until choose_weight sets them."""
    counts = count_grams(texts, labels, n_languages, orders)
    grams = sorted(within_alphabet({g for c in counts for g, _ in c.most_common(per_language)}, counts))
    matrix = np.array([[c.get(g, 0) for c in counts] for g in grams], dtype=np.float64)
    log_probs = np.log(matrix + alpha) - np.log(matrix.sum(axis=0, keepdims=True) + alpha * len(grams))
    words, word_counts = frequent_words(texts, labels, n_languages, words_per_language)
    return NgramModel(
        grams,
        log_probs.astype(np.float32),
        weight=1.0,
        length_power=0.0,
        orders=orders,
        words=words,
        word_counts=word_counts,
        word_alpha=word_alpha,
        word_weight=1.0 if words else 0.0,
        gram_totals=matrix.sum(axis=0),
        alpha=alpha,
    )


def frequent_words(
    texts: Sequence[str], labels: Sequence[int], n_languages: int, per_language: int
) -> tuple[list[str], np.ndarray]:
    """The union of every language's `per_language` most frequent words the scorer can key (at most
    MAX_WORD characters, no NUL), sorted, and their counts (words, languages)."""
    if not per_language:
        return [], np.zeros((0, n_languages), dtype=np.uint32)
    counts = [
        Counter({w: n for w, n in c.items() if len(w) <= MAX_WORD and "\0" not in w})
        for c in count_words(texts, labels, n_languages)
    ]
    words = sorted({w for c in counts for w, _ in c.most_common(per_language)})
    return words, np.array([[c.get(w, 0) for c in counts] for w in words], dtype=np.uint32).reshape(-1, n_languages)


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
    word_weight: float
    last_word_whole: float
    gram_scoring: str
    chain_end_whole: float
    score: float  # the mean accuracy over the slices with that weight
    transformer_only: float  # the same mean with weight 0


def choose_weight(model: NgramModel, slices: Sequence[tuple[np.ndarray, Sequence[str], np.ndarray]]) -> WeightChoice:
    """Sets and returns the grid point with the best mean accuracy over `slices`, each (transformer logits,
    texts, label indices); ties go to the earlier grid point, so weight 0 (the transformer alone) wins unless
    the n-grams help, word weight 0 unless the words do, a whole last word unless the mixture does, and
    grams as a sum unless the chain does (the chain read with whole text ends unless the mixture does)."""
    transformer_only = float(np.mean([np.mean(logits.argmax(1) == gold) for logits, _, gold in slices]))
    best = WeightChoice(0.0, 0.0, 0.0, 1.0, GRAM_SCORINGS[0], 1.0, transformer_only, transformer_only)
    has_words = bool(len(model.word_keys))
    last_words = [model.last_word_terms(texts) if has_words else None for _, texts, _ in slices]
    for scoring in GRAM_SCORINGS if model.gram_totals is not None else GRAM_SCORINGS[:1]:
        model.gram_scoring = scoring
        parts = [model.parts(texts) for _, texts, _ in slices]  # once: the grid only weighs and rescales them
        chain = scoring == "chain"
        ends = [model.chain_end_terms(texts) if chain else None for _, texts, _ in slices]
        mixtures = product(
            CHAIN_END_WHOLE if chain else CHAIN_END_WHOLE[:1], LAST_WORD_WHOLE if has_words else LAST_WORD_WHOLE[:1]
        )
        for end, whole in mixtures:
            mixed = [
                _mixed_parts(part, end_terms, end, last, whole)
                for part, end_terms, last in zip(parts, ends, last_words, strict=True)
            ]
            point = {"gram_scoring": scoring, "chain_end_whole": end, "last_word_whole": whole}
            for word_weight in WORD_WEIGHTS if has_words else WORD_WEIGHTS[:1]:
                if word_weight == 0 and whole < 1:
                    continue  # no word features: nothing to mix
                sums = [(g + word_weight * w, n + word_weight * m) for g, n, w, m in mixed]
                for power in LENGTH_POWERS:
                    model.length_power = power
                    scored = [(lg, model.scale(*raw), gold) for (lg, _, gold), raw in zip(slices, sums, strict=True)]
                    for weight in WEIGHTS[1:]:
                        score = float(
                            np.mean([np.mean((lg + weight * ng).argmax(1) == gold) for lg, ng, gold in scored])
                        )
                        if score > best.score + 1e-9:
                            best = WeightChoice(
                                weight, power, word_weight, **point, score=score, transformer_only=transformer_only
                            )
    model.weight, model.length_power, model.word_weight = best.weight, best.length_power, best.word_weight
    model.last_word_whole, model.gram_scoring, model.chain_end_whole = (
        best.last_word_whole,
        best.gram_scoring,
        best.chain_end_whole,
    )
    return best


def _mixed_parts(parts, end_terms, chain_end_whole: float, last_word, last_word_whole: float):
    """NgramModel.parts of a slice with the chain's text ends and the last words mixed as the grid point says."""
    grams, gram_counts, words, word_counts = parts
    if end_terms is not None:
        grams = mix_chain_end(grams, end_terms, chain_end_whole)
    if last_word is not None:
        words, word_counts = mix_last_word(words, word_counts, *last_word, last_word_whole)
    return grams, gram_counts, words, word_counts


def download_logged(run_id: str, dst: Path) -> Path | None:
    """The run's NGRAM_FILE, downloaded into `dst`; None for a run without an n-gram model."""
    import mlflow

    if not mlflow.MlflowClient().list_artifacts(run_id, ARTIFACT_DIR):
        return None
    return Path(
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"{ARTIFACT_DIR}/{NGRAM_FILE}", dst_path=dst)
    )
