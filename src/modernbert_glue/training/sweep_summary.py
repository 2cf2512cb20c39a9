"""A sweep's results: each config's name, each run's main dev value, the per-config mean, median and spread over
seeds, the chosen config (the paper's rule: best mean, ties to the earlier config) and sweep.md's table."""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import UserError
from ..evaluation.runfolder import is_number, read_json, wrong_field
from ..outputs import failure


def config_name(config: dict[str, float]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in config.items())


def dev_value(path: Path) -> tuple[str, float, object]:
    """A finished run's (main metric, its dev value, dev examples scored), from metrics.json: a damaged file is one
    line naming it."""
    try:
        metrics = read_json(path / "metrics.json")
        metric = metrics.get("main_metric", "accuracy")
        value = metrics.get(f"eval_{metric}")
        if not (is_number(value) or value is None and f"eval_{metric}" in metrics):
            raise wrong_field(path / "metrics.json", f"eval_{metric}", value, "a number")
    except UserError as exc:
        raise UserError(f"{exc}; move {path} away and the same command runs it again") from None
    return metric, math.nan if value is None else float(value), metrics.get("eval_samples")  # null: too few rows


def summarise(jobs: list) -> dict:
    """Per config: each seed's main dev metric (None for a failed run), mean, median, std (None with a failed
    seed); the chosen config (best mean among the configs whose every seed finished)."""
    import numpy as np

    rows: dict[str, dict] = {}
    metric, scored = None, set()
    for config, seed, path in jobs:
        row = rows.setdefault(config_name(config), {"config": config, "values": {}})
        if (reason := failure(path)) is not None:
            row["values"][str(seed)] = None
            row.setdefault("failed", {})[str(seed)] = reason
            continue
        metric, row["values"][str(seed)], samples = dev_value(path)
        scored.add(samples if isinstance(samples, int) else None)  # a damaged count is not known, not a crash
    for row in rows.values():
        finished = None not in row["values"].values()
        values = np.array(list(row["values"].values()), dtype=float)
        row.update(mean=float(values.mean()) if finished else None,
                   median=float(np.median(values)) if finished else None,
                   std=float(values.std(ddof=1)) if finished and len(values) > 1 else None)  # one seed: none
    candidates = [name for name, row in rows.items() if row["mean"] is not None and math.isfinite(row["mean"])]
    # The first of equals: means compared to 12 places, since equal means of different seeds' values can differ
    # in their last bit (600/872 and 610/872 against 605/872 twice), which would pick the later config.
    chosen = max(candidates, key=lambda name: round(rows[name]["mean"], 12)) if candidates else None
    # Configs the rule could not tell from the chosen one (every run at chance, say): the table names them.
    tied = [name for name in candidates if chosen and name != chosen
            and round(rows[name]["mean"], 12) == round(rows[chosen]["mean"], 12)]
    return {"metric": metric, "rule": "best mean over seeds of the main dev metric, every seed finished",
            "eval_samples": sorted(scored, key=str), "configs": rows,
            "chosen": {"name": chosen, **rows[chosen]} if chosen else None, "tied_with_chosen": tied}


def table(summary: dict) -> str:
    seeds = list(next(iter(summary["configs"].values()))["values"])
    lines = [f"| config | {' | '.join(f'seed {s}' for s in seeds)} | mean | median | std (n − 1) |",
             "| --- |" + " --- |" * (len(seeds) + 3)]
    for name, row in summary["configs"].items():
        mark = " **(chosen)**" if name == (summary["chosen"] or {}).get("name") else ""
        cells = [row["values"][s] for s in seeds] + [row["mean"], row["median"]]
        std = "failed" if row["mean"] is None else "–" if row["std"] is None else f"{row['std']:.4f}"
        lines.append(f"| {name}{mark} | " + " | ".join("failed" if c is None else f"{c:.4f}" for c in cells)
                     + f" | {std} |")
    decoupled = (" wd is the paper's decoupled weight decay: each run trained with torch's wd / lr "
                 "(`train_weight_decay` in sweep.json)." if summary.get("decoupled_weight_decay") else "")
    sizes = " or ".join(str(n) if isinstance(n, int) else "?" for n in summary.get("eval_samples") or [])
    scored = sizes and f" (on {sizes} dev examples)"
    tied = summary.get("tied_with_chosen") or []
    tie = (f" {', '.join(tied)} {'ties' if len(tied) == 1 else 'tie'} with the chosen config: it is chosen as the "
           "first in grid order, not as better." if tied else "")
    return (f"Main dev metric: {summary['metric']}{scored}; chosen by {summary['rule']}.{decoupled}{tie}\n\n"
            + "\n".join(lines) + "\n")
