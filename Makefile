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

# dp.toml.example is assembled from docs/toml/<table>.toml (tests/config/test_example_toml.py checks it)
example-config:
	{ sed -n '1,/^$$/p' dp.toml.example; for t in data toy segment train edit annotate export eval baseline demo; do cat docs/toml/$$t.toml; echo; done; } > dp.toml.example.tmp && mv dp.toml.example.tmp dp.toml.example

# README.md is assembled from docs/readme/<section>.md (tests/docs/test_readme.py checks it)
README_SECTIONS := 00-intro demo toy segment train edit annotate export eval baseline toy-model results
readme:
	{ for s in $(README_SECTIONS); do cat docs/readme/$$s.md; echo; done; } > README.md.tmp && mv README.md.tmp README.md
