"""The model card saved as README.md in every model folder, in the Hugging Face Hub's conventions: YAML metadata
(library, pipeline tag, base model, datasets, a model-index with the task's dev metrics and their intervals),
then what the model is, how it was trained (recipe and command), its results, how to load it, and its limits."""

from __future__ import annotations

from pathlib import Path

from .model_overrides import sizes_text
from .tasks import HUB_PATH, Task

METRIC_NAMES = {"accuracy": "Accuracy", "f1": "F1 (positive class)", "f1_macro": "Macro-F1",
                "mcc": "Matthews correlation", "pearson": "Pearson correlation", "spearman": "Spearman correlation"}


def _base_model(name: str) -> str | None:
    """The Hub id a model started from, an alias as its Hub id (a local folder names none)."""
    from .models import ALIASES

    return None if name.startswith((".", "/")) or Path(name).exists() else ALIASES.get(name, name)


OWN_DATA = {"name": "custom data", "type": "custom"}  # the model-index's dataset for the user's own files


def model_card(task: Task, cfg, metrics: dict, command: str, max_length: int) -> str:
    """README.md for the model folder of a run (`cfg`: its RunConfig; `metrics`: metrics.json's content;
    `max_length`: what inputs were really cut at, data.token_limit)."""
    import yaml

    glue = task.hub_config and task.name != "custom"
    name = metrics["model"]  # the base model, also with --init-from (training.lifecycle.base_model)
    dataset = f"GLUE {task.name.upper()}" if glue else "custom data"
    hub = bool(glue) and not cfg.data.validation_file  # an own validation file is no split of the Hub's dataset
    sets = _scored_sets(task, cfg, metrics, hub)
    rows, results = _results(task, metrics, sets, {"name": dataset, "type": HUB_PATH, "config": task.hub_config}
                             if hub else OWN_DATA)
    meta: dict = {"library_name": "transformers", "pipeline_tag": "text-classification",
                  "tags": ["modernbert-glue", task.name, "regression" if task.regression else "classification"]}
    base = _base_model(name)
    if base and not cfg.model.random_init:
        meta["base_model"] = base
    if glue:
        meta.update(datasets=[HUB_PATH], language=["en"])
    built = _built(cfg.model.random_init, metrics.get("model_sizes"))  # a 2-layer model is not the named one
    meta["model-index"] = [{"name": f"{Path(name).name}-{task.name}{built}", "results": results}]
    t = cfg.train
    texts = " and ".join(f"`{c}`" for c in task.text_columns)
    kind = (f"regression: one output, the predicted `{task.label_column}`" if task.regression
            else f"{task.num_labels} labels: {', '.join(task.label_names)}")
    if task.is_pair:
        use = ('clf({"text": "first sentence", "text_pair": "second sentence"}, truncation=True'
               + (', function_to_apply="none")' if task.regression else ")"))
    else:
        use = 'clf("a sentence to classify", truncation=True' + (', function_to_apply="none")' if task.regression else ")")
    dev = f"the validation file {Path(cfg.data.validation_file).name}" if cfg.data.validation_file else \
        "the dev (validation) split"
    test = ("the labelled test file is scored apart" if any(p == "test" for p, _, _ in sets) else
            "GLUE's test labels are hidden (the GLUE server scores test predictions)" if glue else "")
    caveats = [
        f"Results are on {dev}, the set the best checkpoint was chosen on: they are optimistic for unseen data"
        + (f"; {test}." if test else "."),
        f"Inputs are cut at {max_length} tokens" + (" (both texts together, the longer first)."
                                                    if task.is_pair else "."),
        f"One run, seed {t.seed}: fine-tuning results vary between seeds; compare systems over several "
        "(`train --seeds`, `compare`).",
        "English text in the style of the training data only; GLUE's sources carry their own biases.",
    ]
    if cfg.model.random_init:
        caveats.insert(0, "Trained from random weights (a speed or plumbing test): not a useful classifier.")
    if cut := [f"the first {scored} rows of {split}" for _, split, scored in sets if scored is not None]:
        caveats.insert(0, f"Scored on {' and '.join(cut)} only (--max-eval-samples): not the whole split, so not "
                          "comparable with results on all of it.")
    body = [
        f"# {Path(name).name} fine-tuned on {dataset}", "",
        f"A {'sentence-pair' if task.is_pair else 'sentence'} {'regressor' if task.regression else 'classifier'} "
        f"({kind}) fine-tuned with modernbert-glue from `{name}`"
        f"{built}"
        f"{f', starting from the fine-tuned model {cfg.model.init_from} (fresh classification layer)' if cfg.model.init_from else ''}.",
        "",
        "## Data", "",
        f"{dataset}: text column(s) {texts}, label `{task.label_column}`; "
        f"{metrics.get('train_samples')} training examples, {metrics.get('eval_samples')} dev examples.", "",
        "## Recipe", "",
        f"lr {t.lr:g}, batch {t.batch_size}, {t.epochs:g} epoch{'' if t.epochs == 1 else 's'}"
        f"{_cut_short(t, metrics)}, "
        f"weight decay {t.weight_decay:g} (torch AdamW; "
        f"{'every parameter' if t.decay_norms_and_biases else 'none on biases and norm weights'}), "
        f"betas ({t.adam_beta1:g}, {t.adam_beta2:g}), eps {t.adam_epsilon:g}, {t.lr_scheduler} schedule with "
        f"{t.warmup_ratio:g} warmup, max length {max_length}, seed {t.seed}, preset `{cfg.preset}`; the "
        f"best of the dev evaluations by {task.main_metric} was kept. The full resolved config is the run "
        "folder's run.json.", "",
        "```", command, "```", "",
        "## Results", "",
        "| split | metric | value | 95% bootstrap interval |", "| --- | --- | --- | --- |", *rows,
        *(["", "–: too few examples for a value (a correlation needs 3, an interval 2)."]
          if _has_missing(task, metrics, sets) else []), "",
        "## How to use", "",
        "```python", "from transformers import pipeline", "",
        'clf = pipeline("text-classification", model="PATH/TO/model")', use, "```", "",
        "## Limitations", "", *(f"- {c}" for c in caveats), "",
    ]
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n" + "\n".join(body)


