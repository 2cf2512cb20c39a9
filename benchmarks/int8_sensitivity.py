"""Which int8 settings keep a fine-tuned classifier's labels (the evidence behind export.py's int8 choices).

    .venv/bin/python benchmarks/int8_sensitivity.py --model RUN/model --output benchmarks/results/int8-sensitivity.json

1. Scan: quantise one MatMul at a time (dynamic int8, per-channel weights) and record the mean absolute logit
   change on 300 SST-2 dev sentences — which layers are sensitive.
2. Settings: label agreement with torch fp32 on SST-2 dev + test (2,693 sentences) at batch sizes 1, 12 and 64
   (the activations' int8 scale is computed per batch) and sentences/s at the default batching (tokenization
   included, median of 3 passes) for per-tensor, per-channel, per-channel without the embedding tables, that
   plus the first two FFN output projections in fp32, and the exported default (that, plus the first two
   layers' FFN input projections in fp32).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import SST2_DIR, sentences  # benchmarks/common.py, this script's sibling

from modernbert_glue.inference.backends import Classifier
from modernbert_glue.inference.export import (
    INT8_FP32_FFN_LAYERS,
    export_graph,
    ffn_output_matmuls,
    fp32_ffn_matmuls,
    weight_matmuls,
)
from modernbert_glue.inference.onnx import OnnxClassifier, session_logits
from modernbert_glue.models import load_saved_classifier
from modernbert_glue.provenance import provenance


def scan(plain: Path, folder: Path, texts: list[str]) -> list[dict]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    reference = session_logits
    enc = OnnxClassifier(folder).tokenizer(texts, padding=True, return_tensors="np")
    ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
    base = reference(plain, ids, mask)
    rows = []
    for name, shape in weight_matmuls(plain):
        one = folder / "one.onnx"
        quantize_dynamic(str(plain), str(one), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_quantize=[name])
        change = float(np.abs(reference(one, ids, mask) - base).mean())
        rows.append({"node": name, "weight_shape": list(shape), "mean_abs_logit_change": round(change, 5)})
        print(rows[-1], file=sys.stderr)
    return sorted(rows, key=lambda r: -r["mean_abs_logit_change"])


BATCH_SIZES = (1, 12, 64)  # the activations' int8 scale is per batch, so agreement depends on the batching


def settings(plain: Path, folder: Path, texts: list[str], reference: np.ndarray, intermediate_size: int) -> list[dict]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    matmuls = {"per_channel": True, "op_types_to_quantize": ["MatMul"]}
    variants = {
        "per-tensor weights (onnxruntime defaults)": {},
        "per-channel weights": {"per_channel": True},
        "per-channel, MatMul only (embedding tables fp32)": matmuls,
        "+ first 2 FFN output projections fp32 (the previous default)": {
            **matmuls, "nodes_to_exclude": ffn_output_matmuls(plain, intermediate_size)[:2]},
        f"exported default: + both FFN projections of the first {INT8_FP32_FFN_LAYERS} layers fp32": {
            **matmuls, "nodes_to_exclude": fp32_ffn_matmuls(plain, intermediate_size, INT8_FP32_FFN_LAYERS)},
    }
    info = json.loads((folder / "export.json").read_text())
    rows = []
    for label, options in variants.items():
        quantize_dynamic(str(plain), str(folder / "int8.onnx"), weight_type=QuantType.QInt8, **options)
        (folder / "export.json").write_text(json.dumps({**info, "model_file": "int8.onnx"}))
        agreement = {}
        for batch_size in BATCH_SIZES:
            probs = OnnxClassifier(folder, batch_size=batch_size).probabilities(texts)
            agreement[str(batch_size)] = round(float(np.mean(probs.argmax(1) == reference)), 4)
        clf = OnnxClassifier(folder)  # the default batching
        clf.probabilities(texts[:64])
        times = []
        for _ in range(3):
            started = time.perf_counter()
            clf.probabilities(texts)
            times.append(time.perf_counter() - started)
        rows.append({"setting": label, "sentences_per_s": round(len(texts) / statistics.median(times), 1),
                     "label_agreement_with_torch_fp32_by_batch_size": agreement,
                     "label_agreement_with_torch_fp32_min": min(agreement.values())})
        print(rows[-1], file=sys.stderr)
    (folder / "export.json").write_text(json.dumps(info))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="fine-tuned model folder (RUN/model)")
    parser.add_argument("--data-dir", type=Path, default=SST2_DIR)
    parser.add_argument("--output", required=True, type=Path)
    args = parser.parse_args()
    if args.output.exists():
        sys.exit(f"error: {args.output} exists (results are not overwritten)")
    texts = sentences(args.data_dir)
    reference = Classifier.load(str(args.model)).probabilities(texts).argmax(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, tokenizer = load_saved_classifier(str(args.model))
        plain = folder / "model.onnx"
        export_graph(model.eval(), tokenizer, plain)
        model.config.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))
        (folder / "export.json").write_text(json.dumps({"model_file": "model.onnx"}))
        dev = sentences(args.data_dir, ("dev.tsv",))[:300]
        report = {"benchmark": "int8-sensitivity", "model": str(args.model),
                  "scan_one_matmul_at_a_time_300_dev_sentences": scan(plain, folder, dev),
                  "settings_dev_and_test": settings(plain, folder, texts, reference, model.config.intermediate_size),
                  "fp32_in_exported_default": fp32_ffn_matmuls(plain, model.config.intermediate_size,
                                                                INT8_FP32_FFN_LAYERS), **provenance()}
        shutil.rmtree(folder, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["settings_dev_and_test"], indent=1))


if __name__ == "__main__":
    main()
