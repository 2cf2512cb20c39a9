"""`glue-submission`: the files the GLUE server scores — one `<Task>.tsv` per task (`index`, `prediction`: label
ids, label names for MNLI/QNLI/RTE/AX, values for STS-B), from one fine-tuned run per task, predicted on each
task's test file. An MNLI run also gives MNLI-mm.tsv (test_mismatched) and AX.tsv (the diagnostic set).

Test files come from `--data-root` (one GLUE-format folder per task: DATA_ROOT/<task>/test.tsv; AX as
DATA_ROOT/ax/diagnostic.tsv; or as GLUE's download script names them: SST-2/, diagnostic/), else from the Hub; a
missing one stops with one line naming it. $MODERNBERT_GLUE_DATA_DIR (one task's folder, what `train` reads without
--data-dir) is refused without --data-root: it would give every task that task's test file. Each row's `index` is
its test file's own (`index`, QQP's `id`; the Hub's idx), and a malformed test row is refused, not skipped. The
rows written are checked against GLUE's published counts (submission.json says which differ).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from .config import DataConfig
from .run_paths import data_dir_from_env
from .data import DATA_DIR_ENV, load_columns, texts_of
from .errors import UserError
from .locks import releases_on_error
from .outputs import check_finished, check_output, open_output
from .ownership import check_outside, read_marker, run_around
from .tasks import GLUE_TASKS, ID_KEY, NAMED_PREDICTIONS, TASKS, TEST_ROWS, get_task

log = logging.getLogger(__name__)

HUB_HINT = "pass --data-root FOLDER (a GLUE-format folder per task: FOLDER/rte/test.tsv, ...)"


def test_sets(task_name: str) -> list[tuple[str, str, str]]:
    """(submission file, task, split) for a run of `task_name`."""
    task = get_task(task_name)
    sets = [(task.submission, task_name, "test")]
    if task_name == "mnli":
        sets.append(("MNLI-mm", "mnli", "test_mismatched"))
    sets += [(t.submission, t.name, "test") for t in TASKS.values() if t.predicted_by == task_name]
    return sets


def _model_dir(run: str) -> Path:
    """RUN/model, or for a `--seeds` folder the model of its seed with the best main dev metric, for a sweep that of
    its chosen config's; an unfinished folder is refused, as `compare` refuses it (a seed's own run and model:
    load_model checks them)."""
    from .evaluation.runfolder import read_seeds_summary, read_sweep_choice

    folder = Path(run)
    check_finished(folder)
    if (read_marker(folder) or {}).get("kind") == "sweep":
        name, values = read_sweep_choice(folder)
        seed = max(values, key=values.__getitem__)
        log.info("%s: the chosen config %s; its seed %s has the best dev value", run, name, seed)
        folder = folder / f"{name}-seed-{seed}"
    elif (folder / "seeds.json").is_file():
        summary = read_seeds_summary(folder)
        metric = f"eval_{summary.get('main_metric', 'accuracy')}"
        best = max(summary["per_seed"], key=lambda s: _finite(s.get(metric)))
        log.info("%s: seed %s has the best %s", run, best["seed"], metric)
        folder = folder / f"seed-{best['seed']}"
    return folder / "model" if (folder / "model").is_dir() else folder


GLUE_FOLDERS = {"mnli": "MNLI", "ax": "diagnostic"}  # download_glue_data.py's folder names, where not the file's


def task_folder(root: Path, task_name: str) -> Path:
    """DATA_ROOT's folder for a task: ours (rte, sst2, ax) or as GLUE's download script names it (RTE, SST-2,
    diagnostic); ours when neither exists, for the message."""
    glue = GLUE_FOLDERS.get(task_name, get_task(task_name).submission)
    return next((root / name for name in (task_name, glue) if (root / name).is_dir()), root / task_name)


def check_data_root(data_root: str | None) -> None:
    """Refuse $MODERNBERT_GLUE_DATA_DIR without --data-root: it names one task's folder (train's --data-dir), and
    read for every task it gives each task that one task's test file (WNLI.tsv from RTE's test.tsv, say). With
    --data-root it is not read, as --data-dir overrides it in train."""
    folder = data_dir_from_env()
    if data_root is None and folder:
        raise UserError(f"${DATA_DIR_ENV} is set ({folder}): it names one task's data folder, and glue-submission "
                        f"reads each task's own test file; {HUB_HINT}, or unset ${DATA_DIR_ENV} to read the Hub")


@releases_on_error
def glue_submission(runs: list[str], output_dir: str, *, data_root: str | None = None,
                    overwrite: bool = False) -> dict:
    """Predict each run's task's test set(s) and write the server's files; returns submission.json's content."""
    from .inference.backends import load_model
    from .inference.classifier import check_finite
    from .inference.onnx import is_export_folder

    check_output(output_dir, "submission", overwrite=overwrite)
    check_data_root(data_root)
    folders = [(run, _model_dir(run)) for run in runs]
    check_outside(output_dir, [*runs, *filter(None, (run_around(folder) for _, folder in folders))], "submission")
    models = {}
    for run, folder in folders:
        model = load_model(str(folder), "onnx" if is_export_folder(folder) else "torch")  # an export predicts too
        task = model.settings.task
        if task not in GLUE_TASKS:
            raise UserError(f"{run}: trained on '{task}', not a GLUE task")
        if task in models:
            raise UserError(f"{run}: a second run for {task} (the first: {models[task][0]}); give one run per task")
        models[task] = (run, model, folder)
    planned = []
    for task_name, (run, model, folder) in models.items():
        for name, data_task, split in test_sets(task_name):
            data = DataConfig(task=data_task, data_dir=str(task_folder(Path(data_root), data_task)) if data_root
                              else None)
            # every file is read before any is written
            columns = load_columns(data, get_task(data_task), split, hub_hint=HUB_HINT, ids=True)
            planned.append((name, data_task, run, model, folder, columns))
    predicted = []  # every model predicts before any file is written: a NaN model leaves no folder behind
    for name, data_task, run, model, folder, columns in planned:
        scores = check_finite(model.scores(texts_of(columns)), str(folder))  # argmax of NaN would say label 0
        predicted.append((name, run, folder, columns[ID_KEY], _predictions(data_task, scores)))
    out = open_output(output_dir, "submission", overwrite=overwrite)
    files = {}
    for name, run, folder, ids, predictions in predicted:  # each row's own id: the server matches rows by it
        out.write_text(f"{name}.tsv", "index\tprediction\n" + "".join(f"{i}\t{p}\n" for i, p in
                                                                     zip(ids, predictions)))
        files[name] = {"run": str(run), "model": str(folder),  # the model: a --seeds run's best seed's
                       "rows": len(predictions), "glue_rows": TEST_ROWS[name],
                       "matches_glue": len(predictions) == TEST_ROWS[name]}
        if not files[name]["matches_glue"]:
            log.warning("%s.tsv: %d rows; GLUE's test set has %d (the server will refuse it)", name,
                        len(predictions), TEST_ROWS[name])
    missing = sorted(set(TEST_ROWS) - set(files))
    summary = {"files": files, "missing": missing}
    out.write_json("submission.json", summary)
    out.finish()
    return summary


def _predictions(data_task: str, scores) -> list[str]:
    """The server's `prediction` column: STS-B's value on its 0-5 scale, label names or ids by task."""
    task = get_task(data_task)
    if task.regression:
        return [f"{min(max(float(v[0]), 0.0), 5.0):.3f}" for v in scores]
    if data_task in NAMED_PREDICTIONS:
        return [task.label_names[int(i)] for i in scores.argmax(axis=1)]
    return [str(int(i)) for i in scores.argmax(axis=1)]


def _finite(value) -> float:
    """A seed's metric to rank by; NaN (or none) ranks last, where max() would keep whichever came first."""
    return value if isinstance(value, (int, float)) and math.isfinite(value) else float("-inf")
