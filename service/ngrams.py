"""Character n-gram naive Bayes: the second member of the served ensemble (numpy and the standard library).

The transformer reads subword pieces in a window of a few dozen tokens; this model reads every character
1- to 5-gram of the text, the features that char-n-gram detectors (langid.py, lingua) rely on. The two
err on different texts, and their weighted sum scored above either alone on the validation split: the
bundle's `ngrams.npz` holds the per-language log-probabilities and the weight the training run chose there.

Whole words are features too, beside the grams: a word of more than 4 letters is seen by no single gram,
yet one known word ("herkes", "ninguém") often settles a short text. Each known word counts `word_weight`
times, as that many grams would.

A text's last word may be cut off ("Niemand za|l", "Toda perso|na"): as a whole word "za" is Polish, as
the start of a word it is as Dutch. So the last word, unless punctuation closes it, counts as a mixture:
whole with weight `last_word_whole`, and with the rest as the start of a longer word, whose probability
comes from the same word counts (the words that share a start are one range of the sorted vocabulary).

The grams can be read two ways (`gram_scoring`, chosen on validation by the training run). "sum": naive
Bayes over every overlapping 1- to 5-gram, so each character is counted up to 5 times and raw gram
frequency decides: a stem that one language's training domain happens to use often ("-ическ-" in Russian
UI strings) outvotes the ending that settles it ("-ото", Bulgarian). "chain": a character Markov chain,
each character scored once, by log P(character | the longest known context before it), Witten-Bell
interpolated with shorter contexts; a continuation as likely in two languages then says nothing, and a
context a language never saw falls back to how rare its characters are there. The space that closes a
text after a letter says "the word ended here", which a cut-off text never saw, so its term is a mixture too:
the end of a word with weight `chain_end_whole`, and with the rest a cut (a term of 0). The chain's table is
computed at load from the same log-probabilities (and each language's gram total), so the file does not grow.

Scores are naive Bayes log-likelihoods per feature (their mean, scaled by len ** `length_power`), so a
long text does not drown the transformer's logits and a single word still counts.
"""

from __future__ import annotations

