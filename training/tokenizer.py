"""Train a Unigram tokenizer with XLM-R's special tokens and wrap it for transformers.

The tokenizer is saved as tokenizer.json and wrapped in PreTrainedTokenizerFast(tokenizer_object=...)
so that transformers and `tokenizers.Tokenizer.from_file` (what the CPU runner uses) give
identical ids. Saving it as XLMRobertaTokenizer would let transformers 5 rebuild the pipeline
and silently drop the NFKC step.
"""

from __future__ import annotations

import json
import logging
import random
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram
from tokenizers.trainers import UnigramTrainer

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0..4, as in XLM-R
BOS, PAD, EOS, UNK, MASK = range(5)


def balanced_sample(texts: Sequence[str], labels: Sequence[int], per_label: int, seed: int = 0) -> list[str]:
    """Caps each language so the big ones don't crowd scarce scripts out of the vocabulary."""
    by_label: dict[int, list[str]] = {}
    for text, label in zip(texts, labels):
        by_label.setdefault(label, []).append(text)
    rng = random.Random(seed)
    sample: list[str] = []
    for label in sorted(by_label):
        group = by_label[label]
        sample.extend(rng.sample(group, min(per_label, len(group))))
    rng.shuffle(sample)
    return sample


def required_vocab_size(texts: list[str]) -> int:
    """The Unigram trainer keeps every character it sees as a piece and fails when the vocabulary cannot hold
    them all (CJK alone brings thousands): the characters after NFKC, the word-start marker, the specials,
    and a tenth more for the trainer's own bookkeeping."""
    alphabet = {ch for text in texts for ch in unicodedata.normalize("NFKC", text) if not ch.isspace()}
    return int((len(alphabet) + 1 + len(SPECIAL_TOKENS)) * 1.1)


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    texts = list(texts)
    needed = required_vocab_size(texts)
    if vocab_size < needed:
        # The smoke profile's 2,000 pieces fit the test fixtures' corpus, not 20 real languages' characters.
        log.warning(
            "vocab_size %d cannot hold the %d-odd characters of this sample; using %d", vocab_size, needed, needed
        )
        vocab_size = needed
    tokenizer = Tokenizer(Unigram())
    # NFKC: full-width punctuation -> ASCII, as in XLM-R. Whitespace runs -> one space, stripped: the
    # corpus has single spaces only, so "a  b" would otherwise be input the model never saw.
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = UnigramTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="<unk>", max_piece_length=8, show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.model = _canonical_unigram(tokenizer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", BOS), ("</s>", EOS)]
    )
    return tokenizer


def _canonical_unigram(tokenizer: Tokenizer) -> Unigram:
    """The trainer walks hash maps in a random order, so the same data gives the same pieces with
    scores that differ slightly (up to 0.02 on the smoke profile) and near-tied pieces would swap ids
    from run to run. Ordering pieces by text (special tokens first) keeps the ids stable; the scores,
    and so a few segmentations, still vary, which is why two trainings are close but not identical."""
    vocab = json.loads(tokenizer.to_str())["model"]["vocab"]
    special, pieces = vocab[: len(SPECIAL_TOKENS)], sorted(vocab[len(SPECIAL_TOKENS) :])
    return Unigram([(piece, score) for piece, score in special + pieces], unk_id=UNK)


def to_transformers(tokenizer: Tokenizer, model_max_length: int):
    """Wraps the trained tokenizer without rebuilding it (keeps tokenizer.json byte-identical)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=model_max_length,
    )


def save(tokenizer, out_dir: Path) -> Path:
    """save_pretrained writes tokenizer.json (for tokenizers) and tokenizer_config.json (for transformers)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir / "tokenizer.json"
