"""`compare`: read run folders, test systems against each other, write report.md and a self-contained report.html.

Every number in the report comes from the run folders (metrics.json, predictions_*.tsv, analysis_*.json,
model/config.json, tokenizer.json, seeds.json); paired tests are computed here on the examples two runs share.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UserError
from .metrics import mcnemar, paired_bootstrap
from .runfolder import check_output_dir, read_json, read_predictions, write_json

SETS = {"dev": "SST-2 dev (GLUE validation)", "test": "SST-2 test (test_labeled.tsv)"}


@dataclass
class Run:
    folder: Path
    metrics: dict
    run: dict
    label: str
    predictions: dict[str, list] = field(default_factory=dict)  # set -> rows
    analysis: dict[str, dict] = field(default_factory=dict)

    @property
    def random_init(self) -> bool:
        return bool(self.metrics.get("random_init"))


def load_runs(folders: list[str]) -> tuple[list[Run], list[dict]]:
    """Runs (a seeds folder expands to its seed-N runs) and the seed summaries found."""
    runs, seed_summaries = [], []
    for name in folders:
        folder = Path(name)
        if not folder.is_dir():
            raise UserError(f"{folder}: run folder not found")
        if (folder / "seeds.json").is_file():
            summary = read_json(folder / "seeds.json")
            seed_runs = [_load_run(folder / f"seed-{s}") for s in summary["seeds"]]
            summary = {**summary, "label": _system_name(seed_runs[0].metrics), "folder": str(folder)}
            seed_summaries.append(summary)
            runs.extend(seed_runs)
        else:
            runs.append(_load_run(folder))
    labels = [r.label for r in runs]
    for r in runs:  # disambiguate equal labels by folder name
        if labels.count(r.label) > 1:
            r.label = f"{r.label} [{r.folder.name}]"
    return runs, seed_summaries


def _system_name(metrics: dict) -> str:
    model = str(metrics.get("model", "?"))
    short = model.rstrip("/").split("/")[-1]
    preset = str(metrics.get("preset", ""))
    if preset.startswith("baseline:"):
        return {"tfidf": "TF-IDF + LR"}.get(preset[9:], f"{short} frozen + LR")
    kind = "random weights" if metrics.get("random_init") else "fine-tuned"
    return f"{short} {kind}"


def _load_run(folder: Path) -> Run:
    metrics = read_json(folder / "metrics.json")
    run = read_json(folder / "run.json")
    label = _system_name(metrics)
    if not str(metrics.get("preset", "")).startswith("baseline:") and metrics.get("seed") is not None:
        label += f" (seed {metrics['seed']})"
    r = Run(folder=folder, metrics=metrics, run=run, label=label)
    for name in SETS:
        path = folder / f"predictions_{name}.tsv"
        if path.is_file():
            r.predictions[name] = read_predictions(path)
            r.analysis[name] = read_json(folder / f"analysis_{name}.json")
    if "dev" not in r.predictions:
        raise UserError(f"{folder}: no predictions_dev.tsv (is it a run folder written by train or baseline?)")
    return r


def check_comparable(runs: list[Run]) -> None:
    """Same task and label set; on every set, the rows two runs share must be the same sentences and labels."""
    tasks = {r.metrics.get("task") for r in runs}
    if len(tasks) > 1:
        raise UserError(f"runs are on different tasks ({', '.join(map(str, tasks))}): cannot compare")
    label_sets = {tuple(_label_names(r)) for r in runs}
    if len(label_sets) > 1:
        raise UserError(f"runs use different label sets ({' vs '.join(map(str, label_sets))}): cannot compare")
    for name in SETS:
        have = [r for r in runs if name in r.predictions]
        for a, b in itertools.combinations(have, 2):
            rows_a = {row[0]: row for row in a.predictions[name]}
            for row in b.predictions[name]:
                other = rows_a.get(row[0])
                if other is not None and (other[1], other[2]) != (row[1], row[2]):
                    raise UserError(
                        f"{a.folder} and {b.folder} were evaluated on different {name} data "
                        f"(row {row[0]}: {other[1][:40]!r} vs {row[1][:40]!r}): compare runs on the same split"
                    )


def _label_names(run: Run) -> list[str]:
    config = run.folder / "model" / "config.json"
    if config.is_file():
        id2label = json.loads(config.read_text()).get("id2label", {})
        return [id2label[k] for k in sorted(id2label, key=int)]
    baseline = run.folder / "model" / "baseline.json"
    if baseline.is_file():
        from .tasks import get_task

        return list(get_task(json.loads(baseline.read_text()).get("task", "sst2")).label_names)
    return []


def pairwise_tests(runs: list[Run], name: str) -> list[dict]:
    """McNemar and paired bootstrap for every pair of runs evaluated on `name`, on the rows both have."""
    out = []
    have = [r for r in runs if name in r.predictions]
    for a, b in itertools.combinations(have, 2):
        pa = {row[0]: row[2] == row[3] for row in a.predictions[name]}
        pb = {row[0]: row[2] == row[3] for row in b.predictions[name]}
        shared = sorted(pa.keys() & pb.keys())
        if not shared:
            continue
        ca, cb = np.array([pa[i] for i in shared]), np.array([pb[i] for i in shared])
        out.append({"a": a.label, "b": b.label, "n": len(shared), "accuracy_a": float(ca.mean()),
                    "accuracy_b": float(cb.mean()), "mcnemar": mcnemar(ca, cb), "paired_bootstrap": paired_bootstrap(ca, cb)})
    return out


def architecture(run: Run) -> dict | None:
    """Architecture facts read from the run's saved config and tokenizer (None for non-transformer baselines)."""
    folder = run.folder / "model"
    if not (folder / "config.json").is_file():
        return None
    c = json.loads((folder / "config.json").read_text())
    tok = folder / "tokenizer.json"
    tokenizer = json.loads(tok.read_text())["model"]["type"] if tok.is_file() else "?"
    vocab = c.get("vocab_size")
    n_layers = c.get("num_hidden_layers")
    if "layer_types" in c or "global_attn_every_n_layers" in c:  # ModernBERT-style alternating attention
        attention = _attention_pattern(c)
        rope = c.get("rope_parameters") or {}
        full = rope.get("full_attention", {}).get("rope_theta", c.get("global_rope_theta"))
        local = rope.get("sliding_attention", {}).get("rope_theta", c.get("local_rope_theta"))
        position = f"RoPE (θ {full:g} global, {local:g} local)" if full and local else "RoPE"
        pooling = f"{c.get('classifier_pooling', 'cls')} pooling + dense head"
    else:
        attention = "global (full) in every layer"
        kind = c.get("position_embedding_type", "absolute")
        position = "learned absolute" if kind == "absolute" else kind
        pooling = "CLS + pooler (dense, tanh)" if c.get("model_type") in ("bert", "roberta") else "?"
    return {
        "system": run.label,
        "weights": "random weights" if run.random_init else "pretrained, fine-tuned",
        "model_type": c.get("model_type"),
        "parameters": safetensors_parameters(folder / "model.safetensors"),
        "layers": n_layers,
        "hidden_size": c.get("hidden_size"),
        "attention_heads": c.get("num_attention_heads"),
        "vocab_size": vocab,
        "tokenizer": tokenizer,
        "max_positions": c.get("max_position_embeddings"),
        "position_embedding": position,
        "attention": attention,
        "pooling": pooling,
    }


