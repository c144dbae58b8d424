# mxsf: `make demo` and `make test` do all the set-up they need on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mxsf-installed
JOBS   ?= auto
PYTEST_ARGS ?=

.PHONY: all setup test test-slow demo bench iverilog eda clean

all: test

setup: $(STAMP) iverilog eda

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile -e '.[test]'
	@# bytecode for every installed module (not the packages' own tests), on every core
	@# (pip compiles one file at a time: 45 s of install instead of 28 here)
	@# (a file that does not compile is skipped, as pip skips it)
	$(PY) -m compileall -q -j 0 -x '/tests?/' $(VENV)/lib > /dev/null \
	  || echo "note: some installed files did not compile to bytecode (skipped, as pip skips them)"
	touch $(STAMP)

# Icarus Verilog is not on PyPI: install Debian's package when we can, else say how.
iverilog:
	@if ! command -v iverilog >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Icarus Verilog (Debian package iverilog) ..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog) >/dev/null \
	      || { echo "error: apt-get install iverilog failed"; exit 1; }; \
	  else \
	    echo "note: Icarus Verilog not found; install it with 'sudo apt-get install iverilog' (Icarus tests are skipped until then)"; \
	  fi; \
	fi

# OpenSTA (timing and power) and the OSU 0.18 um cells (mxsf synth --lib osu018) are
# Debian packages too: installed the same way when we can, else say how.
OSU_LIB := /usr/share/qflow/tech/osu018/osu018_stdcells.lib
eda:
	@missing=""; \
	command -v sta >/dev/null 2>&1 || missing="$$missing opensta"; \
	[ -f $(OSU_LIB) ] || missing="$$missing qflow-tech-osu018"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing$$missing (Debian) ..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null \
	      || { echo "error: apt-get install$$missing failed"; exit 1; }; \
	  else \
	    echo "note:$$missing not found; install with 'sudo apt-get install$$missing' (the osu018 flow and its tests are skipped until then)"; \
	  fi; \
	fi

test: setup
	$(PY) -m pytest -n $(JOBS) -q $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -n $(JOBS) -q -m slow $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/mxsf demo --out build/demo

# The figures of the README and the issue notes (each script prints its table).
bench: setup
	$(PY) benchmarks/golden_bench.py
	$(PY) benchmarks/sim_bench.py
	$(PY) benchmarks/synth_bench.py --jobs 2
	$(PY) benchmarks/accuracy_bench.py

clean:
	rm -rf build .pytest_cache
