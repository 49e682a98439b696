"""Fast unit tests, no model: language-balanced sampling, the bounds of the int8 parity gate and of the
fp32 ONNX check, and the canonical (deterministic) id order of the Unigram vocabulary."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
from tokenizers import Tokenizer
from tokenizers.models import Unigram

from registry import parity
from training import tokenizer as tok
from training.train import sampling_weights

# --- sampling_weights ---------------------------------------------------------------------------


def language_mass(weights: np.ndarray, labels: list[int]) -> np.ndarray:
    return np.bincount(labels, weights=weights)


@pytest.mark.parametrize("power", [0.0, 0.3, 0.5, 1.0])
def test_each_language_gets_mass_proportional_to_n_to_the_power(power):
    sizes = [400, 100, 25, 1]
    labels = [lang for lang, n in enumerate(sizes) for _ in range(n)]
    weights = sampling_weights(labels, power)
    expected = np.array(sizes, dtype=float) ** power
    np.testing.assert_allclose(language_mass(weights, labels), expected / expected.sum(), rtol=1e-12)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12) and (weights > 0).all()


def test_examples_of_one_language_are_equally_likely():
    labels = [0, 1, 0, 2, 0, 1]
    weights = sampling_weights(labels, 0.3)
    for lang in set(labels):
        assert len({weights[i] for i, label in enumerate(labels) if label == lang}) == 1


def test_power_one_is_the_natural_distribution_and_zero_is_uniform_over_languages():
    labels = [0] * 90 + [1] * 9 + [2]
    np.testing.assert_allclose(sampling_weights(labels, 1.0), np.full(100, 0.01))
    np.testing.assert_allclose(language_mass(sampling_weights(labels, 0.0), labels), [1 / 3] * 3)


def test_a_language_with_one_text_gets_its_share_on_that_text():
    labels = [0] * 99 + [1]
    weights = sampling_weights(labels, 0.5)
    assert weights[-1] == pytest.approx(1 / (99**0.5 + 1))


def test_a_language_without_texts_gets_no_mass_and_does_not_break_the_others():
    labels = [0, 0, 0, 0, 2]  # label 1 has no text: a language the training split lacks
    weights = sampling_weights(labels, 0.5)
    assert np.isfinite(weights).all() and len(weights) == len(labels)
    np.testing.assert_allclose(language_mass(weights, labels), [2 / 3, 0.0, 1 / 3])


# --- parity.compare: the int8 gate's bounds -----------------------------------------------------

TEXTS = 1000
CLASSES = 20


def one_hot(predictions) -> np.ndarray:
    return np.eye(CLASSES, dtype=np.float32)[np.asarray(predictions)]


def gate(torch_pred, int8_pred, truth) -> parity.ParityReport:
    return parity.compare(one_hot(torch_pred), one_hot(torch_pred), one_hot(int8_pred), truth)


def disagreeing(changed: int) -> parity.ParityReport:
    """int8 changes `changed` of torch's labels, on texts both get wrong: agreement moves, accuracy does not."""
    truth = np.zeros(TEXTS, dtype=int)
    torch_pred, int8_pred = truth.copy(), truth.copy()
    truth[:changed], torch_pred[:changed], int8_pred[:changed] = 2, 0, 1
    return gate(torch_pred, int8_pred, truth)


def losing(lost: int) -> parity.ParityReport:
    """int8 gets `lost` texts wrong that torch gets right."""
    truth = np.zeros(TEXTS, dtype=int)
    int8_pred = truth.copy()
    int8_pred[:lost] = 1
    return gate(truth, int8_pred, truth)


AT_AGREEMENT_BOUND = round((1 - parity.MIN_AGREEMENT) * TEXTS)  # 5 of 1,000 texts
AT_DROP_BOUND = round(parity.MAX_ACCURACY_DROP * TEXTS)  # 3 of 1,000 texts


def test_agreement_exactly_at_the_minimum_passes():
    report = disagreeing(AT_AGREEMENT_BOUND)
    assert report.agreement == parity.MIN_AGREEMENT and report.accuracy_drop == 0
    assert report.passed
    parity.enforce(report)


def test_agreement_just_under_the_minimum_fails():
    report = disagreeing(AT_AGREEMENT_BOUND + 1)
    assert report.accuracy_drop == 0 and not report.passed
    expected = f"agreement {report.agreement:.3%} (minimum {parity.MIN_AGREEMENT:.1%})"
    with pytest.raises(parity.ParityError, match=re.escape(expected)):
        parity.enforce(report)