import lzma
import unicodedata
from array import array
from bisect import bisect_left
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
MAX_WORD = 24  # characters: a longer word is no word feature (its grams still count)
GRAM_SCORINGS = ("sum", "chain")  # how the grams are read (the module's docstring); "sum" before there was a choice
# a word's key is a polynomial hash of its code points in FNV-1's 64-bit prime, computed mod 2**64
_POWERS = np.cumprod(np.r_[np.uint64(1), np.full(MAX_WORD, 0x100000001B3, dtype=np.uint64)], dtype=np.uint64)


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
        words: Sequence[str] | str = "",
        word_counts: np.ndarray | None = None,
        word_alpha: float = 0.1,
        word_weight: float = 0.0,
        last_word_whole: float = 1.0,
        gram_scoring: str = "sum",
        gram_totals: np.ndarray | None = None,
        alpha: float = 0.5,
        chain_end_whole: float = 1.0,
    ):
        """`grams`: the vocabulary, as strings or as one newline-separated text (as the file stores it). The
        model keeps that text, not a list: 441k small strings would cost about 34 MB in every server.
        `words`, `word_counts` (words, languages): the word vocabulary and its training counts, smoothed
        with `word_alpha`; `word_weight` 0 (or no words): grams only. `last_word_whole` 1: the last word is
        always whole (as before the mixture existed). `gram_totals` (languages,): each language's summed gram
        counts, and `alpha` the grams' smoothing, from which the "chain" reading recovers the counts (a file
        without them reads grams as a "sum" only). `chain_end_whole` 1: the chain reads a text's end as a
        word's end."""
        self.gram_text = _joined(grams, "gram")
        n_grams = _count_lines(self.gram_text)
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
        self._set_words(words, word_counts, word_alpha, word_weight)
        for name, value in (("last_word_whole", last_word_whole), ("chain_end_whole", chain_end_whole)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability, not {value}")
        self.last_word_whole, self.chain_end_whole = float(last_word_whole), float(chain_end_whole)
        self.gram_totals = None if gram_totals is None else np.asarray(gram_totals, dtype=np.float64)
        if self.gram_totals is not None and self.gram_totals.shape != (self.log_probs.shape[1],):
            raise ValueError(f"{self.log_probs.shape[1]} languages but gram totals of shape {self.gram_totals.shape}")
        self.alpha = float(alpha)
        self._chain = None  # the chain's table, computed when first needed
        self.gram_scoring = gram_scoring
        if gram_scoring == "chain":
            self.chain_log_probs()  # at load, not in the first request

    @property
    def gram_scoring(self) -> str:
        return self._gram_scoring

    @gram_scoring.setter
    def gram_scoring(self, scoring: str) -> None:
        if scoring not in GRAM_SCORINGS:
            raise ValueError(f"gram_scoring is one of {', '.join(GRAM_SCORINGS)}, not {scoring!r}")
        if scoring == "chain" and self.gram_totals is None:
            raise ValueError("reading grams as a chain needs each language's gram total (a file before Dec 2026)")
        self._gram_scoring = scoring

    def chain_log_probs(self) -> np.ndarray:
        """(grams in key order, languages): log P(a gram's last character | the characters before it)."""
        if self._chain is None:
            self._chain = witten_bell(self.keys, self.log_probs, self.gram_totals, self.alpha)
        return self._chain

    def _set_words(self, words, word_counts, word_alpha: float, word_weight: float) -> None:
        text = _joined(words, "word")
        n_words = _count_lines(text)
        counts = np.zeros((0, self.log_probs.shape[1])) if word_counts is None else np.asarray(word_counts)
        if counts.shape != (n_words, self.log_probs.shape[1]):
            raise ValueError(f"{n_words} words but word counts of shape {counts.shape}")
        items = text.split("\n") if text else []
        order = sorted(range(n_words), key=items.__getitem__)  # the fit's and the file's order already
        if order != list(range(n_words)):
            text, counts = "\n".join(items[i] for i in order), counts[order]
        del items
        self.word_text = text
        counts = counts.astype(np.uint32)
        # kept sparse (a word is seen in one or a few languages): only save() needs them, not scoring
        self._word_count_cells = np.flatnonzero(counts)
        self._word_count_values = counts.ravel()[self._word_count_cells]
        self.word_alpha, self.word_weight = float(word_alpha), float(word_weight)
        codepoints = _codepoints(self.word_text)
        keys, lengths, starts = _word_keys(codepoints, codepoints != ord("\n"))
        if n_words and (lengths.min() < 1 or lengths.max() > MAX_WORD):
            raise ValueError(f"words must have 1 to {MAX_WORD} characters")
        self._sorted_words = _Vocabulary(self.word_text, starts, starts + lengths)
        order = np.argsort(keys)
        self.word_keys = keys[order]
        if len(self.word_keys) > 1 and not (self.word_keys[1:] != self.word_keys[:-1]).all():
            raise ValueError("the vocabulary lists a word twice (or two words share a key)")
        self._key_rows = np.empty(n_words, dtype=np.int32)  # each word's row in key order (word_log_probs)
        self._key_rows[order] = np.arange(n_words, dtype=np.int32)
        # the same additive smoothing as the grams', over the word vocabulary
        smoothed = np.log(counts[order] + self.word_alpha)
        totals = np.log(counts.sum(axis=0, dtype=np.float64) + self.word_alpha * max(n_words, 1))
        self.word_log_probs = (smoothed - totals).astype(np.float16)
        self._word_log_totals = totals

    @property
    def word_counts(self) -> np.ndarray:
        """(words, languages) training counts, in the order of `words`."""
        n_words = _count_lines(self.word_text)
        counts = np.zeros((n_words, self.log_probs.shape[1]), dtype=np.uint32)
        counts.ravel()[self._word_count_cells] = self._word_count_values
        return counts

    @property
    def words(self) -> list[str]:
        return self.word_text.split("\n") if self.word_text else []

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
        """Summed log-likelihoods (texts, languages) and the number of known features of each text: grams,
        plus `word_weight` times the known words."""
        sums, counts, word_sums, word_counts = self.parts(texts)
        if self.gram_scoring == "chain" and self.chain_end_whole < 1.0:
            sums = mix_chain_end(sums, self.chain_end_terms(texts), self.chain_end_whole)
        if self.word_weight:
            if self.last_word_whole < 1.0:
                terms = self.last_word_terms(texts)
                word_sums, word_counts = mix_last_word(word_sums, word_counts, *terms, self.last_word_whole)
            sums += self.word_weight * word_sums
            counts += self.word_weight * word_counts
        return sums, counts

    def parts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The grams' summed log-likelihoods and counts, then the words' (unweighted)."""
        normal = [normalise(t) for t in texts]
        # One array for the batch: texts start and end with a space and NUL separates them, so no known gram
        # or word spans two texts.
        codepoints = _codepoints("\0".join(normal))
        text_of = np.repeat(np.arange(len(texts)), [len(t) + 1 for t in normal])
        n = len(texts)
        return (*self._gram_sums(codepoints, text_of, n), *self._word_sums(codepoints, text_of, n))

    def chain_end_terms(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, languages): the chain's term for each text's closing space where a letter or digit comes
        before it (the text may have been cut there), NaN rows elsewhere."""
        terms = np.full((len(texts), self.log_probs.shape[1]), np.nan, dtype=np.float32)
        tails = [normalise(text)[-MAX_ORDER:] for text in texts]  # the longest gram ending on the space fits
        cut = np.flatnonzero([len(tail) >= 2 and tail[-2].isalnum() for tail in tails])
        if not len(cut) or not len(self.keys):
            return terms
        # the tails as one NUL-separated batch, as parts() reads texts: the closing spaces' positions
        closing = np.cumsum([len(tail) + 1 for tail in tails])[cut] - 2
        rows = self._longest_known(self.char_ids[_codepoints("\0".join(tails))].astype(np.uint64))[closing]
        terms[cut[rows >= 0]] = self.chain_log_probs()[rows[rows >= 0]]
        return terms

    def last_word_terms(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Each text's last word, where it may be cut off (it ends in a letter or digit): its log-probability
        as a whole word and as the start of a word, (texts, languages) each, NaN rows where it is not one."""
        whole = np.full((len(texts), self.log_probs.shape[1]), np.nan, dtype=np.float32)
        start = whole.copy()
        vocabulary = self._sorted_words
        for i, text in enumerate(texts):
            words = normalise(text).rsplit(maxsplit=1)
            last = words[-1] if words else ""
            if not last or not last[-1].isalnum() or len(last) > MAX_WORD:
                continue
            first = bisect_left(vocabulary, last)
            end = bisect_left(vocabulary, last + "\U0010ffff", first)  # after every word that starts so
            if first == end:
                continue
            start[i] = np.log(self._range_counts(first, end) + self.word_alpha) - self._word_log_totals
            if vocabulary[first] == last:  # the very term the word sums hold for it
                whole[i] = self.word_log_probs[self._key_rows[first]]
        return whole, start

    def _range_counts(self, first: int, end: int) -> np.ndarray:
        """Per language, the summed training counts of the words first..end-1 (in vocabulary order)."""
        languages = self.log_probs.shape[1]
        cells = self._word_count_cells
        lo, hi = np.searchsorted(cells, (first * languages, end * languages))
        return np.bincount(cells[lo:hi] % languages, weights=self._word_count_values[lo:hi], minlength=languages)

    def _word_sums(self, codepoints: np.ndarray, text_of: np.ndarray, n_texts: int) -> tuple[np.ndarray, np.ndarray]:
        sums = np.zeros((n_texts, self.log_probs.shape[1]), dtype=np.float32)
        counts = np.zeros(n_texts, dtype=np.float32)
        if not len(self.word_keys) or not len(codepoints):
            return sums, counts
        # words are the runs between spaces; the NUL between two texts is one more, in no vocabulary
        keys, lengths, starts = _word_keys(codepoints, codepoints != ord(" "))
        pos = np.minimum(np.searchsorted(self.word_keys, keys), len(self.word_keys) - 1)
        known = np.flatnonzero((self.word_keys[pos] == keys) & (lengths <= MAX_WORD))
        rows, owner = pos[known], text_of[starts[known]]
        if len(rows):
            _add_segments(sums, self.word_log_probs[rows], owner)  # words come in text order
        counts += np.bincount(owner, minlength=n_texts)
        return sums, counts

    def _gram_sums(self, codepoints: np.ndarray, text_of: np.ndarray, n_texts: int) -> tuple[np.ndarray, np.ndarray]:
        n_languages = self.log_probs.shape[1]
        sums = np.zeros((n_texts, n_languages), dtype=np.float32)
        counts = np.zeros(n_texts, dtype=np.float32)
        if not n_texts or not len(self.keys):
            return sums, counts
        ids = self.char_ids[codepoints].astype(np.uint64)
        if self.gram_scoring == "chain":
            return self._chain_sums(ids, text_of, sums, counts)
        keys, owners = [], []
        for _, key in self._order_keys(ids):
            keys.append(key)
            owners.append(text_of[: len(key)])
        key = np.concatenate(keys)  # one search for every order
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

    def _order_keys(self, ids: np.ndarray):
        """For each of the model's orders n: n and the packed key of the n-gram starting at each position."""
        key = np.zeros(len(ids), dtype=np.uint64)
        for n in range(1, max(self.orders) + 1):
            key = key[: max(len(ids) - n + 1, 0)] | (ids[n - 1 :] << np.uint64(BITS * (n - 1)))
            if n in self.orders:
                yield n, key

    def _longest_known(self, ids: np.ndarray) -> np.ndarray:
        """The row of the longest known gram that ends at each position, -1 where none does."""
        longest = np.full(len(ids), -1, dtype=np.int64)
        for n, key in self._order_keys(ids):
            pos = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
            known = np.flatnonzero(self.keys[pos] == key)
            longest[known + n - 1] = pos[known]  # a longer gram, found later, overwrites a shorter one
        return longest

    def _chain_sums(self, ids: np.ndarray, text_of: np.ndarray, sums: np.ndarray, counts: np.ndarray):
        """Each character once: the chain's term of the longest known gram that ends on it."""
        longest = self._longest_known(ids)
        ends = np.flatnonzero(longest >= 0)  # in text order
        if len(ends):
            _add_segments(sums, self.chain_log_probs()[longest[ends]], text_of[ends])
        counts += np.bincount(text_of[ends], minlength=len(counts))
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
            # words as their nonzero counts (a word is seen in one or a few languages): the gaps between
            # the cells (word-major) and the counts, each split into byte planes, which xz packs best
            words_xz=_xz(self.word_text.encode("utf-8")),
            word_cell_gaps_xz=_xz(_byte_planes(np.diff(self._word_count_cells, prepend=-1).astype(np.uint32))),
            word_count_values_xz=_xz(_byte_planes(self._word_count_values)),
            word_alpha=np.float64(self.word_alpha),
            word_weight=np.float32(self.word_weight),
            last_word_whole=np.float64(self.last_word_whole),
            gram_scoring=np.str_(self.gram_scoring),
            chain_end_whole=np.float64(self.chain_end_whole),
            alpha=np.float64(self.alpha),
            **({} if self.gram_totals is None else {"gram_totals": self.gram_totals}),
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
            words, word_counts, word_alpha, word_weight = "", None, 0.1, 0.0  # files before word features
            last_word_whole = float(data["last_word_whole"]) if "last_word_whole" in data else 1.0
            chain = {  # files before the chain: grams as a sum, and no totals to read them otherwise
                key: data[key] if key != "gram_scoring" else str(data[key])
                for key in ("gram_scoring", "gram_totals", "alpha", "chain_end_whole")
                if key in data
            }
            if "words_xz" in data:
                words = lzma.decompress(bytes(data["words_xz"])).decode("utf-8")
                word_counts = _load_word_counts(data, _count_lines(words))
                word_alpha, word_weight = float(data["word_alpha"]), float(data["word_weight"])
            return cls(
                grams,
                log_probs,
                float(data["weight"]),
                float(data["length_power"]),
                data["orders"].tolist(),
                words,
                word_counts,
                word_alpha,
                word_weight,
                last_word_whole,
                **chain,
            )


def mix_last_word(
    word_sums: np.ndarray, word_counts: np.ndarray, whole: np.ndarray, start: np.ndarray, last_word_whole: float
) -> tuple[np.ndarray, np.ndarray]:
    """The words' sums and counts (NgramModel.parts) with each text's last word counted as a mixture: whole
    with weight `last_word_whole`, the start of a longer word with the rest (terms: last_word_terms). A last
    word known only as a start adds one word feature."""
    if last_word_whole >= 1.0:
        return word_sums, word_counts
    sums, counts = word_sums.copy(), word_counts.copy()
    starts, known = ~np.isnan(start[:, 0]), ~np.isnan(whole[:, 0])
    rest = np.log1p(-last_word_whole)
    both = starts & known
    if last_word_whole > 0:
        mixed = np.logaddexp(np.log(last_word_whole) + whole[both], rest + start[both])
    else:
        mixed = start[both]
    sums[both] += mixed - whole[both]
    only = starts & ~known
    sums[only] += rest + start[only]
    counts[only] += 1
    return sums, counts


def mix_chain_end(sums: np.ndarray, end_terms: np.ndarray, chain_end_whole: float) -> np.ndarray:
    """The chain's sums (NgramModel.parts) with each closing space read as a mixture: a word's end with
    weight `chain_end_whole`, a cut (probability 1, term 0) with the rest (terms: chain_end_terms)."""
    if chain_end_whole >= 1.0:
        return sums
    rows = np.flatnonzero(~np.isnan(end_terms[:, 0]))
    term = end_terms[rows]
    mixed = np.logaddexp(np.log(chain_end_whole) + term, np.log1p(-chain_end_whole)) if chain_end_whole > 0 else 0.0
    sums = sums.copy()
    sums[rows] += mixed - term
    return sums


def witten_bell(keys: np.ndarray, log_probs: np.ndarray, totals: np.ndarray, alpha: float) -> np.ndarray:
    """The chain's table: for each gram (packed keys, sorted) and language, log P(its last character | the
    characters before it), Witten-Bell interpolated with the same estimate for the context less its first
    character (the longest such gram in the vocabulary), down to the single characters.

    The counts come back from the smoothed log-probabilities: count = exp(log_prob) (total + alpha V) - alpha.
    Over the vocabulary's grams that share a context, N is their summed count and T how many were seen;
    P = (count + T P_shorter) / (N + T), and P_shorter alone where the language never saw the context."""
    lengths = np.zeros(len(keys), dtype=np.int8)
    for j in range(MAX_ORDER):
        lengths += ((keys >> np.uint64(BITS * j)) & np.uint64(UNKNOWN)) != 0
    log_norm = np.log(totals + alpha * len(keys)).astype(np.float32)
    table = np.zeros(log_probs.shape, dtype=np.float32)
    single = np.flatnonzero(lengths == 1)
    uniform = np.float32(np.log(max(len(single), 1)))
    # single characters: their share of the single-character counts, smoothed as the grams are
    counts = np.exp(log_probs[single].astype(np.float32) + log_norm)
    table[single] = np.log(counts) - np.log(counts.sum(axis=0))
    for n in range(2, MAX_ORDER + 1):
        rows = np.flatnonzero(lengths == n)
        if not len(rows):
            continue
        counts = np.maximum(np.rint(np.exp(log_probs[rows].astype(np.float32) + log_norm) - alpha), 0)
        shorter = np.full((len(rows), log_probs.shape[1]), -uniform, dtype=np.float32)
        pending, suffix = np.ones(len(rows), dtype=bool), keys[rows]
        for _ in range(n - 1):  # drop the first character until the rest is a known gram
            suffix = suffix >> np.uint64(BITS)
            pos = np.minimum(np.searchsorted(keys, suffix), len(keys) - 1)
            hit = np.flatnonzero(pending & (keys[pos] == suffix))
            shorter[hit] = table[pos[hit]]
            pending[hit] = False
        # the context is the first n-1 characters: the key's low bits (the first character is the lowest)
        context = keys[rows] & np.uint64((1 << (BITS * (n - 1))) - 1)
        by_context = np.argsort(context, kind="stable")
        sorted_context = context[by_context]
        first = np.flatnonzero(np.r_[True, sorted_context[1:] != sorted_context[:-1]])
        group = np.empty(len(rows), dtype=np.int64)
        group[by_context] = np.repeat(np.arange(len(first)), np.diff(np.r_[first, len(rows)]))
        seen = np.add.reduceat(counts[by_context], first, axis=0)[group]
        kinds = np.add.reduceat((counts[by_context] > 0).astype(np.float32), first, axis=0)[group]
        p_shorter = np.exp(shorter)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(seen + kinds > 0, (counts + kinds * p_shorter) / (seen + kinds), p_shorter)
        table[rows] = np.log(p)
    return table.astype(np.float16)


def _load_word_counts(data, n_words: int) -> np.ndarray:
    languages = int(data["languages"])
    if "word_counts_xz" in data:  # dense columns: the runs of early December 2026 (version 4)
        columns = np.frombuffer(lzma.decompress(bytes(data["word_counts_xz"])), dtype=np.uint32)
        return columns.reshape(languages, -1).T
    cells = np.cumsum(_from_byte_planes(lzma.decompress(bytes(data["word_cell_gaps_xz"])), np.uint32)) - 1
    counts = np.zeros(n_words * languages, dtype=np.uint32)
    counts[cells] = _from_byte_planes(lzma.decompress(bytes(data["word_count_values_xz"])), np.uint32)
    return counts.reshape(n_words, languages)


def _byte_planes(values: np.ndarray) -> bytes:
    """All first bytes, then all second bytes...: small integers leave planes of zeros."""
    return np.ascontiguousarray(values.view(np.uint8).reshape(-1, values.itemsize).T).tobytes()


def _from_byte_planes(data: bytes, dtype) -> np.ndarray:
    itemsize = np.dtype(dtype).itemsize
    return np.ascontiguousarray(np.frombuffer(data, dtype=np.uint8).reshape(itemsize, -1).T).view(dtype).ravel()


def _count_lines(text: str) -> int:
    """How many items a newline-separated vocabulary text holds (none when it is empty)."""
    return text.count("\n") + 1 if text else 0


def _joined(items: Sequence[str] | str, what: str) -> str:
    """A vocabulary as one newline-separated text (how the file stores it and the model keeps it)."""
    if isinstance(items, str):
        return items
    if any("\n" in item for item in items):
        raise ValueError(f"a {what} holds a newline")
    return "\n".join(items)


def _word_keys(codepoints: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The key, length and start of every word of `codepoints`, a word being a run where `inside` holds: a 64-bit
    polynomial hash (Horner's rule from the length, wrapping) of its first MAX_WORD code points, the same
    for a vocabulary (words between newlines) and for texts (between spaces)."""
    edges = np.diff(np.concatenate(([False], inside, [False])).astype(np.int8))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends - starts
    hashed = np.minimum(lengths, MAX_WORD)
    keys = lengths.astype(np.uint64) * _POWERS[hashed]
    if len(starts):
        first = np.cumsum(hashed) - hashed  # each word's first term
        offset = np.arange(int(hashed.sum())) - np.repeat(first, hashed)
        chars = codepoints[np.repeat(starts, hashed) + offset].astype(np.uint64)
        keys += np.add.reduceat(chars * _POWERS[np.repeat(hashed, hashed) - 1 - offset], first)
    return keys, lengths, starts


class _Vocabulary:
    """The sorted vocabulary text's words by index, for bisect: no list of 160,000 strings kept."""

    def __init__(self, text: str, starts: np.ndarray, ends: np.ndarray):
        self.text = text
        self.starts, self.ends = (
            array("q", starts.astype(np.int64).tobytes()),
            array("q", ends.astype(np.int64).tobytes()),
        )

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> str:
        return self.text[self.starts[i] : self.ends[i]]


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
