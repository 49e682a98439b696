#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for langdetect-ops: system packages and a pinned virtualenv.
# Idempotent: re-running only installs what is missing.  Usage: scripts/setup.sh [--browser]
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# apt-get download + dpkg-deb build the corpus; python3.11 + venv run everything.
need=()
for cmd in apt-get dpkg-deb git curl; do command -v "$cmd" >/dev/null || need+=("$cmd"); done
if [ ${#need[@]} -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg git curl ca-certificates >/dev/null
fi
# apt-get download needs package lists; a fresh machine or container may have none.
if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then as_root apt-get update -qq; fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' || {
    echo "langdetect-ops needs Python 3.11 (found $("$PYTHON" --version))" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv || { as_root apt-get install -y -qq python3.11-venv >/dev/null && "$PYTHON" -m venv .venv; }
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned to the CPU build: an unpinned torch pulls several GB of CUDA wheels.
.venv/bin/python -m pip install -q -e '.[dev]'

if [ "${1:-}" = "--browser" ]; then scripts/install-browser.sh; fi
echo "setup done: . .venv/bin/activate"
