"""What inference needs to treat inputs as training did (task, text columns, max length, input path), saved as
inference.json beside every model's weights (and in every export) by the command that writes it, and read by every
backend, `evaluate`, `predict` and `serve`."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .errors import UserError, first_line
from .inputs import INPUT_PATHS
from .tasks import TASKS, Task

log = logging.getLogger(__name__)


def _config_problem_type(folder) -> str | None:
    import json

    try:
        return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8")).get("problem_type")
    except (OSError, json.JSONDecodeError):
        return None


SETTINGS_FILE = "inference.json"
SETTINGS_VERSION = 2  # 2: label_column and regression (pair and regression tasks); version 1 files still load


def _written_by_its_run(folder: Path) -> bool:
    """Whether the folder's writer recorded an inference.json there: its own marker (an export), or its run
    folder's record of what model/ held when the run ended. A folder written before the file existed has none."""
    from .ownership import CONTENTS, read_marker

    own, run = read_marker(folder), read_marker(folder.parent)
    return bool(own and SETTINGS_FILE in own["files"]) or bool(
        run and SETTINGS_FILE in run.get(CONTENTS, {}).get(folder.name, []))


@dataclass
class InferenceSettings:
    """What inference needs to treat inputs as training did, saved in every model (and export) folder by the
    command that writes it, and read by every backend, `evaluate`, `predict` and `serve`. The label names are
    the model config's id2label."""

    task: str = "sst2"
    text_columns: tuple[str, ...] = ("sentence",)  # two: the model classifies sentence pairs
    label_column: str | None = "label"
    regression: bool = False
    max_length: int = 512  # folders without a settings file: the truncation inference used before it existed
    input_path: str = "auto"
    version: int = SETTINGS_VERSION

    @classmethod
    def for_task(cls, task: Task, max_length: int) -> InferenceSettings:
        return cls(task=task.name, text_columns=task.text_columns, label_column=task.label_column,
                   regression=task.regression, max_length=max_length)

    def save(self, folder: str | Path) -> None:
        from .outputs import write_json

        write_json(Path(folder) / SETTINGS_FILE, {**asdict(self), "text_columns": list(self.text_columns)})

    @classmethod
    def load(cls, folder: str | Path) -> InferenceSettings:
        import json

        path = Path(folder) / SETTINGS_FILE
        if not path.is_file():
            if _written_by_its_run(Path(folder)):
                raise UserError(f"{path}: missing, though the command that wrote this folder wrote it (what it "
                                "classifies and how it truncates); restore it or train the model again")
            log.warning("%s: no %s (written by `train` since this file was introduced); using max_length %d and "
                        "input path %s", folder, SETTINGS_FILE, cls.max_length, cls.input_path)
            return cls(regression=_config_problem_type(folder) == "regression")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path}: not a readable settings file ({first_line(exc)})") from None
        if not isinstance(raw, dict):
            raise UserError(f"{path}: not a settings object")
        version = raw.get("version", SETTINGS_VERSION)
        if not isinstance(version, int) or isinstance(version, bool) or version > SETTINGS_VERSION:
            raise UserError(f"{path}: settings version {version!r} is newer than this modernbert-glue reads "
                            f"({SETTINGS_VERSION}); upgrade modernbert-glue")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise UserError(f"{path}: unknown setting(s) {', '.join(unknown)}")
        settings = cls(**raw)
        # each value checked here: a wrong one would otherwise surface as a message about options never given
        # (--regression, --input-path) or as a dev file's "wrong" labels
        columns = settings.text_columns
        if not isinstance(columns, list | tuple) or len(columns) not in (1, 2) or not all(
                isinstance(c, str) and c for c in columns):
            raise UserError(f"{path}: text_columns must name one text column or a pair, got {columns!r}")
        settings.text_columns = tuple(columns)
        if not isinstance(settings.max_length, int) or isinstance(settings.max_length, bool) or \
                settings.max_length < 1:
            raise UserError(f"{path}: max_length must be a positive integer, got {settings.max_length!r}")
        for key, allowed in (("task", TASKS), ("input_path", INPUT_PATHS), ("regression", (True, False))):
            value = getattr(settings, key)
            if not isinstance(value, str | bool) or value not in allowed:  # named as the JSON file spells them
                raise UserError(f"{path}: {key} must be one of {', '.join(map(json.dumps, allowed))}, got "
                                f"{json.dumps(value)}")
        if not isinstance(settings.label_column, str | None):
            raise UserError(f"{path}: label_column must be a column name or null, got {settings.label_column!r}")
        return settings
