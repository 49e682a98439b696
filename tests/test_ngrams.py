"""The ensemble's character n-gram model (service/ngrams.py, training/ngram_model.py): features, fitting on
the mini corpus, the weight chosen on validation slices, the file round trip, and the classifiers using it."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest

from langdetect_ops.config import LANGUAGES
from service.ngrams import MAX_ALPHABET, MAX_CHARS, NgramModel, ngrams, normalise
from tests.conftest import MINI_CORPUS
from training import ngram_model


def mini_split(name: str) -> tuple[list[str], list[int]]:
    with (MINI_CORPUS / f"{name}.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [LANGUAGES.index(r["labels"]) for r in rows]


@pytest.fixture(scope="module")
def fitted() -> NgramModel:
    texts, labels = mini_split("train")
    return ngram_model.fit(texts, labels, len(LANGUAGES), per_language=3000)


def test_normalise_folds_case_width_and_whitespace_and_marks_word_boundaries():
    assert normalise("  Ｈello\n\tWORLD ") == " hello world "
    assert normalise("x" * 10 * MAX_CHARS) == " " + "x" * MAX_CHARS + " "


def test_ngrams_are_every_1_to_5_gram_without_the_lone_space():
    assert ngrams("Ab c") == (
        ["a", "b", "c"]
        + [" a", "ab", "b ", " c", "c "]
        + [" ab", "ab ", "b c", " c "]
        + [" ab ", "ab c", "b c "]
        + [" ab c", "ab c "]
    )
    assert ngrams("Ab c", (4,)) == [" ab ", "ab c", "b c "]
    assert ngrams("") == [] and ngrams(" \n ") == []


def test_fitted_model_reads_the_mini_corpus_test_split(fitted):
    texts, labels = mini_split("test")
    fitted.weight, fitted.length_power = 1.0, 0.0
    predicted = fitted.scores(texts).argmax(1)
    accuracy = float(np.mean(predicted == np.asarray(labels)))
    assert accuracy > 0.9, accuracy  # chance is 5%: a broken count, index or smoothing lands far below


def test_unknown_text_has_no_opinion_and_weight_zero_leaves_logits_alone(fitted):
    assert not fitted.scores(["\U0001f600\U0001f601"]).any()
    logits = np.random.default_rng(0).normal(size=(2, len(LANGUAGES))).astype(np.float32)
    fitted.weight = 0.0
    np.testing.assert_array_equal(fitted.combine(logits, ["hello", "bonjour"]), logits)


def test_longer_texts_weigh_more_with_a_higher_length_power(fitted):
    text = "Die Datei konnte nicht gespeichert werden, weil der Datenträger voll ist."
    spread = {}
    for power in (0.0, 0.5):
        fitted.length_power = power
        scores = fitted.scores([text])[0]
        spread[power] = float(-np.sort(scores)[-2])  # the margin of the best language over the runner-up
    assert LANGUAGES[int(fitted.scores([text])[0].argmax())] == "de"
    assert spread[0.5] > spread[0.0] > 0


def test_save_and_load_give_the_same_scores(fitted, tmp_path):
    fitted.weight, fitted.length_power = 0.75, 0.25
    loaded = NgramModel.load(fitted.save(tmp_path / "ngrams.npz"))
    texts, _ = mini_split("valid")
    assert (loaded.weight, loaded.length_power) == (0.75, 0.25) and loaded.grams == fitted.grams
    np.testing.assert_array_equal(loaded.log_probs, fitted.log_probs)  # float16 in memory and on disk
    np.testing.assert_array_equal(loaded.scores(texts[:50]), fitted.scores(texts[:50]))


def test_a_file_in_the_first_format_loads_to_the_same_model(fitted, tmp_path):
    """Runs up to version 3 logged float16 rows and plain grams; export rewrites them in the current format."""
    np.savez_compressed(
        tmp_path / "first.npz",
        grams=np.frombuffer("\n".join(fitted.grams).encode(), dtype=np.uint8),
        log_probs=fitted.log_probs[fitted.gram_rows()],  # grams[i]'s row first: the first format's order
        weight=np.float32(2.0),
        length_power=np.float32(0.5),
        orders=np.asarray((1, 2, 3, 4, 5), dtype=np.int8),
    )
    first = NgramModel.load(tmp_path / "first.npz")
    current = NgramModel.load(first.save(tmp_path / "current.npz"))
    texts, _ = mini_split("valid")
    for model in (first, current):
        assert (model.weight, model.length_power, model.grams) == (2.0, 0.5, fitted.grams)
        np.testing.assert_array_equal(model.sums(texts[:50])[0], fitted.sums(texts[:50])[0])
    assert (tmp_path / "current.npz").stat().st_size < (tmp_path / "first.npz").stat().st_size


def reference_sums(model: NgramModel, text: str) -> tuple[np.ndarray, int]:
    """What the packed keys must reproduce: gram strings looked up in a dict."""
    row = dict(zip(model.grams, model.gram_rows(), strict=True))
    known = [row[g] for g in ngrams(text, model.orders) if g in row]
    return model.log_probs[known].astype(np.float32).sum(axis=0), len(known)


EDGE_TEXTS = ["", " ", "a", "\x00abc\x00ab", "\ud800 lone surrogate", "\U0001f600 emoji", "Ｈello WORLD", "de " * 400]


def test_packed_keys_find_exactly_the_grams_a_dict_finds(fitted):
    texts = mini_split("test")[0][:40] + EDGE_TEXTS
    sums, counts = fitted.sums(texts)
    for text, got, count in zip(texts, sums, counts, strict=True):
        want, n = reference_sums(fitted, text)
        assert count == n, text
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    one_by_one = np.concatenate([fitted.sums([t])[0] for t in texts])
    np.testing.assert_allclose(sums, one_by_one, rtol=1e-5, atol=1e-3)  # no gram spans two texts of a batch


def test_a_mismatched_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="3 grams but 2 rows"):
        NgramModel(["a", "b", "c"], np.zeros((2, 20)), 1.0, 0.0)
    with pytest.raises(ValueError, match="a gram holds a newline"):
        NgramModel(["a\nb"], np.zeros((1, 20)), 1.0, 0.0)
    with pytest.raises(ValueError, match="a gram twice"):
        NgramModel(["ab", "ab"], np.zeros((2, 20)), 1.0, 0.0)
    with pytest.raises(ValueError, match="1 to 5 characters"):
        NgramModel(["abcdef"], np.zeros((1, 20)), 1.0, 0.0)
    too_many = [chr(0x4E00 + i) for i in range(MAX_ALPHABET + 1)]
    with pytest.raises(ValueError, match="characters"):
        NgramModel(too_many, np.zeros((len(too_many), 20)), 1.0, 0.0)


def test_the_fit_keeps_the_vocabulary_within_the_scorers_alphabet():
    counts = [Counter({chr(0x4E00 + i): MAX_ALPHABET + 10 - i for i in range(MAX_ALPHABET + 10)})]
    grams = set(counts[0]) | {" " + chr(0x4E00), "a\0"}
    kept = ngram_model.within_alphabet(grams, counts)
    assert " " + chr(0x4E00) in kept and "a\0" not in kept
    assert chr(0x4E00 + MAX_ALPHABET + 9) not in kept  # the rarest character goes
    assert len({ch for g in kept for ch in g}) <= MAX_ALPHABET
    NgramModel(sorted(kept), np.zeros((len(kept), 20)), 1.0, 0.0)  # and the scorer takes what is left


def test_choose_weight_keeps_the_transformer_alone_when_the_ngrams_do_not_help(fitted):
    texts, labels = mini_split("valid")
    gold = np.asarray(labels)
    perfect = np.eye(len(LANGUAGES), dtype=np.float32)[gold] * 100  # a transformer that is always right
    choice = ngram_model.choose_weight(fitted, [(perfect, texts, gold)])
    assert choice.weight == 0.0 and fitted.weight == 0.0 and choice.score == choice.transformer_only == 1.0


def test_choose_weight_picks_the_ngrams_when_the_transformer_is_blind(fitted):
    texts, labels = mini_split("valid")
    gold = np.asarray(labels)
    blind = np.zeros((len(texts), len(LANGUAGES)), dtype=np.float32)  # argmax 0 (ar) for everything
    choice = ngram_model.choose_weight(fitted, [(blind, texts, gold)])
    assert choice.weight > 0 and fitted.weight == choice.weight
    assert choice.score > 0.9 > choice.transformer_only
