# Two commands for a fresh machine: `make run` starts the agent, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
EXTRAS := embedded,record,kokoro,rvc,wyoming

.PHONY: run test test-fast bench mutate install mosquitto chromium screenshots clean

# What the agent runs with.
$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	$(BIN)/pip install --quiet --no-deps 'resemblyzer==0.1.4' 'onnx2torch==1.5.15'
	touch $@

# And what checks it (pytest, mypy, import-linter, mutmut, playwright): `make test` and the tools beside it.
$(TEST_STAMP): $(RUN_STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[$(EXTRAS),test]'
	touch $@

install: $(RUN_STAMP)

# The household's home is var/ (git-ignored), or VOICE_AGENT_HOME: the checkout's etc/ and
# profiles/*/etc/ are the shipped examples, copied there on the first run and never written to.
run: $(RUN_STAMP)
	@home="$${VOICE_AGENT_HOME:-$(CURDIR)/var}"; \
	if [ ! -e "$$home/etc/voice.json" ]; then \
		echo "first run: copying the example settings (etc/, profiles/*/etc/) to $$home"; \
		mkdir -p "$$home" && tar -cf - etc profiles/*/etc | tar -xf - -C "$$home" || exit 1; \
	fi; \
	echo "VOICE_AGENT_HOME=$$home"; \
	VOICE_AGENT_HOME="$$home" exec $(BIN)/voice-agent run

# The end-to-end tests start their own Mosquitto on a free port, and use the human voice
# recordings of alsa-utils as "another speaker".
mosquitto:
	@{ command -v mosquitto || test -x /usr/sbin/mosquitto; } >/dev/null 2>&1 && test -f /usr/share/sounds/alsa/Front_Center.wav || \
		{ echo "installing mosquitto and alsa-utils"; apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients alsa-utils; }

# The web page's tests drive Debian's Chromium with Playwright (never a downloaded browser).
chromium:
	@test -x /usr/bin/chromium || \
		{ echo "installing chromium"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The layers (import-linter) and the types (mypy) are checked before the tests run.
# Two test files at a time (pytest-xdist, a module's tests stay together with its agent): the
# end-to-end tests mostly wait on sockets and subprocesses, so 2 cores run two of them at once
# (9.7 minutes instead of 15.2 for the whole suite on this 2-core machine). A crashed worker ends
# the run, reported as the test it crashed in: pytest-xdist 3.8 replacing it under loadfile can
# wait forever at the end (pytest-xdist#1378; CI once ran out its 90 minutes so).
test: $(TEST_STAMP) mosquitto chromium
	$(BIN)/lint-imports
	$(BIN)/mypy agent providers
	$(BIN)/python -m pytest -n 3 --dist loadfile --max-worker-restart=0

test-fast: $(TEST_STAMP) mosquitto chromium
	$(BIN)/python -m pytest -m "not slow"

# Mutation testing of the core (pyproject.toml [tool.mutmut]); not part of `make test`.
mutate: $(TEST_STAMP)
	rm -rf mutants
	$(BIN)/mutmut run
	$(BIN)/mutmut results

# The web page's screenshots in docs/ (the real page against a private agent, a real Kokoro
# voicepack job of 10 steps): about 5-6 min on a loaded 2-core machine, most of it the job.
screenshots: $(TEST_STAMP) mosquitto chromium
	$(BIN)/python docs/screenshots.py

bench: $(TEST_STAMP) mosquitto
	$(BIN)/python bench/speak_bench.py

clean:
	rm -rf $(VENV) build *.egg-info mutants
