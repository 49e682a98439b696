#!/usr/bin/env bash
# Installs Debian's Chromium and its chromedriver for the browser tests (pytest -m browser,
# tests/test_mlflow_ui.py). Idempotent and non-interactive: does nothing when both are present.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    echo "already installed: $(/usr/bin/chromedriver --version)"
    exit 0
fi

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
install() { $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver; }

# Fresh CI images ship without package lists; stale lists can point at removed .debs. Refresh only
# when needed, so a warm machine installs without touching the network for the index.
if ! apt-cache show chromium-driver >/dev/null 2>&1; then
    $SUDO apt-get update -q
fi
install || { $SUDO apt-get update -q && install; }

# Both come from the same source package, so the driver always matches the browser.
/usr/bin/chromium --version 2>/dev/null  # its launcher's /dev/shm probe may print a harmless "[:" warning
/usr/bin/chromedriver --version
