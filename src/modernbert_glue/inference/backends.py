"""The torch backend, and loading any model folder (torch, ONNX export, baseline) behind the classifier contract
(classifier.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import token_limit
from ..device import autocast, check_bf16, use_bf16
from ..errors import UserError
from ..inputs import collate, resolve_input_path, sep_for, sorted_batches
from ..inference_settings import InferenceSettings
from ..outputs import own_names, read_marker
from ..ownership import with_article
from .classifier import TextClassifier, Tokenized, check_finite

BACKENDS = ("torch", "onnx")


@dataclass
class Classifier(Tokenized):
    """A loaded torch model + tokenizer; `probabilities` batches texts by length and restores input order."""

    model: object
    tokenizer: object
    settings: InferenceSettings = field(default_factory=InferenceSettings)
    batch_size: int = 64
    input_path: str | None = None  # None: the settings' path (auto: see inputs.AUTO)
    bf16: str | bool = "auto"  # see device.BF16_AUTO

    @classmethod
    def load(cls, folder: str, **kwargs) -> Classifier:
        model, tokenizer = load_fine_tuned(folder)
        return cls(model=model, tokenizer=tokenizer, settings=InferenceSettings.load(folder), **kwargs)

    @property
    def label_names(self) -> list[str]:
        id2label = self.model.config.id2label
        return [id2label[i] for i in range(len(id2label))]

    @property
    def dtype(self) -> str:
        """What the passes compute in (TEI's /info model_dtype): bf16 autocast over fp32 weights, or fp32."""
        return "bfloat16" if use_bf16(self.bf16, "infer") else "float32"

    def logits_encoded(self, encoded: list[list[int]]) -> np.ndarray:
        import torch

        if not encoded:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        device = next(self.model.parameters()).device
        path = resolve_input_path(self.input_path or self.settings.input_path, self.model.config.model_type,
                                  "infer", device.type)
        width = token_limit(self.tokenizer, self.settings.max_length)
        pad_id, sep_id = self.tokenizer.pad_token_id, sep_for(self.tokenizer)
        forward = self.model
        if path == "packed":
            from ..packing import PackedClassifier

            forward = PackedClassifier(self.model)

        def run(seqs: list[list[int]]) -> np.ndarray:
            batch = collate(path, seqs, pad_id, width, sep_id=sep_id)
            if path == "packed":
                logits = forward(batch).logits
            else:
                logits = forward(**{name: values.to(device) for name, values in batch.items()}).logits
            return logits.float().cpu().numpy()

        with torch.inference_mode(), autocast(device.type, use_bf16(self.bf16, "infer")):
            return sorted_batches(encoded, self.batch_size, run, len(self.label_names), sort=path == "grouped")

    def predict(self, texts: list[str]) -> list[dict]:
        return predict_records(self, texts)


def predict_records(model: TextClassifier, texts: list, name: str = "the model") -> list[dict]:
    """[{"text"[, "text_pair"], "label", "score"}] in input order; `score` is the predicted label's probability
    (regression: {"text"[, "text_pair"], "score"}, the predicted value). A score that is no number is refused
    (classifier.check_finite), naming the model as `name`."""
    scores = check_finite(model.scores(texts), name)
    names = model.label_names
    records = []
    for text, row in zip(texts, scores):
        record = {"text": text} if isinstance(text, str) else {"text": text[0], "text_pair": text[1]}
        if model.settings.regression:
            record["score"] = float(row[0])
        else:
            record.update(label=names[int(row.argmax())], score=float(row.max()))
        records.append(record)
    return records


def check_torch_only(backend: str, **options) -> None:
    """--input-path and --bf16 choose how torch runs the model; an export runs its one graph: given with another
    backend they would be ignored, so they are refused."""
    if backend != "torch" and any(value is not None for value in options.values()):
        raise UserError("--input-path and --bf16 go with --backend torch")


def check_backend(folder: str, backend: str) -> None:
    """The backend exists, the folder is finished and of the backend's kind: one line otherwise (what `serve`
    checks before its server starts)."""
    from ..outputs import check_model_finished
    from .onnx import is_export_folder, require_export_folder

    if backend not in BACKENDS:
        raise UserError(f"--backend must be torch or onnx, got '{backend}'")
    check_model_finished(folder)
    check_model_folder(folder)
    if backend == "onnx":
        require_export_folder(folder)
    elif is_export_folder(folder):
        raise UserError(f"{folder}: an ONNX export folder; pass --backend onnx")


def load_model(folder: str, backend: str = "torch", **kwargs) -> TextClassifier:
    """A fine-tuned classifier folder, an ONNX export folder (backend onnx) or a baseline's model folder,
    behind the same contract (TextClassifier)."""
    from ..training.baselines import BaselineModel, is_baseline_folder
    from .onnx import OnnxClassifier

    check_backend(folder, backend)
    kwargs = {key: value for key, value in kwargs.items() if value is not None}  # None: the backend's default
    if "bf16" in kwargs:
        check_bf16(kwargs["bf16"], "--bf16")
    if kwargs.get("batch_size", 1) < 1:
        raise UserError(f"--batch-size must be at least 1, got {kwargs['batch_size']}")
    if backend == "onnx":
        return OnnxClassifier(folder, **{k: v for k, v in kwargs.items() if k in ("batch_size", "spin")})
    if is_baseline_folder(folder):
        if any(kwargs.get(k) not in (None, "auto") for k in ("input_path", "bf16")):  # ignored, as by an export
            raise UserError(f"--input-path and --bf16 go with a fine-tuned transformer; {folder} is a baseline's "
                            "scikit-learn model")
        return BaselineModel.load(folder)  # batching options do not apply
    return Classifier.load(folder, **kwargs)


# Our folders that hold runs, not a model: transformers would only say it finds no `model_type` in them.
_FOLDERS_OF_RUNS = {"seeds": "a --seeds folder", "sweep": "a sweep folder"}


def check_model_folder(folder: str) -> None:
    """One line for a path that cannot hold a model: missing, a file, a --seeds set or a sweep (named by its
    marker, with one of its runs to pass instead), a report or another of our folders that is no model, or a
    folder without a config.json (a baseline's excepted). Whether the files in a model folder fit together is
    the loader's to judge."""
    from ..training.baselines import is_baseline_folder

    path = Path(folder)
    if not path.exists():
        raise UserError(f"{folder}: model folder not found")
    if not path.is_dir():
        raise UserError(f"{folder}: a file, not a model folder")
    marker = read_marker(path) or {}
    if marker.get("kind") in _FOLDERS_OF_RUNS:
        runs = [name for name in own_names(marker["files"]) if (path / name).is_dir()]
        example = f", e.g. {path / runs[0]}" if runs else ""
        raise UserError(f"{folder}: {_FOLDERS_OF_RUNS[marker['kind']]}, not a model; pass one of its runs{example}")
    if marker.get("kind") in ("report", "submission"):
        raise UserError(f"{folder}: {with_article(marker['kind'])} folder, not a model")
    if not (path / "config.json").is_file() and not is_baseline_folder(path):
        raise UserError(f"{folder}: not a model folder (no config.json)")


def load_fine_tuned(folder: str):
    """(model in eval mode, tokenizer) of a saved fine-tuned classifier, a folder that is none refused first."""
    from ..models import load_saved_classifier

    check_model_folder(folder)
    model, tokenizer = load_saved_classifier(folder)
    model.eval()
    return model, tokenizer


def load_served_model(cfg):
    """The classifier `serve` serves (cfg: its ServeConfig), with the server's batching defaults, after one
    sentence through it: damaged (NaN) weights are refused in one line before the server says it is ready."""
    options = {"spin": False} if cfg.backend == "onnx" else {"input_path": cfg.input_path, "bf16": cfg.bf16}
    options["batch_size"] = cfg.batch_size or (12 if cfg.backend == "onnx" else 32)
    model = load_model(cfg.model, cfg.backend, **options)
    probe = "a fine film" if len(model.settings.text_columns) == 1 else ("a fine film", "a fine film")
    check_finite(model.logits([probe]), cfg.model)
    return model
