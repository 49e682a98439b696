#!/usr/bin/env bash
# The test command: set-up (plus Chromium and the Docker engine), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
scripts/install-docker.sh   # Docker engine for the container tests (Debian's docker.io, dockerd)
exec .venv/bin/python -m pytest "$@"
