"""`langdetect promote VERSION`: what the MLflow UI's Aliases editor does, plus a quality guard.

The guard selects on the validation split: valid_selection_score, the mean accuracy over its full texts and
its 1/2/3-word and 10/20-character slices, measured on the split whose sha256 is data_sha256_valid. The test
split and the out-of-domain sets are reported, never used to choose, so their figures for the champion stay
unselected estimates."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from langdetect_ops import config
from langdetect_ops.errors import UserError
from registry.models import get_by_alias, get_version, metric_tag, registry_client

SELECTION_METRIC = "valid_selection_score"  # training/pipeline.py SELECTION_SCORE
SELECTION_SPLIT = "data_sha256_valid"


class NotPromoted(UserError):
    """The guard kept the current version: a normal outcome of a retrain (`langdetect promote` exits 3)."""


@dataclass
class Promotion:
    version: str
    alias: str
    previous: str | None
    changed: bool


def promote(
    version: str | int,
    alias: str = config.CHAMPION_ALIAS,
    force: bool = False,
    actor: str | None = None,
    name: str = config.REGISTERED_MODEL,
) -> Promotion:
    client = registry_client()
    candidate = get_version(client, version, name)
    current = get_by_alias(client, alias, name, required=False)
    if current is not None and str(current.version) == str(candidate.version):
        return Promotion(str(candidate.version), alias, str(current.version), changed=False)
    if current is not None and not force:
        _refuse_if_worse(client, candidate, current, alias)
    client.set_registered_model_alias(name, alias, candidate.version)
    previous = str(current.version) if current else None
    trace = {
        "promoted_by": actor or _default_actor(),
        "promoted_at": datetime.now(UTC).isoformat(),
        "promoted_alias": alias,
        "previous_champion": previous or "none",
        "promotion_forced": str(bool(force)).lower(),
    }
    for key, value in trace.items():
        client.set_model_version_tag(name, candidate.version, key, value)
    return Promotion(str(candidate.version), alias, previous, changed=True)


def selection(client, version) -> tuple[float | None, str | None]:
    """The version's validation accuracy and the sha256 of that split: from its tags, or, for versions
    registered before those tags existed, from the training run that logged them."""
    value, split = metric_tag(version, SELECTION_METRIC), (version.tags or {}).get(SELECTION_SPLIT)
    if value is None and version.run_id:
        from mlflow.exceptions import MlflowException

        try:
            run = client.get_run(version.run_id)
        except MlflowException:
            return None, split
        value, split = run.data.metrics.get(SELECTION_METRIC), split or run.data.tags.get(SELECTION_SPLIT)
    return value, split


def _refuse_if_worse(client, candidate, current, alias: str) -> None:
    (new, new_split), (old, old_split) = selection(client, candidate), selection(client, current)
    if new_split and old_split and new_split != old_split:
        # Accuracies on two different validation splits (a rebuilt corpus) say nothing about which is better.
        raise NotPromoted(
            f"version {candidate.version} and @{alias} (version {current.version}) were validated on "
            f"different splits (sha256 {new_split[:12]}… vs {old_split[:12]}…), so their "
            f"accuracies ({_pct(new)} vs {_pct(old)}) do not compare; pass --force to promote it anyway"
        )
    if new is None:
        raise NotPromoted(
            f"version {candidate.version} has no {SELECTION_METRIC} to compare with @{alias} "
            f"(version {current.version}); pass --force to promote it anyway"
        )
    if old is None:
        raise NotPromoted(
            f"@{alias} (version {current.version}) has no {SELECTION_METRIC}, neither as a tag nor in "
            f"its run (it predates selection on the validation slices), so version {candidate.version} cannot "
            f"be compared with it: `langdetect rescore --version {current.version}` scores it"
        )
    if new <= old:
        raise NotPromoted(
            f"version {candidate.version} is not better than @{alias} (version {current.version}) on "
            f"the validation split: {new:.4%} vs {old:.4%}; @{alias} stays (--force promotes it anyway)"
        )


def _pct(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.4%}"


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("USER", "unknown")
    return f"{user} (langdetect promote)"
