"""`compare` on the committed CPU GLUE results (benchmarks/results/glue-cpu/): each task's own main metric (MCC, the
positive-class F1, Pearson) and its paired test, checked against scikit-learn and scipy on the prediction files."""

import csv
import json

import pytest
from scipy.stats import pearsonr
from sklearn.metrics import f1_score, matthews_corrcoef

from tests.conftest import REPO, run_cli

RESULTS = REPO / "benchmarks" / "results" / "glue-cpu"
# A constant prediction (the STS-B trivial baseline) has no correlation; GLUE's tables and ours count it as 0.
REFERENCE = {"mcc": matthews_corrcoef, "f1": f1_score,
             "pearson": lambda y, p: pearsonr(y, p)[0] if len(set(p)) > 1 else 0.0}


def _predictions(folder):
    with open(folder / "predictions_dev.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    cast = float if "." in rows[0]["label"] else int
    return [cast(r["label"]) for r in rows], [cast(r["prediction"]) for r in rows]


@pytest.mark.parametrize("task,metric", [("cola", "mcc"), ("mrpc", "f1"), ("stsb", "pearson")])
def test_compare_reports_each_tasks_metric_and_paired_test(task, metric, tmp_path):
    ours, trivial = RESULTS / "ours" / task, RESULTS / "baselines" / "majority" / task
    code, _, stderr = run_cli("compare", ours, trivial, "--task", task, "--output", tmp_path / "report")
    assert code == 0, stderr[-2000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    by_label = {}
    for run in report["runs"]:
        assert run["metrics"]["main_metric"] == metric
        labels, predictions = _predictions(REPO / run["folder"])
        expected = REFERENCE[metric](labels, predictions)
        assert run["metrics"][f"eval_{metric}"] == pytest.approx(expected, abs=1e-6)
        low, high = run["metrics"][f"eval_{metric}_ci"]
        assert low <= expected <= high
        by_label[run["label"]] = run["metrics"][f"eval_{metric}"]
    assert len(by_label) == 4  # three seeds of ours and the trivial baseline
    against_trivial = [p for p in report["pairwise"]["dev"] if p["b"].startswith("trivial")]
    assert len(against_trivial) == 3
    for pair in against_trivial:
        test = pair["main_metric"]
        assert test["metric"] == metric
        assert test["difference"] == pytest.approx(by_label[pair["a"]] - by_label[pair["b"]], abs=1e-6)
        assert test["ci"][0] > 0 and test["p"] < 0.01  # every seed beats the trivial baseline clearly
    assert ("mcnemar" in against_trivial[0]) is (metric != "pearson")  # correctness only for classes
