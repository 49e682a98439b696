"""schemathesis against a running server, from its own /docs.json: used by the tests and by the bench."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_schemathesis(url: str, max_examples: int, report: Path, timeout_s: float = 900) -> tuple[dict, str]:
    """Examples, coverage and fuzzing phases, every check but positive_data_acceptance (a 5xx fails
    `not_a_server_error`), one worker, fixed seed, loopback only. Returns (its JSON report, its output)."""
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "run",
            f"{url}/docs.json",
            "--url",
            url,
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            str(max_examples),
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if not report.is_file():
        raise RuntimeError(f"schemathesis wrote no report ({result.returncode}): {result.stdout[-1500:]}")
    return {**json.loads(report.read_text()), "exit_code": result.returncode}, result.stdout