def _attention_pattern(c: dict) -> str:
    """'global every 3rd layer, sliding window 128 otherwise', from layer_types (transformers 5) or the older field."""
    types = c.get("layer_types")
    if types:
        full = [i for i, t in enumerate(types) if t == "full_attention"]
        steps = {b - a for a, b in zip(full, full[1:])}
        if len(types) == 1 or full == list(range(len(types))):
            return "global (full) in every layer"
        if full and full[0] == 0 and len(steps) <= 1:
            every = steps.pop() if steps else len(types)
            head = f"global every {every}{_ordinal(every)} layer"
        else:
            head = f"global in layers {', '.join(str(i + 1) for i in full)}"
    else:
        every = c["global_attn_every_n_layers"]
        head = f"global every {every}{_ordinal(every)} layer"
    return f"{head}, sliding window {c.get('local_attention')} otherwise"


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def safetensors_parameters(path: Path) -> int | None:
    """Parameter count from a safetensors header (no weights loaded)."""
    if not path.is_file():
        return None
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    return int(sum(int(np.prod(t["shape"])) for k, t in header.items() if k != "__metadata__"))


# ---------- figures ----------

def _plt():
    import matplotlib

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
    plt = _plt()
    prefix = "eval" if name == "dev" else "test"
    have = [r for r in runs if f"{prefix}_accuracy" in r.metrics]
    acc = np.array([r.metrics[f"{prefix}_accuracy"] for r in have]) * 100
    ci = np.array([r.metrics.get(f"{prefix}_accuracy_ci", [a / 100, a / 100]) for r, a in zip(have, acc)]) * 100
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(have) + 1.2))
    y = np.arange(len(have))
    ax.errorbar(acc, y, xerr=[acc - ci[:, 0], ci[:, 1] - acc], fmt="o", capsize=4)
    ax.set_yticks(y, [r.label for r in have])
    ax.invert_yaxis()
    ax.set_xlabel("accuracy (%), 95% bootstrap CI")
    ax.set_title(SETS[name])
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
    ax.set_title(f"Reliability, {SETS[name]}")
    ax.legend(fontsize=7)
    return _figure_png(fig)


