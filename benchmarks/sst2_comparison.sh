#!/usr/bin/env bash
# bash benchmarks/sst2_comparison.sh
# The committed SST-2 comparison, all on this machine's CPU: TF-IDF, frozen SBERT, SBERT (all-MiniLM-L6-v2)
# fine-tuned with the cpu-sbert preset for 3 seeds, and ModernBERT-base with random weights (speed/memory rows
# only: a short run, its accuracy is chance). Each system is evaluated on SST-2 dev and on test_labeled.tsv.
# Run folders go to runs/comparison-<date>/; metrics, run records and the report are copied into the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA_DIR:-../shared/data/sst2}
test_file=$data/test_labeled.tsv
runs=runs/comparison-$(date -u +%Y%m%dT%H%M%S)
results=benchmarks/results/sst2-comparison
report=benchmarks/reports/sst2-comparison
for d in "$results" "$report"; do
  [ -z "$(ls -A "$d" 2>/dev/null)" ] || { echo "error: $d is not empty (move it away to rerun)" >&2; exit 2; }
done
bin=.venv/bin/modernbert-glue
timed() {  # name, command...: record the wall time of a whole command (train + evaluations)
  local name=$1; shift
  local start=$(date +%s.%N)
  "$@" > "$runs/$name.stdout"
  python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$start" "$(date +%s.%N)" > "$runs/$name.wall_seconds"
}
mkdir -p "$runs"
timed tfidf $bin baseline tfidf --data-dir "$data" --test-file "$test_file" --output-dir "$runs/tfidf"
timed sbert-frozen $bin baseline sbert-frozen --data-dir "$data" --test-file "$test_file" --output-dir "$runs/sbert-frozen" \
  --cache-dir "$runs/embedding-cache"
timed sbert-finetuned $bin train --preset cpu-sbert --data-dir "$data" --test-file "$test_file" --seeds 1,2,3 \
  --output-dir "$runs/sbert-finetuned"
timed modernbert-random $bin train --preset paper --model ../shared/models/modernbert-base --random-init \
  --data-dir "$data" --test-file "$test_file" --max-train-samples 640 --epochs 1 --output-dir "$runs/modernbert-base-random"
$bin compare "$runs/tfidf" "$runs/sbert-frozen" "$runs/sbert-finetuned" "$runs/modernbert-base-random" --output "$report"

# Copy the small records into the repo (models stay in runs/).
mkdir -p "$results"
for run in tfidf sbert-frozen modernbert-base-random sbert-finetuned/seed-1 sbert-finetuned/seed-2 sbert-finetuned/seed-3; do
  dest="$results/${run//\//-}"
  mkdir -p "$dest"
  cp "$runs/$run/metrics.json" "$runs/$run/run.json" "$dest/"
done
cp "$runs/sbert-finetuned/seeds.json" "$results/sbert-finetuned-seeds.json"
for f in "$runs"/*.wall_seconds; do echo "$(basename "$f" .wall_seconds): $(cat "$f") s"; done > "$results/wall_seconds.txt"
cat > "$results/README.md" <<MD
# SST-2 comparison (committed results)

Command: \`bash benchmarks/sst2_comparison.sh\` — run folders in \`$runs\` (not committed: models).
Date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ). Hardware, package versions, git commit and the exact command of
each run: the \`run.json\` beside each \`metrics.json\`. Wall time of each whole command (fit + all evaluations):
\`wall_seconds.txt\`. Report: \`benchmarks/reports/sst2-comparison/report.md\`.
MD
cat "$results/wall_seconds.txt"
