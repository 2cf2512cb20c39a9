"""The report's parts on hand-made runs: what each figure draws, the seed and pairwise blocks, the attention
description and the check of analysis_<set>.json (compare's own tests run it on real run folders)."""

import math
from pathlib import Path

import pytest

from modernbert_glue.errors import UserError
from modernbert_glue.report.runs import Run


def _run(label: str, analysis: dict | None = None, **metrics) -> Run:
    return Run(folder=Path(f"/runs/{label}"), metrics={"task": "sst2", **metrics}, run={}, label=label,
               analysis={"dev": analysis} if analysis is not None else {})


def _buckets(key: str, *rows) -> dict:
    return {f"{key}_by_length": [{"words": w, "count": n, key: v} for w, n, v in rows]}


def test_the_length_figure_leaves_gaps_and_labels_each_runs_counts():
    """Empty buckets were drawn as 0 (for MAE: no error at all), and the n= labels were the first run's."""
    from modernbert_glue.report.figures import length_bars

    a = _run("a", _buckets("mae", ("1-5", 3, 0.5), ("6-10", 0, None)))
    b = _run("b", _buckets("mae", ("1-5", 2, 0.7), ("6-10", 1, 0.2)))
    drawn = length_bars([a, b], "dev")
    assert drawn["value"] == "mae" and drawn["buckets"] == ["1-5", "6-10"]
    (label_a, heights_a), (label_b, heights_b) = drawn["bars"]
    assert heights_a[0] == pytest.approx(0.5) and math.isnan(heights_a[1]) and heights_b == pytest.approx([0.7, 0.2])
    assert (label_a, label_b) == ("a (n 3, 0)", "b (n 2, 1)") and drawn["ticks"] == ["1-5 words", "6-10 words"]
    same = length_bars([a, _run("c", _buckets("mae", ("1-5", 3, 0.1), ("6-10", 0, None)))], "dev")
    assert same["ticks"] == ["1-5 words\n(n=3)", "6-10 words\n(n=0)"] and same["bars"][1][0] == "c"
    acc = length_bars([_run("d", _buckets("accuracy", ("1-5", 4, 0.25)))], "dev")
    assert acc["value"] == "accuracy" and acc["bars"][0][1] == pytest.approx([25.0])  # in %


