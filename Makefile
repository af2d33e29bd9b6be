# Everything a fresh machine needs goes through these targets.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
ROLE    ?= admin
USER_ID := $(if $(filter command line,$(origin USER)),$(USER),)

.PHONY: run test token bench package clean

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PY) >/dev/null || (echo "Python 3.11 is required ($(PY) not found)" && exit 1)
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

run: $(STAMP)
	@$(BIN)/python -m devstack run

test: $(STAMP)
	$(BIN)/python -m pytest

token: $(STAMP)
	@$(BIN)/python -m devstack token --role $(ROLE) $(if $(USER_ID),--user $(USER_ID),)

clean:
	rm -rf $(VENV) .devstack .pytest_cache

STAGE ?= prod

package: $(STAMP)
	$(BIN)/python -m deploy.package --stage $(STAGE) --out out/$(STAGE)

bench: $(STAMP)
	$(BIN)/python -m bench
