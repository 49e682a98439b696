#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium and its matching chromedriver for the browser tests
# (pytest -m browser). Idempotent: does nothing when both are already present.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    echo "chromium and chromedriver already installed: $(/usr/bin/chromium --version 2>/dev/null || true)"
    exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

# A fresh CI image often has no package lists; refresh them only when the package is unknown.
if ! apt-cache show chromium-driver >/dev/null 2>&1; then
    $SUDO apt-get update -q
fi
$SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver

# chromium-driver comes from the same source package, so its version always matches the browser.
/usr/bin/chromium --version
/usr/bin/chromedriver --version
