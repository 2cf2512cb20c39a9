"""The paths a new run records: its data folder from the environment, its local paths made absolute.

(DataConfig and RunConfig in the annotations are config's, which imports this module: named, not imported.)"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

DATA_DIR_ENV = "MODERNBERT_GLUE_DATA_DIR"  # data.data_dir (config.DataConfig) when no --data-dir is given


def data_dir_from_env() -> str | None:
    """$MODERNBERT_GLUE_DATA_DIR, the data folder when --data-dir is not given (None when unset or empty)."""
    return os.environ.get(DATA_DIR_ENV) or None


def with_data_dir_from_env(data: DataConfig) -> DataConfig:
    """`data` with $MODERNBERT_GLUE_DATA_DIR as its data_dir when none is given: what a run saves (run.json) is
    the folder it read, and a resumed run reads it again, whatever the variable says then."""
    if data.data_dir is None and data_dir_from_env():
        return dataclasses.replace(data, data_dir=data_dir_from_env())
    return data


def with_absolute_paths(cfg: RunConfig) -> RunConfig:
    """`cfg` with the local paths it names made absolute: run.json records them, and a run resumed (or a seed
    trained) from another working folder reads the same files, not the ones the relative path names there. A
    path that does not exist (a Hub id, a typo the loaders name) stays as given."""

    def absolute(value: str | None) -> str | None:
        if not value or os.path.isabs(value):
            return value
        if Path(value).exists() or ("{seed}" in value and Path(value.split("{seed}")[0] or ".").parent.exists()):
            return os.path.abspath(value)
        return value

    data = {name: absolute(getattr(cfg.data, name)) for name in ("data_dir", "train_file", "validation_file",
                                                                "test_file")}
    model = {"name": absolute(cfg.model.name), "init_from": absolute(cfg.model.init_from)}
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **data),
                               model=dataclasses.replace(cfg.model, **model))


def local_inputs(data: DataConfig, *models: str | None) -> list[str]:
    """The local files and folders a run reads (its data, and the model folders named): an --overwrite must
    not remove them."""
    values = [data.data_dir, data.train_file, data.validation_file, data.test_file, *models]
    return [value for value in values if value and Path(value).exists()]


def init_from_folder(init_from: str, seed: int) -> str:
    """The model folder --init-from names for `seed`: `{seed}` replaced, and a run folder taken for its model/ (as
    --model takes either in predict, evaluate and export)."""
    from .outputs import model_folder

    return model_folder(init_from.replace("{seed}", str(seed)))
