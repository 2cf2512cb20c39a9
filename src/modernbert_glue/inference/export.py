"""`export onnx`: ONNX export (dynamic batch and length axes) and onnxruntime dynamic int8 quantisation. The
backend that runs an export folder is onnx.py.

Export folder: model.onnx (fp32), model.int8.onnx (with --quantize int8), config.json (label names),
tokenizer files, inference.json (the model's inference settings), export.json (which file to run, the parity check against torch).

Steps, as measured on this CPU for the fine-tuned all-MiniLM-L6-v2 (benchmarks/results/inference-cpu.json):
1. torch.onnx's dynamo exporter;
2. onnxscript's onnxruntime fusions (Attention, SkipLayerNormalization, BiasGelu): fp32 ~1.1x faster; kept only
   when the fused graph still matches torch within `PARITY_TOLERANCE`, else the plain graph is used;
3. int8: onnxruntime's dynamic quantisation of the plain (unfused) graph's MatMuls — int8 ran 830 sentences/s
   from it against 766 from the fused one. Measured on SST-2 dev+test against torch fp32 labels: per-tensor
   weight scales flipped 2.6-2.7% of the labels, per-channel scales 1.2-1.6%; leaving the embedding tables
   (Gather) unquantised 1.4%. A one-node-at-a-time sensitivity scan put the FFN blocks of the first layers on
   top (layer 0's FFN output projection worst, then layer 1's, then the two layers' FFN input projections).
   Keeping the two output projections in fp32 flipped 0.6-1.1% depending on how sentences were batched (the
   activations' int8 scale is per batch): too close to 1%. Keeping both FFN projections of the first two layers
   in fp32 flips 0.5-0.7% (benchmarks/results/int8-sensitivity.json), for ~15% of int8's speed.
   Tried and dropped: SmoothQuant-style smoothing (worse here), MatMulNBits 8-bit weights (99.85% agreement
   but slower than fp32).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..locks import releases_on_error
from ..inference_settings import InferenceSettings
from ..outputs import check_model_finished, check_output, open_output
from ..ownership import check_outside, run_around
from .classifier import check_finite
from .onnx import session_logits

log = logging.getLogger(__name__)

INT8_FP32_FFN_LAYERS = 2  # the first layers' FFN blocks stay fp32 (module docstring)
# Warnings torch's exporter gives about its own workings, not about the model or anything a user can change: the
# two dynamic axes sharing one name, a deprecated check inside torch.export. They would be the export's only output.
TORCH_EXPORT_NOISE = (r"# The axis name: \w+ will not be used", r"`isinstance\(treespec, LeafSpec\)` is deprecated")
PARITY_TOLERANCE = 1e-4  # max |logit difference| against torch on PARITY_SENTENCES
PARITY_SENTENCES = [
    "a gorgeous , witty , seductive movie .",
    "the plot is nothing but boilerplate clichés from start to finish , and the script is as flat as the acting .",
    "not bad",
    "it 's a charming and often affecting journey .",
]


@releases_on_error
def export_onnx(model_dir: str, output_dir: str, *, quantize: str | None = None, overwrite: bool = False) -> dict:
    """Export a saved classifier; returns export.json's content (files, parity with torch)."""
    import torch

    from ..provenance import provenance
    from ..training.baselines import is_baseline_folder
    from .backends import load_fine_tuned

    if quantize not in (None, "int8"):
        raise UserError(f"--quantize takes int8, got '{quantize}'")
    check_output(output_dir, "export", overwrite=overwrite)
    check_outside(output_dir, [model_dir, *filter(None, [run_around(Path(model_dir))])], "export")
    check_model_finished(model_dir)
    if is_baseline_folder(model_dir):
        raise UserError(f"{model_dir}: a baseline's scikit-learn model; only fine-tuned transformers export to ONNX")
    from .onnx import is_export_folder

    if is_export_folder(model_dir):
        raise UserError(f"{model_dir}: an ONNX export already; export the model it came from (export.json's "
                        "'source')")
    # Everything read from the model, and its logits checked, before the output folder is opened: a refused
    # model leaves no unfinished export behind.
    model, tokenizer = load_fine_tuned(model_dir)
    settings = InferenceSettings.load(model_dir)
    enc = parity_batch(tokenizer, pairs=len(settings.text_columns) == 2)
    with torch.no_grad():
        reference = check_finite(model(**enc).logits.numpy(), model_dir)
    folder = open_output(output_dir, "export", overwrite=overwrite)
    with folder.staged_files() as out:  # built aside, moved in when done: never half an export
        settings.save(out)  # the export truncates and batches as the model did
        with _info_quiet():
            info = _write_export(model, tokenizer, out, quantize, enc, reference)
    info = {**info, "source": str(model_dir), **provenance()}
    folder.write_json("export.json", info)
    folder.finish()
    return info


def parity_batch(tokenizer, pairs: bool) -> dict:
    """The parity check's inputs, tokenized by the tokenizer itself (its own token_type_ids for pairs, which
    the graph must reproduce): PARITY_SENTENCES, or pairs of them."""
    if pairs:
        return tokenizer(PARITY_SENTENCES, PARITY_SENTENCES[::-1], padding=True, return_tensors="pt")
    return tokenizer(PARITY_SENTENCES, padding=True, return_tensors="pt")


