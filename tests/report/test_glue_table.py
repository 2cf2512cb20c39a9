"""The GLUE table: one row per system, each task's GLUE score (mean over seeds), the 8-task average without WNLI."""

from pathlib import Path

import pytest

from modernbert_glue.report.glue_table import AVERAGED, average, glue_blocks, glue_rows
from modernbert_glue.report.runs import Run

MAIN = {"cola": "mcc", "sst2": "accuracy", "mrpc": "f1", "stsb": "pearson", "qqp": "f1", "mnli": "accuracy",
        "qnli": "accuracy", "rte": "accuracy", "wnli": "accuracy"}


def fake_run(task: str, value: float, seed: int = 1, model: str = "m", seeds_folder: str | None = None,
             preset: str = "p") -> Run:
    metric = MAIN[task]
    from modernbert_glue.report.glue_table import SCORE

    metrics = {"task": task, "model": model, "preset": preset, "main_metric": metric, "seed": seed,
               **{f"eval_{m}": value for m in SCORE.get(task, ())},  # the reference's score: the value too
               f"eval_{metric}": value, f"eval_{metric}_ci": [value - 0.1, value + 0.1]}
    return Run(folder=Path(f"/runs/{model}-{task}-{seed}"), metrics=metrics, run={}, label=f"{model} {task} {seed}",
               seeds_folder=Path(seeds_folder) if seeds_folder else None)


def test_each_task_gets_its_main_metric_and_the_average_leaves_out_wnli():
    runs = [fake_run(t, 0.5 + i / 100, seeds_folder="/runs/rte-seeds" if t == "rte" else None) for i, t in enumerate(MAIN)]
    runs.append(fake_run("rte", 0.7, seed=2, seeds_folder="/runs/rte-seeds"))  # a second seed: the cell is the mean
    table = glue_rows(runs)
    row = table["m fine-tuned"]
    assert row["rte"]["value"] == pytest.approx((0.57 + 0.7) / 2) and row["rte"]["runs"] == 2
    assert row["cola"]["metric"] == "mcc" and row["stsb"]["metric"] == "spearman"
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


def full_run(task: str, seed: int = 1, **metrics) -> Run:
    """A run with every metric the reference scores its task with, on the whole dev set."""
    from modernbert_glue.report.glue_table import DEV_ROWS

    run = fake_run(task, metrics.pop("main", 0.0), seed=seed, seeds_folder=f"/runs/{task}-seeds")
    run.metrics.update({f"eval_{k}": v for k, v in metrics.items()}, eval_samples=DEV_ROWS[task])
    return run


def test_a_task_scores_as_the_reference_glue_code_averages_its_metrics():
    """MRPC and QQP: the mean of accuracy and F1; STS-B: Spearman; MNLI: matched and mismatched (the reference's
    glue_jobs metrics, every one averaged into the task's number). The paper's average follows from those."""
    runs = [full_run("cola", main=0.60), full_run("sst2", main=0.95), full_run("mrpc", main=0.92, accuracy=0.89),
            full_run("stsb", main=0.91, spearman=0.90, spearman_ci=[0.89, 0.91]),
            full_run("qqp", main=0.89, accuracy=0.92),
            full_run("mnli", main=0.88, mismatched_accuracy=0.87), full_run("qnli", main=0.93),
            full_run("rte", main=0.80), full_run("rte", seed=2, main=0.70)]
    row = glue_rows(runs)["m fine-tuned"]
    assert row["mrpc"]["value"] == pytest.approx(0.905) and row["mrpc"]["metric"] == "accuracy/f1"
    assert row["stsb"]["value"] == pytest.approx(0.90) and row["mnli"]["value"] == pytest.approx(0.875)
    assert row["mrpc"]["ci"] is None and row["stsb"]["ci"] == [0.89, 0.91]  # one run: its metric's
    assert row["rte"]["value"] == pytest.approx(0.75) and row["rte"]["ci"][0] < 0.75 < row["rte"]["ci"][1]
    assert average(row) == pytest.approx((0.60 + 0.95 + 0.905 + 0.90 + 0.905 + 0.875 + 0.93 + 0.75) / 8)
    blocks, _ = glue_blocks(runs)
    assert "MRPC accuracy and f1" in blocks[1].text and "MNLI accuracy and mismatched_accuracy" in blocks[1].text


