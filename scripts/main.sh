#!/usr/bin/env bash
# The main job, from a fresh clone: set-up, corpus, training, registration, promotion, export.
# Honours MLFLOW_TRACKING_URI, BENTOML_HOME and BENTOML_PORT; PROFILE=smoke|default|full;
# IMAGES=1 also builds the CPU and GPU images, baked and model-less (Docker engine, registry-free base, size report).
set -euo pipefail
cd "$(dirname "$0")/.."
export MLFLOW_DISABLE_TELEMETRY=true BENTOML_DO_NOT_TRACK=true
scripts/setup.sh
bin=.venv/bin
"$bin/langdetect" corpus                                 # data/corpus: train/valid/test.csv + manifest
"$bin/langdetect" ood-set                                # data/ood: out-of-domain sets, held out of training
"$bin/langdetect" train --profile "${PROFILE:-default}"  # MLflow run + new version of `langdetect`
# @champion, unless the new version is not better on the validation split: then the champion stays (exit 3),
# a normal outcome of a retrain, and the champion is what gets exported.
status=0; "$bin/langdetect" promote latest || status=$?
if [ "$status" -eq 3 ]; then echo "main.sh: the current @champion stays; exporting it"; elif [ "$status" -ne 0 ]; then exit "$status"; fi
"$bin/langdetect" export --alias champion                # ONNX int8 + parity gate + BentoML store
if [ "${IMAGES:-0}" = 1 ]; then
    scripts/install-docker.sh                            # Debian's docker.io; starts dockerd (root)
    # A TLS-intercepting proxy's CA (in /usr/local/share/ca-certificates) must be trusted in builds too.
    ca=$(ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1 && echo --extra-ca-certs || true)
    "$bin/langdetect" images base $ca                    # langdetect-base (debootstrap), langdetect-uv, langdetect-strip
    "$bin/langdetect" images build                       # langdetect-cpu / -gpu (+ -modelless) :latest
    "$bin/langdetect" images report                      # reports/images.md
fi
cat <<MSG

Done. Serve the pinned @champion (int8 ONNX and torch in one process) on port ${BENTOML_PORT:-3000}:
    .venv/bin/bentoml serve service.service:LanguageDetector --port ${BENTOML_PORT:-3000}
Open the MLflow UI on the same store:
    .venv/bin/mlflow ui --backend-store-uri ${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} --workers 1
Or run the fleet path here (MLflow server with auth, the Kubernetes manifests played by podman):
    .venv/bin/langdetect deploy local
MSG
