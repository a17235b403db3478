# The two commands of the README:
#   make run    install, start a local Kafka broker unless SLA_KAFKA_BOOTSTRAP_SERVERS is set,
#               create the topics, run the processor (a worker, and the HTTP ingest beside it)
#   make test   install, then the whole test suite (the broker tests start their own broker)
# Others: make demo, make broker, make stop, make lint, make bench.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KAFKA_VERSION ?= 3.9.2
KAFKA_PORT ?= 9092
KAFKA := deploy/kafka/kafka.sh
LOCAL_BROKER := 127.0.0.1:$(KAFKA_PORT)

.PHONY: install tools broker stop run demo test lint bench bench-e2e bench-timers bench-catchup bench-ingest bench-quick bench-tools bench-wrk bench-year

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# The AsyncAPI initiative's parser (npm), for tests/deploy/test_contract_schemas.py.
ASYNCAPI := tools/asyncapi
$(ASYNCAPI)/node_modules/.installed: $(ASYNCAPI)/package-lock.json
	npm ci --prefix $(ASYNCAPI) --no-audit --no-fund --loglevel=error
	touch $@

# kcat (an independent Kafka client) and promtool (Prometheus) are used by the tests, Chromium
# by the HTML report's browser test (tests/report/test_browser.py).
tools:
	@missing=""; command -v kcat >/dev/null || missing+=" kcat"; \
	 command -v promtool >/dev/null || missing+=" prometheus"; \
	 command -v chromium >/dev/null || missing+=" chromium"; \
	 if [ -n "$$missing" ]; then \
	   if [ "$$(id -u)" = 0 ]; then \
	     apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	     systemctl stop prometheus 2>/dev/null || true; pkill -x prometheus 2>/dev/null || true; \
	   else echo "please install:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	 fi

broker: install
	$(KAFKA) start --version $(KAFKA_VERSION) --port $(KAFKA_PORT)

stop:
	$(KAFKA) stop --port $(KAFKA_PORT)

run: install
	@if [ -z "$$SLA_KAFKA_BOOTSTRAP_SERVERS" ]; then \
	   $(KAFKA) start --version $(KAFKA_VERSION) --port $(KAFKA_PORT) && \
	   export SLA_KAFKA_BOOTSTRAP_SERVERS=$(LOCAL_BROKER); \
	 fi; \
	 $(BIN)/sla-processor create-topics >/dev/null || exit; \
	 $(BIN)/sla-processor ingest & ingest=$$!; \
	 trap 'kill $$ingest 2>/dev/null; wait $$ingest' EXIT; \
	 $(BIN)/sla-processor worker

demo: install
	@if [ -z "$$SLA_KAFKA_BOOTSTRAP_SERVERS" ]; then \
	   $(KAFKA) start --version $(KAFKA_VERSION) --port $(KAFKA_PORT) && \
	   export SLA_KAFKA_BOOTSTRAP_SERVERS=$(LOCAL_BROKER); \
	 fi; \
	 exec $(BIN)/sla-processor demo

test: install tools $(ASYNCAPI)/node_modules/.installed
	$(KAFKA) fetch --version $(KAFKA_VERSION)
	SLA_TEST_KAFKA_VERSION=$${SLA_TEST_KAFKA_VERSION:-$(KAFKA_VERSION)} $(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.deadline_index

bench-tools: install
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	test -x var/bench-quix-venv/bin/python || { $(PYTHON) -m venv var/bench-quix-venv && \
	  var/bench-quix-venv/bin/pip install --quiet quixstreams==3.28.1; }

# End to end through Kafka, side by side with bare Faust, raw aiokafka and Quix Streams.
bench-e2e: bench-tools
	$(BIN)/python -m bench.run

# Timer precision (100k, 1M open tickets), a 100k-deadline burst, recovery with 1M tickets.
bench-timers: bench-tools
	$(BIN)/python -m bench.timers

# A fresh worker on a backlog of 1M events of history: drain time, how late deadlines fire.
bench-catchup: bench-tools
	$(BIN)/python -m bench.catchup

# wrk (Debian's package), the load generator of bench-ingest.
bench-wrk:
	@if ! command -v wrk >/dev/null; then \
	   if [ "$$(id -u)" = 0 ]; then \
	     apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; \
	   else echo "please install: wrk (sudo apt-get install wrk)"; exit 1; fi; \
	 fi

# The HTTP ingest under wrk: requests/s, events/s and latency (Kafka's acknowledgement included)
# for structured, batched and webhook posts at 1, 8 and 32 connections.
bench-ingest: bench-tools bench-wrk
	$(BIN)/python -m bench.ingest

# A year of a large desk (1M tickets, 4.6M events) through replay, replay --compare and report.
bench-year: install
	$(BIN)/python -m bench.year

# Every benchmark at small sizes, one run each (about 17 minutes): a check that they run, not
# figures. Results go to var/bench-quick/, leaving bench/results/ as measured.
bench-quick: bench-tools bench-wrk
	mkdir -p var/bench-quick
	$(BIN)/python -m bench.engine --tickets 10000 --repeat 1 --out var/bench-quick/engine.json
	$(BIN)/python -m bench.deadline_index --pending 100000 --repeat 1 \
	  --out var/bench-quick/deadline_index.json
	$(BIN)/python -m bench.run --quick --out var/bench-quick/
	$(BIN)/python -m bench.timers --quick --out var/bench-quick/
	$(BIN)/python -m bench.catchup --quick --out var/bench-quick/
	$(BIN)/python -m bench.ingest --quick --out var/bench-quick/
	$(BIN)/python -m bench.year --tickets 10000 --out var/bench-quick/
