"""GLUE on 2 CPU cores with all-MiniLM-L6-v2: our CLI (one fixed recipe) beside the plain HF Trainer with run_glue.py's
defaults and the trivial baseline, on CoLA, MRPC, RTE, STS-B and WNLI.

    .venv/bin/python benchmarks/glue_cpu.py                 # run what is missing, then summarise
    .venv/bin/python benchmarks/glue_cpu.py --summary-only  # summarise what has finished
    .venv/bin/python benchmarks/glue_cpu.py --report-only   # the compare reports again, then the summary
    .venv/bin/python benchmarks/glue_cpu.py --plain-jobs 2  # the plain runs two at a time, one thread each

Resumable: every run has its own folder or file; a finished one is skipped, an interrupted `train` is resumed
(`train --resume`), an interrupted plain run starts again. Stop it at any time and start it again later.

- ours: `modernbert-glue train --preset minilm-glue --task T --seeds 42,43,44` (WNLI: 42), the recipe committed in
  src/modernbert_glue/presets/minilm-glue.toml before these runs: MRPC, RTE and WNLI start from the same seed's
  STS-B model (`--init-from runs/glue-cpu/ours/stsb/seed-{seed}/model`), so STS-B runs first; RTE has options of
  its own (TASK_OPTIONS, round 3). Run folders in runs/glue-cpu/ours/T (not committed: weights); what `compare`
  reads (SMALL_FILES) is copied to benchmarks/results/glue-cpu/ours/T/seed-S/ with wall.json (the run's wall
  time), then seeds.json. Rounds 1 and 2 are kept in benchmarks/results/glue-cpu/round{1,2}/.
- plain: benchmarks/glue_plain.py (run_glue.py's defaults: lr 2e-5, batch 32, 3 epochs, max length 128) for seeds
  42 and 43 -> benchmarks/results/glue-cpu/plain/T-seed-S.json.
- baselines: `modernbert-glue baseline majority|tfidf|sbert-frozen` -> benchmarks/results/glue-cpu/baselines/NAME/T/;
  the trivial baseline is `majority` (train's majority class, STS-B: its mean score, for every dev row), its metric
  with a 95% bootstrap interval.
- report: `modernbert-glue compare` over the committed copies of our runs and the baselines, once all of ours have
  finished -> benchmarks/reports/glue-cpu/glue/ (the GLUE table) and benchmarks/reports/glue-cpu/T/ (each task's
  intervals, paired tests, calibration; report.md and report.html).

summary.json / summary.md: per task, each system's main metric (mean, std, per seed), the two checks of the issue
(ours >= plain's mean or within one of its standard deviations; ours above the trivial baseline's interval) and the
longest of our runs; the CPUs the runs ran on (runs_cpus, from their run.json) and the summarising process's
provenance (summarised_on: a summary made later, on another machine, does not rename the runs' CPU).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, SHARED

TASKS = ("cola", "mrpc", "rte", "stsb", "wnli")
ORDER = ("stsb", "rte", "mrpc", "wnli", "cola")  # ours: STS-B first, the warm starts need it
PLAIN_ORDER = ("wnli", "rte", "mrpc", "stsb", "cola")  # the plain runs, after all of ours: the cheapest first
OUR_SEEDS = {"wnli": (42,)}
SEEDS = (42, 43, 44)
PLAIN_SEEDS = (42, 43)
ABOVE_TRIVIAL = ("cola", "mrpc", "rte", "stsb")  # the issue asks for a clear win over the trivial baseline on these
RESULTS = REPO / "benchmarks" / "results" / "glue-cpu"
RUNS = REPO / "runs" / "glue-cpu"
CLI = [sys.executable, "-m", "modernbert_glue.cli"]
PRESET = "minilm-glue"
WARM_START = {"mrpc", "rte", "wnli"}  # the recipe's pair tasks that start from STS-B (see the preset's header)
# RTE's options, round 3 (committed before its runs; rounds 1 and 2 in benchmarks/results/glue-cpu/round{1,2}/):
# peak learning rate 3e-5 instead of 1e-4, the fresh classification layer at 10x that rate, 3 epochs. Why: in
# round 1's log histories every seed sat on the ln 2 plateau while the rate was above ~5e-5 and left it only as the
# linear decay took the rate below that (seed 42 at 4e-5, seed 44 at 1.6e-5, seed 43 only in the last steps);
# 5 epochs at 1e-4 (round 2) mostly lengthened the plateau and took up to 922 s of training. A linear probe on the
# warm-started model's features reaches only 52-58% on RTE dev, so the encoder must move, slowly; the classification
# layer's 10x rate (train.classifier_lr_scale) lets the fresh layer follow the weak signal there is from the start,
# as linear-probing-then-fine-tuning does (Kumar et al., ICLR 2022). Three epochs keep a run under 15 minutes on
# this machine's slow hours.
TASK_OPTIONS = {"rte": ["--lr", "3e-5", "--set", "train.classifier_lr_scale=10"]}


def run_ours(task: str) -> None:
    seeds = OUR_SEEDS.get(task, SEEDS)
    folder = RUNS / "ours" / task
    if (RESULTS / "ours" / task / "seeds.json").is_file():  # finished, and its results copied
        return
    if folder.exists():
        command = [*CLI, "train", "--resume", str(folder)]
    else:
        command = [*CLI, "train", "--preset", PRESET, "--task", task, "--data-dir", str(SHARED / "data" / task),
                   "--seeds", ",".join(map(str, seeds)), "--output-dir", str(folder)]
        if task in WARM_START:
            command += ["--init-from", str(RUNS / "ours" / "stsb" / "seed-{seed}" / "model")]
        command += TASK_OPTIONS.get(task, [])
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    out = RESULTS / "ours" / task
    for seed in seeds:
        keep_small_files(folder / f"seed-{seed}", out / f"seed-{seed}")
        wall = {"wall_seconds": round(_wall_seconds(folder / f"seed-{seed}"), 1)}
        (out / f"seed-{seed}" / "wall.json").write_text(json.dumps(wall) + "\n")
    shutil.copyfile(folder / "seeds.json", out / "seeds.json")  # last: it marks the task finished


# What `compare` reads from a run folder (report/runs.py): small text files, committed so that the reports can be
# written again from benchmarks/results/ alone (the run folders hold the weights and are not committed).
SMALL_FILES = ("metrics.json", "run.json", "predictions_dev.tsv", "analysis_dev.json")


def keep_small_files(folder: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in SMALL_FILES:
        shutil.copyfile(folder / name, out / name)


def _wall_seconds(folder: Path) -> float:
    """Wall time of one of our runs, from its start (run.json's date) to its finished metrics.json: loading,
    training, evaluations and saving. A resumed run (whose wall time includes the pause) counts its training
    time instead."""
    from datetime import datetime

    run = json.loads((folder / "run.json").read_text())
    if run.get("resumed"):
        return float(json.loads((folder / "metrics.json").read_text())["train_seconds"])
    return (folder / "metrics.json").stat().st_mtime - datetime.fromisoformat(run["date"]).timestamp()


def plain_commands(task: str, threads: int) -> list[list[str]]:
    """glue_plain.py for each of PLAIN_SEEDS not finished yet (a plain run that was stopped starts again)."""
    commands = []
    for seed in PLAIN_SEEDS:
        target = RESULTS / "plain" / f"{task}-seed-{seed}.json"
        if target.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        commands.append([sys.executable, str(REPO / "benchmarks" / "glue_plain.py"), "--task", task, "--seed",
                         str(seed), "--output", str(target), "--threads", str(threads)])
    return commands


def run_plain(tasks: list[str], jobs: int) -> None:
    """The plain runs, `jobs` at a time with 2 // jobs threads each: the plain runs' times are not compared with
    ours, so on 2 cores two one-thread runs at once may finish the set sooner than one two-thread run after the
    other. Ours always run alone."""
    pending = [c for task in tasks for c in plain_commands(task, max(1, 2 // jobs))]
    running: list[subprocess.Popen] = []
    while pending or running:
        while pending and len(running) < jobs:
            command = pending.pop(0)
            print("+", " ".join(command), flush=True)
            running.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        time.sleep(5)
        for process in [p for p in running if p.poll() is not None]:
            running.remove(process)
            if process.returncode:
                raise subprocess.CalledProcessError(process.returncode, process.args)


BASELINES = ("majority", "tfidf", "sbert-frozen")  # majority is the trivial baseline
REPORT = REPO / "benchmarks" / "reports" / "glue-cpu"


def run_baselines(task: str) -> None:
    """`modernbert-glue baseline NAME` for each of BASELINES (seconds to a few minutes each), when missing; each
    one's metrics.json and run.json copied to benchmarks/results/glue-cpu/baselines/."""
    for name in BASELINES:
        out = RESULTS / "baselines" / name / task
        if (out / "metrics.json").is_file():
            continue
        folder = RUNS / "baselines" / name / task
        if not (folder / "metrics.json").is_file():
            command = [*CLI, "baseline", name, "--task", task, "--data-dir", str(SHARED / "data" / task),
                       "--output-dir", str(folder), "--overwrite"]
            print("+", " ".join(command), flush=True)
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        keep_small_files(folder, out)


def trivial(task: str) -> dict:
    """The majority baseline (train's majority class, STS-B: its mean score, for every dev row): its main metric
    and 95% bootstrap interval, as every run reports them."""
    from modernbert_glue.tasks import get_task

    target = RESULTS / "baselines" / "majority" / task / "metrics.json"
    if not target.is_file():
        run_baselines(task)
    metrics = json.loads(target.read_text())
    metric = get_task(task).main_metric
    return {"value": metrics[f"eval_{metric}"], "ci": metrics[f"eval_{metric}_ci"]}


def write_report() -> None:
    """`modernbert-glue compare` over our runs and the baselines: the GLUE table of every task
    (benchmarks/reports/glue-cpu/glue/) and each task's own report with intervals and paired tests (.../T/)."""
    def here(path: Path) -> str:  # relative to the repository, so that the reports name paths any clone has
        return str(path.relative_to(REPO))

    def folders(task: str) -> list[str]:  # the committed copies (keep_small_files)
        return [here(RESULTS / "ours" / task)] + [here(RESULTS / "baselines" / b / task) for b in BASELINES]

    for name, runs in (("glue", [f for t in TASKS for f in folders(t)]), *((t, folders(t)) for t in TASKS)):
        command = [*CLI, "compare", *runs, "--output", here(REPORT / name), "--overwrite"]
        if name != "glue":
            command += ["--task", name]
        print("+", " ".join(command), flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=REPO)


PLAIN_KEYS = {"mcc": "matthews_correlation"}  # glue_plain.py's names for our metrics, where they differ


def summarise() -> dict:
    import numpy as np

    from modernbert_glue.tasks import get_task

    rows = {}
    for name in TASKS:
        task = get_task(name)
        metric = task.main_metric
        row: dict = {"metric": metric, "trivial": trivial(name)}
        seeds_file = RESULTS / "ours" / name / "seeds.json"
        if seeds_file.is_file():
            seed_folders = [RESULTS / "ours" / name / f"seed-{s}" for s in json.loads(seeds_file.read_text())["seeds"]]
            ours = [json.loads((f / "metrics.json").read_text()) for f in seed_folders]
            values = np.array([m[f"eval_{metric}"] for m in ours])
            row["ours"] = {"values": values.tolist(), "mean": float(values.mean()),
                           "std": _std(values),
                           "max_train_seconds": max(m["train_seconds"] for m in ours),
                           "max_total_seconds": max(json.loads((f / "wall.json").read_text())["wall_seconds"]
                                                    for f in seed_folders)}
        plain_files = [RESULTS / "plain" / f"{name}-seed-{s}.json" for s in PLAIN_SEEDS]
        if all(p.is_file() for p in plain_files):
            plain = [json.loads(p.read_text()) for p in plain_files]
            values = np.array([_plain_metric(p, metric) for p in plain])
            row["plain"] = {"values": values.tolist(), "mean": float(values.mean()), "std": _std(values),
                            "max_train_seconds": max(p["train_seconds"] for p in plain)}
        if "ours" in row and "plain" in row:
            o, p = row["ours"], row["plain"]
            row["ours_at_least_plain"] = o["mean"] >= p["mean"] or p["mean"] - o["mean"] <= (p["std"] or 0.0)
        if "ours" in row:
            row["ours_above_trivial_interval"] = row["ours"]["mean"] > row["trivial"]["ci"][1]
            row["trivial_is_a_check"] = name in ABOVE_TRIVIAL
            row["ours_runs_within_15_min"] = row["ours"]["max_total_seconds"] <= 15 * 60
        rows[name] = row
    return rows


def _std(values) -> float | None:
    """The seeds' sample std; none for one seed, which has no spread to show."""
    return float(values.std(ddof=1)) if len(values) > 1 else None


def _plain_metric(result: dict, metric: str) -> float:
    metrics = result["dev_metrics"]
    return float(metrics[PLAIN_KEYS.get(metric, metric)])


def markdown(rows: dict) -> str:
    def cell(system: dict | None) -> str:
        if not system:
            return "pending"
        seeds = ", ".join(f"{v:.3f}" for v in system["values"])
        if system["std"] is None:
            return f"{system['mean']:.3f} (one seed)"
        return f"{system['mean']:.3f} ± {system['std']:.3f} ({seeds})"

    lines = ["| task | metric | ours (mean ± std, per seed) | plain Trainer | trivial [95% CI] | ours ≥ plain | "
             "ours > trivial CI | our longest run |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in rows.items():
        t = r["trivial"]
        longest = f"{r['ours']['max_total_seconds'] / 60:.1f} min" if "ours" in r else "pending"
        lines.append(f"| {name} | {r['metric']} | {cell(r.get('ours'))} | {cell(r.get('plain'))} | "
                     f"{t['value']:.3f} [{t['ci'][0]:.3f}, {t['ci'][1]:.3f}] | "
                     f"{_yes(r.get('ours_at_least_plain'))} | "
                     f"{_yes(r.get('ours_above_trivial_interval'), r.get('trivial_is_a_check', True))} | {longest} |")
    return "\n".join(lines) + "\n"


def _yes(value, checked: bool = True) -> str:
    if value is None:
        return "pending"
    return "yes" if value else ("**no**" if checked else "no (not a check)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="the compare reports from the committed results")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--plain-jobs", type=int, default=1, choices=(1, 2), help="plain runs at a time")
    args = parser.parse_args()
    if args.report_only:
        write_report()
    elif not args.summary_only:
        chosen = args.tasks.split(",")
        for system, run, order in (("ours", run_ours, ORDER), ("baselines", run_baselines, ORDER)):
            for task in [t for t in order if t in chosen]:
                started = time.perf_counter()
                run(task)
                print(f"{system} {task}: done in {time.perf_counter() - started:.0f} s", flush=True)
        if set(chosen) == set(TASKS):
            write_report()
        run_plain([t for t in PLAIN_ORDER if t in chosen], args.plain_jobs)
    rows = summarise()
    from modernbert_glue.provenance import provenance

    RESULTS.mkdir(parents=True, exist_ok=True)
    # provenance() is the summarising process's (its machine may not be the runs'): the runs' CPUs, from their
    # own run.json files, are recorded beside it
    cpus = sorted({json.loads(p.read_text()).get("hardware", {}).get("cpu", "?")
                   for p in RESULTS.glob("**/run.json")})
    summary = {"tasks": rows, "runs_cpus": cpus, "summarised_on": provenance()}
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS / "summary.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