def test_accuracy_drop_exactly_at_the_maximum_passes():
    # 1.0 - 0.997 is 0.0030000000000000027 in floating point: the bound must still hold.
    report = losing(AT_DROP_BOUND)
    assert report.agreement >= parity.MIN_AGREEMENT
    assert report.passed, report.as_dict()


def test_accuracy_drop_just_past_the_maximum_fails():
    report = losing(AT_DROP_BOUND + 1)
    assert report.agreement >= parity.MIN_AGREEMENT and not report.passed
    expected = (
        f"accuracy drop {(AT_DROP_BOUND + 1) / TEXTS * 100:.2f} points (maximum {parity.MAX_ACCURACY_DROP * 100:.1f})"
    )
    with pytest.raises(parity.ParityError, match=re.escape(expected)):
        parity.enforce(report)


def test_an_int8_model_better_than_torch_passes():
    truth = np.zeros(TEXTS, dtype=int)
    torch_pred = truth.copy()
    torch_pred[:3] = 1
    report = gate(torch_pred, truth, truth)
    assert report.accuracy_drop < 0 and report.passed


def test_report_measures_against_torch_and_the_truth():
    torch_probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    int8_probs = np.array([[0.7, 0.3], [0.4, 0.6], [0.3, 0.7]])
    fp32_probs = np.array([[0.1, 0.9], [0.2, 0.8], [0.6, 0.4]])
    report = parity.compare(torch_probs, fp32_probs, int8_probs, [0, 1, 1])
    assert report.agreement == pytest.approx(2 / 3)
    assert (report.accuracy_torch, report.accuracy_onnx_fp32, report.accuracy_onnx_int8) == pytest.approx(
        (2 / 3, 1 / 3, 1.0)
    )
    assert report.max_abs_prob_diff == pytest.approx(0.3)


# --- parity.compare_fp32: fp32 ONNX logits against torch logits ---------------------------------


