"""The classifier: XLMRobertaForSequenceClassification, built from scratch or from a checkpoint."""

from __future__ import annotations

from pathlib import Path

from langdetect_ops.config import LANGUAGES, TrainingProfile
from langdetect_ops.errors import UserError
from training.tokenizer import BOS, EOS, PAD


def label_maps(languages: tuple[str, ...] = LANGUAGES) -> tuple[dict[int, str], dict[str, int]]:
    return dict(enumerate(languages)), {lang: i for i, lang in enumerate(languages)}


def build_model(profile: TrainingProfile, vocab_size: int, languages: tuple[str, ...] = LANGUAGES):
    """A small XLM-R sized for CPU speed (the int8 ONNX of the default profile is a few MB)."""
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    id2label, label2id = label_maps(languages)
    config = XLMRobertaConfig(
        vocab_size=vocab_size,
        hidden_size=profile.hidden_size,
        num_hidden_layers=profile.layers,
        num_attention_heads=profile.heads,
        intermediate_size=profile.intermediate_size,
        # XLM-R's position ids start after the padding index, hence the +2.
        max_position_embeddings=profile.max_length + 2,
        type_vocab_size=1,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        num_labels=len(languages),
        id2label=id2label,
        label2id=label2id,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    return XLMRobertaForSequenceClassification(config)


def load_checkpoint(path_or_hub_id: str, languages: tuple[str, ...] = LANGUAGES):
    """Model and tokenizer to fine-tune: a local directory, or a hub id when the hub is reachable.

    The classification head is re-created when the checkpoint's labels differ from ours.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    local = Path(path_or_hub_id)
    if local.exists() and not (local / "config.json").is_file():
        raise UserError(
            f"--init-from {path_or_hub_id}: no config.json there; expected a transformers "
            f"checkpoint directory (save_pretrained output) or a hub id"
        )
    id2label, label2id = label_maps(languages)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path_or_hub_id)
        model = AutoModelForSequenceClassification.from_pretrained(
            path_or_hub_id,
            num_labels=len(languages),
            id2label=id2label,
            label2id=label2id,
            ignore_mismatched_sizes=True,
        )
    except (OSError, ValueError) as exc:
        raise UserError(
            f"--init-from {path_or_hub_id}: cannot load a checkpoint ({exc}). A hub id needs "
            f"network access to the hub; otherwise pass a local directory."
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(
            f"--init-from {path_or_hub_id}: the tokenizer has no fast (tokenizer.json) version, "
            f"which the CPU runner needs"
        )
    return model, tokenizer


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