def _scored_sets(task: Task, cfg, metrics: dict, hub: bool) -> list[tuple[str, str, int | None]]:
    """(metrics.json prefix, split, rows scored where --max-eval-samples cut it else None) of each labelled set
    the run scored: the validation split (an own --validation-file by its name), a task's others (MNLI: matched
    and mismatched), each named as the Hub's dataset names it (validation_matched, validation_mismatched) when
    `hub`, and a labelled --test-file by its name."""
    from .evaluation.runfolder import SET_PREFIX

    hub_name = (lambda split: task.hub_splits.get(split, split)) if hub else (lambda split: split)
    own = cfg.data.validation_file  # the user's file: named as such, not as a split of any dataset
    sets = [("eval", Path(own).name if own else hub_name("validation"))]
    sets += [(SET_PREFIX[name], hub_name(split)) for name, split in task.extra_eval.items()]
    if cfg.data.test_file:  # a labelled --test-file is scored too (never used to choose anything)
        sets.append((SET_PREFIX["test"], Path(cfg.data.test_file).name))
    out = []
    for prefix, split in sets:
        if not any(f"{prefix}_{metric}" in metrics for metric in task.metrics):
            continue  # not scored (an own --validation-file has no mismatched set)
        n, limit = metrics.get(f"{prefix}_samples"), None if prefix == "test" else cfg.data.max_eval_samples
        out.append((prefix, split, n if limit is not None and n is not None and n >= limit else None))
    return out


def _results(task: Task, metrics: dict, sets: list, dataset: dict) -> tuple[list[str], list[dict]]:
    """The results table's rows and the model-index's results: one result per scored set, its `split` as the
    Hub's datasets library slices it ("validation_matched[:80]") where --max-eval-samples cut it."""
    rows, results = [], []
    for prefix, split, scored in sets:
        table, entries = _set_metrics(task, metrics, prefix, split, scored)
        rows += table
        results.append({"task": {"type": "text-classification", "name": "Text Classification"},
                        "dataset": {**(OWN_DATA if prefix == "test" else dataset),  # a --test-file: the user's
                                    "split": split if scored is None else f"{split}[:{scored}]"},
                        "metrics": entries})
    return rows, results


def _has_missing(task: Task, metrics: dict, sets: list) -> bool:
    """Whether a scored metric or its interval is null (metrics.with_too_few_as_none)."""
    return any(metrics.get(f"{prefix}_{m}{end}") is None for prefix, _, _ in sets for m in task.metrics
               if f"{prefix}_{m}" in metrics for end in ("", "_ci"))


def _set_metrics(task: Task, metrics: dict, prefix: str, split: str, scored: int | None) -> tuple[list, list]:
    """One scored set's rows of the results table and its model-index metrics (a value too few examples gave
    none is "–" in the table and left out of the model-index, which takes numbers only)."""
    rows, entries = [], []
    shown_split = split if scored is None else f"{split}, first {scored} rows"
    for metric in task.metrics:
        if f"{prefix}_{metric}" not in metrics:
            continue
        value, ci = metrics[f"{prefix}_{metric}"], metrics.get(f"{prefix}_{metric}_ci")
        interval = f"{ci[0]:.4f}–{ci[1]:.4f}" if ci else "–"
        label = METRIC_NAMES.get(metric, metric)
        rows.append(f"| {shown_split} | {label} | {'–' if value is None else f'{value:.4f}'} | {interval} |")
        if value is not None:
            entries.append({"type": metric, "value": round(float(value), 4),
                            "name": f"{label} (95% bootstrap interval {interval}; {shown_split})"})
    return rows, entries


def _cut_short(t, metrics: dict) -> str:
    """Where a run's length was not its epochs: max_steps or early stopping ended it sooner, or a max_steps past
    the epochs trained longer (a run folder from before epochs_trained: nothing said)."""
    trained = metrics.get("epochs_trained")
    if trained is None or abs(trained - t.epochs) < 1e-3:  # epochs_trained is rounded to 4 places
        return ""
    by_steps = 0 < t.max_steps == metrics.get("steps")
    if by_steps:
        return f" (max_steps {t.max_steps} {'trained' if trained > t.epochs else 'ended it after'} {trained:.2f})"
    steps = f"max_steps {t.max_steps}; " if trained > t.epochs else ""  # set past the epochs, stopped early
    return f" ({steps}early stopping ended it after {trained:.2f})"


def _built(random_init: bool, sizes: dict | None) -> str:
    """' (random weights; num_hidden_layers=2)': how the model differs from the named one's pretrained weights."""
    parts = (["random weights"] if random_init else []) + ([sizes_text(sizes)] if sizes else [])
    return f" ({'; '.join(parts)})" if parts else ""