def logits_pair(shift: float, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Torch logits with clear winners, and fp32 logits `shift` away on one entry (and, if flip, with two
    labels of one text swapped)."""
    # Multiples of 1/8, so that adding 0.25 below is exact in float32.
    torch_logits = (np.round(np.random.default_rng(0).normal(size=(50, CLASSES)) * 8) / 8).astype(np.float32)
    torch_logits[np.arange(50), np.arange(50) % CLASSES] += 10
    fp32_logits = torch_logits.copy()
    fp32_logits[7, 3] += shift
    if flip:
        fp32_logits[0, [0, 1]] = fp32_logits[0, [1, 0]]
    return torch_logits, fp32_logits


def test_fp32_within_tolerance_passes():
    tolerance = parity.MAX_FP32_LOGIT_DIFF
    report = parity.compare_fp32(*logits_pair(tolerance / 2))
    assert report.passed and report.argmax_agreement == 1.0
    assert report.max_abs_logit_diff == pytest.approx(tolerance / 2, rel=1e-3)
    parity.enforce_fp32(report)


def test_fp32_past_the_logit_tolerance_fails():
    tolerance = parity.MAX_FP32_LOGIT_DIFF
    report = parity.compare_fp32(*logits_pair(2 * tolerance))
    assert report.argmax_agreement == 1.0 and not report.passed
    figures = re.escape(f"to torch {2 * tolerance:.3g} (tolerance {tolerance:g})")
    with pytest.raises(parity.ParityError, match=f"fp32 ONNX check failed.*logit difference. {figures}"):
        parity.enforce_fp32(report)


def test_fp32_at_the_tolerance_passes_and_a_zero_tolerance_fails():
    torch_logits, fp32_logits = logits_pair(0.25)  # exact in binary: the difference is exactly 0.25
    assert parity.compare_fp32(torch_logits, fp32_logits, max_logit_diff=0.25).passed
    assert not parity.compare_fp32(torch_logits, fp32_logits, max_logit_diff=0.0).passed
    assert parity.compare_fp32(torch_logits, torch_logits.copy(), max_logit_diff=0.0).passed


def test_fp32_with_one_label_changed_fails_even_with_a_loose_tolerance():
    report = parity.compare_fp32(*logits_pair(0.0, flip=True), max_logit_diff=100.0)
    assert report.argmax_agreement == pytest.approx(49 / 50) and not report.passed
    with pytest.raises(parity.ParityError, match=r"argmax agreement 98\.000% \(100% required\)"):
        parity.enforce_fp32(report)


def test_fp32_with_nan_logits_fails():
    torch_logits, fp32_logits = logits_pair(0.0)
    fp32_logits[4, 4] = np.nan
    assert not parity.compare_fp32(torch_logits, fp32_logits).passed


# --- the canonical Unigram vocabulary -----------------------------------------------------------

SAMPLES = [
    "The quick brown fox jumps over the lazy dog, again and again.",
    "Le renard brun saute par-dessus le chien paresseux !",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "素早い茶色の狐が怠け者の犬を飛び越える。",
    "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "<b>Tags</b> and (brackets), 42 numbers; #hash & more.",
]


@pytest.fixture(scope="module")
def trained() -> Tokenizer:
    return tok.train_tokenizer(SAMPLES * 20, vocab_size=200)


def with_vocab(tokenizer: Tokenizer, vocab: list) -> Tokenizer:
    """The same pipeline over a Unigram model of these pieces, in this order. The model is built from Python
    floats, as _canonical_unigram builds it: a JSON round trip in `tokenizers` can move a score by an ulp."""
    other = Tokenizer.from_str(tokenizer.to_str())
    other.model = Unigram([(piece, score) for piece, score in vocab], unk_id=tok.UNK)
    return other


def test_trained_vocabulary_is_specials_then_pieces_in_text_order(trained):
    pieces = [piece for piece, _ in json.loads(trained.to_str())["model"]["vocab"]]
    assert pieces[: len(tok.SPECIAL_TOKENS)] == tok.SPECIAL_TOKENS
    rest = pieces[len(tok.SPECIAL_TOKENS) :]
    assert rest == sorted(rest) and any(p < "<" for p in rest)  # some pieces sort before "<s>", yet come after


@pytest.mark.parametrize("seed", range(3))
def test_the_same_pieces_in_another_order_give_the_same_tokenizer(trained, seed):
    vocab = json.loads(trained.to_str())["model"]["vocab"]
    specials, pieces = vocab[: len(tok.SPECIAL_TOKENS)], vocab[len(tok.SPECIAL_TOKENS) :]
    shuffled = with_vocab(trained, specials + random.Random(seed).sample(pieces, len(pieces)))
    assert [shuffled.encode(t).ids for t in SAMPLES] != [trained.encode(t).ids for t in SAMPLES]  # order = ids
    shuffled.model = tok._canonical_unigram(shuffled)
    assert shuffled.to_str() == trained.to_str()
    assert [shuffled.encode(t).ids for t in SAMPLES] == [trained.encode(t).ids for t in SAMPLES]


def test_special_tokens_keep_ids_0_to_4_after_canonicalisation(trained):
    vocab = json.loads(trained.to_str())["model"]["vocab"]
    reversed_pieces = with_vocab(trained, vocab[: len(tok.SPECIAL_TOKENS)] + vocab[len(tok.SPECIAL_TOKENS) :][::-1])
    reversed_pieces.model = tok._canonical_unigram(reversed_pieces)
    assert [reversed_pieces.token_to_id(t) for t in tok.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert [tok.BOS, tok.PAD, tok.EOS, tok.UNK, tok.MASK] == [0, 1, 2, 3, 4]
    ids = reversed_pieces.encode("unseen ☃ glyph").ids
    assert ids[0] == tok.BOS and ids[-1] == tok.EOS and tok.UNK in ids  # the Unigram model's unk_id survives


def test_profile_overrides_keep_field_types_and_refuse_unknown_fields():
    from langdetect_ops.config import PROFILES, override_profile
    from langdetect_ops.errors import UserError

    base = PROFILES["default"]
    changed = override_profile(base, {"vocab_size": "12000", "lr": "0.002", "eval_max_texts": "None"})
    assert (changed.vocab_size, changed.lr, changed.eval_max_texts) == (12000, 0.002, None)
    assert changed.steps == base.steps and base.vocab_size != 12000  # the profile itself is untouched
    with pytest.raises(UserError, match="no such profile field"):
        override_profile(base, {"vocab": "1"})
    with pytest.raises(UserError, match="not a int"):
        override_profile(base, {"steps": "many"})