def plot_length(runs: list[Run], name: str) -> bytes:
    plt = _plt()

    fig, ax = plt.subplots(figsize=(7, 4))
    have = [r for r in runs if name in r.analysis]
    buckets = [b["words"] for b in have[0].analysis[name]["accuracy_by_length"]]
    width = 0.8 / max(1, len(have))
    for i, r in enumerate(have):
        values = [(b["accuracy"] or 0) * 100 for b in r.analysis[name]["accuracy_by_length"]]
        ax.bar(np.arange(len(buckets)) + i * width, values, width, label=r.label)
    counts = [b["count"] for b in have[0].analysis[name]["accuracy_by_length"]]
    ax.set_xticks(np.arange(len(buckets)) + width * (len(have) - 1) / 2,
                  [f"{b} words\n(n={n})" for b, n in zip(buckets, counts)])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(40, 100)
    ax.set_title(f"Accuracy by sentence length, {SETS[name]}")
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


# ---------- tables ----------

def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def _ci(x) -> str:
    return "–" if not x else f"[{100 * x[0]:.2f}, {100 * x[1]:.2f}]"


def _table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def accuracy_rows(runs: list[Run], name: str) -> list[list]:
    p = "eval" if name == "dev" else "test"
    return [
        [r.label, r.metrics.get(f"{p}_samples"), _pct(r.metrics.get(f"{p}_accuracy")), _ci(r.metrics.get(f"{p}_accuracy_ci")),
         _pct(r.metrics.get(f"{p}_f1")), _ci(r.metrics.get(f"{p}_f1_ci")), f"{r.metrics.get(f'{p}_mcc', 0):.4f}",
         f"{r.metrics.get(f'{p}_ece', 0):.4f}"]
        for r in runs if f"{p}_accuracy" in r.metrics
    ]


def speed_rows(runs: list[Run]) -> list[list]:
    return [
        [r.label, r.metrics.get("train_samples"), r.metrics.get("train_seconds"), r.metrics.get("train_samples_per_second"),
         r.metrics.get("infer_sentences_per_second"), r.metrics.get("peak_memory_mb"), r.metrics.get("device")]
        for r in runs
    ]


