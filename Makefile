# thingpress: the two newcomer commands are `make demo` and `make test`.
# Every target installs what it needs (idempotent, fast when already installed).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
# The one default environment (stacks/naming.py DEFAULT_ENV): the local cloud's. deploy and destroy
# reach AWS, and there the environment is always named (ENV=pr123): they refuse the default.
ENV ?= local
NAMED_ENV = $(if $(filter file,$(origin ENV)),$(error make $@ reaches AWS: name the environment, e.g. make $@ ENV=pr123),)
export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_VERBOSITY := -1
export PIPENV_NOSPIN := 1
export PIPENV_YES := 1
export PIPENV_IGNORE_VIRTUALENVS := 1
# Node 22 from package.json first on PATH: jsii must not run on an end-of-life Node.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

VENV := .venv
PY := $(VENV)/bin/python
CHECKOV := build/tools/checkov/bin/checkov
PIPENV := $(PYTHON) -m pipenv
# terraform/cdktf environment: the project's own CLI config for an offline provider mirror.
TOOLENV = eval "$$($(PY) -m thingpress_cli.core.toolchain)"

.PHONY: help install synth test test-unit test-stacks test-integration iam-check demo bench bench-scale fuzz-long \
        local-up local-down local-status chaos deploy destroy clean test-preview-job

help:
	@echo "make demo    - bring up the local emulator, deploy, import real vendor samples, show results"
	@echo "make test    - the whole suite (unit, stacks, contract, integration on a local deploy, fault, fuzz)"
	@echo "make test-unit - everything that needs no deployment (unit, fuzz with the quick budget, stacks, contract)"
	@echo "make synth   - synthesize cdktf.out/stacks/thingpress-$(ENV)"
	@echo "make test-preview-job ENV=pr7 - the preview workflow's test steps (read from it) on a local pr7"
	@echo "make iam-check - the AWS calls the local runs recorded, and the service paths, against the stack's policies"
	@echo "make bench   - benchmarks: docs/benchmarks.md, docs/benchmarks.json, docs/benchmarks.png"
	@echo "make bench-scale - provider resume overhead and peak memory at 1M certificates: docs/scale.md, docs/scale.json"
	@echo "make chaos   - imports while workers are killed and the emulator injects faults (CHAOS_SECONDS, CHAOS_CERTIFICATES)"
	@echo "make deploy ENV=pr123 / make destroy ENV=pr123 - real AWS (see README); destroy runs thingpress teardown first"

install: $(VENV)/.installed node_modules/.installed $(CHECKOV)

$(VENV)/.installed: Pipfile pyproject.toml shared/pyproject.toml
	@$(PYTHON) -m pipenv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet pipenv==2026.10.3
	$(PIPENV) install --dev
	$(PY) -m thingpress_cli.local.emulator.guard
	@touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

# checkov pins boto3==1.35.49 exactly: it gets a virtualenv of its own.
$(CHECKOV):
	$(PYTHON) -m venv build/tools/checkov
	build/tools/checkov/bin/pip install --quiet checkov==3.3.30

synth: $(VENV)/.installed node_modules/.installed
	$(TOOLENV); THINGPRESS_ENV=$(ENV) $(PY) main.py
	@echo "wrote cdktf.out/stacks/thingpress-$(ENV)/cdk.tf.json"

# pytest-xdist workers (tests/conftest.py: XDIST_GROUPS, and the order the work goes out in).
# make test-unit: two, the synthesis on one while the rest runs on the other. make test: three, the
# local deployment's tests in order on one, the preview environment's (deployed beside it) on
# another, the rest on the third; the deployments mostly wait, so the two cores stay busy.
XDIST := -n 2 --dist loadgroup --no-loadscope-reorder
XDIST_DEPLOYED := -n 3 --dist loadgroup --no-loadscope-reorder

# The integration and fault runs record every AWS call (build/local/calls/); iam-check, run
# once after them, evaluates those calls against the stack the runs deployed.
test: install
	@mkdir -p build; start=$$(date +%s); \
	$(TOOLENV); $(PY) -m pytest $(XDIST_DEPLOYED) --durations=25 && $(MAKE) --no-print-directory iam-check; rc=$$?; \
	echo $$(( $$(date +%s) - start )) > build/make-test-seconds; exit $$rc

# Evaluator: npm @cloud-copilot/iam-simulate (AGPL, a test tool: never in a Lambda artifact).
iam-check: $(VENV)/.installed node_modules/.installed
	@$(PY) -m thingpress_cli.iamcheck

