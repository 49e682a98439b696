#!/usr/bin/env bash
# What the fleet path needs beside Docker (pytest -m k8s, `langdetect deploy local`, the bench's pulls):
# podman 4.3 with runc and catatonit (its locally built pause image), Debian's docker-registry, and
# kubectl (Google's package; kustomize is built in). Installs only what is missing. Idempotent.
# podman runs with a private CONTAINERS_CONF (runc, ulimits this sandbox allows): deploy/podman.py.
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
for pair in podman:podman runc:runc catatonit:catatonit docker-registry:docker-registry kubectl:kubectl; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-cache show "${need[@]}" >/dev/null 2>&1 || as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's docker-registry package starts a registry on :5000 where an init system runs; the project runs its
# own on free loopback ports (deploy/registry.py) and `langdetect deploy local` needs nothing there.
echo "fleet tools: $(podman --version), $(kubectl version --client 2>/dev/null | head -1), docker-registry $(dpkg-query -W -f '${Version}' docker-registry)"
