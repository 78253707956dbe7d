# steplab: two commands on a fresh machine.
#   make demo   set up .venv and run the quick benchmark
#   make test   set up .venv and run the test suite (the slow set apart: make test-slow)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION := 2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow setup lint clean docs dist

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install -q -e '.[dev,docs,ray,lightning,hf,mlflow,tensorboard,postgres]'
	$(BIN)/python -c "import torch, sys; v = torch.__version__; print('torch', v); sys.exit(0 if v.startswith('$(TORCH_VERSION)') else 'torch changed to ' + v + ': reinstall torch==$(TORCH_VERSION)')"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/steplab bench examples/bench-quick.toml --workers 2 --db demo.db --html report.html

# the default run stays under 10 minutes on 2 cores; the tests marked slow (Ray clusters,
# processes killed and resumed, a fresh venv) run apart, and CI runs both
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m slow

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

dist: $(STAMP)
	$(BIN)/python -m build --outdir dist

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) site build dist *.egg-info src/*.egg-info
