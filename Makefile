# KQI Hub: `make run` starts the platform, `make test` runs the whole suite.
# Both set up what they need first: .venv (pinned by requirements.lock),
# configurable-http-proxy from npm into node_modules, and for the tests a
# separate virtualenv with the upstream kamonohashi-cli 4.0.2.

PYTHON ?= python3
VENV := .venv
UPSTREAM_VENV := .venv-upstream
WHEELHOUSE := $(VENV)/share/kqi-hub/wheels
PYTEST_ARGS ?=

.PHONY: run test lint setup clean

setup: $(VENV)/.installed node_modules/.installed $(VENV)/.labextension $(WHEELHOUSE)/.built

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c requirements.lock -e '.[test,lint]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# the JupyterLab extension: labextension/ built into kqi_services/labextension (what the wheel
# ships), linked into the venv's JupyterLab, its server extension enabled; rebuilt only on change
LABEXT_SOURCES := $(shell find labextension/src labextension/style -type f 2>/dev/null) \
	labextension/package.json labextension/yarn.lock labextension/tsconfig.json
$(VENV)/.labextension: $(VENV)/.installed $(LABEXT_SOURCES)
	cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm install
	cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm build:prod
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jupyter-builder develop --overwrite .
	install -D -m 644 labextension/jupyter-config/kqi_services.json $(VENV)/etc/jupyter/jupyter_server_config.d/kqi_services.json
	touch $@

# the platform's wheels (JupyterHub, JupyterLab, the CLI's libraries, this package), served to runs in container
# images as a PEP 503 index so they install the kqi CLI and JupyterLab without the internet
PY_SOURCES := $(shell find kqi_services handlers kqi_spawner hub_config -name '*.py' -not -path '*/labextension/*' 2>/dev/null)
$(WHEELHOUSE)/.built: $(VENV)/.labextension $(PY_SOURCES)
	$(VENV)/bin/python -m kqi_services.wheelhouse build --constraints requirements.lock $(WHEELHOUSE)
	touch $@

# the upstream client has its own `kqi` command: keep it out of our venv
$(UPSTREAM_VENV)/.installed:
	test -x $(UPSTREAM_VENV)/bin/python || $(PYTHON) -m venv $(UPSTREAM_VENV)
	$(UPSTREAM_VENV)/bin/python -m pip install --quiet 'setuptools<81' kamonohashi-cli==4.0.2
	touch $@

run: setup
	$(VENV)/bin/kqi-hub

test: setup $(UPSTREAM_VENV)/.installed
	cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm test
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# ruff (pyproject's [tool.ruff]) on all Python, mypy on the job core ([tool.mypy]), eslint + prettier on the lab extension
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm lint

clean:
	rm -rf $(VENV) $(UPSTREAM_VENV) node_modules
