#!/usr/bin/env bash
# The main job, from a fresh clone: set-up, corpus, training, registration, promotion, export.
# Honours MLFLOW_TRACKING_URI, BENTOML_HOME and BENTOML_PORT; PROFILE=smoke|default|full.
set -euo pipefail
cd "$(dirname "$0")/.."
export MLFLOW_DISABLE_TELEMETRY=true BENTOML_DO_NOT_TRACK=true
scripts/setup.sh
bin=.venv/bin
"$bin/langdetect" corpus                                 # data/corpus: train/valid/test.csv + manifest
"$bin/langdetect" train --profile "${PROFILE:-default}"  # MLflow run + new version of `langdetect`
"$bin/langdetect" promote latest                         # @champion (refused if worse than the current one)
"$bin/langdetect" export --alias champion                # ONNX int8 + parity gate + BentoML store
cat <<MSG

Done. Serve the API (both runners) on port ${BENTOML_PORT:-3000}:
    .venv/bin/bentoml serve service.service:LanguageDetector --port ${BENTOML_PORT:-3000}
Open the MLflow UI on the same store:
    .venv/bin/mlflow ui --backend-store-uri ${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} --workers 1
MSG
