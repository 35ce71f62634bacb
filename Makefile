# The two set-up commands of the README: `make run` (the main job) and `make test` (the suite).
# Both create .venv on first use and install sigverify with the pinned versions of requirements.lock.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lock clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/sigverify demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Refresh the pinned versions after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^sigverify' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
