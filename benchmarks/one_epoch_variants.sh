#!/usr/bin/env bash
# bash benchmarks/one_epoch_variants.sh
# Why is `cpu-sbert --epochs 1` ~0.5 points below the plain Trainer's epoch on dev (cpu-sbert-epoch-3seeds.json)?
# One setting of cpu-sbert changed at a time, one epoch, seeds 1-3, dev only (test not looked at):
#   batch32   --batch-size 32 (as the plain Trainer; twice the optimizer steps)
#   embeddings  --set train.freeze_embeddings=false (the word embeddings trained, as in the plain Trainer)
# Runs go to runs/one-epoch-<date>/; metrics.json and run.json are copied to
# benchmarks/results/recipe-selection/one-epoch/<variant>/seed-<n>/.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA_DIR:-../shared/data/sst2}
results=benchmarks/results/recipe-selection/one-epoch
[ -z "$(ls -A "$results" 2>/dev/null)" ] || { echo "error: $results is not empty (move it away to rerun)" >&2; exit 2; }
runs=runs/one-epoch-$(date -u +%Y%m%dT%H%M%S)
declare -A variants=([batch32]="--batch-size 32" [embeddings]="--set train.freeze_embeddings=false")
for name in batch32 embeddings; do
  for seed in 1 2 3; do
    out=$runs/$name/seed-$seed
    # shellcheck disable=SC2086
    .venv/bin/modernbert-glue train --preset cpu-sbert --epochs 1 --seed "$seed" --data-dir "$data" \
      --output-dir "$out" ${variants[$name]} > /dev/null
    mkdir -p "$results/$name/seed-$seed"
    cp "$out/metrics.json" "$out/run.json" "$results/$name/seed-$seed/"
  done
done
python3 - "$results" <<'PY'
import json, statistics, sys
from pathlib import Path
root = Path(sys.argv[1])
for variant in sorted(p for p in root.iterdir() if p.is_dir()):
    rows = [json.loads((s / "metrics.json").read_text()) for s in sorted(variant.iterdir())]
    dev = [100 * r["eval_accuracy"] for r in rows]
    secs = [r["train_seconds"] for r in rows]
    print(f"{variant.name}: dev {', '.join(f'{d:.2f}' for d in dev)} (mean {statistics.mean(dev):.2f}); "
          f"train seconds {', '.join(f'{s:.1f}' for s in secs)}")
PY
