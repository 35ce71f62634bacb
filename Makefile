# The two set-up commands of the README: `make run` (the main job) and `make test` (the suite).
# Both create .venv on first use and install sigverify with the pinned versions of requirements.lock.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
DB ?= sigverify.db
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install browser lock clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The main job: the service and web page on the shipped model, sample writers enrolled.
run: $(STAMP)
	$(BIN)/sigverify serve --host $(HOST) --port $(PORT) --db $(DB) --samples

# Debian's chromium for the browser test (never a browser download).
browser:
	@test -x /usr/bin/chromium || ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-dejavu-core >/dev/null)

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# Refresh the pinned versions after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^sigverify' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
