#!/usr/bin/env bash
# Makes a Docker engine usable for `langdetect images` and the container tests (pytest -m container):
# installs Debian's docker.io (plus debootstrap, which builds the registry-free base image) when
# absent, and starts dockerd in the background when none answers. Idempotent.
#
# Use Debian's client /usr/bin/docker: a /usr/local/bin/docker without buildx breaks BentoML's
# BuildKit builds, so put /usr/bin first on PATH (`langdetect images` does that itself).
set -euo pipefail

DOCKER=/usr/bin/docker
LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
[ -x "$DOCKER" ] || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v strip >/dev/null && command -v readelf >/dev/null || need+=(binutils)  # the base and strip images
if [ ${#need[@]} -gt 0 ]; then
    # A fresh machine may have no package lists; refresh them only when a package is unknown.
    apt-cache show "${need[@]}" >/dev/null 2>&1 || as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${need[@]}" >/dev/null
fi

if as_root "$DOCKER" info >/dev/null 2>&1; then
    echo "docker engine running: $("$DOCKER" version --format '{{.Server.Version}}' 2>/dev/null)"
    exit 0
fi

# No init system here (a container or CI machine), so start the daemon ourselves, detached.
echo "starting dockerd (log: $LOG)"
# At niceness 0 whatever the caller's (a niced bench or test run): containers inherit the engine's.
as_root setsid nohup nice -n "$((-$(nice)))" dockerd >"$LOG" 2>&1 < /dev/null &
for _ in $(seq 60); do
    if as_root "$DOCKER" info >/dev/null 2>&1; then
        echo "docker engine running: $("$DOCKER" version --format '{{.Server.Version}}')"
        exit 0
    fi
    sleep 1
done
echo "dockerd did not answer within 60 s; see $LOG" >&2
tail -20 "$LOG" >&2 || true
exit 1
