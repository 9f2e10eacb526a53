# emotf — set-up, tests and the main jobs. `make help` lists the targets.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED = 1

# make tfrecords [CORPUS=ravdess DATA=../shared/data/ravdess_speech] [VARIANT=ds2] [OUT=records] [WORKERS=0] [ARGS=...]
CORPUS ?=
DATA ?=
VARIANT ?= ds2
OUT ?= records
WORKERS ?= 0
ARGS ?=
# make fit [ARCH=cnn_rnn] [RECORDS=records/ravdess/ds2] [ARGS="--classes 4 --fold 0"]
ARCH ?= cnn_rnn
RECORDS ?=

.PHONY: help install test test-slow lint format tfrecords fit tune results report bench bench-train \
	bench-pipeline bench-latency bench-preprocess bench-multiworker bench-records gpu-wheels clean

help:
	@echo "make install        create $(VENV) and install emotf with its dev tools"
	@echo "make test           the default test suite (CPU, a few minutes)"
	@echo "make test-slow      the slow checks (full RAVDESS, several workers)"
	@echo "make lint           ruff"
	@echo "make tfrecords      corpus -> records/<corpus>/<variant> (no CORPUS: the synthetic default)"
	@echo "make fit           train ARCH on RECORDS (no RECORDS: the synthetic default) -> runs/..."
	@echo "make tune          KerasTuner search of ARCH on RECORDS -> tuning/runs/..."
	@echo "make results        train (resumably) what is missing of the results grid (experiments/plan.py)"
	@echo "make report         refresh the tables and confusion figures of docs/results.md (runs/, else the ledger)"
	@echo "make bench          speed benchmarks: bench/{train,pipeline,latency,preprocess,multiworker}.py -> bench/results/"
	@echo "make gpu-wheels     the wheels bench/gpu.sh carries to the GPU machine (.whl/)"

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -e ".[dev,backends,beam,whisper]"
	touch $@

test: install
	$(BIN)/python -m pytest

test-slow: install
	$(BIN)/python -m pytest -m slow

lint: install
	$(BIN)/ruff check emotf experiments tests bench

format: install
	$(BIN)/ruff format emotf experiments tests bench

tfrecords: install
	$(BIN)/python -m emotf.preprocess $(if $(CORPUS),--corpus $(CORPUS)) $(if $(DATA),--data $(DATA)) \
		--variant $(VARIANT) --out $(OUT) --workers $(WORKERS) $(ARGS)

fit: install
	$(BIN)/python -m emotf.fit --arch $(ARCH) $(if $(RECORDS),--records $(RECORDS)) $(ARGS)

tune: install
	$(BIN)/python -m emotf.tune --arch $(ARCH) $(if $(RECORDS),--records $(RECORDS)) $(ARGS)

results: install
	$(BIN)/python -m experiments.run $(ARGS)

report: install
	$(BIN)/python -m experiments.report --write docs/results.md

# The train step first: bench/pipeline.py compares against bench/results/train.json.
bench: bench-train bench-pipeline bench-latency bench-preprocess bench-multiworker

bench-train: install
	$(BIN)/python bench/train.py

# The wheels the GPU machine lacks (Python 3.12 there, JAX and no Keras): carried with bench/gpu.sh (docs/benchmarks.md).
gpu-wheels: install
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
		keras==$$($(BIN)/python -c "import keras; print(keras.__version__)") namex==0.1.0 optree==0.20.0
	$(BIN)/python -c "from emotf.pretrained import extract_encoder; extract_encoder('.whl/whisper-tiny-en-encoder.bin')"

bench-pipeline: install bench-records
	$(BIN)/python bench/pipeline.py

bench-latency: install bench-records
	$(BIN)/python bench/latency.py

# RAVDESS records for the pipeline and latency benchmarks, made once where ../shared/data is present.
bench-records: install
	@if [ ! -f records/ravdess/ds2/manifest.json ] && [ -d ../shared/data/ravdess_speech ]; then \
		$(MAKE) tfrecords CORPUS=ravdess DATA=../shared/data/ravdess_speech VARIANT=ds2; fi

bench-preprocess: install
	$(BIN)/python bench/preprocess.py $(if $(DATA),--data $(DATA)) $(ARGS)

bench-multiworker: install bench-records
	$(BIN)/python bench/multiworker.py

clean:
	rm -rf records/*/ .pytest_cache build *.egg-info
