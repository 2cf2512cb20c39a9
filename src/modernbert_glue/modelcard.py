"""The model card saved as README.md in every model folder, in the Hugging Face Hub's conventions: YAML metadata
(library, pipeline tag, base model, datasets, a model-index with the task's dev metrics and their intervals),
then what the model is, how it was trained (recipe and command), its results, how to load it, and its limits."""

from __future__ import annotations

from pathlib import Path

from .tasks import HUB_PATH, Task

METRIC_NAMES = {"accuracy": "Accuracy", "f1": "F1 (positive class)", "f1_macro": "Macro-F1",
                "mcc": "Matthews correlation", "pearson": "Pearson correlation", "spearman": "Spearman correlation"}


def _base_model(name: str) -> str | None:
    """The Hub id a model started from, an alias as its Hub id (a local folder names none)."""
    from .models import ALIASES

    return None if name.startswith((".", "/")) or Path(name).exists() else ALIASES.get(name, name)


def model_card(task: Task, cfg, metrics: dict, command: str, max_length: int) -> str:
    """README.md for the model folder of a run (`cfg`: its RunConfig; `metrics`: metrics.json's content;
    `max_length`: what inputs were really cut at, data.token_limit)."""
    import yaml

    glue = task.hub_config and task.name != "custom"
    name = metrics["model"]  # the base model, also with --init-from (training.lifecycle.base_model)
    dataset = f"GLUE {task.name.upper()}" if glue else "custom data"
    rows, entries = [], []
    for metric in task.metrics:
        value, ci = metrics.get(f"eval_{metric}"), metrics.get(f"eval_{metric}_ci")
        if value is None:
            continue
        interval = f"{ci[0]:.4f}–{ci[1]:.4f}" if ci else "–"
        rows.append(f"| {METRIC_NAMES.get(metric, metric)} | {value:.4f} | {interval} |")
        entries.append({"type": metric, "value": round(float(value), 4),
                        "name": f"{METRIC_NAMES.get(metric, metric)} (95% bootstrap interval {interval})"})
    meta: dict = {"library_name": "transformers", "pipeline_tag": "text-classification",
                  "tags": ["modernbert-glue", task.name, "regression" if task.regression else "classification"]}
    base = _base_model(name)
    if base and not cfg.model.random_init:
        meta["base_model"] = base
    if glue:
        meta.update(datasets=[HUB_PATH], language=["en"])
    result = {"task": {"type": "text-classification", "name": "Text Classification"},
              "dataset": {"name": dataset, "type": HUB_PATH if glue else "custom",
                          **({"config": task.hub_config} if glue else {}), "split": "validation"},
              "metrics": entries}
    meta["model-index"] = [{"name": f"{Path(name).name}-{task.name}", "results": [result]}]
    t = cfg.train
    texts = " and ".join(f"`{c}`" for c in task.text_columns)
    kind = (f"regression: one output, the predicted `{task.label_column}`" if task.regression
            else f"{task.num_labels} labels: {', '.join(task.label_names)}")
    if task.is_pair:
        use = ('clf({"text": "first sentence", "text_pair": "second sentence"}, truncation=True'
               + (', function_to_apply="none")' if task.regression else ")"))
    else:
        use = 'clf("a sentence to classify", truncation=True' + (', function_to_apply="none")' if task.regression else ")")
    caveats = [
        "Results are on the dev (validation) split, the split the best checkpoint was chosen on: they are "
        "optimistic for unseen data. GLUE's test labels are hidden (the GLUE server scores test predictions).",
        f"Inputs are cut at {max_length} tokens" + (" (both texts together, the longer first)."
                                                    if task.is_pair else "."),
        f"One run, seed {t.seed}: fine-tuning results vary between seeds; compare systems over several "
        "(`train --seeds`, `compare`).",
        "English text in the style of the training data only; GLUE's sources carry their own biases.",
    ]
    if cfg.model.random_init:
        caveats.insert(0, "Trained from random weights (a speed or plumbing test): not a useful classifier.")
    body = [
        f"# {Path(name).name} fine-tuned on {dataset}", "",
        f"A {'sentence-pair' if task.is_pair else 'sentence'} {'regressor' if task.regression else 'classifier'} "
        f"({kind}) fine-tuned with modernbert-glue from `{name}`"
        f"{' (random weights)' if cfg.model.random_init else ''}"
        f"{f', starting from the fine-tuned model {cfg.model.init_from} (fresh classification layer)' if cfg.model.init_from else ''}.",
        "",
        "## Data", "",
        f"{dataset}: text column(s) {texts}, label `{task.label_column}`; "
        f"{metrics.get('train_samples')} training examples, {metrics.get('eval_samples')} dev examples.", "",
        "## Recipe", "",
        f"lr {t.lr:g}, batch {t.batch_size}, {t.epochs:g} epoch{'' if t.epochs == 1 else 's'}"
        f"{_cut_short(t, metrics)}, "
        f"weight decay {t.weight_decay:g} (torch AdamW), "
        f"betas ({t.adam_beta1:g}, {t.adam_beta2:g}), eps {t.adam_epsilon:g}, {t.lr_scheduler} schedule with "
        f"{t.warmup_ratio:g} warmup, max length {max_length}, seed {t.seed}, preset `{cfg.preset}`; the "
        f"best of the dev evaluations by {task.main_metric} was kept. The full resolved config is the run "
        "folder's run.json.", "",
        "```", command, "```", "",
        "## Results (dev)", "",
        "| metric | value | 95% bootstrap interval |", "| --- | --- | --- |", *rows, "",
        "## How to use", "",
        "```python", "from transformers import pipeline", "",
        'clf = pipeline("text-classification", model="PATH/TO/model")', use, "```", "",
        "## Limitations", "", *(f"- {c}" for c in caveats), "",
    ]
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n" + "\n".join(body)


def _cut_short(t, metrics: dict) -> str:
    """What stopped a run before its epochs: max_steps or early stopping (a run folder before epochs_trained: none)."""
    trained = metrics.get("epochs_trained")
    if trained is None or trained >= t.epochs - 1e-6:
        return ""
    why = f"max_steps {t.max_steps}" if 0 < t.max_steps == metrics.get("steps") else "early stopping"
    return f" ({why} ended it after {trained:.2f})"
