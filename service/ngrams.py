"""Character n-gram naive Bayes: the second member of the served ensemble (numpy and the standard library).

The transformer reads subword pieces in a window of a few dozen tokens; this model reads every character
1- to 5-gram of the text, the features that char-n-gram detectors (langid.py, lingua) rely on. The two
err on different texts, and their weighted sum scored above either alone on the validation split: the
bundle's `ngrams.npz` holds the per-language log-probabilities and the weight the training run chose there.

Scores are naive Bayes log-likelihoods per n-gram (their mean, scaled by len ** `length_power`), so a
long text does not drown the transformer's logits and a single word still counts.
"""

from __future__ import annotations

import lzma
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

NGRAM_FILE = "ngrams.npz"
ORDERS = (1, 2, 3, 4, 5)
MAX_CHARS = 300  # a longer text adds nothing the first 300 characters have not said, only cost
BITS = 12  # per character of a packed gram key: 5 characters fill 60 of a uint64's bits
MAX_ORDER = 64 // BITS
UNKNOWN = (1 << BITS) - 1  # the id of every character outside the alphabet, and of the batch separator
MAX_ALPHABET = UNKNOWN - 1  # ids 1..4094; 0 pads a shorter gram's key


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
    """log P(gram | language) for a fixed vocabulary of grams; grams outside it are ignored.

    Scoring never builds a gram string: each character maps to a 12-bit id in the vocabulary's alphabet,
    a gram of up to 5 characters packs exactly into one uint64 key, and a batch's keys are looked up with
    one binary search in numpy: the same features as a dict of gram strings, a few times faster."""

    def __init__(
        self,
        grams: Sequence[str] | str,
        log_probs: np.ndarray,
        weight: float,
        length_power: float,
        orders: Sequence[int] = ORDERS,
    ):
        """`grams`: the vocabulary, as strings or as one newline-separated text (as the file stores it). The
        model keeps that text, not a list: 441k small strings would cost about 34 MB in every server."""
        self.gram_text = grams if isinstance(grams, str) else "\n".join(grams)
        n_grams = self.gram_text.count("\n") + 1 if self.gram_text else 0
        if not isinstance(grams, str) and n_grams != len(grams):
            raise ValueError("a gram holds a newline")
        if log_probs.shape[0] != n_grams:
            raise ValueError(f"{n_grams} grams but {log_probs.shape[0]} rows of log-probabilities")
        self.weight = float(weight)
        self.length_power = float(length_power)
        self.orders = tuple(int(n) for n in orders)
        self.char_ids = _alphabet_ids(self.gram_text)
        keys = self._gram_keys()
        order = np.argsort(keys)
        self.keys = keys[order]
        if len(self.keys) > 1 and not (self.keys[1:] != self.keys[:-1]).all():
            raise ValueError("the vocabulary lists a gram twice")
        self.log_probs = np.asarray(log_probs)[order].astype(np.float16, copy=False)  # sums are taken in float32

    @property
    def grams(self) -> list[str]:
        """The vocabulary, in the order it was given (a file's and the fit's: sorted)."""
        return self.gram_text.split("\n") if self.gram_text else []

    def gram_rows(self) -> np.ndarray:
        """Each gram's row in `log_probs`, which is in key order."""
        return np.searchsorted(self.keys, self._gram_keys())

    def _gram_keys(self) -> np.ndarray:
        if not self.gram_text:
            return np.zeros(0, dtype=np.uint64)
        codepoints = _codepoints(self.gram_text)
        ends = np.flatnonzero(codepoints == ord("\n"))
        starts = np.concatenate(([0], ends + 1))
        lengths = np.concatenate((ends, [len(codepoints)])) - starts
        if lengths.min() < 1 or lengths.max() > MAX_ORDER:
            raise ValueError(f"grams must have 1 to {MAX_ORDER} characters")
        ids = self.char_ids[codepoints].astype(np.uint64)
        keys = np.zeros(len(starts), dtype=np.uint64)
        for j in range(MAX_ORDER):
            longer = lengths > j
            keys[longer] |= ids[starts[longer] + j] << np.uint64(BITS * j)
        return keys

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, languages): mean log-likelihood per known gram, times (grams ** length_power), each row
        shifted to a maximum of 0; a text with no known gram scores 0 for every language (no opinion)."""
        return self.scale(*self.sums(texts))

    def sums(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Summed log-likelihoods (texts, languages) and the number of known grams of each text."""
        n_texts, n_languages = len(texts), self.log_probs.shape[1]
        sums = np.zeros((n_texts, n_languages), dtype=np.float32)
        counts = np.zeros(n_texts, dtype=np.float32)
        if not n_texts or not len(self.keys):
            return sums, counts
        normal = [normalise(t) for t in texts]
        # One array for the batch: the separator is UNKNOWN (and texts end in spaces), so no known gram spans two.
        ids = self.char_ids[_codepoints("\0".join(normal))].astype(np.uint64)
        text_of = np.repeat(np.arange(n_texts), [len(t) + 1 for t in normal])
        keys, owners, key = [], [], np.zeros(len(ids), dtype=np.uint64)
        for n in range(1, max(self.orders) + 1):
            key = key[: max(len(ids) - n + 1, 0)] | (ids[n - 1 :] << np.uint64(BITS * (n - 1)))
            if n in self.orders:
                keys.append(key)
                owners.append(text_of[: len(key)])
        key = np.concatenate(keys)
        pos = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        known = np.flatnonzero(self.keys[pos] == key)
        rows, owner = pos[known], np.concatenate(owners)[known]
        if n_texts == 1:  # a single request: no grouping to do
            sums[0] = self.log_probs[rows].sum(axis=0, dtype=np.float32)
        elif len(rows):
            by_text = np.argsort(owner, kind="stable")
            _add_segments(sums, self.log_probs[rows[by_text]], owner[by_text])
        counts += np.bincount(owner, minlength=n_texts)
        return sums, counts

    def scale(self, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        scores = sums / np.maximum(counts, 1)[:, None] ** (1.0 - self.length_power)
        return scores - scores.max(axis=1, keepdims=True)

    def combine(self, logits: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """The ensemble's logits: the transformer's plus the weighted n-gram scores."""
        return logits + self.weight * self.scores(texts) if self.weight else logits

    def save(self, path: Path) -> Path:
        """Grams in text order and log-probabilities one language at a time, each xz-compressed: lossless,
        and 40% smaller than compressed rows (most of a language's column is its smoothing floor)."""
        grams = self.grams
        order = sorted(range(len(grams)), key=grams.__getitem__)  # usually already so
        text = "\n".join(grams[i] for i in order).encode("utf-8")
        rows = self.gram_rows()[order]
        np.savez(
            path,
            grams_xz=_xz(text),
            log_probs_xz=_xz(np.ascontiguousarray(self.log_probs[rows].T).tobytes()),
            languages=np.int16(self.log_probs.shape[1]),
            weight=np.float32(self.weight),
            length_power=np.float32(self.length_power),
            orders=np.asarray(self.orders, dtype=np.int8),
        )
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> NgramModel:
        with np.load(path, allow_pickle=False) as data:
            if "log_probs" in data:  # the first format (runs up to version 3): float16 rows, zip-deflated
                grams, log_probs = bytes(data["grams"]).decode("utf-8"), data["log_probs"]
            else:
                grams = lzma.decompress(bytes(data["grams_xz"])).decode("utf-8")
                columns = np.frombuffer(lzma.decompress(bytes(data["log_probs_xz"])), dtype=np.float16)
                log_probs = columns.reshape(int(data["languages"]), -1).T
            return cls(
                grams,
                log_probs,
                float(data["weight"]),
                float(data["length_power"]),
                data["orders"].tolist(),
            )


def _codepoints(text: str) -> np.ndarray:
    # surrogatepass: a lone surrogate (valid in JSON) is one more unknown character, not an error
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _alphabet_ids(gram_text: str) -> np.ndarray:
    """Every code point's id: 1..len(alphabet) for the characters of the grams, UNKNOWN for the rest."""
    alphabet = sorted(set(gram_text) - {"\n"})
    if "\0" in alphabet:
        raise ValueError("a gram holds NUL, the batch separator")
    if len(alphabet) > MAX_ALPHABET:
        raise ValueError(f"the grams use {len(alphabet)} characters; {BITS}-bit ids allow {MAX_ALPHABET}")
    ids = np.full(0x110000, UNKNOWN, dtype=np.uint16)
    ids[[ord(c) for c in alphabet]] = np.arange(1, len(alphabet) + 1)
    return ids


def _add_segments(sums: np.ndarray, values: np.ndarray, owner: np.ndarray) -> None:
    """sums[t] += the rows of `values` whose owner is t, for a non-decreasing `owner`."""
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    sums[owner[starts]] += np.add.reduceat(values, starts, axis=0, dtype=np.float32)


def _xz(data: bytes) -> np.ndarray:
    return np.frombuffer(lzma.compress(data, preset=9), dtype=np.uint8)
