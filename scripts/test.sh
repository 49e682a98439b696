#!/usr/bin/env bash
# The test command: set-up (plus Chromium, the Docker engine and the fleet tools), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
scripts/install-docker.sh   # Docker engine for the container tests (Debian's docker.io, dockerd)
scripts/install-fleet-tools.sh   # podman, kubectl, docker-registry for the k8s tests
# Lint and format check first: a style slip fails the run in seconds, before the long tests.
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The data tests read the real corpus (no text in two splits, the manifest matches its files): build it
# once (Debian's packages, about 3 minutes), as `scripts/main.sh` does; later runs reuse data/corpus.
[ -f data/corpus/manifest.json ] || .venv/bin/langdetect corpus
exec .venv/bin/python -m pytest "$@"
