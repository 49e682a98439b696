# langdetect-ops: one target per pipeline stage. `make all` runs them in order on a fresh machine.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
BIN := .venv/bin
PROFILE ?= default
PORT ?= $(or $(BENTOML_PORT),3000)
export MLFLOW_DISABLE_TELEMETRY := true
export BENTOML_DO_NOT_TRACK := true

.PHONY: all setup corpus train promote export serve images deploy-local bench ui test test-fast clean

all:  ## everything from a fresh clone to a servable model (= scripts/main.sh)
	scripts/main.sh

setup:  ## system packages + pinned virtualenv (idempotent)
	scripts/setup.sh

corpus:  ## data/corpus/{train,valid,test}.csv + manifest.json, from Debian packages
	$(BIN)/langdetect corpus

train:  ## tokenizer + classifier, logged to MLflow, registered as a new version of `langdetect`
	$(BIN)/langdetect train --profile $(PROFILE)

promote:  ## @champion -> the newest version, unless it is not better on the validation split (exit 3)
	$(BIN)/langdetect promote latest

export:  ## @champion -> ONNX fp32 -> int8 -> parity gate -> BentoML store
	$(BIN)/langdetect export --alias champion

serve:  ## the HTTP API with int8 ONNX and torch in one process, on BENTOML_PORT (default 3000)
	$(BIN)/bentoml serve service.service:LanguageDetector --port $(PORT)

images:  ## registry-free base, then the CPU and GPU images, then the size report
	scripts/install-docker.sh
	$(BIN)/langdetect images base --extra-ca-certs
	$(BIN)/langdetect images build
	$(BIN)/langdetect images report

deploy-local:  ## the fleet path on this machine: MLflow server (basic auth) + deploy/k8s played by podman
	scripts/install-docker.sh
	scripts/install-fleet-tools.sh
	$(BIN)/langdetect deploy local

bench:  ## BENCHMARKS.md + docs/bench/: accuracy vs peers, speed, serving, images (BENCH_ARGS=--quick: minutes)
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/langdetect bench $(BENCH_ARGS)

ui:  ## the MLflow UI on the embedded store
	$(BIN)/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} --workers 1

test:  ## set up (with Chromium for the UI test) and run every test (= scripts/test.sh)
	scripts/test.sh

test-fast:  ## unit tests only: no training, serving or browser
	$(BIN)/python -m pytest -m "not slow and not browser and not container"

clean:
	rm -rf artifacts mlartifacts mlflow.db .pytest_cache
