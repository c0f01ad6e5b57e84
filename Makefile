# Two commands on a fresh machine:  make demo   and   make test
# Both create (or reuse) .venv and install the package with what it needs.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test test-slow test-docs-slow test-quick mutation install presets clean

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

# A suite runs on the TensorFlow backend on two pytest-xdist workers (one test file per worker
# at a time: the scheduler in tests/conftest.py) and, at the same time, its backend-portable
# tests (marker "jax") under KERAS_BACKEND=jax; most tests are single-threaded Python, so three
# processes keep both cores busy. The JAX run's output is printed after the TensorFlow run's.
#   make test       the default suite: everything but the tests marked slow (~10 min on 2 cores)
#   make test-slow  the tests marked slow: end to end and at full size (trainings, exports,
#                   subprocesses, the documented blocks that start Keras); CI runs it after
#                   make test
#   make test-docs-slow  the long documented commands (marker "long": the demo, two-stage
#                   training, exports, hed-initialised trainings; ~15 min), before a release
#   make test-quick the quick loop: the default suite on TensorFlow only
define run_suite
	@KERAS_BACKEND=jax JAX_PLATFORMS=cpu $(PY) -m pytest -q -m "jax and ($(1))" -p no:cacheprovider \
		> .pytest-jax.log 2>&1 & jax=$$!; \
	$(PY) -m pytest -q -n 2 --dist loadgroup -m "$(1)" -p no:cacheprovider --durations=15; \
	tf=$$?; wait $$jax; jaxrc=$$?; \
	echo "--- KERAS_BACKEND=jax: tests marked jax ---"; cat .pytest-jax.log; \
	exit $$(( tf || jaxrc ))
endef

test: $(STAMP)
	$(call run_suite,not slow)

test-slow: $(STAMP)
	$(call run_suite,slow and not long)

test-docs-slow: $(STAMP)
	$(PY) -m pytest -q -m "long" -p no:cacheprovider tests/test_docs.py

test-quick: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup -m "not slow" -p no:cacheprovider

# Mutation testing of the modules where wrong code would go unnoticed (tools/mutation.py;
# ~30 min on 2 cores; not part of `make test`).
mutation: $(STAMP)
	$(PY) tools/mutation.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache .pytest-jax.log
