"""Benchmarks (not tests): accuracy, speed, serving, size numbers; `langdetect bench` writes BENCHMARKS.md."""

from __future__ import annotations

import sys


def attempt(measure, *args, **kwargs) -> dict:
    """A measurement's dict, or {"error": why} when it failed: one broken part must not sink the report."""
    try:
        return measure(*args, **kwargs)
    except Exception as exc:  # any failure is reported beside the numbers that did work
        print(f"  failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return {"error": f"{type(exc).__name__}: {str(exc)[:800]}"}
