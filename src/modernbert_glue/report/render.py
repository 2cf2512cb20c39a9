"""Rendering the report: one list of blocks (headings, paragraphs, tables, figures) written out twice, as
report.md and, through the Jinja2 template templates/report.html.j2, as a self-contained report.html.

Both files come from the same blocks, so the HTML never has to parse the markdown back.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field

from ..evaluation.metrics import BOOTSTRAP_RESAMPLES, REGRESSION, clip_interval
from .figures import has_calibration
from .runs import SET_PREFIX, Run, set_title, task_metrics

TITLE = "ModernBERT-GLUE comparison report"


@dataclass
class Block:
    """One piece of the report: kind is heading, paragraph, table or figure (figure: text is the alt, name the PNG)."""

    kind: str
    text: str = ""
    level: int = 0
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    name: str = ""


def _heading(level: int, text: str) -> Block:
    return Block("heading", text, level=level)


def _paragraph(text: str) -> Block:
    return Block("paragraph", text)


def _table(headers: list[str], rows: list[list]) -> Block:
    """A missing value (null in the JSON: no weights file to count, no inference rate) is "–", never "None"."""
    return Block("table", headers=headers, rows=[["–" if c is None else str(c) for c in row] for row in rows])


def _figure(alt: str, name: str) -> Block:
    return Block("figure", alt, name=name)


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def _ci(x) -> str:
    return "–" if not x else f"[{100 * x[0]:.2f}, {100 * x[1]:.2f}]"


def _difference(x: float) -> str:
    """A paired difference in points; NaN where one side has no value (a correlation of too few examples)."""
    return f"{100 * x:+.2f}" if math.isfinite(x) else "–"


NAMES = {"accuracy": "accuracy", "f1": "F1", "f1_macro": "macro-F1", "mcc": "MCC", "pearson": "Pearson",
         "spearman": "Spearman"}


def metric_rows(runs: list[Run], name: str) -> tuple[list[str], list[list]]:
    """(headers, rows): each run's metrics on set `name`, the task's main metric first, each with its interval;
    ECE for classifiers."""
    p = SET_PREFIX[name]
    metrics = task_metrics(runs)
    regression = metrics[0] in REGRESSION
    headers = ["system", "n"] + [h for m in metrics for h in (NAMES.get(m, m), "95% CI")] + ([] if regression else ["ECE"])
    rows = []
    for r in runs:
        if f"{p}_{metrics[0]}" not in r.metrics:
            continue
        row = [r.label, r.metrics.get(f"{p}_samples")]
        for m in metrics:
            row += [_pct(r.metrics.get(f"{p}_{m}")), _ci(r.metrics.get(f"{p}_{m}_ci"))]
        if not regression:
            ece = r.metrics.get(f"{p}_ece")
            row.append("–" if ece is None else f"{ece:.4f}")  # not 0: that would read as perfectly calibrated
        rows.append(row)
    return headers, rows


def accuracy_rows(runs: list[Run], name: str) -> list[list]:
    return metric_rows(runs, name)[1]


def speed_rows(runs: list[Run]) -> list[list]:
    """A row per run; a resumed run's rate is its last launch's (from the step it resumed at), marked so, and so
    is its train time where its checkpoint recorded no time before it (an older version's: train_seconds_before
    null); else the time is its whole training's."""
    return [
        [r.label, r.metrics.get("train_samples"), *_launch(r, "train_seconds"), *_launch(r, "train_samples_per_second"),
         r.metrics.get("infer_sentences_per_second"), r.metrics.get("peak_memory_mb"), r.metrics.get("device")]
        for r in runs
    ]


def _launch(run: Run, key: str) -> list:
    value, step = run.metrics.get(key), run.metrics.get("resumed_from_step")
    whole = key == "train_seconds" and run.metrics.get("train_seconds_before") is not None  # over every launch
    return [value if not step or value is None or whole else f"{value} (from step {step})"]


