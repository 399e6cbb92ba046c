# flagsvc — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SDK_PY := sdk_clients/python
PROJECTS := pyproject.toml $(SDK_PY)/pyproject.toml
STAMP := $(VENV)/.installed-$(shell cat $(PROJECTS) | cksum | cut -d' ' -f1)
DEV_STAMP := $(VENV)/.installed-dev-$(shell cat $(PROJECTS) | cksum | cut -d' ' -f1)
# Development-only defaults for `make run`; production sets its own (see README).
RUN_ENV := DEBUG=true

.PHONY: run test fuzz lint format install install-dev migrate seed bench clean test-python-sdk bench-python-sdk

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=..."; exit 1; }
	@echo "[make] creating the virtualenv $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV)
	@echo "[make] upgrading pip in $(VENV)"
	@$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) $(PROJECTS)
	@echo "[make] installing flagsvc, its Python SDK (the engine) and their dependencies into $(VENV) (pip; about a minute the first time)"
	@$(PY) -m pip install --quiet -e ./$(SDK_PY) -e .
	@rm -f $(VENV)/.installed-* ; touch $@

$(DEV_STAMP): $(PY) $(PROJECTS)
	@echo "[make] installing flagsvc, its Python SDK and the development tools into $(VENV) (pip; a few minutes the first time)"
	@$(PY) -m pip install --quiet -e './$(SDK_PY)[dev]' -e '.[dev]'
	@rm -f $(VENV)/.installed-* ; touch $(STAMP) $@

install: $(STAMP)
install-dev: $(DEV_STAMP)

## run: the whole platform on embedded defaults (SQLite, in-process cache, filesystem broker), with
## demo data and development keys; flagsvc.run says what it does at each step (see its docstring)
run: $(STAMP)
	@echo "[make] $(VENV) is installed; starting flagsvc (python -m flagsvc.run)"
	@$(RUN_ENV) $(PY) -m flagsvc.run

## test: the whole suite (SQLite unless DATABASE_URL is set)
test: $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## test-admin: only the admin's tests, with its browser tests (headless Chromium + chromedriver;
## part of `make test`); screenshots in var/artifacts/admin/
.PHONY: test-admin
test-admin: $(DEV_STAMP)
	$(PY) -m pytest -s tests/admin tests/flags/test_admin*.py

## test-node: the Node SDK (sdk_clients/node): npm ci from its committed lock file, then npm test
## (tsc on the shipped types, node --test; its real-server tests start flagsvc with this venv's python)
.PHONY: test-node
test: test-node
test-node: $(DEV_STAMP)
	cd sdk_clients/node && npm ci --no-audit --no-fund && FLAGSVC_PYTHON=$(abspath $(PY)) npm test

## test-python-sdk: the Python SDK's own suite (part of `make test`): shared vectors, the protocol,
## a real flagsvc (tests.sdk_server, Redis dbs 8 and 9), gunicorn --preload, Celery prefork,
## Django, OpenFeature. Extra pytest arguments: SDK_PYTEST_ARGS="-k fork"
test-python-sdk: $(DEV_STAMP)
	cd $(SDK_PY) && FLAGSVC_PYTHON=$(CURDIR)/$(PY) $(CURDIR)/$(PY) -m pytest $(SDK_PYTEST_ARGS)
test: test-python-sdk

## bench-python-sdk: evaluations/s beside UnleashClient, growthbook and the floor; snapshot memory
bench-python-sdk: $(DEV_STAMP)
	$(PY) bench/python_sdk_eval.py

## fuzz: only the schemathesis run (every operation, all checks; part of `make test` too).
## More cases: FUZZ_MAX_EXAMPLES=50 make fuzz
fuzz: $(DEV_STAMP)
	$(PY) -m pytest tests/test_openapi_fuzz.py -s $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

format: $(DEV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(DEV_STAMP)
	$(PY) bench/eval_engine.py

## bench-node: the Node SDK's evaluation rate beside unleash-client and GrowthBook (bench/package.json)
.PHONY: bench-node
bench-node:
	cd bench && npm ci --no-audit --no-fund && node node_sdk_eval.mjs

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

## test-react: the React SDK (sdk_clients/react): `npm ci` from its lock file, types, unit tests
## (vitest + jsdom), then the real-browser test (headless Chromium against a real flagsvc)
.PHONY: test-react
test: test-react
test-react: $(DEV_STAMP)
	cd sdk_clients/react && npm ci --no-audit --no-fund && npm run typecheck && npm test \
		&& FLAGSVC_PYTHON=$(abspath $(PY)) npm run test:browser

## bench-guardrail: error-ratio jump -> guardrail kill on an SSE subscriber, over the real stack and
## a real Prometheus (Debian's prometheus, installed by name if missing), beside its budget
.PHONY: bench-guardrail
bench-guardrail: $(DEV_STAMP)
	@command -v prometheus >/dev/null 2>&1 || apt-get install -y -q prometheus
	$(PY) bench/guardrail_reaction.py
