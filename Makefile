# KQI Hub: `make run` starts the platform, `make test` runs the whole suite.
# Both set up what they need first: .venv (pinned by requirements.lock),
# configurable-http-proxy from npm into node_modules, and for the tests a
# separate virtualenv with the upstream kamonohashi-cli 4.0.2.

PYTHON ?= python3
VENV := .venv
UPSTREAM_VENV := .venv-upstream
PYTEST_ARGS ?=

.PHONY: run test setup clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c requirements.lock -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# the upstream client has its own `kqi` command: keep it out of our venv
$(UPSTREAM_VENV)/.installed:
	test -x $(UPSTREAM_VENV)/bin/python || $(PYTHON) -m venv $(UPSTREAM_VENV)
	$(UPSTREAM_VENV)/bin/python -m pip install --quiet 'setuptools<81' kamonohashi-cli==4.0.2
	touch $@

run: setup
	$(VENV)/bin/kqi-hub

test: setup $(UPSTREAM_VENV)/.installed
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(UPSTREAM_VENV) node_modules
