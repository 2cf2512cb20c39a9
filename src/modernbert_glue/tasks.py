"""Task registry: where a GLUE task lives, its text column and label names (SST-2 now, the rest later)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UserError


@dataclass(frozen=True)
class Task:
    name: str
    hub_path: str
    hub_config: str
    text_column: str
    label_names: tuple[str, ...]
    split_files: dict[str, str]  # split -> file name in a GLUE-format folder

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))


TASKS = {
    "sst2": Task(
        name="sst2",
        hub_path="nyu-mll/glue",
        hub_config="sst2",
        text_column="sentence",
        label_names=("negative", "positive"),
        split_files={"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"},
    )
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise UserError(f"unknown task '{name}' (available: {', '.join(TASKS)})") from None
