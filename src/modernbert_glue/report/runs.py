"""Loading run folders for a report: runs and seed folders, system names, the comparability check and pairing.

A run's numbers are never recomputed here; they are read from the files train and baseline wrote.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..evaluation.runfolder import (
    is_finite_number,
    is_number,
    read_json,
    read_predictions,
    read_seeds_summary,
    read_sweep_choice,
    wrong_field,
)
from ..model_overrides import size_overrides, sizes_text
from ..outputs import check_finished
from ..ownership import read_marker, with_article
from ..tasks import CUSTOM, TASKS, get_task

SETS = {"dev": "dev (GLUE validation)", "dev_mismatched": "dev mismatched (MNLI)",
        "test": "test (the labelled --test-file)"}


@dataclass
class Run:
    folder: Path
    metrics: dict
    run: dict
    label: str
    predictions: dict[str, list] = field(default_factory=dict)  # set -> rows
    analysis: dict[str, dict] = field(default_factory=dict)
    seeds_folder: Path | None = None  # the --seeds folder this run is one seed of

    @property
    def source(self) -> Path:
        """What the user named: its seeds folder, else the run folder."""
        return self.seeds_folder or self.folder

    @property
    def random_init(self) -> bool:
        return bool(self.metrics.get("random_init"))

    @property
    def task(self) -> str:
        return self.metrics.get("task", "sst2")  # runs before `task` was recorded were SST-2's


def load_runs(folders: list[str]) -> tuple[list[Run], list[dict]]:
    """Runs (a seeds folder expands to its seed-N runs) and the seed summaries found."""
    runs, seed_summaries = [], []
    for name in folders:
        folder = Path(name)
        if not folder.is_dir():
            raise UserError(f"{folder}: run folder not found")
        check_finished(folder)
        if (kind := (read_marker(folder) or {}).get("kind", "run")) not in ("run", "seeds", "sweep"):
            raise UserError(f"{folder}: {with_article(kind)} folder, not a run")
        if kind == "sweep" or (folder / "seeds.json").is_file():
            seed_runs, summary, group = _chosen_config(folder) if kind == "sweep" else _seeds_set(folder)
            for r in seed_runs:
                r.seeds_folder = group
            summary = {**summary, "label": system_name(seed_runs[0].metrics), "folder": str(group)}
            seed_summaries.append(summary)
            runs.extend(seed_runs)
        else:
            runs.append(_load_run(folder))
    folders_seen = [r.folder.resolve() for r in runs]  # after expanding --seeds folders into their runs
    for r in runs:  # a run against itself would report a perfect tie
        if folders_seen.count(r.folder.resolve()) > 1:
            raise UserError(f"{r.folder}: given twice (a --seeds folder holds its seed-N runs); compare different "
                            "runs")
    return runs, seed_summaries


def _seeds_set(folder: Path) -> tuple[list[Run], dict, Path]:
    """A --seeds folder's runs, its seeds.json and the folder itself (the set's name)."""
    summary = read_seeds_summary(folder)
    return [_load_run(folder / f"seed-{s}") for s in summary["seeds"]], summary, folder


def _chosen_config(folder: Path) -> tuple[list[Run], dict, Path]:
    """A sweep's chosen config as a seed set: its runs, their summary (as seeds.json's) and its name, the sweep
    folder / the config (`lr=8e-05,wd=1e-05,ep=2`, the tables' label). It was chosen on the dev set it is
    scored on, as the paper chose its own: an optimistic estimate, as every dev score of a chosen checkpoint."""
    from ..training.runs import summarise_seeds

    name, values = read_sweep_choice(folder)
    seed_runs = [_load_run(folder / f"{name}-seed-{s}") for s in values]
    return seed_runs, {**summarise_seeds([r.metrics for r in seed_runs], list(values)), "sweep_choice": True}, \
        folder / name


def distinct_labels(runs: list[Run], seed_summaries: list[dict]) -> None:
    """Labels key the tables, the pairwise tests and the legends: equal ones get the name of the folder the user
    gave (for a seed, its --seeds folder: every seed folder is called seed-N), then its path where names tie too."""
    for r, label in zip(runs, _distinct([r.label for r in runs], [r.source for r in runs])):
        r.label = label
    folders = [Path(s["folder"]) for s in seed_summaries]
    for s, label in zip(seed_summaries, _distinct([s["label"] for s in seed_summaries], folders)):
        s["label"] = label


def _distinct(labels: list[str], folders: list[Path]) -> list[str]:
    named = [f"{label} [{folder.name}]" if labels.count(label) > 1 else label
             for label, folder in zip(labels, folders)]
    return [f"{label} [{folder}]" if named.count(name) > 1 else name
            for label, name, folder in zip(labels, named, folders)]


def system_name(metrics: dict, *, any_task: bool = False) -> str:
    """'modernbert-base fine-tuned', 'TF-IDF + LR', ...: what a reader calls the system, from its metrics.json. A
    baseline fits a logistic regression to classes and a ridge to scores (training/baselines.py), and its trivial
    floor is train's majority class or mean; `any_task` names the system of several tasks (a GLUE table row)."""
    from ..evaluation.metrics import REGRESSION

    model = str(metrics.get("model", "?"))
    short = model.rstrip("/").split("/")[-1]
    preset = str(metrics.get("preset", ""))
    if preset.startswith("baseline:"):
        regression = metrics.get("main_metric") in REGRESSION
        head = "LR or ridge" if any_task else "ridge" if regression else "LR"
        floor = "majority class or mean" if any_task else "train mean" if regression else "majority class"
        return {"tfidf": f"TF-IDF + {head}", "majority": f"trivial ({floor})"}.get(
            preset[9:], f"{short} frozen + {head}")
    kind = "random weights" if metrics.get("random_init") else "fine-tuned"
    # from another task's model (--init-from): said per task; over tasks it is one system (the paper's round 2)
    start = ", warm start" if metrics.get("init_from") and not any_task else ""
    return f"{short}{sizes_named(metrics.get('model_sizes'))} {kind}{start}"


def sizes_named(sizes: dict | None) -> str:
    """' (L2, H64)' for a model built with other sizes than its name's, else ''."""
    return f" ({sizes_text(sizes, short=True)})" if sizes else ""


def _field(record, *keys: str) -> dict:
    """record[k1][k2]... where each is an object, else {}."""
    for key in keys:
        record = record.get(key) if isinstance(record, dict) else None
    return record if isinstance(record, dict) else {}


def _load_run(folder: Path) -> Run:
    check_finished(folder)
    metrics = read_json(folder / "metrics.json")
    if "main_metric" not in metrics:  # written before GLUE's names: its `f1` is macro-F1
        metrics = {key.replace("_f1", "_f1_macro", 1) if "_f1" in key else key: value for key, value in metrics.items()}
    check_metrics(folder / "metrics.json", metrics)
    run = read_json(folder / "run.json")
    if "model_sizes" not in metrics and (sizes := size_overrides(_field(run, "config", "model", "overrides"))):
        metrics["model_sizes"] = sizes  # a run from before they were recorded: its own (not an --init-from's)
    label = system_name(metrics)
    if not str(metrics.get("preset", "")).startswith("baseline:") and metrics.get("seed") is not None:
        label += f" (seed {metrics['seed']})"
    r = Run(folder=folder, metrics=metrics, run=run, label=label)
    for name in SETS:
        path = folder / f"predictions_{name}.tsv"
        if path.is_file():
            r.predictions[name] = read_predictions(path)
            r.analysis[name] = read_json(folder / f"analysis_{name}.json")
            check_analysis(folder / f"analysis_{name}.json", r.analysis[name])
    if "dev" not in r.predictions:
        raise UserError(f"{folder}: no predictions_dev.tsv (is it a run folder written by train or baseline?)")
    return r


SET_PREFIX = {"dev": "eval", "dev_mismatched": "eval_mismatched", "test": "test"}  # metrics.json key prefixes
# metrics.json's other numbers the report reads (the speed table and figure); null where a run has none
SPEED_KEYS = ("train_samples", "train_seconds", "train_samples_per_second", "infer_sentences_per_second",
              "peak_memory_mb")


def check_metrics(path: Path, metrics: dict) -> None:
    """One line naming the file and field when a value the report reads has the wrong type: the report's
    arithmetic, formatting and plots would otherwise stop in numpy or matplotlib, and a task that is not a name
    would pass for a second task (and switch compare to the GLUE table)."""
    from ..evaluation.metrics import CLASSIFICATION, REGRESSION, metric_range

    def wrong(key: str, expected: str) -> UserError:
        return wrong_field(path, key, metrics[key], expected)

    task = metrics.get("task", "sst2")  # runs before `task` was recorded were SST-2's
    if not isinstance(task, str) or task not in TASKS:  # a number, or a task no run is trained on
        raise wrong("task", f"a task name ({', '.join(TASKS)})")
    if metrics.get("model_sizes") is not None and not isinstance(metrics["model_sizes"], dict):
        raise wrong("model_sizes", "an object of the model's size overrides {field: value}")
    main = metrics.get("main_metric", "accuracy")
    if main not in (*CLASSIFICATION, *REGRESSION):
        raise wrong("main_metric", f"a metric name ({', '.join((*CLASSIFICATION, *REGRESSION))})")
    if f"eval_{main}" not in metrics:
        raise UserError(f"{path}: no 'eval_{main}' (the dev {main}, the main metric the report compares)")
    # A metric is null where too few examples give it a value (metrics.with_too_few_as_none); NaN is refused: the
    # tables and seed means would print `nan` (a sweep's reader, not this one, ranks a NaN run last)
    numbers = [f"{p}_{m}" for p in SET_PREFIX.values() for m in (*CLASSIFICATION, *REGRESSION)]
    for key in (*numbers, *(f"{p}_ece" for p in SET_PREFIX.values())):
        if metrics.get(key) is not None and not is_finite_number(metrics[key]):
            raise wrong(key, "a finite number or null")
        low, high = metric_range(key)  # (an accuracy of 7.5 printed as 750.0 in the GLUE table)
        if metrics.get(key) is not None and not low - 1e-9 <= metrics[key] <= high + 1e-9:  # (rounding)
            raise wrong(key, f"a number from {low:g} to {high:g}")
    for key in (*(f"{p}_samples" for p in SET_PREFIX.values()), *SPEED_KEYS):
        if metrics.get(key) is not None and not is_number(metrics[key]):
            raise wrong(key, "a number or null")
    for key in (f"{k}_ci" for k in numbers):
        value = metrics.get(key)
        if value is not None and not (isinstance(value, list) and len(value) == 2
                                      and all(map(is_finite_number, value)) and value[0] <= value[1]):
            raise wrong(key, "an interval [low, high] of two finite numbers, or null")


def check_analysis(path: Path, analysis: dict) -> None:
    """One line naming the file and field when analysis_<set>.json lacks what the figures read (its length
    buckets, calibration bins, confusion matrix): a damaged or hand-edited file stopped compare in a KeyError."""
    key = "mae_by_length" if "mae_by_length" in analysis else "accuracy_by_length"
    value = key.removesuffix("_by_length")
    buckets = analysis.get(key)
    if not isinstance(buckets, list) or not all(_is_bucket(b, "words", value) for b in buckets):
        raise wrong_field(path, key, buckets, f"a list of length buckets {{words, count, {value}}}")
    calibration = analysis.get("calibration")
    if calibration is not None and not (isinstance(calibration, dict) and is_finite_number(calibration.get("ece"))
                                        and isinstance(bins := calibration.get("bins"), list)
                                        and all(_is_bucket(b, "accuracy", "confidence") for b in bins)):
        raise wrong_field(path, "calibration", calibration, "{ece, bins: [{count, accuracy, confidence}]}")
    matrix = analysis.get("confusion_matrix")
    if matrix is not None and not (isinstance(matrix, list) and matrix and all(
            isinstance(row, list) and len(row) == len(matrix) and all(map(_is_count, row)) for row in matrix)):
        raise wrong_field(path, "confusion_matrix", matrix, "a square list of lists of counts")


def _is_count(value) -> bool:
    return is_number(value) and isinstance(value, int) and value >= 0


def _is_bucket(bucket, *keys: str) -> bool:
    """An object with a count, and for each of `keys` a finite number, or null where it counts nothing (an empty
    bucket has no accuracy); "words" is the bucket's name (text)."""
    if not isinstance(bucket, dict) or not _is_count(bucket.get("count")):
        return False
    for key in keys:
        value = bucket.get(key)
        ok = isinstance(value, str) if key == "words" else (is_finite_number(value) or value is None)
        if not ok or (value is None and bucket["count"] > 0):
            return False
    return True


def task_metrics(runs: list[Run]) -> list[str]:
    """The metrics the runs report, the task's main one first (metrics.json's main_metric; accuracy before it
    existed)."""
    from ..evaluation.metrics import CLASSIFICATION, REGRESSION

    first = runs[0].metrics
    main = first.get("main_metric", "accuracy")
    return [main, *(m for m in (*CLASSIFICATION, *REGRESSION) if m != main and f"eval_{m}" in first)]


def set_title(runs: list[Run], name: str) -> str:
    """'SST-2 dev (GLUE validation)' (as GLUE prints its names, as the GLUE table); a dev set of the user's own
    --validation-file is named by its file, as the model card names it."""
    files = {own_validation_file(r) for r in runs} if name == "dev" else {None}
    dev = ", ".join(sorted({Path(f).name if f else "GLUE validation" for f in files}))
    return f"{get_task(runs[0].task).title} {SETS[name] if files == {None} else f'dev ({dev})'}".strip()


def own_validation_file(run: Run) -> str | None:
    """The --validation-file a run was scored on (run.json's config), or None for its task's dev set."""
    own = _field(run.run, "config", "data").get("validation_file")
    return str(own) if own else None


def pairs(runs: list[Run], name: str) -> Iterator[tuple[Run, Run]]:
    """Every pair of runs that were both evaluated on set `name`, in the order the runs were given."""
    return itertools.combinations([r for r in runs if name in r.predictions], 2)


def check_comparable(runs: list[Run]) -> None:
    """Same task and label set; on every set, the rows two runs share must be the same sentences and labels."""
    tasks = {r.task for r in runs}
    if len(tasks) > 1:
        raise UserError(f"runs are on different tasks ({', '.join(map(str, tasks))}): cannot compare")
    label_sets = {tuple(_label_names(r)) for r in runs}
    if len(label_sets) > 1:
        raise UserError(f"runs use different label sets ({' vs '.join(map(str, label_sets))}): cannot compare")
    for name in SETS:
        for a, b in pairs(runs, name):
            rows_a = {row[0]: row for row in a.predictions[name]}
            for row in b.predictions[name]:
                other = rows_a.get(row[0])
                if other is not None and (other[1], other[2]) != (row[1], row[2]):
                    raise UserError(
                        f"{a.folder} and {b.folder} were evaluated on different {name} data "
                        f"(row {row[0]}: {_difference(other, row)}): compare runs on the same split"
                    )


def _difference(a: tuple, b: tuple) -> str:
    """What differs between two runs' prediction rows of one index: a text, from where it first differs (two
    sentences that begin alike would otherwise look the same), or the label of one text."""
    texts_a = (a[1],) if isinstance(a[1], str) else a[1]
    texts_b = (b[1],) if isinstance(b[1], str) else b[1]
    for column, x, y in zip(("sentence", "sentence2"), texts_a, texts_b):
        if x != y:
            start = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
            return f"{column} {_excerpt(x, start)!r} vs {_excerpt(y, start)!r}"
    return f"the same text {_excerpt(texts_a[0], 0)!r} with label {a[2]} vs {b[2]}"


def _excerpt(text: str, start: int, width: int = 40) -> str:
    """Up to `width` characters of `text` around position `start`, '...' where it is cut."""
    begin = max(0, min(start - 10, len(text) - width))
    return "..." * (begin > 0) + text[begin:begin + width] + "..." * (begin + width < len(text))


def _label_names(run: Run) -> list[str]:
    config = run.folder / "model" / "config.json"
    if config.is_file():
        id2label = read_json(config).get("id2label", {})
        if not isinstance(id2label, dict) or not all(str(k).isdigit() for k in id2label):
            raise wrong_field(config, "id2label", id2label, "an object of label names by class id {\"0\": name}")
        return [str(id2label[k]) for k in sorted(id2label, key=int)]
    baseline = run.folder / "model" / "baseline.json"
    if baseline.is_file():
        saved = read_json(baseline)
        if saved.get("regression"):
            return ["score"]
        if "label_names" in saved:
            return list(saved["label_names"])
        return list(get_task(saved.get("task", "sst2")).label_names)  # written before label names were saved: SST-2's
    from ..evaluation.metrics import REGRESSION

    # No model (run folders kept without their weights, as benchmarks/results/ keeps them): a GLUE task's names
    # are the task's, as train saves them; a custom task's came from its training file and are saved only there.
    task = run.task
    if task in TASKS and task != CUSTOM:
        return list(TASKS[task].id2label.values())
    if run.metrics.get("main_metric") in REGRESSION:
        return ["score"]
    missing = "not found" if not (run.folder / "model").is_dir() else "has no config.json or baseline.json"
    raise UserError(f"{run.folder / 'model'}: {missing}; it holds the label names of a {task} run, which compare "
                    "checks are the same in every run")
