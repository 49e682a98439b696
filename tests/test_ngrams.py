"""The ensemble's character n-gram model (service/ngrams.py, training/ngram_model.py): features, fitting on
the mini corpus, the weight chosen on validation slices, the file round trip, and the classifiers using it."""

from __future__ import annotations

import csv
import lzma
from collections import Counter

import numpy as np
import pytest

from langdetect_ops.config import LANGUAGES
from service.ngrams import MAX_ALPHABET, MAX_CHARS, MAX_WORD, NgramModel, mix_last_word, ngrams, normalise
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


@pytest.fixture(scope="module")
def with_words() -> NgramModel:
    texts, labels = mini_split("train")
    return ngram_model.fit(texts, labels, len(LANGUAGES), per_language=3000, words_per_language=400)


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


def assert_like_the_reference(texts, sums, counts, reference, one_text_sums) -> None:
    """Each text's sums and count equal `reference(text)`'s, and a batch equals one text at a time (no
    feature spans two texts of a batch)."""
    for text, got, count in zip(texts, sums, counts, strict=True):
        want, n = reference(text)
        assert count == n, text
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    one_by_one = np.concatenate([one_text_sums(t) for t in texts])
    np.testing.assert_allclose(sums, one_by_one, rtol=1e-5, atol=1e-3)


def test_packed_keys_find_exactly_the_grams_a_dict_finds(fitted):
    texts = mini_split("test")[0][:40] + EDGE_TEXTS
    sums, counts = fitted.sums(texts)
    assert_like_the_reference(texts, sums, counts, lambda t: reference_sums(fitted, t), lambda t: fitted.sums([t])[0])


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


# Whole-word features


def reference_word_sums(model: NgramModel, text: str) -> tuple[np.ndarray, int]:
    """What the hashed word keys must reproduce: the text's words looked up in a dict, smoothed as documented."""
    counts = model.word_counts.astype(np.float64)
    smoothed = np.log(counts + model.word_alpha) - np.log(counts.sum(axis=0) + model.word_alpha * len(counts))
    row = {w: i for i, w in enumerate(model.words)}
    known = [row[w] for w in normalise(text).split() if w in row]
    return smoothed.astype(np.float16)[known].astype(np.float32).sum(axis=0), len(known)