def test_the_reliability_diagonal_starts_at_one_over_the_classes():
    from modernbert_glue.report.figures import lowest_confidence

    three = _run("mnli", {"confusion_matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]})
    assert lowest_confidence([three], "dev") == pytest.approx(1 / 3)
    assert lowest_confidence([_run("sst2", {"confusion_matrix": [[1, 0], [0, 1]]})], "dev") == pytest.approx(0.5)


def test_the_speed_figure_names_every_device_when_they_differ():
    from modernbert_glue.report.figures import devices

    assert devices([_run("a", device="cpu"), _run("b", device="cpu")]) == "cpu"
    assert devices([_run("a", device="cpu"), _run("b", device="NVIDIA H100"), _run("c")]) == (
        "devices differ: cpu, NVIDIA H100, ?")


def test_a_seed_interval_past_the_metrics_range_is_shown_cut_to_it():
    """A seeds.json written before mean_interval clipped holds [0.012, 1.071] for two RTE seeds."""
    from modernbert_glue.report.render import _seed_blocks

    summary = {"seeds": [1, 2], "main_metric": "accuracy", "eval_accuracy_mean": 0.542, "eval_accuracy_std": 0.06,
               "eval_accuracy_mean_ci": [0.012, 1.071], "per_seed": [{"seed": 1, "eval_accuracy": 0.5},
                                                                    {"seed": 2, "eval_accuracy": None}],
               "label": "m", "folder": "runs/m"}
    paragraph, table = _seed_blocks(summary)
    assert paragraph.text.endswith("[1.20, 100.00] (cut at the metric's range)") and table.rows[1][1] == "–"
    nan_mean = _seed_blocks({**summary, "eval_accuracy_mean": float("nan"), "eval_accuracy_std": float("nan")})
    assert "dev accuracy – ± – (mean" in nan_mean[0].text  # a seed without a value: no mean


def test_a_paired_test_without_a_difference_shows_dashes_not_nan():
    from modernbert_glue.report.render import _pairwise_table

    test = {"a": "x", "b": "y", "n": 2, "main_metric": {"metric": "pearson", "difference": math.nan, "ci": None,
                                                         "p": math.nan, "p_holm": math.nan}}
    assert _pairwise_table([test]).rows == [["x", "y", "2", "–", "–", "–", "–"]]


@pytest.mark.parametrize("config, expected", [
    ({"global_attn_every_n_layers": 3, "num_hidden_layers": 2}, "global in layer 1 only, sliding window 128 otherwise"),
    ({"layer_types": ["full_attention", "sliding_attention"]}, "global in layer 1 only, sliding window 128 otherwise"),
    ({"global_attn_every_n_layers": 3, "num_hidden_layers": 7},
     "global in layers 1, 4, 7 (every 3rd from the first), sliding window 128 otherwise"),
    ({"global_attn_every_n_layers": 1, "num_hidden_layers": 4}, "global (full) in every layer"),
    ({"layer_types": ["full_attention", "sliding_attention", "full_attention", "full_attention"]},
     "global in layers 1, 3, 4, sliding window 128 otherwise"),
    ({"layer_types": ["sliding_attention"] * 2}, "sliding window 128 in every layer"),
])
def test_the_attention_row_names_the_global_layers_of_any_config(config, expected):
    """A 2-layer ModernBERT (global every 3rd) was described as "global every 2nd layer" (or every 3rd): its one
    global layer is its first, as ModernBERT's layer i is global when i % global_attn_every_n_layers == 0."""
    from modernbert_glue.report.stats import _attention_pattern

    assert _attention_pattern({**config, "local_attention": 128}) == expected


@pytest.mark.parametrize("analysis, field", [
    ({}, "'accuracy_by_length' must be a list of length buckets {words, count, accuracy}, got null"),
    ({"accuracy_by_length": [{"words": "1-5", "count": 2}]}, "'accuracy_by_length' must be a list"),
    ({"mae_by_length": [{"words": "1-5", "count": 2, "mae": "x"}]}, "'mae_by_length' must be a list"),
    ({"accuracy_by_length": [], "calibration": {"ece": 0.1, "bins": [{"count": 3, "accuracy": 0.5}]}},
     "'calibration' must be {ece, bins: [{count, accuracy, confidence}]}"),
    ({"accuracy_by_length": [], "calibration": {"bins": []}}, "'calibration' must be"),
    ({"accuracy_by_length": [], "confusion_matrix": [[1, 2]]}, "'confusion_matrix' must be a square list"),
])
def test_a_damaged_analysis_file_is_one_line_naming_it(analysis, field):
    from modernbert_glue.report.runs import check_analysis

    with pytest.raises(UserError) as refused:
        check_analysis(Path("run/analysis_dev.json"), analysis)
    assert str(refused.value).startswith(f"run/analysis_dev.json: {field}")
    check_analysis(Path("ok"), {"accuracy_by_length": [{"words": "1-5", "count": 0, "accuracy": None}],
                                "calibration": {"ece": 0.0, "bins": [{"count": 0, "accuracy": None,
                                                                      "confidence": None}]},
                                "confusion_matrix": [[1, 0], [0, 1]]})


def test_the_main_metric_figure_leaves_out_a_run_without_a_value():
    """STS-B scored on two rows has no Pearson (null): the figure draws the others, or none, without stopping."""
    from modernbert_glue.report.figures import plot_accuracy

    null = _run("a", main_metric="pearson", eval_pearson=None, eval_pearson_ci=None)
    scored = _run("b", main_metric="pearson", eval_pearson=0.5, eval_pearson_ci=[0.4, 0.6])
    for runs in ([null], [null, scored]):
        assert plot_accuracy(runs, "dev").startswith(b"\x89PNG")


def test_a_dev_set_of_the_users_own_file_is_named_by_it_not_as_glues():
    """A custom task's --validation-file was headed "dev (GLUE validation)" in the report (the card named it)."""
    from modernbert_glue.report.runs import set_title

    own = Run(folder=Path("/runs/own"), metrics={"task": "custom"}, label="own",
              run={"config": {"data": {"validation_file": "/data/reg_dev.csv"}}})
    assert set_title([own, own], "dev") == "custom dev (reg_dev.csv)"
    assert set_title([own], "test") == "custom test (the labelled --test-file)"
    glue = _run("glue")
    assert set_title([glue], "dev") == "SST-2 dev (GLUE validation)"
    assert set_title([glue, Run(folder=Path("/runs/x"), metrics={"task": "sst2"}, label="x",
                                run=own.run)], "dev") == "SST-2 dev (GLUE validation, reg_dev.csv)"
    other = Run(folder=Path("/runs/other"), metrics={"task": "custom"}, label="other",
                run={"config": {"data": {"validation_file": "/elsewhere/reg_dev.csv"}}})
    assert set_title([own, other], "dev") == "custom dev (reg_dev.csv)"  # a name once
