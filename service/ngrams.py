"""Character n-gram naive Bayes: the second member of the served ensemble (numpy and the standard library).

The transformer reads subword pieces in a window of a few dozen tokens; this model reads every character
1- to 5-gram of the text, the features that char-n-gram detectors (langid.py, lingua) rely on. The two
err on different texts, and their weighted sum scored above either alone on the validation split: the
bundle's `ngrams.npz` holds the per-language log-probabilities and the weight the training run chose there.

Scores are naive Bayes log-likelihoods per n-gram (their mean, scaled by len ** `length_power`), so a
long text does not drown the transformer's logits and a single word still counts.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

NGRAM_FILE = "ngrams.npz"
ORDERS = (1, 2, 3, 4, 5)
MAX_CHARS = 300  # a longer text adds nothing the first 300 characters have not said, only cost


def normalise(text: str) -> str:
    """NFKC, lower case, runs of whitespace to one space, one space at each end (word-boundary grams)."""
    words = " ".join(unicodedata.normalize("NFKC", text[: MAX_CHARS * 2]).lower().split())[:MAX_CHARS]
    return f" {words} " if words else ""


def ngrams(text: str, orders: Sequence[int] = ORDERS) -> list[str]:
    """Every character n-gram of the normalised text; the lone space is not a feature. A list, not a
    generator: Counter.update counts a list in C (the fit's counting is most of its time)."""
    text = normalise(text)
    grams = [c for c in text if c != " "] if 1 in orders else []
    for n in orders:
        if n > 1:
            grams += [text[i : i + n] for i in range(len(text) - n + 1)]
    return grams


class NgramModel:
    """log P(gram | language) for a fixed vocabulary of grams; grams outside it are ignored."""

    def __init__(
        self,
        grams: Sequence[str],
        log_probs: np.ndarray,
        weight: float,
        length_power: float,
        orders: Sequence[int] = ORDERS,
    ):
        if log_probs.shape[0] != len(grams):
            raise ValueError(f"{len(grams)} grams but {log_probs.shape[0]} rows of log-probabilities")
        self.index = {g: i for i, g in enumerate(grams)}
        self.log_probs = log_probs.astype(np.float16)  # half the memory; sums are taken in float32
        self.weight = float(weight)
        self.length_power = float(length_power)
        self.orders = tuple(int(n) for n in orders)

    def features(self, text: str) -> list[int]:
        index = self.index
        return [index[g] for g in ngrams(text, self.orders) if g in index]

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, languages): mean log-likelihood per known gram, times (grams ** length_power), each row
        shifted to a maximum of 0; a text with no known gram scores 0 for every language (no opinion)."""
        return self.scale(*self.sums(texts))

    def sums(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Summed log-likelihoods (texts, languages) and the number of known grams of each text."""
        sums = np.zeros((len(texts), self.log_probs.shape[1]), dtype=np.float32)
        counts = np.zeros(len(texts), dtype=np.float32)
        for row, text in enumerate(texts):
            idx = self.features(text)
            if idx:
                sums[row] = self.log_probs[idx].sum(axis=0, dtype=np.float32)
                counts[row] = len(idx)
        return sums, counts

    def scale(self, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        scores = sums / np.maximum(counts, 1)[:, None] ** (1.0 - self.length_power)
        return scores - scores.max(axis=1, keepdims=True)

    def combine(self, logits: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """The ensemble's logits: the transformer's plus the weighted n-gram scores."""
        return logits + self.weight * self.scores(texts) if self.weight else logits

    def save(self, path: Path) -> Path:
        grams = "\n".join(sorted(self.index, key=self.index.get))
        np.savez_compressed(
            path,
            grams=np.frombuffer(grams.encode("utf-8"), dtype=np.uint8),
            log_probs=self.log_probs,
            weight=np.float32(self.weight),
            length_power=np.float32(self.length_power),
            orders=np.asarray(self.orders, dtype=np.int8),
        )
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> NgramModel:
        with np.load(path, allow_pickle=False) as data:
            grams = bytes(data["grams"]).decode("utf-8").split("\n")
            return cls(
                grams, data["log_probs"], float(data["weight"]), float(data["length_power"]), data["orders"].tolist()
            )