def test_a_task_scored_on_part_of_its_dev_set_is_marked_and_left_out_of_the_average():
    runs = [full_run(t, main=0.8, accuracy=0.8, spearman=0.8, mismatched_accuracy=0.8) for t in AVERAGED]
    assert average(glue_rows(runs)["m fine-tuned"]) == pytest.approx(0.8)
    runs[-1].metrics["eval_samples"] = 100  # RTE: --max-eval-samples 100
    row = glue_rows(runs)["m fine-tuned"]
    assert row["rte"]["partial"] and average(row) is None
    blocks, _ = glue_blocks(runs)
    rte = blocks[2].headers.index("RTE")
    assert blocks[2].rows[0][rte].startswith("80.0*") and blocks[2].rows[0][-1] == "–"
    assert "RTE (100 of 277)" in blocks[1].text


def test_a_run_on_the_users_own_data_is_refused_from_the_glue_table():
    from modernbert_glue.errors import UserError

    own = fake_run("rte", 0.6, model="own")
    own.metrics["task"] = "custom"
    with pytest.raises(UserError, match="its task 'custom' is not a GLUE task, and runs of several tasks make the "
                                        "GLUE table; compare it with runs of its own task"):
        glue_rows([fake_run("sst2", 0.9), own])
    own = fake_run("rte", 0.6, model="own")  # a GLUE task scored on the user's own file: it was a GLUE cell
    own.run = {"config": {"data": {"validation_file": "/data/my_rte_dev.tsv"}}}
    with pytest.raises(UserError, match="own-rte-1: scored on its own --validation-file my_rte_dev.tsv, not on GLUE's "
                                        "dev set"):
        glue_rows([fake_run("sst2", 0.9), own])


def test_a_cell_without_every_metric_the_reference_averages_is_marked_and_left_out_of_the_average():
    """An MNLI run scored without the mismatched dev set (its own --validation-file) is matched accuracy alone."""
    runs = [full_run(t, main=0.8, accuracy=0.8, spearman=0.8, mismatched_accuracy=0.8) for t in AVERAGED]
    del runs[AVERAGED.index("mnli")].metrics["eval_mismatched_accuracy"]
    row = glue_rows(runs)["m fine-tuned"]
    assert row["mnli"]["main_metric_only"] and row["mnli"]["metric"] == "accuracy" and average(row) is None
    blocks, _ = glue_blocks(runs)
    assert blocks[2].rows[0][blocks[2].headers.index("MNLI")].startswith("80.0†")
    assert "† the main metric alone, the runs lacking a metric the reference averages: MNLI (accuracy)" in blocks[1].text
    old = fake_run("rte", 0.6)
    del old.metrics["task"]  # a run from before `task` was recorded: SST-2's
    assert set(glue_rows([old, fake_run("rte", 0.7, model="other")])["m fine-tuned"]) == {"sst2"}


def test_an_interval_over_seeds_stays_inside_the_metrics_range():
    """Two RTE seeds 10 points apart: the t-interval of their mean was [-8.5, 118.5]; accuracy has [0, 100]."""
    runs = [fake_run("rte", value, seed=seed, seeds_folder="/runs/rte-seeds") for seed, value in ((1, 0.5), (2, 0.6))]
    cell = glue_rows(runs)["m fine-tuned"]["rte"]
    assert cell["ci"] == pytest.approx([0.0, 1.0])
    blocks, _ = glue_blocks(runs)
    assert blocks[2].rows[0][blocks[2].headers.index("RTE")] == "55.0 [0.0, 100.0]"
    cola = [fake_run("cola", value, seed=seed, seeds_folder="/runs/cola-seeds")
            for seed, value in ((1, -0.9), (2, 0.9))]
    assert glue_rows(cola)["m fine-tuned"]["cola"]["ci"] == pytest.approx([-1.0, 1.0])  # MCC: [-1, 1]


