# Two commands for users: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: demo test bench bundle clean-venv

$(STAMP): pyproject.toml constraints.txt $(wildcard requirements/*.txt)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and exact: on a CPU machine pip takes the local CPU wheel, never CUDA packages.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -r requirements/cpu.txt -r requirements/desktop.txt -r requirements/pipeline.txt -r requirements/dev.txt
	# Packages whose declared dependencies would pull CUDA torch (the RIFE reference packages) or the
	# non-headless OpenCV (scenedetect): installed without their dependencies.
	$(PIP) install -q --no-deps -c constraints.txt -r requirements/rife-reference.txt -r requirements/pipeline-no-deps.txt
	$(PIP) install -q --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m engine.demo --out out/demo

test: $(STAMP)
	$(PY) -m pytest -q

bundle: $(STAMP)
	$(PY) installer/build.py bundle

bench: $(STAMP)
	$(PY) bench/cpu_speed.py
	$(PY) bench/quality.py --quick

clean-venv:
	rm -rf $(VENV)
