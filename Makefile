# Two set-up commands: `make demo` (the main job on the embedded toy world) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: install test test-fast demo clean example-config readme

$(BIN)/dp: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first (GPU users: install your CUDA torch in the venv first, then `make install TORCH=torch`)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[test]"
	touch $(BIN)/dp

install: $(BIN)/dp

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

demo: install
	$(BIN)/dp demo --out demo-out

clean:
	rm -rf $(VENV) demo-out .pytest_cache

# dp.toml.example and README.md are built by dp_cli/docs_build.py from docs/ and the command registry
# (dp_cli/registry.py); tests/config/test_example_toml.py and tests/docs/test_readme.py check them
example-config: install
	$(BIN)/python -m dp_cli.docs_build example-config

readme: install
	$(BIN)/python -m dp_cli.docs_build readme
