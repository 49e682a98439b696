"""The evaluation sets: a set's full texts, and short-text slices cut from the same sentences (RULES).

The test split's full texts are named FULL; every out-of-domain set's are named FULL_TEXT, inside that set.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass

from langdetect_ops.config import UNSPACED_LANGUAGES

RULES = (
    "`N words`: the first N whitespace-separated words, from texts that have at least N words. Japanese, "
    "Chinese and Thai are left out of the word slices: they put no spaces between words, so a word there "
    "would need a segmenter; the character slices cover them.",
    "`N chars`: the first N characters (surrounding spaces stripped), from texts at least N characters long, "
    "in every language.",
    "Only texts long enough for a slice enter it, so `3 words` always means three words.",
)
WORD_COUNTS = (1, 2, 3)
CHAR_COUNTS = (10, 20)
FULL = "test split"
FULL_TEXT = "full text"


@dataclass
class TextSet:
    name: str
    texts: list[str]
    labels: list[str]  # language codes

    def __len__(self) -> int:
        return len(self.texts)


def first_words(text: str, n: int) -> str | None:
    words = text.split()
    return " ".join(words[:n]) if len(words) >= n else None


def first_chars(text: str, n: int) -> str | None:
    text = text.strip()
    return text[:n].strip() if len(text) >= n else None


def word_slice_name(n: int) -> str:
    return f"{n} word{'s' if n > 1 else ''}"


def char_slice_name(n: int) -> str:
    return f"{n} chars"


def word_slice(texts: list[str], labels: list[str], n: int) -> TextSet:
    pairs = [(first_words(t, n), lab) for t, lab in zip(texts, labels) if lab not in UNSPACED_LANGUAGES]
    return _kept(word_slice_name(n), pairs)


def char_slice(texts: list[str], labels: list[str], n: int) -> TextSet:
    return _kept(char_slice_name(n), [(first_chars(t, n), lab) for t, lab in zip(texts, labels)])


def slice_key(name: str) -> str:
    """The name of a slice in MLflow metrics: "1 word" -> 1_word; the full texts, whatever the set, -> full."""
    return "full" if name in (FULL, FULL_TEXT) else name.replace(" ", "_")


# Every slice of a set, as metric keys, in evaluation_sets' order.
SLICE_KEYS = tuple(
    slice_key(name) for name in (FULL, *map(word_slice_name, WORD_COUNTS), *map(char_slice_name, CHAR_COUNTS))
)


def read_labelled_rows(data: bytes) -> tuple[list[str], list[str], list[str]]:
    """(labels, texts, sources) of an out-of-domain CSV (labels,text,source; `langdetect ood-set`), blank
    texts left out."""
    rows = [r for r in csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")) if r["text"].strip()]
    return [r["labels"] for r in rows], [r["text"] for r in rows], [r["source"] for r in rows]


def _kept(name: str, pairs: list[tuple[str | None, str]]) -> TextSet:
    kept = [(t, lab) for t, lab in pairs if t]
    return TextSet(name, [t for t, _ in kept], [lab for _, lab in kept])


def evaluation_sets(texts: list[str], labels: list[str], full_name: str = FULL) -> list[TextSet]:
    """The full texts first (named `full_name`), then every short slice."""
    return (
        [TextSet(full_name, list(texts), list(labels))]
        + [word_slice(texts, labels, n) for n in WORD_COUNTS]
        + [char_slice(texts, labels, n) for n in CHAR_COUNTS]
    )


def stratified_sample(
    texts: list[str], labels: list[str], per_language: int, seed: int = 0
) -> tuple[list[str], list[str]]:
    """At most `per_language` texts of each language (--quick), in a fixed random order."""
    rng = random.Random(seed)
    order = list(range(len(texts)))
    rng.shuffle(order)
    taken: dict[str, int] = {}
    picked = []
    for i in order:
        if taken.get(labels[i], 0) < per_language:
            taken[labels[i]] = taken.get(labels[i], 0) + 1
            picked.append(i)
    picked.sort()
    return [texts[i] for i in picked], [labels[i] for i in picked]