def _pairwise_table(tests: list[dict]) -> Block:
    """The paired tests: the main metric's paired bootstrap; for classifiers McNemar on correctness too."""
    metric = NAMES.get(tests[0]["main_metric"]["metric"], tests[0]["main_metric"]["metric"])
    classifier = "mcnemar" in tests[0]
    headers = ["A", "B", "n", f"{metric} A − B (pts)", "95% CI", "bootstrap p", "Holm p"]
    if classifier:
        headers += ["acc A", "acc B", "McNemar p (exact)", "Holm p", "only A right", "only B right"]
    rows = []
    for t in tests:
        m = t["main_metric"]
        row = [t["a"], t["b"], t["n"], _difference(m["difference"]), _ci(m["ci"]), _bootstrap_p(m["p"]),
               _bootstrap_p(m["p_holm"], len(tests))]
        if classifier:
            row += [_pct(t["accuracy_a"]), _pct(t["accuracy_b"]), f"{t['mcnemar']['p_exact']:.4g}",
                    f"{t['mcnemar']['p_holm']:.4g}", t["mcnemar"]["only_a"], t["mcnemar"]["only_b"]]
        rows.append(row)
    return _table(headers, rows)


def _bootstrap_p(p: float, tests: int = 1) -> str:
    """A bootstrap p; 0 is below what the resamples resolve (2 / resamples, Holm's bound `tests` times that); NaN:
    no test made (no difference known)."""
    if not math.isfinite(p):
        return "–"
    return f"< {min(1.0, tests * 2 / BOOTSTRAP_RESAMPLES):g}" if p == 0 else f"{p:.4f}"


def _spread(s: dict, key: str) -> str:
    """mean ± std; one seed has no std (null), not 0; a mean a seed had no value for (NaN, null) is "–"."""
    mean, std = s.get(f"{key}_mean"), s.get(f"{key}_std")
    shown = lambda x: "–" if x is None or not math.isfinite(x) else f"{100 * x:.2f}"
    return f"{shown(mean)} ± {shown(std)}"


def _seed_interval(s: dict, key: str, metric: str) -> str:
    """A seeds.json interval, cut at the metric's range where it reaches past it (written before mean_interval
    clipped: two seeds' accuracies gave [1.2, 107.1]), and saying so."""
    raw = s.get(f"{key}_mean_ci")
    shown = clip_interval(raw, metric)
    return _ci(shown) + (" (cut at the metric's range)" if shown != raw else "")


def _seed_blocks(s: dict, runs: list[Run] | tuple = ()) -> list[Block]:
    m = s.get("main_metric", "accuracy")
    name = NAMES.get(m, m)
    chosen = ", its sweep's chosen config (chosen on this dev set)" if s.get("sweep_choice") else ""
    text = (f"**{s['label']}** ({s['folder']}{chosen}), seeds {', '.join(map(str, s['seeds']))}: dev {name} "
            f"{_spread(s, f'eval_{m}')} (mean ± sample std, n − 1), 95% t-interval of the mean "
            f"{_seed_interval(s, f'eval_{m}', m)}")
    if f"test_{m}_mean" in s:
        text += f"; test {name} {_spread(s, f'test_{m}')}, 95% t-interval {_seed_interval(s, f'test_{m}', m)}"
    shown = [k for k in ("accuracy", "f1", "f1_macro", "mcc", "pearson", "spearman") if f"eval_{k}" in s["per_seed"][0]]
    return [_paragraph(text), _table(
        ["seed", *(f"dev {NAMES[k]}" for k in shown), "train s"],
        [[p["seed"], *(_pct(p[f"eval_{k}"]) for k in shown), _seed_seconds(p, s, runs)] for p in s["per_seed"]])]


def _seed_seconds(entry: dict, summary: dict, runs: list[Run]) -> object:
    """A seed's train time, marked as its last launch's where that seed's run was resumed from a checkpoint that
    recorded no time before it (as speed_rows marks it)."""
    run = next((r for r in runs if str(r.seeds_folder) == summary["folder"] and r.metrics.get("seed") == entry["seed"]),
               None)
    return _launch(run, "train_seconds")[0] if run is not None else entry.get("train_seconds", "")


