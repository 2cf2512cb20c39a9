#!/usr/bin/env bash
# bash benchmarks/gpu_protocol_prepare.sh
# Run here before benchmarks/gpu_protocol.py goes to a lent GPU: ../shared does not travel with the repository,
# and the GPU image's transformers may be older than ours. Fills the git-ignored .gpu/ (~20 MB) with the
# ModernBERT-base config and tokenizer, the SST-2 files, and our transformers version as a wheel; the device
# call then carries [".gpu"] (the exact command is in gpu_protocol.py's docstring).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
version=$("$python" -c 'import transformers; print(transformers.__version__)')
rm -rf .gpu && mkdir -p .gpu/whl
cp -r ../shared/models/modernbert-base ../shared/data/sst2 .gpu/
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 -d .gpu/whl "transformers==$version"
du -sh .gpu
