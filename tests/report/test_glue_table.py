"""The GLUE table: one row per system, each task's main metric (mean over seeds), the 8-task average without WNLI."""

from pathlib import Path

import pytest

from modernbert_glue.report.glue_table import AVERAGED, average, glue_blocks, glue_rows
from modernbert_glue.report.runs import Run

MAIN = {"cola": "mcc", "sst2": "accuracy", "mrpc": "f1", "stsb": "pearson", "qqp": "f1", "mnli": "accuracy",
        "qnli": "accuracy", "rte": "accuracy", "wnli": "accuracy"}


def fake_run(task: str, value: float, seed: int = 1, model: str = "m") -> Run:
    metric = MAIN[task]
    metrics = {"task": task, "model": model, "preset": "p", "main_metric": metric, "seed": seed,
               f"eval_{metric}": value, f"eval_{metric}_ci": [value - 0.1, value + 0.1]}
    return Run(folder=Path(f"/runs/{model}-{task}-{seed}"), metrics=metrics, run={}, label=f"{model} {task} {seed}")


def test_each_task_gets_its_main_metric_and_the_average_leaves_out_wnli():
    runs = [fake_run(t, 0.5 + i / 100) for i, t in enumerate(MAIN)]
    runs.append(fake_run("rte", 0.7, seed=2))  # a second seed: the cell is the mean
    table = glue_rows(runs)
    row = table["m fine-tuned"]
    assert row["rte"]["value"] == pytest.approx((0.57 + 0.7) / 2) and row["rte"]["runs"] == 2
    assert row["cola"]["metric"] == "mcc" and row["stsb"]["metric"] == "pearson"
    expected = sum(row[t]["value"] for t in AVERAGED) / 8
    assert average(row) == pytest.approx(expected) and "wnli" not in AVERAGED
    blocks, summary = glue_blocks(runs)
    header = blocks[2].headers
    assert header[:3] == ["system", "CoLA", "SST-2"] and header[-1] == "average (8 tasks)"
    assert blocks[2].rows[0][-1] == f"{100 * expected:.1f}"


def test_no_average_until_all_eight_tasks_are_there():
    runs = [fake_run(t, 0.6) for t in ("cola", "rte", "wnli")]
    assert average(glue_rows(runs)["m fine-tuned"]) is None
    blocks, _ = glue_blocks(runs)
    assert blocks[2].rows[0][-1] == "–"