def test_word_keys_find_exactly_the_words_a_dict_finds(with_words):
    assert len(with_words.words) > 1000
    texts = mini_split("test")[0][:40] + EDGE_TEXTS + ["de\x00de", "x" * (MAX_WORD + 5) + " de  DE"]
    grams, gram_counts, words, word_counts = with_words.parts(texts)
    assert word_counts.sum() > 100
    assert_like_the_reference(
        texts, words, word_counts, lambda t: reference_word_sums(with_words, t), lambda t: with_words.parts([t])[2]
    )
    with_words.word_weight = 3.0
    sums, counts = with_words.sums(texts)
    np.testing.assert_allclose(sums, grams + 3.0 * words, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(counts, gram_counts + 3.0 * word_counts)


def test_a_long_word_matches_only_itself():
    words = ["y" * MAX_WORD, "z" * MAX_WORD + "a", "abc"]
    with pytest.raises(ValueError, match=f"1 to {MAX_WORD} characters"):
        NgramModel(["a"], np.zeros((1, 20)), 1.0, 0.0, words=words, word_counts=np.ones((3, 20)))
    model = NgramModel(["a"], np.zeros((1, 20)), 1.0, 0.0, words=words[::2], word_counts=np.ones((2, 20)))
    found = model.parts(["y" * MAX_WORD, "y" * (MAX_WORD + 1), "y" * (MAX_WORD - 1), "abc abcd ab abc"])[3]
    assert found.tolist() == [1, 0, 0, 2]


def test_a_model_with_words_round_trips_and_an_older_file_has_none(with_words, tmp_path):
    with_words.weight, with_words.length_power, with_words.word_weight = 2.0, 0.5, 4.0
    with_words.last_word_whole = 0.5
    path = with_words.save(tmp_path / "ngrams.npz")
    loaded = NgramModel.load(path)
    assert (loaded.words, loaded.word_alpha, loaded.word_weight) == (with_words.words, with_words.word_alpha, 4.0)
    assert loaded.last_word_whole == 0.5
    np.testing.assert_array_equal(loaded.word_counts, with_words.word_counts)
    texts = mini_split("valid")[0][:50]
    np.testing.assert_array_equal(loaded.scores(texts), with_words.scores(texts))
    assert with_words.save(tmp_path / "again.npz").read_bytes() == path.read_bytes()  # deterministic
    with np.load(path) as data:  # the format before words: the same file without the word keys
        np.savez(tmp_path / "grams-only.npz", **{k: data[k] for k in data.files if "word" not in k})
    older = NgramModel.load(tmp_path / "grams-only.npz")
    assert older.word_weight == 0.0 and older.words == [] and older.last_word_whole == 1.0
    np.testing.assert_array_equal(older.sums(texts)[0], with_words.parts(texts)[0])
    with np.load(path) as data:  # version 4's file: the word counts as dense columns, no last-word mixture
        dense = {k: data[k] for k in data.files if k not in ("word_cell_gaps_xz", "word_count_values_xz")}
    del dense["last_word_whole"]
    with_words.last_word_whole = 1.0
    path = with_words.save(tmp_path / "ngrams.npz")
    dense["word_counts_xz"] = np.frombuffer(lzma.compress(with_words.word_counts.T.tobytes()), dtype=np.uint8)
    np.savez(tmp_path / "dense.npz", **dense)
    first_words = NgramModel.load(tmp_path / "dense.npz")
    np.testing.assert_array_equal(first_words.word_counts, with_words.word_counts)
    np.testing.assert_array_equal(first_words.scores(texts), with_words.scores(texts))
    assert first_words.save(tmp_path / "rewritten.npz").read_bytes() == path.read_bytes()
    assert path.stat().st_size < (tmp_path / "dense.npz").stat().st_size


def test_mismatched_words_are_refused():
    with pytest.raises(ValueError, match="2 words but word counts of shape"):
        NgramModel(["a"], np.zeros((1, 20)), 1.0, 0.0, words=["ab", "cd"], word_counts=np.ones((3, 20)))
    with pytest.raises(ValueError, match="a word twice"):
        NgramModel(["a"], np.zeros((1, 20)), 1.0, 0.0, words=["ab", "ab"], word_counts=np.ones((2, 20)))
    with pytest.raises(ValueError, match="a word holds a newline"):
        NgramModel(["a"], np.zeros((1, 20)), 1.0, 0.0, words=["a\nb"], word_counts=np.ones((1, 20)))


def test_frequent_words_are_each_languages_commonest_that_the_scorer_can_key():
    texts = ["Der Hund der", "der " + "x" * (MAX_WORD + 1), "le chien\x00 le", "le chat"]
    words, counts = ngram_model.frequent_words(texts, [2, 2, 6, 6], len(LANGUAGES), per_language=2)
    assert words == ["chat", "der", "hund", "le"]  # "chien\x00" (a NUL) and the over-long word are left out
    assert counts[words.index("der"), 2] == 3 and counts[words.index("le"), 6] == 3 and counts.sum() == 8
    assert ngram_model.frequent_words(texts, [2, 2, 6, 6], len(LANGUAGES), per_language=0)[0] == []


def test_choose_weight_scores_the_word_weight_it_sets(with_words):
    texts, labels = mini_split("valid")
    gold = np.asarray(labels)
    two_words = [" ".join(t.split()[:2]) for t in texts]
    chosen = set()
    for seed in range(5):
        # a noisy transformer against 2-word texts: the n-gram scores' scale (feature counts, length power,
        # weights) decides labels, so the score the grid chose by must be the model's own
        noisy = np.random.default_rng(seed).normal(scale=3.0, size=(len(texts), len(LANGUAGES))).astype(np.float32)
        with_words.last_word_whole = with_words.chain_end_whole = 0.35  # off the grid: the choice must set them
        choice = ngram_model.choose_weight(with_words, [(noisy, two_words, gold)])
        assert choice.word_weight in ngram_model.WORD_WEIGHTS and with_words.word_weight == choice.word_weight
        assert with_words.last_word_whole == choice.last_word_whole in ngram_model.LAST_WORD_WHOLE
        assert with_words.gram_scoring == choice.gram_scoring  # the grid ends on "chain": the choice must set it
        assert with_words.chain_end_whole == choice.chain_end_whole in ngram_model.CHAIN_END_WHOLE
        chosen.add(choice.gram_scoring)
        assert float(np.mean(with_words.combine(noisy, two_words).argmax(1) == gold)) == pytest.approx(choice.score)
    assert chosen == {"sum", "chain"}  # both readings were chosen at least once, so either could be missed
    perfect = np.eye(len(LANGUAGES), dtype=np.float32)[gold] * 100
    assert ngram_model.choose_weight(with_words, [(perfect, texts, gold)]).word_weight == 0.0


# The last word as possibly cut off


def reference_last_word(model: NgramModel, text: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """What the bisected vocabulary must reproduce: the words equal to, and starting with, the text's last word
    (unless punctuation ends it), their counts summed and smoothed like the words'."""
    counts = model.word_counts.astype(np.float64)
    totals = np.log(counts.sum(axis=0) + model.word_alpha * len(counts))
    words = normalise(text).split()
    if not words or not words[-1][-1].isalnum():
        return None, None
    last = words[-1]
    rows = [i for i, w in enumerate(model.words) if w.startswith(last)]
    start = np.log(counts[rows].sum(axis=0) + model.word_alpha) - totals if rows else None
    whole = np.log(counts[model.words.index(last)] + model.word_alpha) - totals if last in model.words else None
    return whole, start


def test_the_last_words_terms_are_what_a_scan_of_the_vocabulary_gives(with_words):
    texts = [" ".join(t.split()[:2]) for t in mini_split("test")[0][:40]]
    texts += [t[:10] for t in mini_split("test")[0][:40]] + EDGE_TEXTS + ["de.", "de", "d", "x" * (MAX_WORD + 1)]
    whole, start = with_words.last_word_terms(texts)
    found = 0
    for text, got_whole, got_start in zip(texts, whole, start, strict=True):
        want_whole, want_start = reference_last_word(with_words, text)
        for got, want in ((got_whole, want_whole), (got_start, want_start)):
            if want is None:
                assert np.isnan(got).all(), text
            else:
                np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-2)
                found += 1
    assert found > 40  # whole words and starts were found, not only NaN rows compared
    assert np.isnan(start[texts.index("de.")]).all() and not np.isnan(start[texts.index("de")]).any()


def cut_word_model() -> NgramModel:
    """Polish has the word "za"; Dutch has words that start with it ("zal", "zaak")."""
    pl, nl = LANGUAGES.index("pl"), LANGUAGES.index("nl")
    words = ["zaak", "zal", "za", "jest", "de", "xx"]  # not sorted: the model sorts them with their counts
    counts = np.zeros((len(words), len(LANGUAGES)), dtype=np.uint32)
    counts[5] = 1000  # every other language: 1,000 words seen, none of them these
    counts[2, pl], counts[3, pl], counts[5, pl] = 100, 900, 0
    counts[5, nl] = 0
    counts[0, nl], counts[1, nl], counts[4, nl] = 50, 60, 890
    return NgramModel(["q"], np.zeros((1, len(LANGUAGES))), 1.0, 0.0, words=words, word_counts=counts, word_weight=1.0)


def test_a_cut_last_word_reads_as_the_start_of_a_longer_word():
    model = cut_word_model()
    assert (
        model.words == ["de", "jest", "xx", "za", "zaak", "zal"] and model.word_counts[3, LANGUAGES.index("pl")] == 100
    )
    for whole, text, language in (
        (1.0, "za", "pl"),  # always whole: Polish "za"
        (0.0, "za", "nl"),  # always cut: "zal", "zaak" make it Dutch
        (0.5, "za", "pl"),  # a mixture: P(za | pl) 0.1 against P(za.. | nl) 0.11 times 0.5
    ):
        model.last_word_whole = whole
        assert LANGUAGES[int(model.scores([text])[0].argmax())] == language, (whole, text)
    word_sums, word_counts = model.parts(["za de"])[2:]
    whole, start = model.last_word_terms(["za de"])
    only_last = mix_last_word(word_sums, word_counts, whole, start, 0.0)[0] - word_sums
    want_whole, want_start = reference_last_word(model, "de")
    np.testing.assert_allclose(only_last[0], want_start - want_whole, atol=1e-2)  # "de" as a start, "za" as it was
    word_sums, word_counts = model.parts(["de za", "de zaa", "de za."])[2:]
    mixed, counts = mix_last_word(word_sums, word_counts, *model.last_word_terms(["de za", "de zaa", "de za."]), 0.5)
    assert counts.tolist() == [2, 2, 1]  # "zaa" is no word but starts one: one more feature
    assert word_counts.tolist() == [2, 1, 1]  # ("za." is no word: words keep their punctuation)
    np.testing.assert_array_equal(mixed[2], word_sums[2])  # closed by punctuation: unchanged
    assert mix_last_word(word_sums, word_counts, *model.last_word_terms(["de za"] * 3), 1.0)[0] is word_sums
    with pytest.raises(ValueError, match="probability"):
        NgramModel(["q"], np.zeros((1, len(LANGUAGES))), 1.0, 0.0, last_word_whole=1.5)


# The grams read as a chain


def reference_chain_table(model: NgramModel) -> dict[str, np.ndarray]:
    """What the vectorised table must reproduce, from gram strings: counts recovered from the smoothed
    log-probabilities, then Witten-Bell over the vocabulary's grams that share a context."""
    grams, rows = model.grams, model.gram_rows()
    log_norm = np.log(model.gram_totals + model.alpha * len(grams))
    plus_alpha = {g: np.exp(model.log_probs[r].astype(np.float64) + log_norm) for g, r in zip(grams, rows)}
    count = {g: np.maximum(np.rint(v - model.alpha), 0) for g, v in plus_alpha.items()}
    singles = [g for g in grams if len(g) == 1]
    table = {g: np.log(plus_alpha[g] / sum(plus_alpha[s] for s in singles)) for g in singles}
    for n in range(2, 6):
        for g in (g for g in grams if len(g) == n):
            siblings = [h for h in grams if len(h) == n and h[:-1] == g[:-1]]
            seen = sum(count[h] for h in siblings)
            kinds = sum((count[h] > 0).astype(float) for h in siblings)
            suffix = next((g[k:] for k in range(1, n) if g[k:] in table), None)
            shorter = np.exp(table[suffix]) if suffix else np.full(len(log_norm), 1 / len(singles))
            with np.errstate(divide="ignore", invalid="ignore"):
                table[g] = np.log(np.where(seen + kinds > 0, (count[g] + kinds * shorter) / (seen + kinds), shorter))
    return table


def reference_chain_sums(model: NgramModel, text: str, table: dict[str, np.ndarray]) -> tuple[np.ndarray, int]:
    """Each character of the normalised text once: the term of the longest known gram ending on it."""
    text, terms = normalise(text), []
    for end in range(1, len(text) + 1):
        for n in sorted(model.orders, reverse=True):
            if end - n >= 0 and text[end - n : end] in table:
                terms.append(table[text[end - n : end]])
                break
    return (np.sum(terms, axis=0) if terms else np.zeros(len(LANGUAGES))), len(terms)


@pytest.fixture(scope="module")
def small_chain() -> NgramModel:
    texts, labels = mini_split("train")
    model = ngram_model.fit(texts[::4], labels[::4], len(LANGUAGES), per_language=300)
    model.gram_scoring = "chain"
    return model


def test_the_chains_table_is_witten_bell_over_the_vocabulary(small_chain):
    reference = reference_chain_table(small_chain)
    table = small_chain.chain_log_probs()[small_chain.gram_rows()].astype(np.float64)
    want = np.array([reference[g] for g in small_chain.grams])
    np.testing.assert_allclose(table, want, rtol=2e-3, atol=2e-2)
    assert (table <= 1e-3).all() and len({len(g) for g in small_chain.grams}) == 5  # probabilities, every order
    # a context one language never saw falls back to the shorter estimate, not to a uniform guess
    interpolated = [g for g in small_chain.grams if len(g) > 1 and (reference[g] != reference.get(g[1:], 0)).any()]
    assert len(interpolated) > len(small_chain.grams) // 2


def model_chain_table(model: NgramModel) -> dict[str, np.ndarray]:
    """The model's own table by gram string (its values are checked against Witten-Bell above)."""
    table = model.chain_log_probs()[model.gram_rows()].astype(np.float32)
    return dict(zip(model.grams, table, strict=True))


def test_a_chain_scores_each_character_once_by_its_longest_known_gram(small_chain):
    table = model_chain_table(small_chain)
    texts = mini_split("test")[0][:30] + [t[:10] for t in mini_split("test")[0][:30]] + EDGE_TEXTS
    sums, counts = small_chain.parts(texts)[:2]
    assert_like_the_reference(
        texts, sums, counts, lambda t: reference_chain_sums(small_chain, t, table), lambda t: small_chain.parts([t])[0]
    )


def test_a_chain_reads_a_text_end_after_a_letter_as_a_word_end_or_a_cut(small_chain):
    table = model_chain_table(small_chain)
    texts = [t[:10] for t in mini_split("test")[0][:30]] + EDGE_TEXTS + ["de.", "de", "d", "de 1", "ab\x00", "x" * 40]
    end_terms = small_chain.chain_end_terms(texts)
    found = 0
    for text, got in zip(texts, end_terms, strict=True):
        normal = normalise(text)
        # after a letter or digit, the closing space's term: that of the longest known gram ending on it
        known = [normal[-n:] for n in (5, 4, 3, 2) if normal[-2:-1].isalnum() and normal[-n:] in table]
        if known:
            np.testing.assert_array_equal(got, table[known[0]])
            found += 1
        else:
            assert np.isnan(got).all(), text
    assert found > 20
    assert not np.isnan(end_terms[texts.index("de 1")]).any() and np.isnan(end_terms[texts.index("de.")]).all()
    grams = small_chain.parts(texts)[0]
    for q in (1.0, 0.3, 0.0):
        small_chain.chain_end_whole = q
        with_words_off = small_chain.sums(texts)[0]  # the mini model has no words: grams only
        mixed = np.where(np.isnan(end_terms), 0.0, np.log(q * np.exp(end_terms) + 1 - q) - end_terms)
        np.testing.assert_allclose(with_words_off, grams + np.nan_to_num(mixed), rtol=1e-5, atol=5e-3)
    small_chain.chain_end_whole = 1.0
    small_chain.gram_scoring = "sum"  # the sum has no chain end to mix
    try:
        small_chain.chain_end_whole = 0.0
        np.testing.assert_array_equal(small_chain.sums(texts)[0], small_chain.parts(texts)[0])
    finally:
        small_chain.gram_scoring, small_chain.chain_end_whole = "chain", 1.0
    with pytest.raises(ValueError, match="chain_end_whole is a probability"):
        NgramModel(["q"], np.zeros((1, len(LANGUAGES))), 1.0, 0.0, chain_end_whole=-0.1)


def test_the_chain_discounts_a_stem_that_one_training_domain_repeats():
    """A Russian UI says "автоматически" all day; the Bulgarian ending "-ото" still decides "физическото"
    as a chain, where the sum of every gram lets the repeated stem outvote it."""
    ru = ["автоматически", "статически", "динамически", "физически", "это слово", "кто это"] * 30
    bg = ["автоматично", "мястото", "лятото", "тялото", "това е", "колелото", "езерото", "химическо"] * 5
    texts, labels = ru + bg, [LANGUAGES.index("ru")] * len(ru) + [LANGUAGES.index("bg")] * len(bg)
    model = ngram_model.fit(texts, labels, len(LANGUAGES), per_language=2000)
    answers = {}
    for scoring in ("sum", "chain"):
        model.gram_scoring = scoring
        answers[scoring] = LANGUAGES[int(model.scores(["физическото"])[0].argmax())]
    assert answers == {"sum": "ru", "chain": "bg"}


def test_the_reading_round_trips_and_an_older_file_reads_grams_as_a_sum(with_words, tmp_path):
    with_words.gram_scoring, with_words.chain_end_whole = "chain", 0.5
    path = with_words.save(tmp_path / "chain.npz")
    loaded = NgramModel.load(path)
    assert (loaded.gram_scoring, loaded.chain_end_whole, loaded.alpha) == ("chain", 0.5, with_words.alpha)
    np.testing.assert_array_equal(loaded.gram_totals, with_words.gram_totals)
    texts = mini_split("valid")[0][:50]
    np.testing.assert_array_equal(loaded.scores(texts), with_words.scores(texts))
    assert loaded.save(tmp_path / "again.npz").read_bytes() == path.read_bytes()
    with np.load(path) as data:  # version 5's file: no reading, no totals
        older = {k: data[k] for k in data.files if k not in ("gram_scoring", "gram_totals", "chain_end_whole")}
    np.savez(tmp_path / "v5.npz", **older)
    older = NgramModel.load(tmp_path / "v5.npz")
    with_words.gram_scoring, with_words.chain_end_whole = "sum", 1.0
    assert (older.gram_scoring, older.gram_totals, older.chain_end_whole) == ("sum", None, 1.0)
    np.testing.assert_array_equal(older.scores(texts), with_words.scores(texts))
    with pytest.raises(ValueError, match="gram total"):
        older.gram_scoring = "chain"
    with pytest.raises(ValueError, match="gram_scoring is one of"):
        with_words.gram_scoring = "product"
    with pytest.raises(ValueError, match="gram totals of shape"):
        NgramModel(["q"], np.zeros((1, len(LANGUAGES))), 1.0, 0.0, gram_totals=np.ones(3))
