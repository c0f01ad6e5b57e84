# Two commands on a fresh machine:  make demo   and   make test
# Both create (or reuse) .venv and install the package with what it needs.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test test-docs-slow test-quick mutation install presets clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[jax,lite,crf,dev]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/deconvnet-demo --output demo_output

presets: $(STAMP)
	$(VENV)/bin/deconvnet-presets

# The suite runs on the TensorFlow backend on two pytest-xdist workers (one test file per
# worker at a time: the scheduler in tests/conftest.py) and, at the same time, the
# backend-portable tests (marker "jax") under KERAS_BACKEND=jax; most tests are
# single-threaded Python, so three processes keep both cores busy. The JAX run's output is
# printed after the TensorFlow run's. The long documented commands (tests/test_docs.py cases
# marked slow: the demo, two-stage training, exports, hed-initialised trainings, ~15 min) run
# in `make test-docs-slow` (before a release).
test: $(STAMP)
	@KERAS_BACKEND=jax JAX_PLATFORMS=cpu $(PY) -m pytest -q -m jax -p no:cacheprovider \
		> .pytest-jax.log 2>&1 & jax=$$!; \
	$(PY) -m pytest -q -n 2 --dist loadgroup -m "not (docs and slow)" -p no:cacheprovider \
		--durations=15; tf=$$?; \
	wait $$jax; jaxrc=$$?; \
	echo "--- KERAS_BACKEND=jax: tests marked jax ---"; cat .pytest-jax.log; \
	exit $$(( tf || jaxrc ))

test-docs-slow: $(STAMP)
	$(PY) -m pytest -q -m "docs and slow" -p no:cacheprovider tests/test_docs.py

# The quick loop: everything but the tests marked slow (full-size paper/FCN networks), on the
# TensorFlow backend only. CI runs `make test`.
test-quick: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup -m "not slow" -p no:cacheprovider

# Mutation testing of the modules where wrong code would go unnoticed (tools/mutation.py;
# ~30 min on 2 cores; not part of `make test`).
mutation: $(STAMP)
	$(PY) tools/mutation.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache .pytest-jax.log
