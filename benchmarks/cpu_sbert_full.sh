#!/usr/bin/env bash
# bash benchmarks/cpu_sbert_full.sh [RESULTS_DIR]
# The full cpu-sbert fine-tune of all-MiniLM-L6-v2 on all 67,349 SST-2 sentences, evaluated on dev (during
# training) and once on test_labeled.tsv; copies metrics.json, run.json and the test metrics into RESULTS_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
results=${1:-benchmarks/results/cpu-sbert}
data=${DATA_DIR:-../shared/data/sst2}
run=runs/bench-cpu-sbert-$(date -u +%Y%m%dT%H%M%S)
mkdir -p "$results"
[ -z "$(ls -A "$results" 2>/dev/null)" ] || { echo "error: $results is not empty" >&2; exit 2; }
bin=.venv/bin/modernbert-glue
start=$(date +%s)
$bin train --preset cpu-sbert --data-dir "$data" --output-dir "$run"
$bin evaluate --model "$run/model" --file "$data/test_labeled.tsv" > "$run/test_labeled_metrics.json"
end=$(date +%s)
cp "$run/metrics.json" "$run/run.json" "$run/test_labeled_metrics.json" "$results/"
cat > "$results/README.md" <<MD
# cpu-sbert full run

Command: \`bash benchmarks/cpu_sbert_full.sh $results\` (train + dev evaluation + test evaluation), i.e.

    modernbert-glue train --preset cpu-sbert --data-dir $data --output-dir $run
    modernbert-glue evaluate --model $run/model --file $data/test_labeled.tsv

Wall time, train and both evaluations: $((end - start)) s. Date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ).
Versions, hardware, git commit and the resolved config: run.json. Dev metrics: metrics.json.
Test (test_labeled.tsv, evaluated once): test_labeled_metrics.json.
MD
cat "$results/metrics.json" "$results/test_labeled_metrics.json"
