#!/usr/bin/env bash
# bash benchmarks/gpu_protocol_prepare.sh
# Run here before benchmarks/gpu_protocol.py or benchmarks/gpu_engine.py goes to a lent GPU: ../shared does not
# travel with the repository, and the GPU image's packages are not ours (no pydantic, which typer imports; an
# older huggingface-hub). Fills the git-ignored .gpu/ (~30 MB) with the ModernBERT-base config and tokenizer, the
# SST-2 files, and wheels: transformers, and typer (the `modernbert-glue` command's parser, which gpu_engine.py
# runs) with what it imports; the device call then carries [".gpu"] (the exact commands are in the scripts'
# docstrings). Last, benchmarks/gpu_wheels.py checks that every carried wheel's requirements are carried or on
# the image, so that a missing one fails here and not on the device.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
# transformers: ours needs huggingface-hub >= 2.4, the image has 1.33; 5.24.0 (hub >= 1.31) ran there on
# 2026-11-27 and the engine's tests pass with it (PYTHONPATH to a 5.24.0 install, tests/training, tests/bench).
gpu_transformers=${GPU_TRANSFORMERS:-5.24.0}
pins=$("$python" -c '
from importlib.metadata import version
names = ["typer", "annotated-doc", "shellingham", "rich", "markdown-it-py", "mdurl", "pygments", "pydantic",
         "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions"]
print(" ".join(f"{n}=={version(n)}" for n in names))')
rm -rf .gpu && mkdir -p .gpu/whl
cp -r ../shared/models/modernbert-base ../shared/data/sst2 .gpu/
# shellcheck disable=SC2086  # one argument per pin
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 -d .gpu/whl $pins "transformers==$gpu_transformers"
"$python" benchmarks/gpu_wheels.py .gpu/whl
du -sh .gpu
