# socialrec: `make demo` and `make test` each set everything up first (idempotent,
# seconds when warm): the pinned virtualenv (cached under $SOCIALREC_CACHE, default
# ~/.cache/socialrec, keyed by the hash of requirements.txt) and the Spark jars.

# SPARK_LINE=3.5 (e.g. `make test SPARK_LINE=3.5`): the second supported Spark line, with
# its own pinned virtualenv (requirements-spark3.5.txt, ./.venv-3.5) and jars.
SPARK_LINE ?= 4.1
export SPARK_LINE
VENV := $(if $(filter 3.5,$(SPARK_LINE)),.venv-3.5,.venv)
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)/lib
export PYSPARK_PYTHON := $(CURDIR)/$(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test test-spark35 test-quick test-reliability test-all bench bench-quick bench-metrics bench-text bench-embed bench-als bench-bridge \
	bench-graph bench-stream bench-explain bench-scale wheel clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m socialrec run $(ARGS)

# The slow tests that CI runs as well: the standalone-cluster spark-submit test and the
# notebooks executed top to bottom. `make test-quick` leaves them out too. The other slow
# tests (the whole-pipeline reliability runs, the stream's SIGKILL restart, the pipeline
# on MovieLens-100K) would take CI past its 90 min: `make test-reliability`, `make test-all`.
test: setup
	$(PY) -m pytest -q -m "not slow or cluster or notebooks" $(PYTEST_ARGS)

# CI's share of the Spark 3.5 line (on top of `make test` on 4.1): the session and jars,
# both tokenisation engines (Spark NLP runs there), every adapter's good and bad input
# (the files adapter's shapes and the presets too), the real datasets, the whole pipeline
# (and a run with the Spark NLP engine), the stream, and Delta tables shared with 4.1.
# `make test SPARK_LINE=3.5` runs the whole suite on it (about 18 min here).
SPARK35_TESTS := tests/test_session.py tests/test_config.py tests/test_tokenize.py tests/test_bad_input.py \
	tests/test_files_adapter.py tests/test_presets.py tests/test_real_data.py tests/test_pipeline.py \
	tests/test_stream.py tests/test_cross_line.py
test-spark35:
	$(MAKE) test SPARK_LINE=3.5 PYTEST_ARGS="$(SPARK35_TESTS) $(PYTEST_ARGS)"

test-quick: setup
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-reliability: setup
	$(PY) -m pytest -q -m reliability $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The benchmark suite (bench/__main__.py): every stage beside its peer, the scale curve,
# the paper-scale projection; under an hour on 2 cores. `make bench-quick`: small sizes, ~12 min.
bench: setup
	$(PY) -m bench $(ARGS)

bench-quick: setup
	$(PY) -m bench --quick $(ARGS)

bench-metrics: setup
	$(PY) -m bench.metrics $(ARGS)

bench-text: setup
	$(PY) -m bench.text $(ARGS)

bench-embed: setup
	$(PY) -m bench.embed $(ARGS)

bench-bridge: setup
	$(PY) -m bench.bridge $(ARGS)

bench-als: setup
	$(PY) -m bench.als $(ARGS)

bench-graph: setup
	$(PY) -m bench.graph $(ARGS)

bench-stream: setup
	$(PY) -m bench.stream $(ARGS)

bench-explain: setup
	$(PY) -m bench.explain $(ARGS)

bench-scale: setup
	$(PY) -m bench.scale $(ARGS)

wheel: setup
	$(PY) -m pip wheel --no-deps -w dist .

clean:
	rm -rf warehouse spark-warehouse dist build lib/*.egg-info *.egg-info .pytest_cache notebook-output standalone-cluster
