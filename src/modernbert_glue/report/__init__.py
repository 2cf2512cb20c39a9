"""`compare`: read run folders, test systems against each other, write report.md and a self-contained report.html.

Every number in the report comes from the run folders (metrics.json, predictions_*.tsv, analysis_*.json,
model/config.json, tokenizer.json, seeds.json); paired tests are computed here on the examples two runs share.

The modules: runs (loading and checking run folders), stats (paired tests, architecture facts), figures
(matplotlib PNGs) and render (report.md, and report.html from templates/report.html.j2).
"""

from __future__ import annotations

import logging

from ..errors import UserError
from ..locks import releases_on_error
from ..outputs import check_output, open_output
from ..ownership import check_outside
from .figures import (
    all_figures,
    plot_accuracy,
    plot_length,
    plot_reliability,
    plot_speed,
)
from .render import accuracy_rows, html, markdown, report_blocks, speed_rows
from .runs import SETS, Run, check_comparable, distinct_labels, load_runs, pairs
from .stats import architecture, pairwise_tests, safetensors_parameters

__all__ = [
    "SETS", "Run", "accuracy_rows", "architecture", "check_comparable", "compare", "load_runs", "pairs",
    "pairwise_tests", "plot_accuracy", "plot_length", "plot_reliability", "plot_speed", "safetensors_parameters",
    "speed_rows",
]


@releases_on_error
def compare(folders: list[str], output_dir: str, *, overwrite: bool = False, task: str | None = None) -> dict:
    """Write report.md, report.html, report.json and the figures into output_dir; returns report.json's content.
    With `task`, only the runs of that task are compared (the others are named in one log line)."""
    check_output(output_dir, "report", overwrite=overwrite)
    check_outside(output_dir, folders, "report")
    runs, seed_summaries = load_runs(folders)
    if task:
        runs, seed_summaries = only_task(runs, seed_summaries, task)
    distinct_labels(runs, seed_summaries)  # among the runs compared, after --task left the others out
    if not task and len({r.task for r in runs}) > 1:
        return glue_table_report(runs, output_dir, overwrite=overwrite)
    check_comparable(runs)
    sets = [name for name in SETS if any(name in r.predictions for r in runs)]
    tests = {name: pairwise_tests(runs, name) for name in sets}
    arch = [a for a in (architecture(r) for r in runs) if a]
    figures = all_figures(runs, sets)
    blocks = report_blocks(runs, seed_summaries, sets, tests, arch)
    result = {
        "runs": [{"label": r.label, "folder": str(r.folder), "metrics": r.metrics} for r in runs],
        "seeds": seed_summaries, "pairwise": tests, "architecture": arch,
    }
    out = open_output(output_dir, "report", overwrite=overwrite)
    for fname, data in figures.items():
        out.write_bytes(fname, data)
    out.write_text("report.md", markdown(blocks))
    out.write_text("report.html", html(blocks, figures))
    out.write_json("report.json", strict_json(result))
    out.finish()
    return result


def only_task(runs: list[Run], seed_summaries: list[dict], task: str) -> tuple[list[Run], list[dict]]:
    from ..tasks import get_task

    get_task(task)  # an unknown name is refused here, with the list of tasks
    kept = [r for r in runs if r.task == task]
    skipped = [str(r.folder) for r in runs if r.task != task]
    if not kept:
        raise UserError(f"--task {task}: none of the runs is on {task}")
    if skipped:
        logging.getLogger(__name__).info("--task %s: leaving out %s", task, ", ".join(skipped))
    return kept, [s for s in seed_summaries if s.get("task") == task]


def glue_table_report(runs: list[Run], output_dir: str, *, overwrite: bool) -> dict:
    """Runs of several tasks: the GLUE table (glue_table.py) as report.md, report.html and report.json."""
    from .glue_table import glue_blocks

    blocks, table = glue_blocks(runs)
    result = {"runs": [{"label": r.label, "folder": str(r.folder), "metrics": r.metrics} for r in runs],
              "glue": table}
    out = open_output(output_dir, "report", overwrite=overwrite)
    out.write_text("report.md", markdown(blocks))
    out.write_text("report.html", html(blocks, {}))
    out.write_json("report.json", strict_json(result))
    out.finish()
    return result


def strict_json(obj):
    """`obj` with NaN and infinities as null: report.json is read by other tools, and strict JSON (JavaScript's
    JSON.parse) has no NaN; a hand-edited metrics.json may hold one."""
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: strict_json(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(value) for value in obj]
    return obj