def _write_export(model, tokenizer, out: Path, quantize: str | None, enc: dict, reference: np.ndarray) -> dict:
    """The export's files in `out`; `reference` is torch's logits for the parity batch `enc`."""
    onnx_path = out / "model.onnx"
    export_graph(model, tokenizer, onnx_path)
    model.config.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))

    def difference(path: Path) -> float:
        logits = session_logits(path, enc["input_ids"].numpy(), enc["attention_mask"].numpy())
        return float(np.abs(logits - reference).max())

    plain = out / "model.plain.onnx"
    if quantize == "int8":
        shutil.copyfile(onnx_path, plain)  # int8 starts from the unfused graph
    fusions = _fuse_for_onnxruntime(onnx_path, out / "model.fused.onnx")
    if fusions and difference(out / "model.fused.onnx") <= PARITY_TOLERANCE:
        (out / "model.fused.onnx").replace(onnx_path)
    else:
        (out / "model.fused.onnx").unlink(missing_ok=True)
        fusions = {}
    run_file = onnx_path
    kept_fp32: list[str] = []
    if quantize == "int8":
        run_file = out / "model.int8.onnx"
        kept_fp32 = _quantize_int8(plain, run_file, model.config.intermediate_size)
        plain.unlink()

    parity = {name: difference(out / name) for name in ("model.onnx", run_file.name)}
    return {"model_file": run_file.name, "quantize": quantize, "fusions": fusions,
            "int8_kept_fp32": kept_fp32, "max_abs_logit_difference_vs_torch": parity}


def export_graph(model, tokenizer, path: Path) -> None:
    """torch.onnx (dynamo) export of `model`'s logits with dynamic batch and sequence axes."""
    import torch

    from ..segments import sep_for, type_ids

    sep_id = sep_for(tokenizer)

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            if sep_id is None:
                return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits
            # Segment ids inside the graph, by the rule every backend uses (segments.type_ids): the ONNX
            # backend feeds ids and mask alone, for single sentences and pairs alike.
            types = type_ids(input_ids, sep_id).long() * attention_mask
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=types).logits

    example = tokenizer(PARITY_SENTENCES[:2], padding=True, return_tensors="pt")
    batch, seq = torch.export.Dim("batch", min=1), torch.export.Dim("sequence", min=2)
    # torch.onnx prints its progress: on stderr, so that stdout carries export.json alone
    with torch.no_grad(), contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        for message in TORCH_EXPORT_NOISE:
            warnings.filterwarnings("ignore", message=message)
        torch.onnx.export(Logits(model).eval(), (example["input_ids"], example["attention_mask"]), str(path),
                          input_names=["input_ids", "attention_mask"], output_names=["logits"], dynamo=True,
                          external_data=False,
                          dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}})


def _fuse_for_onnxruntime(source: Path, target: Path) -> dict[str, int]:
    """onnxscript's transformer fusions for onnxruntime; returns the fusions applied (empty: none or failed)."""
    import onnx_ir as ir
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    try:
        model, counts = optimize_for_ort(ir.load(str(source)))
    except Exception as exc:  # a graph the rewriter does not know: export it unfused
        log.warning("onnxruntime fusions skipped (%s)", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return {}
    applied = {name: n for name, n in counts.items() if n}
    if applied:
        ir.save(model, str(target))
    return applied


def weight_matmuls(path: Path) -> list[tuple[str, tuple[int, ...]]]:
    """(node name, weight shape) of each MatMul with a constant weight, in graph order."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    return [(node.name, shapes[node.input[1]]) for node in graph.node
            if node.op_type == "MatMul" and len(node.input) == 2 and node.input[1] in shapes]


def ffn_output_matmuls(path: Path, intermediate_size: int) -> list[str]:
    """The FFN output projections (weight intermediate x hidden), first layer first."""
    return [name for name, shape in weight_matmuls(path) if len(shape) == 2 and shape[0] == intermediate_size]


def ffn_input_matmuls(path: Path, intermediate_size: int) -> list[str]:
    """The FFN input projections (weight hidden x intermediate, or x 2 intermediate for gated FFNs such as
    ModernBERT's), first layer first."""
    widths = (intermediate_size, 2 * intermediate_size)
    return [name for name, shape in weight_matmuls(path)
            if len(shape) == 2 and shape[1] in widths and shape[0] != intermediate_size]


def fp32_ffn_matmuls(path: Path, intermediate_size: int, layers: int) -> list[str]:
    """Both FFN projections of the first `layers` layers: the MatMuls int8 leaves in fp32."""
    return ffn_input_matmuls(path, intermediate_size)[:layers] + ffn_output_matmuls(path, intermediate_size)[:layers]


def _quantize_int8(source: Path, target: Path, intermediate_size: int) -> list[str]:
    """Dynamic int8 of the MatMuls (see the module docstring); returns the MatMul nodes left in fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = fp32_ffn_matmuls(source, intermediate_size, INT8_FP32_FFN_LAYERS)
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"], nodes_to_exclude=keep)
    return keep


@contextlib.contextmanager
def _info_quiet():
    """Only warnings from the libraries that build the graph: at INFO, onnx_ir and onnxscript log a line per
    initializer they merge or slice they fold, and onnxruntime's quantizer (on the root logger) one per tensor it
    leaves alone ("Quantization parameters for tensor ... not specified"): hundreds of lines that say nothing
    wrong. The root logger's level, which every library logger without its own level follows, is raised for
    the call and restored after it; with DEBUG asked for (MODERNBERT_GLUE_LOG), everything still shows."""
    root = logging.getLogger()
    level = root.level
    if logging.DEBUG < level < logging.WARNING:
        root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)