# Everything that needs no deployment: unit, fuzz, stacks (synth, checkov, validate), contract (built zips).
# Bytecode is written even where PYTHONDONTWRITEBYTECODE is set (it is in some containers): without it
# every worker compiles, and pytest rewrites the asserts of, each test module again, ~3 s each run.
test-unit: install
	@mkdir -p build; start=$$(date +%s); \
	$(TOOLENV); THINGPRESS_FUZZ_PROFILE=quick PYTHONDONTWRITEBYTECODE= $(PY) -m pytest $(XDIST) tests/unit tests/fuzz tests/stacks tests/contract; \
	rc=$$?; \
	echo $$(( $$(date +%s) - start )) > build/make-test-unit-seconds; exit $$rc

test-stacks: install
	$(TOOLENV); $(PY) -m pytest tests/stacks tests/contract

# Against a real deployment: THINGPRESS_ENV=pr123 and its terraform-outputs.json.
test-integration: install
	$(TOOLENV); $(PY) -m pytest tests/integration

# The PR preview workflow's test steps, read from .github/workflows/pr-preview.yml (job deploy: the run
# steps after its deploy step) and run here with the env GitHub gives them (CI=true, THINGPRESS_ENV=pr<N>,
# THINGPRESS_DEPLOYMENT=remote ...), against ENV=pr<N> deployed beforehand (thingpress local up --env pr7):
# thingpress_cli/harness/preview_job.py. `make test` runs it against its pr7 (tests/environments).
test-preview-job: install
	$(PY) -m thingpress_cli.harness.preview_job --env $(ENV)

demo: install
	$(TOOLENV); $(VENV)/bin/thingpress demo

bench: install
	$(TOOLENV); $(PY) tests/benchmarks/run_all.py

# Provider resume overhead and peak RSS at N = 1,000,000 (manifests cached under build/bench-scale/).
bench-scale: install
	$(PY) tests/benchmarks/bench_scale.py

# Chaos on the local deployment (thingpress_cli/harness/chaos.py); `make test` runs the short default in tests/fault.
CHAOS_SECONDS ?= 20
CHAOS_CERTIFICATES ?= 300
chaos: install
	$(TOOLENV); $(PY) -m thingpress_cli.harness.chaos --seconds $(CHAOS_SECONDS) --certificates $(CHAOS_CERTIFICATES)

fuzz-long: install
	THINGPRESS_FUZZ_PROFILE=long $(PY) -m pytest tests/fuzz

local-up: install
	$(TOOLENV); $(VENV)/bin/thingpress local up

local-down: $(VENV)/.installed
	$(TOOLENV); $(VENV)/bin/thingpress local down

local-status: $(VENV)/.installed
	$(VENV)/bin/thingpress local status

# DISABLE_VERSION_CHECK: cdktf would run `pipenv run pip show cdktf` before each command (pins are exact).
# CDKTF_RUN: Ctrl-C goes to Terraform (it saves its state), never to cdktf 0.21, which kills Terraform
# while it writes it (thingpress_cli/core/interrupts.py).
CDKTF_RUN := $(PY) -m thingpress_cli.core.interrupts npx cdktf
deploy: install
	$(NAMED_ENV)$(TOOLENV); DISABLE_VERSION_CHECK=true THINGPRESS_ENV=$(ENV) THINGPRESS_TARGET=aws THINGPRESS_BACKEND=s3 $(CDKTF_RUN) deploy thingpress-$(ENV) --auto-approve --outputs-file terraform-outputs.json

# Teardown first (docs/operating.md: "Preview environments share an account"): undo every import
# of the environment and detach what AWS refuses to delete while attached; then cdktf destroy. The
# outputs come from the stack's state (cdktf output), so a fresh checkout (the PR-close job) can
# tear down.
destroy: install
	$(NAMED_ENV)$(TOOLENV); export DISABLE_VERSION_CHECK=true THINGPRESS_ENV=$(ENV) THINGPRESS_TARGET=aws THINGPRESS_BACKEND=s3; \
	mkdir -p build && \
	npx cdktf output thingpress-$(ENV) --outputs-file build/outputs-$(ENV).json && \
	$(VENV)/bin/thingpress teardown --env $(ENV) --outputs build/outputs-$(ENV).json --yes && \
	$(CDKTF_RUN) destroy thingpress-$(ENV) --auto-approve

clean:
	rm -rf build cdktf.out .pytest_cache .hypothesis
