"""The tokenizer must give the same ids through transformers and through `tokenizers` alone."""

import pytest
from tokenizers import Tokenizer

from training import tokenizer as tok

SAMPLES = [
    "The quick brown fox jumps over the lazy dog.",
    "Le renard brun saute par-dessus le chien paresseux.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "素早い茶色の狐が怠け者の犬を飛び越える。",
    "敏捷的棕色狐狸跳过了懒狗。",
    "สุนัขจิ้งจอกสีน้ำตาลกระโดดข้ามสุนัขขี้เกียจ",
    "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है।",
    "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "Con cáo nâu nhanh nhẹn nhảy qua con chó lười.",
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    trained = tok.train_tokenizer(SAMPLES * 20, vocab_size=300)
    out = tmp_path_factory.mktemp("tok")
    tok.save(tok.to_transformers(trained, model_max_length=64), out)
    return out


@pytest.mark.parametrize(
    "text", SAMPLES + ["Full-width！？（ｔｅｓｔ）", "emoji 🙂 and\ttabs\nnewlines", "", "x" * 500]
)
def test_ids_match_between_transformers_and_tokenizers(saved, text):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(saved)
    raw = Tokenizer.from_file(str(saved / "tokenizer.json"))
    assert hf(text)["input_ids"] == raw.encode(text).ids


def test_special_tokens_have_xlmr_ids(saved):
    raw = Tokenizer.from_file(str(saved / "tokenizer.json"))
    assert [raw.token_to_id(t) for t in tok.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    ids = raw.encode("hello").ids
    assert ids[0] == tok.BOS and ids[-1] == tok.EOS


def test_nfkc_maps_full_width_text_to_known_tokens(saved):
    from transformers import AutoTokenizer

    # Without NFKC (what an XLMRobertaTokenizer reload would do), full-width letters are <unk>.
    for tokenizer_ids in (
        Tokenizer.from_file(str(saved / "tokenizer.json")).encode("ｔｈｅ ｆｏｘ").ids,
        AutoTokenizer.from_pretrained(saved)("ｔｈｅ ｆｏｘ")["input_ids"],
    ):
        assert tok.UNK not in tokenizer_ids
        assert tokenizer_ids == Tokenizer.from_file(str(saved / "tokenizer.json")).encode("the fox").ids


def test_whitespace_runs_tokenize_like_single_spaces(saved):
    from transformers import AutoTokenizer

    # The corpus has single spaces only; runs of spaces, tabs or newlines must not be new input.
    single = Tokenizer.from_file(str(saved / "tokenizer.json")).encode("The quick brown fox").ids
    for tokenizer_ids in (
        Tokenizer.from_file(str(saved / "tokenizer.json")).encode("  The quick\t\tbrown \n fox  ").ids,
        AutoTokenizer.from_pretrained(saved)("  The quick\t\tbrown \n fox  ")["input_ids"],
    ):
        assert tokenizer_ids == single


def test_balanced_sample_caps_each_language():
    texts = ["a"] * 100 + ["b"] * 5
    sample = tok.balanced_sample(texts, [0] * 100 + [1] * 5, per_label=10)
    assert sorted(sample) == ["a"] * 10 + ["b"] * 5


def test_a_vocabulary_too_small_for_the_alphabet_grows_to_hold_it(caplog):
    """The smoke profile's 2,000 pieces on the real corpus (thousands of CJK characters): the Unigram trainer
    would fail with "The vocabulary is not large enough to contain all chars"."""
    from training.tokenizer import train_tokenizer

    han = [chr(0x4E00 + i) for i in range(400)]
    texts = ["".join(han[i : i + 20]) for i in range(0, 400, 20)] + ["plain latin words here"] * 5
    tokenizer = train_tokenizer(texts, vocab_size=50)
    vocab = tokenizer.get_vocab()
    assert all(ch in vocab for ch in han) and tokenizer.get_vocab_size() > 400
    assert "cannot hold" in caplog.text
