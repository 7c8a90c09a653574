# msgprobe — `make run` (the demo on a loopback censor) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench soak fleet container clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,raw]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/msgprobe demo

lint: $(STAMP)
	$(BIN)/ruff check probe tests bench scripts
	$(BIN)/ruff format --check probe tests bench scripts
	$(BIN)/mypy --strict probe

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

# Not part of `make test`: 10,000 daemon cycles (minutes), failing on RSS or fd growth.
soak: $(STAMP)
	$(BIN)/python -m scripts.soak

# Not part of `make test`: 1,000 simulated vantages remote-writing into a
# loopback VictoriaMetrics (minutes); prints ingestion, series, memory and
# the evaluation time of every rule and dashboard query.
fleet: $(STAMP)
	$(BIN)/python -m bench.fleet

# The image and the volunteer stack built and run for real (root, docker.io,
# debootstrap, victoria-metrics; ~3.5 min cold). `make test` runs it too,
# through tests/deploy/test_container.py, and skips it where no engine can run.
container:
	scripts/container/run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
