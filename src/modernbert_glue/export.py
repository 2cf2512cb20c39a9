"""ONNX export (dynamic batch and length axes) and onnxruntime dynamic int8 quantisation, plus the ONNX
classifier that `predict --backend onnx` and `serve --backend onnx` use.

Export folder: model.onnx (fp32), model.int8.onnx (with --quantize int8), config.json (label names),
tokenizer files, export.json (which file to run, the parity check against torch).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import UserError
from .runfolder import check_output_dir, write_json

PARITY_SENTENCES = [
    "a gorgeous , witty , seductive movie .",
    "the plot is nothing but boilerplate clichés from start to finish , and the script is as flat as the acting .",
    "not bad",
    "it 's a charming and often affecting journey .",
]


def export_onnx(model_dir: str, output_dir: str, *, quantize: str | None = None, overwrite: bool = False) -> dict:
    """Export a saved classifier; returns export.json's content (files, parity with torch)."""
    import torch

    from .models import load_saved_classifier
    from .provenance import provenance

    if quantize not in (None, "int8"):
        raise UserError(f"--quantize takes int8, got '{quantize}'")
    out = Path(output_dir)
    check_output_dir(out, overwrite)
    model, tokenizer = load_saved_classifier(model_dir)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    example = tokenizer(PARITY_SENTENCES[:2], padding=True, return_tensors="pt")
    batch, seq = torch.export.Dim("batch", min=1), torch.export.Dim("sequence", min=2)
    onnx_path = out / "model.onnx"
    with torch.no_grad():
        torch.onnx.export(Logits(model), (example["input_ids"], example["attention_mask"]), str(onnx_path),
                          input_names=["input_ids", "attention_mask"], output_names=["logits"], dynamo=True,
                          external_data=False,
                          dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}})
    model.config.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    run_file = onnx_path
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        run_file = out / "model.int8.onnx"
        quantize_dynamic(str(onnx_path), str(run_file), weight_type=QuantType.QInt8)

    with torch.no_grad():
        enc = tokenizer(PARITY_SENTENCES, padding=True, return_tensors="pt")
        reference = model(**enc).logits.numpy()
    parity = {}
    for name in ("model.onnx", run_file.name):
        logits = OnnxClassifier.session_logits(out / name, enc["input_ids"].numpy(), enc["attention_mask"].numpy())
        parity[name] = float(np.abs(logits - reference).max())
    info = {"model_file": run_file.name, "source": str(model_dir), "quantize": quantize,
            "max_abs_logit_difference_vs_torch": parity, **provenance()}
    write_json(out / "export.json", info)
    return info


def is_export_folder(folder: str | Path) -> bool:
    return (Path(folder) / "export.json").is_file()


class OnnxClassifier:
    """onnxruntime inference over an export folder; same `probabilities`/`label_names` as Classifier."""

    def __init__(self, folder: str | Path, batch_size: int = 64, max_length: int = 512, threads: int = 0):
        import onnxruntime as ort

        from .models import load_tokenizer

        folder = Path(folder)
        if not is_export_folder(folder):
            raise UserError(f"{folder}: not an ONNX export folder (no export.json; create one with `export onnx`)")
        info = json.loads((folder / "export.json").read_text())
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(folder / info["model_file"]), options, providers=["CPUExecutionProvider"])
        self.tokenizer = load_tokenizer(str(folder))
        config = json.loads((folder / "config.json").read_text())
        self.label_names = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
        self.batch_size = batch_size
        self.max_length = max_length

    @staticmethod
    def session_logits(path: Path, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    def probabilities(self, texts: list[str]) -> np.ndarray:
        from .predict import sorted_batches

        def run(seqs: list[list[int]]) -> np.ndarray:
            batch = self.tokenizer.pad({"input_ids": seqs}, return_tensors="np")
            logits = self.session.run(["logits"], {"input_ids": batch["input_ids"].astype(np.int64),
                                                   "attention_mask": batch["attention_mask"].astype(np.int64)})[0]
            return _softmax(logits)

        limit = min(self.max_length, self.tokenizer.model_max_length)
        encoded = self.tokenizer(texts, truncation=True, max_length=limit)["input_ids"]
        return sorted_batches(encoded, self.batch_size, run, len(self.label_names))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
