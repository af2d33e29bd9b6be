# Everything a fresh machine needs goes through these targets.
# Python 3.13 (the Lambda runtime, python3.13): found on PATH, under pyenv, or in /usr/bin;
# PY=/path/to/python3.13 overrides. .ci/run installs it on a machine that lacks it.
PYTHON_VERSION := 3.13
PY      ?= $(shell for c in python$(PYTHON_VERSION) $(sort $(wildcard $(HOME)/.pyenv/versions/$(PYTHON_VERSION).*/bin/python$(PYTHON_VERSION))) /usr/bin/python$(PYTHON_VERSION); do \
             "$$c" -c 'import sys, venv; sys.exit(sys.version_info[:2] != ($(subst .,$(comma) ,$(PYTHON_VERSION))))' >/dev/null 2>&1 && { echo "$$c"; break; }; done)
comma   := ,
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
ROLE    ?= admin
USER_ID := $(if $(filter command line,$(origin USER)),$(USER),)

.PHONY: run test quick token bench package lock clean python

# The dev environment is installed from requirements-dev.lock only, every file checked against
# its hash. A venv of another Python version is replaced.
$(STAMP): requirements-dev.lock requirements.lock
	@test -n "$(PY)" || { echo "Python $(PYTHON_VERSION) is required (not found on PATH, under ~/.pyenv or in /usr/bin; .ci/run installs it)"; exit 1; }
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != ($(subst .,$(comma) ,$(PYTHON_VERSION))))' 2>/dev/null \
		|| { rm -rf $(VENV) && $(PY) -m venv $(VENV); }
	@$(BIN)/pip install -q --disable-pip-version-check --require-hashes -r requirements-dev.lock
	@touch $(STAMP)

run: $(STAMP)
	@$(BIN)/python -m devstack run

test: $(STAMP)
	$(BIN)/python -m pytest

# The fast tiers: domain and adapters (unit) and the use cases run in-process (no HTTP).
quick: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/usecases

token: $(STAMP)
	@$(BIN)/python -m devstack token --role $(ROLE) $(if $(USER_ID),--user $(USER_ID),)

# Re-resolve requirements.lock and requirements-dev.lock after editing requirements*.txt.
lock: $(STAMP)
	$(BIN)/python -m deploy.lock

# The Python the venv is made with (empty when there is none): .ci/run asks.
python:
	@echo $(PY)

clean:
	rm -rf $(VENV) .devstack .pytest_cache build

STAGE ?= prod

package: $(STAMP)
	$(BIN)/python -m deploy.package --stage $(STAGE) --out out/$(STAGE)

bench: $(STAMP)
	$(BIN)/python -m bench
