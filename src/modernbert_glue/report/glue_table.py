"""The GLUE table `compare` writes for runs of several tasks: one row per system, one column per task (its GLUE
score, SCORE; over seeds the mean with a t-interval, one run its bootstrap interval) and the average over the eight
tasks the paper averages (GLUE without WNLI), as the ModernBERT paper's Table 1 reports them."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import UserError
from .render import Block, _heading, _paragraph, _table
from .runs import Run, own_validation_file, system_name

ORDER = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")
AVERAGED = tuple(t for t in ORDER if t != "wnli")
# A task's score is the mean of the metrics the reference GLUE code evaluates it with (its glue_jobs' metric names,
# every one averaged into the task's number): MRPC and QQP accuracy and F1, STS-B Spearman, MNLI matched and
# mismatched accuracy. Elsewhere, and for runs that lack one of these, the task's main metric.
SCORE = {"mrpc": ("accuracy", "f1"), "qqp": ("accuracy", "f1"), "stsb": ("spearman",),
         "mnli": ("accuracy", "mismatched_accuracy")}
DEV_ROWS = {"cola": 1043, "sst2": 872, "mrpc": 408, "stsb": 1500, "qqp": 40430, "mnli": 9815, "qnli": 5463,
            "rte": 277, "wnli": 71}  # GLUE's dev sets (MNLI: matched): a run scored on fewer is marked


def glue_rows(runs: list[Run]) -> dict[str, dict[str, dict]]:
    """{system: {task: {"metric", "value", "ci", "runs"}}} from each run's main dev metric (value and ci None
    where a run's metric is null)."""
    for r in runs:  # a run on the user's own data has no place among GLUE's columns
        if r.task not in ORDER:
            raise UserError(f"{r.folder}: its task '{r.task}' is not a GLUE task, and runs of several "
                            "tasks make the GLUE table; compare it with runs of its own task")
        if own := own_validation_file(r):
            raise UserError(f"{r.folder}: scored on its own --validation-file {Path(own).name}, not on GLUE's dev "
                            "set, which the GLUE table reports; compare it with runs of its own task")

    name_of = _row_name(runs)
    recipes: dict[str, set[str]] = defaultdict(set)
    for r in runs:
        recipes[name_of(r)].add(recipe(r.metrics))

    def system_of(r: Run) -> str:  # one model from two recipes is two systems, each named after its recipe
        name, mine = name_of(r), recipe(r.metrics)
        if len(recipes[name]) == 1:
            return name
        short = Path(mine).name  # a preset file's name, its path where two files share one
        return f"{name} ({short if [Path(o).name for o in recipes[name]].count(short) == 1 else mine})"

    grouped: dict[str, dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        grouped[system_of(r)][r.task].append(r)
    for system, tasks in grouped.items():  # a cell averages the seeds of one --seeds folder, nothing else
        for task, task_runs in tasks.items():
            sources = list(dict.fromkeys(r.source for r in task_runs))
            if len(sources) > 1:
                raise UserError(f"{sources[0]} and {sources[1]} are both '{system}' on {task}: give one run or one "
                                "--seeds folder per system and task (only one folder's seeds are averaged)")
    table: dict[str, dict[str, dict]] = {}
    for system, tasks in grouped.items():
        table[system] = {}
        for task, task_runs in tasks.items():
            parts = score_metrics(task, task_runs)
            values = np.array([_run_score(r, parts) for r in task_runs], dtype=float)
            known = bool(np.isfinite(values).all())  # NaN: a run too few dev examples gave no correlation
            counts = [r.metrics.get("eval_samples") for r in task_runs]
            scored = None if None in counts else min(int(n) for n in counts)  # None: not recorded
            table[system][task] = {"metric": "/".join(parts), "value": float(values.mean()) if known else None,
                                   "ci": _interval(task_runs, parts, values) if known else None,
                                   "runs": len(values), "eval_samples": scored,
                                   "partial": task in DEV_ROWS and scored is not None and scored < DEV_ROWS[task],
                                   "main_metric_only": parts != SCORE.get(task, parts)}  # not the reference's score
    return table


def _row_name(runs: list[Run]):
    """A run's system as a row names it: its own name (TF-IDF + LR), or, where a baseline's runs here fit classes
    on some tasks and scores on others, its name over tasks (TF-IDF + LR or ridge): one row, not two."""
    names: dict[str, set[str]] = defaultdict(set)
    for r in runs:
        names[system_name(r.metrics, any_task=True)].add(system_name(r.metrics))

    def name_of(r: Run) -> str:
        wide = system_name(r.metrics, any_task=True)
        return next(iter(names[wide])) if len(names[wide]) == 1 else wide

    return name_of


def _interval(runs: list[Run], parts: tuple[str, ...], values: np.ndarray) -> list[float] | None:
    """Over seeds the t-interval of the mean, clipped to the metrics' range; one run's bootstrap interval where
    its cell is one metric (none for a mean of two)."""
    from ..training.runs import mean_interval

    if len(values) > 1:
        return mean_interval(values, metric="/".join(parts))
    return runs[0].metrics.get(f"eval_{parts[0]}_ci") if len(parts) == 1 else None


def _run_score(run: Run, parts: tuple[str, ...]) -> float:
    """One run's score: the mean of `parts`, NaN where one is null (too few examples gave it no value)."""
    values = [run.metrics[f"eval_{m}"] for m in parts]
    return float("nan") if None in values else float(np.mean(values))


def score_metrics(task: str, runs: list[Run]) -> tuple[str, ...]:
    """The metrics a task's cell averages (SCORE), when every run has them; else the main metric."""
    wanted = SCORE.get(task, ())
    if wanted and all(f"eval_{m}" in r.metrics for r in runs for m in wanted):
        return wanted
    return (str(runs[0].metrics.get("main_metric", "accuracy")),)


def recipe(metrics: dict) -> str:
    """The preset a run started from, less its task: paper-rte and paper-sst2 are one recipe, `paper`; a preset
    file is its path without .toml."""
    preset, task = str(metrics.get("preset", "")), f"-{metrics.get('task')}"
    if preset.endswith(".toml"):
        return str(Path(preset).with_suffix("").with_name(Path(preset).stem.removesuffix(task)))
    return preset.removesuffix(task)


def average(row: dict[str, dict]) -> float | None:
    """The mean over GLUE's eight tasks without WNLI; None unless all eight are there, each the reference's score
    on its whole dev set."""
    if not all(t in row and row[t]["value"] is not None and not row[t].get("partial")
               and not row[t].get("main_metric_only") for t in AVERAGED):
        return None
    return float(np.mean([row[t]["value"] for t in AVERAGED]))


def glue_blocks(runs: list[Run]) -> tuple[list[Block], dict]:
    table = glue_rows(runs)
    tasks = [t for t in ORDER if any(t in row for row in table.values())]
    tasks += sorted({t for row in table.values() for t in row} - set(tasks))

    def cell(entry: dict | None) -> str:
        if entry is None or entry["value"] is None:
            return "–"
        ci = entry["ci"]
        interval = f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else ""
        marks = ("*" if entry.get("partial") else "") + ("†" if entry.get("main_metric_only") else "")
        return f"{100 * entry['value']:.1f}{marks}{interval}"

    metrics = {t: next(row[t]["metric"] for row in table.values() if t in row) for t in tasks}
    rows = []
    for system, row in table.items():
        avg = average(row)
        rows.append([system, *(cell(row.get(t)) for t in tasks), "–" if avg is None else f"{100 * avg:.1f}"])
    blocks = [
        _heading(1, "GLUE (dev)"),
        _paragraph("Generated by `modernbert-glue compare` from the run folders of several tasks: each task's GLUE "
                   "score ×100 as the ModernBERT reference GLUE code computes it, the mean of the metrics it evaluates "
                   "the task with (" + ", ".join(f"{_title(t)} {m.replace('/', ' and ')}" for t, m in metrics.items())
                   + ("; the GLUE leaderboard's STS-B is the mean of Pearson and Spearman" if "stsb" in metrics else "")
                   + "); over several seeds the mean with the 95% t-interval of the mean (cut at the metric's "
                   "range), for one run its 95% "
                   "bootstrap interval (none for a mean of two metrics). Average: the mean over CoLA, SST-2, MRPC, "
                   "STS-B, QQP, MNLI, QNLI and RTE (GLUE without WNLI, as the ModernBERT paper averages), shown "
                   "when all eight are present, each scored on its whole dev set. A fine-tuned run's dev score is "
                   "its best dev evaluation's (the checkpoint it kept)." + partial_note(table)
                   + " `compare --task T` gives one task's full report."),
        _table(["system", *map(_title, tasks), "average (8 tasks)"], rows),
    ]
    return blocks, {"systems": {s: {**row, "average": average(row)} for s, row in table.items()}, "tasks": tasks}


def partial_note(table: dict[str, dict[str, dict]]) -> str:
    marked = sorted({f"{_title(t)} ({e['eval_samples']} of {DEV_ROWS[t]})" for row in table.values()
                     for t, e in row.items() if e.get("partial")})
    main_only = sorted({f"{_title(t)} ({e['metric']})" for row in table.values() for t, e in row.items()
                        if e.get("main_metric_only")})
    return ((f" * scored on part of the dev set (rows scored of GLUE's): {', '.join(marked)}." if marked else "")
            + (f" † the main metric alone, the runs lacking a metric the reference averages: {', '.join(main_only)}."
               if main_only else ""))


def _title(task: str) -> str:
    from ..tasks import get_task

    try:
        return get_task(task).title
    except UserError:  # a name the registry does not know (a custom task's own name)
        return task
