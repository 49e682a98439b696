"""The ensemble's character n-gram model (service/ngrams.py, training/ngram_model.py): features, fitting on
the mini corpus, the weight chosen on validation slices, the file round trip, and the classifiers using it."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from langdetect_ops.config import LANGUAGES
from service.ngrams import MAX_CHARS, NgramModel, ngrams, normalise
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
    assert (loaded.weight, loaded.length_power) == (0.75, 0.25) and loaded.index == fitted.index
    # stored as float16: per-gram log-probabilities keep ~3 significant digits
    np.testing.assert_allclose(loaded.scores(texts[:50]), fitted.scores(texts[:50]), atol=0.02)


def test_a_mismatched_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="3 grams but 2 rows"):
        NgramModel(["a", "b", "c"], np.zeros((2, 20)), 1.0, 0.0)


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
