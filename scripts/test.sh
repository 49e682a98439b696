#!/usr/bin/env bash
# The test command: set-up (plus Chromium for the MLflow UI test), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
exec .venv/bin/python -m pytest "$@"
