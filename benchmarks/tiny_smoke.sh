#!/usr/bin/env bash
# bash benchmarks/tiny_smoke.sh [OUT_DIR]
# The foundation's one-minute check: a tiny random ModernBERT (real config, 2 layers, hidden 64) trains on 256
# SST-2 sentences for one epoch, saves, evaluates and predicts, and a bad data folder is refused with exit 2.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d)/tiny}
data=${DATA_DIR:-../shared/data/sst2}
bin=.venv/bin/modernbert-glue
tiny=(--model-override num_hidden_layers=2 --model-override hidden_size=64 --model-override intermediate_size=128
      --model-override num_attention_heads=2)
start=$(date +%s.%N)
$bin train --model ../shared/models/modernbert-base --random-init "${tiny[@]}" --data-dir "$data" \
  --max-train-samples 256 --epochs 1 --output-dir "$out" 2>/dev/null | head -c 200; echo
$bin evaluate --model "$out/model" --data-dir "$data" 2>/dev/null | head -c 120; echo
$bin predict --model "$out/model" "a gorgeous, witty, seductive movie." "dull and tedious." 2>/dev/null
bad=$(mktemp -d)
printf 'sentence\tlabel\ngood film\t1\nbad film\t7\n' > "$bad/train.tsv"
cp "$data/dev.tsv" "$bad/dev.tsv"
$bin train --data-dir "$bad" --output-dir "$bad/out"; code=$?
end=$(date +%s.%N)
echo "bad data folder exit code: $code"
python3 -c "import sys; print(f'wall time: {float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" "$start" "$end"
