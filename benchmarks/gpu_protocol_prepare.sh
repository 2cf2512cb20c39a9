#!/usr/bin/env bash
# bash benchmarks/gpu_protocol_prepare.sh
# Run here before benchmarks/gpu_protocol.py or benchmarks/gpu_engine.py goes to a lent GPU: ../shared does not
# travel with the repository, and the GPU image's transformers may be older than ours and it has no typer (the
# `modernbert-glue` command's parser, which gpu_engine.py runs). Fills the git-ignored .gpu/ (~25 MB) with the
# ModernBERT-base config and tokenizer, the SST-2 files, and our versions of transformers and of typer with what
# it imports as wheels; the device call then carries [".gpu"] (the exact commands are in the scripts' docstrings).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
pins=$("$python" -c '
from importlib.metadata import version
names = ["transformers", "typer", "annotated-doc", "shellingham", "rich", "markdown-it-py", "mdurl", "pygments"]
print(" ".join(f"{n}=={version(n)}" for n in names))')
rm -rf .gpu && mkdir -p .gpu/whl
cp -r ../shared/models/modernbert-base ../shared/data/sst2 .gpu/
# shellcheck disable=SC2086  # one argument per pin
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 -d .gpu/whl $pins
du -sh .gpu