def compare(folders: list[str], output_dir: str, *, overwrite: bool = False) -> dict:
    """Write report.md, report.html, report.json and the figures into output_dir; returns report.json's content."""
    runs, seed_summaries = load_runs(folders)
    check_comparable(runs)
    out = Path(output_dir)
    check_output_dir(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    sets = [name for name in SETS if any(name in r.predictions for r in runs)]
    tests = {name: pairwise_tests(runs, name) for name in sets}
    arch = [a for a in (architecture(r) for r in runs) if a]
    figures: dict[str, bytes] = {}
    for name in sets:
        figures[f"accuracy_{name}.png"] = plot_accuracy(runs, name)
        figures[f"reliability_{name}.png"] = plot_reliability(runs, name)
        figures[f"length_{name}.png"] = plot_length(runs, name)
    figures["speed.png"] = plot_speed(runs)
    for fname, data in figures.items():
        (out / fname).write_bytes(data)

    md = _markdown(runs, seed_summaries, sets, tests, arch)
    (out / "report.md").write_text(md, encoding="utf-8")
    (out / "report.html").write_text(_html(md, figures), encoding="utf-8")
    result = {
        "runs": [{"label": r.label, "folder": str(r.folder), "metrics": r.metrics} for r in runs],
        "seeds": seed_summaries, "pairwise": tests, "architecture": arch,
    }
    write_json(out / "report.json", result)
    return result


def _markdown(runs, seed_summaries, sets, tests, arch) -> str:
    parts = ["# ModernBERT-GLUE comparison report", "",
             "Generated by `modernbert-glue compare` from the run folders listed at the end. Accuracy, macro-F1 and "
             "MCC in %, with 95% bootstrap intervals (1,000 resamples); ECE: expected calibration error (10 bins).", ""]
    for name in sets:
        parts += [f"## {SETS[name]}", "", _table(
            ["system", "n", "accuracy", "95% CI", "macro-F1", "95% CI", "MCC", "ECE"], accuracy_rows(runs, name)), "",
            f"![accuracy]({'accuracy_' + name}.png)", ""]
        if tests[name]:
            parts += ["### Paired tests (on the examples both systems were evaluated on)", "", _table(
                ["A", "B", "n", "acc A", "acc B", "A − B (pts)", "95% CI", "bootstrap p", "McNemar p (exact)", "only A right", "only B right"],
                [[t["a"], t["b"], t["n"], _pct(t["accuracy_a"]), _pct(t["accuracy_b"]),
                  f"{100 * t['paired_bootstrap']['difference']:+.2f}", _ci(t["paired_bootstrap"]["ci"]),
                  f"{t['paired_bootstrap']['p']:.4f}", f"{t['mcnemar']['p_exact']:.4g}", t["mcnemar"]["only_a"],
                  t["mcnemar"]["only_b"]] for t in tests[name]]), ""]
        parts += [f"![reliability](reliability_{name}.png)", "", f"![length](length_{name}.png)", ""]
    if seed_summaries:
        parts += ["## Seeds", ""]
        for s in seed_summaries:
            parts += [f"**{s['label']}** ({s['folder']}), seeds {', '.join(map(str, s['seeds']))}: dev accuracy "
                      f"{100 * s['eval_accuracy_mean']:.2f} ± {100 * s['eval_accuracy_std']:.2f} (mean ± std), "
                      f"95% t-interval of the mean {_ci(s.get('eval_accuracy_mean_ci'))}"
                      + (f"; test accuracy {100 * s['test_accuracy_mean']:.2f} ± {100 * s['test_accuracy_std']:.2f}, "
                         f"95% t-interval {_ci(s.get('test_accuracy_mean_ci'))}" if "test_accuracy_mean" in s else ""), "",
                      _table(["seed", "dev accuracy", "dev macro-F1", "dev MCC", "test accuracy", "train s"],
                             [[p["seed"], _pct(p["eval_accuracy"]), _pct(p["eval_f1"]), f"{p['eval_mcc']:.4f}",
                               _pct(p.get("test_accuracy")), p["train_seconds"]] for p in s["per_seed"]]), ""]
    parts += ["## Speed and memory", "",
              "Train time covers the whole fit (for baselines: feature extraction + C search + refit); inference is "
              "sentences/s over the dev set after training; peak memory is the process's peak resident memory (CPU) "
              "or torch's peak allocation (GPU).", "",
              _table(["system", "train sentences", "train s", "train sentences/s", "inference sentences/s",
                      "peak memory MB", "device"], speed_rows(runs)), "", "![speed](speed.png)", ""]
    if arch:
        keys = ["system", "weights", "parameters", "layers", "hidden_size", "attention_heads", "vocab_size", "tokenizer",
                "max_positions", "position_embedding", "attention", "pooling"]
        parts += ["## Architecture (read from each run's saved config.json and tokenizer.json)", "",
                  _table(keys, [[f"{a[k]:,}" if isinstance(a[k], int) and k == "parameters" else a[k] for k in keys]
                                for a in arch]), ""]
    parts += ["## Runs", "", _table(["system", "folder", "command", "git commit", "date"],
                                    [[r.label, str(r.folder), f"`{r.run.get('command', '?')}`", r.run.get("git_commit"),
                                      r.run.get("date")] for r in runs]), ""]
    return "\n".join(parts)


def _html(md: str, figures: dict[str, bytes]) -> str:
    """A self-contained page: markdown tables rendered as HTML tables, figures inlined as data URIs."""
    body, table = [], []

    def flush():
        if table:
            rows = [r.strip().strip("|").split(" | ") for r in table if not set(r.replace("|", "").strip()) <= {"-", " "}]
            head = "".join(f"<th>{html.escape(c.strip())}</th>" for c in rows[0])
            cells = "".join("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r) + "</tr>" for r in rows[1:])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("!["):
            name = line[line.index("(") + 1 : line.rindex(")")]
            data = base64.b64encode(figures[name]).decode()
            body.append(f'<p><img alt="{html.escape(name)}" src="data:image/png;base64,{data}"></p>')
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line[level:].strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush()
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
             "th{background:#f3f3f3}img{max-width:100%}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ModernBERT-GLUE comparison</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")
