"""The ONNX backend: onnxruntime inference over an `export onnx` folder, behind the classifier contract."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import UserError, first_line
from ..inputs import pad_batch, sorted_batches
from ..inference_settings import InferenceSettings
from ..models import load_tokenizer
from .classifier import Tokenized


def is_export_folder(folder: str | Path) -> bool:
    return (Path(folder) / "export.json").is_file()


def require_export_folder(folder: str | Path) -> None:
    if not is_export_folder(folder):
        raise UserError(f"{folder}: not an ONNX export folder (no export.json; create one with `export onnx`)")


class OnnxClassifier(Tokenized):
    """onnxruntime inference over an export folder; same `probabilities`/`label_names` as Classifier.

    Batches run `workers` at a time, each on one thread of one shared session (onnxruntime sessions take
    concurrent `run` calls), rather than one batch at a time split over every core: MiniLM-sized matrices
    are too small to split well. Same int8 model on this 2-core CPU: 627 sentences/s with one two-thread batch
    of 64 at a time (benchmarks/results/inference-cpu-session2.json), 984 this way with batches of 12
    (benchmarks/results/inference-cpu-int8-two-fp32-matmuls.json).
    """

    def __init__(self, folder: str | Path, batch_size: int = 12, workers: int = 0, spin: bool = True):
        import onnxruntime as ort

        folder = Path(folder)
        require_export_folder(folder)
        self.workers = workers or len(os.sched_getaffinity(0))
        options = ort.SessionOptions()
        if self.workers > 1:
            options.intra_op_num_threads = 1
        elif not spin:  # a server: idle worker threads sleep instead of spinning on the cores the event loop needs
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:  # a damaged or incomplete folder: a JSON, key, protobuf or missing-file error, as one line
            info = json.loads((folder / "export.json").read_text())
            config = json.loads((folder / "config.json").read_text())
            self.label_names = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
            self.session = ort.InferenceSession(str(folder / info["model_file"]), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:
            what = f"no {exc} field" if isinstance(exc, KeyError) else first_line(exc)
            raise UserError(f"{folder}: cannot load the ONNX export ({what}); export the model again") from None
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="onnx") if self.workers > 1 else None
        self.tokenizer = load_tokenizer(str(folder))
        self.batch_size = batch_size
        self.settings = InferenceSettings.load(folder)
        self.dtype = "int8" if info.get("quantize") == "int8" else "float32"  # what /info reports

    def logits_encoded(self, encoded: list[list[int]]) -> np.ndarray:
        left = self.tokenizer.padding_side == "left"

        def run(seqs: list[list[int]]) -> np.ndarray:
            batch = pad_batch([{"input_ids": s} for s in seqs], self.tokenizer.pad_token_id, left=left)
            return self.session.run(["logits"], {k: batch[k] for k in ("input_ids", "attention_mask")})[0]

        return sorted_batches(encoded, self.batch_size, run, len(self.label_names), self.pool, self.workers)


def session_logits(path: Path, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Logits of one ONNX file for one padded batch (export's parity check)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]
