"""`langdetect promote VERSION`: what the MLflow UI's Aliases editor does, plus a quality guard."""
from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import datetime, timezone

from langdetect_ops import config
from langdetect_ops.errors import UserError
from registry.models import get_by_alias, get_version, metric_tag, registry_client


@dataclass
class Promotion:
    version: str
    alias: str
    previous: str | None
    changed: bool


def promote(version: str | int, alias: str = config.CHAMPION_ALIAS, force: bool = False,
            actor: str | None = None, name: str = config.REGISTERED_MODEL) -> Promotion:
    client = registry_client()
    candidate = get_version(client, version, name)
    current = get_by_alias(client, alias, name, required=False)
    if current is not None and str(current.version) == str(candidate.version):
        return Promotion(str(candidate.version), alias, str(current.version), changed=False)
    if current is not None and not force:
        _refuse_if_worse(candidate, current, alias)
    client.set_registered_model_alias(name, alias, candidate.version)
    previous = str(current.version) if current else None
    trace = {"promoted_by": actor or _default_actor(), "promoted_at": datetime.now(timezone.utc).isoformat(),
             "promoted_alias": alias, "previous_champion": previous or "none",
             "promotion_forced": str(bool(force)).lower()}
    for key, value in trace.items():
        client.set_model_version_tag(name, candidate.version, key, value)
    return Promotion(str(candidate.version), alias, previous, changed=True)


def _refuse_if_worse(candidate, current, alias: str) -> None:
    new, old = metric_tag(candidate), metric_tag(current)
    new_split, old_split = ((v.tags or {}).get("data_sha256_test") for v in (candidate, current))
    if new_split and old_split and new_split != old_split:
        # Accuracies on two different test splits (a rebuilt corpus) say nothing about which model is better.
        raise UserError(f"version {candidate.version} and @{alias} (version {current.version}) were tested on "
                        f"different test splits (sha256 {new_split[:12]}… vs {old_split[:12]}…), so their "
                        f"accuracies ({_pct(new)} vs {_pct(old)}) do not compare; pass --force to promote it anyway")
    if new is None:
        raise UserError(f"version {candidate.version} has no test_accuracy tag to compare with @{alias} "
                        f"(version {current.version}); pass --force to promote it anyway")
    if old is not None and new < old:
        raise UserError(f"version {candidate.version} is worse than @{alias} (version {current.version}): "
                        f"test accuracy {new:.4%} < {old:.4%}; pass --force to promote it anyway")


def _pct(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.4%}"


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("USER", "unknown")
    return f"{user} (langdetect promote)"
