# steplab: two commands on a fresh machine.
#   make demo   set up .venv and run the quick benchmark
#   make test   set up .venv and run the test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION := 2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test setup lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install -q -e '.[dev,ray,lightning,hf,mlflow,tensorboard,postgres]'
	$(BIN)/python -c "import torch, sys; v = torch.__version__; print('torch', v); sys.exit(0 if v.startswith('$(TORCH_VERSION)') else 'torch changed to ' + v + ': reinstall torch==$(TORCH_VERSION)')"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/steplab bench examples/bench-quick.toml --workers 2 --db demo.db --html report.html

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
