"""The report's four matplotlib figures (accuracy with CIs, reliability, accuracy by length, speed and memory),
each returned as PNG bytes so the caller can both save it and inline it in report.html."""

from __future__ import annotations

import io
import math

import numpy as np

from .runs import SET_PREFIX, Run, set_title, task_metrics


def _plt():
    import matplotlib  # imported lazily: only compare draws, and matplotlib is slow to import

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _figure_png(fig) -> bytes:
    plt = _plt()

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def plot_accuracy(runs: list[Run], name: str) -> bytes:
    """The task's main metric per system, with its 95% interval."""
    plt = _plt()
    prefix, metric = SET_PREFIX[name], task_metrics(runs)[0]
    have = [r for r in runs if r.metrics.get(f"{prefix}_{metric}") is not None]  # null: too few examples
    acc = np.array([r.metrics[f"{prefix}_{metric}"] for r in have]) * 100
    # a run without an interval (null or absent) gets a zero-width one
    ci = np.array([r.metrics.get(f"{prefix}_{metric}_ci") or [a / 100, a / 100] for r, a in zip(have, acc)],
                  dtype=float).reshape(-1, 2) * 100  # (0, 2) where no run has a value
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(have) + 1.2))
    y = np.arange(len(have))
    ax.errorbar(acc, y, xerr=[acc - ci[:, 0], ci[:, 1] - acc], fmt="o", capsize=4)
    ax.set_yticks(y, [r.label for r in have])
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} (×100), 95% bootstrap CI")
    ax.set_title(set_title(runs, name))
    ax.grid(axis="x", alpha=0.3)
    return _figure_png(fig)


def plot_reliability(runs: list[Run], name: str) -> bytes:
    plt = _plt()

    fig, ax = plt.subplots(figsize=(5.5, 5))
    low = lowest_confidence(runs, name)
    ax.plot([low, 1], [low, 1], "k--", lw=1, label="perfect calibration")
    for r in runs:
        bins = [b for b in (r.analysis.get(name, {}).get("calibration") or {}).get("bins", []) if b["count"]]
        if bins:
            ece = r.analysis[name]["calibration"]["ece"]
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-",
                    label=f"{r.label} (ECE {ece:.3f})")
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability, {set_title(runs, name)}")
    ax.legend(fontsize=7)
    return _figure_png(fig)


def lowest_confidence(runs: list[Run], name: str) -> float:
    """The lowest top-class probability there is, 1 / classes (1/3 for MNLI and AX): where the reliability
    diagram's diagonal starts. The classes are counted from the confusion matrix (runs share their labels)."""
    matrices = [r.analysis[name]["confusion_matrix"] for r in runs if "confusion_matrix" in r.analysis.get(name, {})]
    return 1 / len(matrices[0]) if matrices else 0.5


def length_bars(runs: list[Run], name: str) -> dict:
    """What the length figure draws: {"value": accuracy or mae, "buckets": their names, "ticks": their labels,
    "bars": [(legend label, heights)]}. A bucket a run has no value for is NaN, drawn as a gap (0 would read as
    no accuracy, or for MAE as no error); the counts go under the buckets when every run has the same, else
    into each run's legend label (runs scored on different --max-eval-samples)."""
    have = [r for r in runs if name in r.analysis]
    key, value = ("mae_by_length", "mae") if "mae_by_length" in have[0].analysis[name] else ("accuracy_by_length",
                                                                                             "accuracy")
    scale = 1 if value == "mae" else 100
    rows = [{b["words"]: b for b in r.analysis[name].get(key, [])} for r in have]
    buckets = list(dict.fromkeys(words for row in rows for words in row))
    counts = [[row[b]["count"] if b in row else None for b in buckets] for row in rows]
    shared = all(c == counts[0] for c in counts)
    bars = []
    for r, row, count in zip(have, rows, counts):
        heights = [math.nan if row.get(b, {}).get(value) is None else row[b][value] * scale for b in buckets]
        shown = ", ".join("–" if n is None else str(n) for n in count)
        bars.append((r.label if shared else f"{r.label} (n {shown})", heights))
    ticks = [f"{b} words" + (f"\n(n={n})" if shared else "") for b, n in zip(buckets, counts[0])]
    return {"value": value, "buckets": buckets, "ticks": ticks, "bars": bars}


def plot_length(runs: list[Run], name: str) -> bytes:
    plt = _plt()

    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = length_bars(runs, name)
    value, x = drawn["value"], np.arange(len(drawn["buckets"]))
    width = 0.8 / max(1, len(drawn["bars"]))
    for i, (label, heights) in enumerate(drawn["bars"]):
        ax.bar(x + i * width, heights, width, label=label)
        for j in np.flatnonzero(np.isnan(heights)):  # a gap, told apart from a bar of height 0
            ax.text(x[j] + i * width, 0, "–", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x + width * (len(drawn["bars"]) - 1) / 2, drawn["ticks"])
    ax.set_ylabel("mean absolute error" if value == "mae" else "accuracy (%)")
    if value == "accuracy":
        ax.set_ylim(0, 100)
    ax.set_title(f"{'Error' if value == 'mae' else 'Accuracy'} by length (words, both texts of a pair; –: no "
                 f"examples), {set_title(runs, name)}")
    ax.legend(fontsize=7)
    return _figure_png(fig)


def plot_speed(runs: list[Run]) -> bytes:
    """Train time, inference throughput and peak memory per system, side by side."""
    plt = _plt()
    panels = [("train_seconds", "train time (s)"), ("infer_sentences_per_second", "inference (sentences/s)"),
              ("peak_memory_mb", "peak memory (MB)")]
    fig, axes = plt.subplots(1, 3, figsize=(12, 0.45 * len(runs) + 1.5), sharey=True)
    y = np.arange(len(runs))
    for ax, (key, title) in zip(axes, panels):
        ax.barh(y, [r.metrics.get(key) or 0 for r in runs])
        ax.set_title(title)
        ax.set_xscale("log")  # TF-IDF and transformers differ by orders of magnitude
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, [r.label for r in runs])
    axes[0].invert_yaxis()
    fig.suptitle(f"Speed and memory ({devices(runs)})", fontsize=9)
    return _figure_png(fig)


def devices(runs: list[Run]) -> str:
    """The device the runs ran on, or where they differ each one: speeds of different devices are not a race."""
    names = list(dict.fromkeys(str(r.metrics.get("device") or "?") for r in runs))
    return names[0] if len(names) == 1 else f"devices differ: {', '.join(names)}"


def has_calibration(runs: list[Run], name: str) -> bool:
    """Whether any run has a calibration analysis of set `name` (the reliability figure's curves)."""
    return any(r.analysis.get(name, {}).get("calibration") is not None for r in runs)


def all_figures(runs: list[Run], sets: list[str]) -> dict[str, bytes]:
    """Every figure the report shows, by the file name report.md links it under."""
    figures: dict[str, bytes] = {}
    for name in sets:
        figures[f"accuracy_{name}.png"] = plot_accuracy(runs, name)
        if has_calibration(runs, name):
            figures[f"reliability_{name}.png"] = plot_reliability(runs, name)
        figures[f"length_{name}.png"] = plot_length(runs, name)
    figures["speed.png"] = plot_speed(runs)
    return figures