def test_a_metric_too_few_examples_left_null_is_a_dash_not_a_crash():
    runs = [full_run(t, main=0.8, accuracy=0.8, spearman=0.8, mismatched_accuracy=0.8) for t in AVERAGED]
    stsb = runs[AVERAGED.index("stsb")]
    stsb.metrics.update(eval_spearman=None, eval_spearman_ci=None)
    row = glue_rows(runs)["m fine-tuned"]
    assert row["stsb"]["value"] is None and row["stsb"]["ci"] is None and average(row) is None
    blocks, _ = glue_blocks(runs)
    assert blocks[2].rows[0][blocks[2].headers.index("STS-B")] == "–" and blocks[2].rows[0][-1] == "–"


def test_a_baseline_is_named_by_the_model_it_fits_lr_for_classes_ridge_for_scores():
    from modernbert_glue.report.runs import system_name

    def baseline(task: str, kind: str) -> Run:
        return fake_run(task, 0.5, preset=f"baseline:{kind}", model="sentence-transformers/all-MiniLM-L6-v2")

    assert system_name(baseline("stsb", "tfidf").metrics) == "TF-IDF + ridge"
    assert system_name(baseline("stsb", "sbert-frozen").metrics) == "all-MiniLM-L6-v2 frozen + ridge"
    assert system_name(baseline("stsb", "majority").metrics) == "trivial (train mean)"
    assert system_name(baseline("sst2", "tfidf").metrics) == "TF-IDF + LR"
    assert system_name(baseline("sst2", "majority").metrics) == "trivial (majority class)"
    # one row per baseline in the GLUE table, named for what it fits on the tasks shown
    assert set(glue_rows([baseline("sst2", "tfidf"), baseline("rte", "tfidf")])) == {"TF-IDF + LR"}
    assert set(glue_rows([baseline("sst2", "tfidf"), baseline("stsb", "tfidf")])) == {"TF-IDF + LR or ridge"}


def test_a_warm_started_run_is_named_so_per_task_and_is_the_same_system_in_the_glue_table():
    """--init-from: the per-task reports say "warm start" (a reader told it apart from a cold start only by
    metrics.json); the GLUE table keeps the paper's round 2 (RTE from the MNLI model) in its system's row."""
    from modernbert_glue.report.runs import system_name

    warm = fake_run("rte", 0.6, model="org/modernbert-base")
    warm.metrics.update(random_init=True, init_from="/runs/mnli-seeds/seed-1/model")
    assert system_name(warm.metrics) == "modernbert-base random weights, warm start"
    assert system_name(warm.metrics, any_task=True) == "modernbert-base random weights"
    cold = fake_run("sst2", 0.9, model="org/modernbert-base")
    cold.metrics["random_init"] = True
    assert set(glue_rows([warm, cold])) == {"modernbert-base random weights"}


def test_a_model_built_with_other_sizes_is_another_system_named_by_them():
    """--model-override num_hidden_layers=2 on modernbert-base is not modernbert-base: its own row in the GLUE table
    (its SST-2 run must not average with the full model's RTE run), named by the sizes (BERT's L, H, A first)."""
    from modernbert_glue.report.runs import system_name

    small = fake_run("sst2", 0.8, model="org/modernbert-base")
    small.metrics["model_sizes"] = {"intermediate_size": 128, "num_hidden_layers": 2, "hidden_size": 64}
    full = fake_run("rte", 0.6, model="org/modernbert-base")
    full.metrics["model_sizes"] = {}
    assert system_name(small.metrics) == "modernbert-base (L2, H64, intermediate_size=128) fine-tuned"
    assert set(glue_rows([small, full])) == {"modernbert-base (L2, H64, intermediate_size=128) fine-tuned",
                                             "modernbert-base fine-tuned"}
    one = {"vocab_size": 50400, "intermediate_size": 128}  # given in two orders: one system
    assert system_name({**small.metrics, "model_sizes": one}) == system_name(
        {**small.metrics, "model_sizes": dict(reversed(one.items()))}) == \
        "modernbert-base (intermediate_size=128, vocab_size=50400) fine-tuned"
