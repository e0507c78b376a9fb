# The two entry points of the README: `make run` (main job) and `make test`.
SHELL := /bin/bash
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export BENTOML_DO_NOT_TRACK := True
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION := false

.PHONY: install run test lint bench-inference bench-quality encoder-mpnet

install:
	@bash scripts/install.sh

run: install
	@.venv/bin/python scripts/stack.py

test: install
	.venv/bin/ruff check .
	.venv/bin/pytest -p no:cacheprovider

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench-inference: install
	.venv/bin/python bench/inference.py

bench-quality: install
	.venv/bin/python bench/quality.py

encoder-mpnet:  # optional MPNet teacher encoder (~440 MB) into var/encoders/all-mpnet-base-v2
	@bash scripts/install_mpnet.sh
