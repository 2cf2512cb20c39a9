"""The report's four matplotlib figures (accuracy with CIs, reliability, accuracy by length, speed and memory),
each returned as PNG bytes so the caller can both save it and inline it in report.html."""

from __future__ import annotations

import io

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
    have = [r for r in runs if f"{prefix}_{metric}" in r.metrics]
    acc = np.array([r.metrics[f"{prefix}_{metric}"] for r in have]) * 100
    # a run without an interval (null or absent) gets a zero-width one
    ci = np.array([r.metrics.get(f"{prefix}_{metric}_ci") or [a / 100, a / 100] for r, a in zip(have, acc)]) * 100
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
    ax.plot([0.5, 1], [0.5, 1], "k--", lw=1, label="perfect calibration")
    for r in runs:
        bins = [b for b in r.analysis.get(name, {}).get("calibration", {}).get("bins", []) if b["count"]]
        if bins:
            ece = r.analysis[name]["calibration"]["ece"]
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-",
                    label=f"{r.label} (ECE {ece:.3f})")
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability, {set_title(runs, name)}")
    ax.legend(fontsize=7)
    return _figure_png(fig)


def plot_length(runs: list[Run], name: str) -> bytes:
    plt = _plt()

    fig, ax = plt.subplots(figsize=(7, 4))
    have = [r for r in runs if name in r.analysis]
    key, value = ("mae_by_length", "mae") if "mae_by_length" in have[0].analysis[name] else ("accuracy_by_length",
                                                                                             "accuracy")
    scale = 1 if value == "mae" else 100
    buckets = [b["words"] for b in have[0].analysis[name][key]]
    width = 0.8 / max(1, len(have))
    for i, r in enumerate(have):
        values = [(b.get(value) or 0) * scale for b in r.analysis[name].get(key, [])]
        ax.bar(np.arange(len(buckets)) + i * width, values, width, label=r.label)
    counts = [b["count"] for b in have[0].analysis[name][key]]
    ax.set_xticks(np.arange(len(buckets)) + width * (len(have) - 1) / 2,
                  [f"{b} words\n(n={n})" for b, n in zip(buckets, counts)])
    ax.set_ylabel("mean absolute error" if value == "mae" else "accuracy (%)")
    if value == "accuracy":
        ax.set_ylim(0, 100)
    ax.set_title(f"{'Error' if value == 'mae' else 'Accuracy'} by length (words, both texts of a pair), "
                 f"{set_title(runs, name)}")
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
    fig.suptitle(f"Speed and memory ({runs[0].metrics.get('device', '?')})", fontsize=9)
    return _figure_png(fig)


def has_calibration(runs: list[Run], name: str) -> bool:
    """Whether any run has a calibration analysis of set `name` (the reliability figure's curves)."""
    return any("calibration" in r.analysis.get(name, {}) for r in runs)


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
