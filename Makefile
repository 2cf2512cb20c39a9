# make quickstart   set up .venv, fine-tune all-MiniLM-L6-v2 on SST-2 (cpu-sbert preset), classify examples
# make test         set up .venv and run the test suite (what CI runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= ../shared/data/sst2
RUN_DIR ?= runs/cpu-sbert
# Test processes at once (pytest-xdist): most tests wait on a subprocess's imports, one core each; 0: in-process.
TEST_WORKERS ?= 2
# Offline machines use the local GLUE folder; without one, SST-2 comes from the Hugging Face Hub.
DATA_ARGS := $(if $(wildcard $(DATA_DIR)/train.tsv),--data-dir $(DATA_DIR),)

.PHONY: setup quickstart test test-slow

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# Again after it finished: predicts with the run; after an interruption: resumes it. QUICKSTART_ARGS adds train
# options to a new run (QUICKSTART_ARGS="--epochs 1" for a third of the time).
QUICKSTART_ARGS ?=

quickstart: setup
	@if grep -qs '"complete": true' "$(RUN_DIR)/.modernbert-glue.json"; then \
		echo "$(RUN_DIR) is trained already: classifying with it (RUN_DIR=runs/other trains another)"; \
	elif [ -e "$(RUN_DIR)/.modernbert-glue.json" ]; then \
		$(BIN)/modernbert-glue train --resume "$(RUN_DIR)"; \
	else \
		$(BIN)/modernbert-glue train --preset cpu-sbert $(DATA_ARGS) $(QUICKSTART_ARGS) --output-dir "$(RUN_DIR)"; \
	fi
	$(BIN)/modernbert-glue predict --model "$(RUN_DIR)/model" \
		"a gorgeous, witty, seductive movie." \
		"the plot is nothing but boilerplate clichés from start to finish." \
		"not the best film of the year, but far from the worst."

test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

test-slow: setup
	$(BIN)/python -m pytest -q -m slow