def report_blocks(runs: list[Run], seed_summaries: list[dict], sets: list[str], tests: dict[str, list[dict]],
                  arch: list[dict]) -> list[Block]:
    """The whole report, in reading order."""
    regression = task_metrics(runs)[0] in REGRESSION
    blocks = [_heading(1, TITLE), _paragraph(
        "Generated by `modernbert-glue compare` from the run folders listed at the end. Metrics in % (×100), with "
        "95% bootstrap intervals (1,000 resamples); the task's main metric first. F1 is the positive class's "
        "(GLUE's), macro-F1 the mean over classes" + ("." if regression else
                                                       "; ECE: expected calibration error (10 bins).")
        + " A fine-tuned run's dev scores are those of its best dev evaluation (the checkpoint it kept), so they "
          "lean optimistic, most on small dev sets; a labelled test set is scored once. –: no value (a "
          "correlation of fewer than 3 examples, an interval of fewer than 2).")]
    for name in sets:
        headers, rows = metric_rows(runs, name)
        blocks += [_heading(2, set_title(runs, name)), _table(headers, rows)]
        if len(sizes := sorted({row[1] for row in rows if row[1] is not None})) > 1:
            blocks.append(_paragraph(
                f"**Not one set of examples:** these runs were scored on different numbers of them (n "
                f"{', '.join(f'{n:,}' for n in sizes)}, from --max-eval-samples), so their rows compare different "
                "examples; the paired tests below use only the examples both runs of a pair were scored on."))
        blocks.append(_figure("main metric", f"accuracy_{name}.png"))
        if tests[name]:
            count = len(tests[name])
            blocks += [_heading(3, "Paired tests (on the examples both systems were evaluated on)"),
                       _paragraph(f"{count} pair{'s' * (count > 1)} tested; each Holm p is its column's p adjusted "
                                  "for all of them (Holm's step-down): compare it, not the raw p, with 0.05 when "
                                  f"several pairs are tested. A bootstrap p of 0 means no resample of the "
                                  f"{BOOTSTRAP_RESAMPLES:,} changed the sign: shown as < {2 / BOOTSTRAP_RESAMPLES:g}."),
                       _pairwise_table(tests[name])]
        if not regression and has_calibration(runs, name):
            blocks.append(_figure("reliability", f"reliability_{name}.png"))
        blocks.append(_figure("length", f"length_{name}.png"))
    if seed_summaries:
        blocks.append(_heading(2, "Seeds"))
        for s in seed_summaries:
            blocks += _seed_blocks(s, runs)
    blocks += [_heading(2, "Speed and memory"), _paragraph(
        "Train time covers the whole fit (for baselines: feature extraction + C search + refit; for a resumed run, "
        "every launch's steps, a step trained again after a kill counted once; its rate, and the time of a run "
        "whose checkpoint recorded none, are the last launch's, marked \"from step N\"); inference is "
        "sentences/s over the dev set after training; peak memory is the process's peak resident memory (CPU) "
        "or torch's peak allocation (GPU)."),
        _table(["system", "train sentences", "train s", "train sentences/s", "inference sentences/s",
                "peak memory MB", "device"], speed_rows(runs)), _figure("speed", "speed.png")]
    if arch:
        keys = ["system", "weights", "parameters", "layers", "hidden_size", "attention_heads", "vocab_size", "tokenizer",
                "max_positions", "position_embedding", "attention", "pooling"]
        blocks += [_heading(2, "Architecture (read from each run's saved config.json and tokenizer.json)"),
                   _table(keys, [[f"{a[k]:,}" if isinstance(a[k], int) and k == "parameters" else a[k] for k in keys]
                                 for a in arch])]
    blocks += [_heading(2, "Runs"), _table(
        ["system", "folder", "command", "git commit", "date"],
        [[r.label, str(r.folder), f"`{r.run.get('command', '?')}`", r.run.get("git_commit"), r.run.get("date")]
         for r in runs])]
    return blocks


def _markdown_block(b: Block) -> str:
    if b.kind == "heading":
        return f"{'#' * b.level} {b.text}"
    if b.kind == "table":
        lines = ["| " + " | ".join(b.headers) + " |", "| " + " | ".join("---" for _ in b.headers) + " |"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in b.rows])
    if b.kind == "figure":
        return f"![{b.text}]({b.name})"
    return b.text


def markdown(blocks: list[Block]) -> str:
    """report.md: every block followed by a blank line."""
    return "\n".join(part for b in blocks for part in (_markdown_block(b), ""))


def html(blocks: list[Block], figures: dict[str, bytes]) -> str:
    """report.html: the same blocks through the template, figures inlined as data URIs so the page stands alone."""
    from jinja2 import Environment, PackageLoader  # only compare renders HTML

    # Autoescape is forced on: select_autoescape would not match the ".html.j2" name, and every cell
    # (sentences, commands, folder names) is untrusted text.
    env = Environment(loader=PackageLoader("modernbert_glue.report", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["inline"] = _inline_markdown
    images = {name: base64.b64encode(data).decode() for name, data in figures.items()}
    return env.get_template("report.html.j2").render(blocks=blocks, images=images)


def _inline_markdown(text) -> str:
    """The markdown the blocks' text uses, **bold** and `code`, as HTML; everything else escaped first."""
    import re

    from markupsafe import Markup, escape

    html = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", str(escape(text)))
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", html))
