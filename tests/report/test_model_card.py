"""The model card's metadata (model-index) and results: each scored dev set under the split the Hub names it,
a partial dev set said to be one, and a value too few examples gave none left out of the metadata."""

import dataclasses

import yaml

from modernbert_glue.config import RunConfig
from modernbert_glue.modelcard import model_card
from modernbert_glue.tasks import get_task


def _card(task: str, metrics: dict, **data) -> tuple[dict, str]:
    cfg = RunConfig()
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **data))
    text = model_card(get_task(task), cfg, {"model": "answerdotai/ModernBERT-base", **metrics}, "train ...", 128)
    return yaml.safe_load(text.split("---\n")[1]), text


MNLI = {"eval_accuracy": 0.84, "eval_accuracy_ci": [0.83, 0.85], "eval_samples": 9815,
        "eval_mismatched_accuracy": 0.83, "eval_mismatched_accuracy_ci": [0.82, 0.84], "eval_mismatched_samples": 9832}


def test_an_mnli_card_names_both_hub_splits_and_reports_both():
    """The card said split "validation", which nyu-mll/glue's mnli config does not have, and left out the
    mismatched accuracy."""
    meta, text = _card("mnli", MNLI)
    results = meta["model-index"][0]["results"]
    assert [r["dataset"]["split"] for r in results] == ["validation_matched", "validation_mismatched"]
    assert all(r["dataset"]["config"] == "mnli" and r["dataset"]["type"] == "nyu-mll/glue" for r in results)
    assert [[(m["type"], m["value"]) for m in r["metrics"]] for r in results] == [[("accuracy", 0.84)],
                                                                                  [("accuracy", 0.83)]]
    assert "| validation_mismatched | Accuracy | 0.8300 | 0.8200–0.8400 |" in text
    assert "--max-eval-samples" not in text
    rte, _ = _card("rte", {"eval_accuracy": 0.7, "eval_accuracy_ci": [0.6, 0.8], "eval_samples": 277})
    assert [r["dataset"]["split"] for r in rte["model-index"][0]["results"]] == ["validation"]


def test_a_card_scored_on_part_of_the_dev_set_says_so():
    metrics = {**MNLI, "eval_samples": 80, "eval_mismatched_samples": 80}
    meta, text = _card("mnli", metrics, max_eval_samples=80)
    results = meta["model-index"][0]["results"]
    assert [r["dataset"]["split"] for r in results] == ["validation_matched[:80]", "validation_mismatched[:80]"]
    assert "first 80 rows" in results[0]["metrics"][0]["name"]
    assert ("- Scored on the first 80 rows of validation_matched and the first 80 rows of validation_mismatched "
            "only (--max-eval-samples)") in text
    whole, text = _card("rte", {"eval_accuracy": 0.7, "eval_samples": 277}, max_eval_samples=1000)  # all of it
    assert whole["model-index"][0]["results"][0]["dataset"]["split"] == "validation" and "rows of" not in text


def test_a_card_leaves_a_value_too_few_examples_gave_none_out_of_its_metadata():
    metrics = {"eval_pearson": None, "eval_pearson_ci": None, "eval_spearman": None, "eval_spearman_ci": None,
               "eval_samples": 2}
    meta, text = _card("stsb", metrics, max_eval_samples=2)
    assert meta["model-index"][0]["results"][0]["metrics"] == []
    assert "| validation, first 2 rows | Pearson correlation | – | – |" in text
    assert "–: too few examples for a value (a correlation needs 3, an interval 2)." in text


def test_a_card_of_an_own_validation_file_claims_no_hub_split():
    meta, _ = _card("rte", {"eval_accuracy": 0.7, "eval_accuracy_ci": [0.6, 0.8], "eval_samples": 50},
                    validation_file="mine.tsv")
    assert meta["model-index"][0]["results"][0]["dataset"] == {"name": "custom data", "type": "custom",
                                                               "split": "mine.tsv"}
    mnli, text = _card("mnli", {"eval_accuracy": 0.8, "eval_samples": 50}, validation_file="data/mine.tsv")
    assert [r["dataset"]["split"] for r in mnli["model-index"][0]["results"]] == ["mine.tsv"]  # matched only
    assert "| mine.tsv | Accuracy | 0.8000 |" in text and "the dev (validation) split" not in text
    assert "- Results are on the validation file mine.tsv, the set the best checkpoint was chosen on" in text


def test_a_card_reports_a_labelled_test_file_apart_from_dev():
    """`train --test-file` with labels writes test_* to metrics.json; the card left them out and said GLUE's
    test labels are hidden."""
    meta, text = _card("sst2", {"eval_accuracy": 0.9, "eval_samples": 100, "test_accuracy": 0.88,
                                "test_accuracy_ci": [0.86, 0.9], "test_samples": 1821},
                       test_file="sst2/test_labeled.tsv", max_eval_samples=100)
    results = meta["model-index"][0]["results"]
    assert [r["dataset"]["split"] for r in results] == ["validation[:100]", "test_labeled.tsv"]
    assert results[0]["dataset"]["type"] == "nyu-mll/glue" and results[1]["dataset"]["type"] == "custom"
    assert "| test_labeled.tsv | Accuracy | 0.8800 | 0.8600–0.9000 |" in text  # all of it: --max-eval-samples is dev's
    assert "the labelled test file is scored apart" in text and "test labels are hidden" not in text
    _, text = _card("sst2", {"eval_accuracy": 0.9, "eval_samples": 872})
    assert "GLUE's test labels are hidden" in text and "test_labeled" not in text


def test_a_card_names_the_sizes_its_model_was_built_with():
    """A 2-layer model from modernbert-base's config is not modernbert-base: the card says how it was built."""
    meta, text = _card("rte", {"eval_accuracy": 0.7, "eval_samples": 277,
                               "model_sizes": {"num_hidden_layers": 2, "hidden_size": 64}})
    assert "from `answerdotai/ModernBERT-base` (num_hidden_layers=2, hidden_size=64)." in text
    assert meta["model-index"][0]["name"] == "ModernBERT-base-rte (num_hidden_layers=2, hidden_size=64)"  # its name
    meta, text = _card("rte", {"eval_accuracy": 0.7, "eval_samples": 277, "model_sizes": {}})
    assert "from `answerdotai/ModernBERT-base`." in text and meta["model-index"][0]["name"] == "ModernBERT-base-rte"


def test_a_card_says_how_far_max_steps_trained_past_or_short_of_the_epochs():
    """A run whose max_steps went past its epochs said "1 epoch" (it had trained 2.5)."""
    def recipe(epochs_trained: float, steps: int, max_steps: int) -> str:
        cfg = RunConfig()
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1.0, max_steps=max_steps))
        metrics = {"model": "m", "eval_accuracy": 0.5, "eval_samples": 32, "epochs_trained": epochs_trained,
                   "steps": steps}
        text = model_card(get_task("sst2"), cfg, metrics, "train ...", 128)
        return text.split(", 1 epoch", 1)[1].split(",")[0]

    assert recipe(2.5, 10, 10) == " (max_steps 10 trained 2.50)"
    assert recipe(0.5, 2, 2) == " (max_steps 2 ended it after 0.50)"
    assert recipe(0.5, 2, -1) == " (early stopping ended it after 0.50)"
    assert recipe(1.0, 4, -1) == "" and recipe(1.00004, 4, -1) == ""  # epochs_trained is rounded
    assert recipe(1.5, 60, 100) == " (max_steps 100; early stopping ended it after 1.50)"
