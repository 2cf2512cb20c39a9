"""The GLUE table: one row per system, each task's main metric (mean over seeds), the 8-task average without WNLI."""

from pathlib import Path

import pytest

from modernbert_glue.report.glue_table import AVERAGED, average, glue_blocks, glue_rows
from modernbert_glue.report.runs import Run

MAIN = {"cola": "mcc", "sst2": "accuracy", "mrpc": "f1", "stsb": "pearson", "qqp": "f1", "mnli": "accuracy",
        "qnli": "accuracy", "rte": "accuracy", "wnli": "accuracy"}


def fake_run(task: str, value: float, seed: int = 1, model: str = "m", seeds_folder: str | None = None,
             preset: str = "p") -> Run:
    metric = MAIN[task]
    metrics = {"task": task, "model": model, "preset": preset, "main_metric": metric, "seed": seed,
               f"eval_{metric}": value, f"eval_{metric}_ci": [value - 0.1, value + 0.1]}
    return Run(folder=Path(f"/runs/{model}-{task}-{seed}"), metrics=metrics, run={}, label=f"{model} {task} {seed}",
               seeds_folder=Path(seeds_folder) if seeds_folder else None)


def test_each_task_gets_its_main_metric_and_the_average_leaves_out_wnli():
    runs = [fake_run(t, 0.5 + i / 100, seeds_folder="/runs/rte-seeds" if t == "rte" else None) for i, t in enumerate(MAIN)]
    runs.append(fake_run("rte", 0.7, seed=2, seeds_folder="/runs/rte-seeds"))  # a second seed: the cell is the mean
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


def test_runs_of_one_system_and_task_from_two_folders_are_refused_not_pooled():
    """Two folders (say two learning rates, or a single run beside a --seeds folder holding its seed) are not
    seeds of one recipe: averaging them would report a t-interval of unrelated runs."""
    from modernbert_glue.errors import UserError

    for runs in ([fake_run("rte", 0.6), fake_run("rte", 0.7, seed=2)],
                 [fake_run("rte", 0.6), fake_run("rte", 0.6, seeds_folder="/runs/rte-seeds")]):
        with pytest.raises(UserError, match=r"are both 'm fine-tuned' on rte: give one run or one --seeds folder"):
            glue_rows(runs)
    assert glue_rows([fake_run("rte", 0.6), fake_run("rte", 0.7, model="other")])["other fine-tuned"]["rte"]["runs"] == 1


def test_one_model_from_two_recipes_is_two_systems_named_after_them():
    """paper-rte and paper-sst2 are one recipe (`paper`); minilm-glue, or a preset file, is another row."""
    runs = [fake_run("rte", 0.6, preset="paper-rte"), fake_run("sst2", 0.9, preset="paper-sst2"),
            fake_run("rte", 0.7, preset="minilm-glue"), fake_run("sst2", 0.8, preset="/my/fast.toml"),
            fake_run("rte", 0.5, model="other", preset="paper-rte")]
    table = glue_rows(runs)
    assert set(table) == {"m fine-tuned (paper)", "m fine-tuned (minilm-glue)", "m fine-tuned (fast)",
                          "other fine-tuned"}
    assert set(table["m fine-tuned (paper)"]) == {"rte", "sst2"}
    assert table["m fine-tuned (fast)"]["sst2"]["value"] == 0.8
    same_name = [fake_run("rte", 0.6, preset="/a/fast.toml"), fake_run("sst2", 0.9, preset="/b/fast.toml")]
    assert set(glue_rows(same_name)) == {"m fine-tuned (/a/fast)", "m fine-tuned (/b/fast)"}  # not pooled
