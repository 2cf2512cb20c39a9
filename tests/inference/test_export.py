import json

import numpy as np
import pytest

from modernbert_glue.inference.backends import Classifier
from modernbert_glue.inference.onnx import OnnxClassifier

from ..conftest import SST2, run_cli


def _dev_sentences(n=64):
    return [line.split("\t")[0] for line in (SST2 / "dev.tsv").read_text().splitlines()[1 : n + 1]]


@pytest.fixture(scope="module")
def int8_export(tiny_run, tmp_path_factory):
    """(the int8 export folder, what `export onnx --quantize int8` wrote on stderr, the warnings it gave)."""
    import warnings

    out = tmp_path_factory.mktemp("onnx") / "tiny"
    with warnings.catch_warnings(record=True) as given:
        warnings.simplefilter("always")  # each one, as a first export in a fresh process shows it
        code, stdout, stderr = run_cli("export", "onnx", "--model", tiny_run / "model", "--output", out, "--quantize",
                                       "int8")
    assert code == 0, stderr[-2000:]
    assert json.loads(stdout)["model_file"] == "model.int8.onnx"  # stdout is export.json alone: it parses
    return out, stderr, [str(w.message) for w in given]


@pytest.fixture(scope="module")
def exported(int8_export):
    return int8_export[0]


def test_export_logs_no_info_lines_of_the_graph_libraries(int8_export):
    """onnxruntime's quantizer (on the root logger), onnx_ir and onnxscript log hundreds of INFO lines (a tensor
    left alone, an initializer merged); the export shows only their warnings, and restores the log level."""
    import logging

    from modernbert_glue.inference.export import _info_quiet

    stderr, given = int8_export[1:]
    assert "Quantization parameters for tensor" not in stderr and "INFO root" not in stderr
    assert not [w for w in given if "axis name" in w or "LeafSpec" in w], given  # torch's exporter's own noise
    assert "INFO onnx_ir" not in stderr and "INFO onnxscript" not in stderr
    root = logging.getLogger()
    level = root.level
    try:
        for asked, during in ((logging.INFO, logging.WARNING), (logging.DEBUG, logging.DEBUG)):
            root.setLevel(asked)
            with _info_quiet():
                assert root.level == during
            assert root.level == asked
    finally:
        root.setLevel(level)


def test_fp32_onnx_matches_torch_modernbert(tiny_run, exported):
    info = json.loads((exported / "export.json").read_text())
    assert info["model_file"] == "model.int8.onnx" and info["max_abs_logit_difference_vs_torch"]["model.onnx"] < 1e-4
    # The tiny model's two layers keep both FFN projections in fp32 (export.py): plain MatMuls in the int8 graph.
    import onnx

    kept = set(info["int8_kept_fp32"])
    int8_graph = onnx.load(str(exported / "model.int8.onnx")).graph
    assert len(kept) == 4 and kept <= {n.name for n in int8_graph.node if n.op_type == "MatMul"}
    assert sum(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in int8_graph.node) >= 4
    sentences = _dev_sentences()
    torch_probs = Classifier.load(str(tiny_run / "model")).probabilities(sentences)
    (exported / "fp32").mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "model.onnx"):
        (exported / "fp32" / name).write_bytes((exported / name).read_bytes())
    (exported / "fp32" / "export.json").write_text(json.dumps({**info, "model_file": "model.onnx"}))
    onnx_probs = OnnxClassifier(exported / "fp32").probabilities(sentences)
    assert np.abs(onnx_probs - torch_probs).max() < 1e-4


def test_fp32_onnx_matches_torch_bert_on_pairs(tmp_path):
    """A BERT-style pair classifier (all-MiniLM-L6-v2's first 2 layers, real weights, new head) exports with dynamic
    axes, its segment ids computed inside the graph: single sentences and pairs match torch."""
    import torch

    from modernbert_glue.inference_settings import InferenceSettings
    from modernbert_glue.models import build_classifier
    from modernbert_glue.tasks import get_task

    torch.manual_seed(0)
    task = get_task("rte")
    model, tokenizer = build_classifier("sentence-transformers/all-MiniLM-L6-v2", task,
                                        overrides={"num_hidden_layers": 2})
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    InferenceSettings.for_task(task, 128).save(tmp_path / "model")
    code, _, stderr = run_cli("export", "onnx", "--model", tmp_path / "model", "--output", tmp_path / "onnx")
    assert code == 0, stderr[-2000:]
    info = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert info["fusions"].get("attention") == 2  # onnxruntime's fused Attention, one per layer
    assert sorted(p.name for p in (tmp_path / "onnx").glob("*.onnx")) == ["model.onnx"]
    sentences = _dev_sentences(40)
    pairs = list(zip(sentences[:20], sentences[20:]))
    torch_model, onnx_model = Classifier.load(str(tmp_path / "model")), OnnxClassifier(tmp_path / "onnx")
    for inputs in (sentences, pairs):
        assert np.abs(onnx_model.probabilities(inputs) - torch_model.probabilities(inputs)).max() < 1e-4


def test_predict_with_the_onnx_backend(exported):
    code, stdout, stderr = run_cli("predict", "--backend", "onnx", "--model", exported, "a fine film", "dull")
    assert code == 0, stderr
    assert [json.loads(x)["text"] for x in stdout.splitlines()] == ["a fine film", "dull"]
    assert "classified 2 texts in" in stderr and "model loading excluded" in stderr
    code, _, stderr = run_cli("predict", "--model", exported, "a fine film")
    assert code == 2 and "an ONNX export folder; pass --backend onnx" in stderr
    code, _, stderr = run_cli("evaluate", "--model", exported, "--data-dir", SST2, "--max-eval-samples", 8)
    assert code == 2 and "an ONNX export folder; pass --backend onnx" in stderr  # and evaluate has that option:


def test_evaluate_with_the_onnx_backend(tiny_run, exported):
    args = ("--data-dir", SST2, "--max-eval-samples", 64)
    code, stdout, stderr = run_cli("evaluate", "--backend", "onnx", "--model", exported, *args)
    assert code == 0, stderr
    int8, fp32 = json.loads(stdout), json.loads(run_cli("evaluate", "--model", tiny_run, *args)[1])
    assert int8["n"] == fp32["n"] == 64 and abs(int8["accuracy"] - fp32["accuracy"]) <= 3 / 64  # int8 ~ torch
    code, _, stderr = run_cli("export", "onnx", "--model", exported, "--output", exported)
    assert code == 2 and "output folder is not empty" in stderr


def test_an_export_folder_is_refused_as_a_model_to_export(exported, tmp_path):
    code, _, stderr = run_cli("export", "onnx", "--model", exported, "--output", tmp_path / "again")
    assert code == 2 and stderr.strip().splitlines()[-1] == (
        f"error: {exported}: an ONNX export already; export the model it came from (export.json's 'source')")
    assert not (tmp_path / "again").exists()


def test_torch_only_options_with_the_onnx_backend_are_refused(exported):
    for option in (["--bf16", "on"], ["--input-path", "packed"]):  # were ignored without a word
        code, stdout, stderr = run_cli("predict", "--model", exported, "--backend", "onnx", *option, "good")
        assert code == 2 and stdout == "" and "--input-path and --bf16 go with --backend torch" in stderr


def test_a_damaged_export_is_refused_in_one_line(exported, tmp_path):
    """A truncated or missing ONNX file, or a broken export.json, was onnxruntime's (or json's) traceback, exit 1."""
    import shutil

    from modernbert_glue.errors import UserError

    def damaged(name: str, damage) -> object:
        folder = tmp_path / name
        shutil.copytree(exported, folder)
        damage(folder)
        return folder

    truncated = damaged("truncated", lambda f: (f / "model.int8.onnx").write_bytes((f / "model.int8.onnx").read_bytes()[:1000]))
    for folder, why in ((truncated, "INVALID_PROTOBUF"),
                        (damaged("missing", lambda f: (f / "model.int8.onnx").unlink()), "NO_SUCHFILE"),
                        (damaged("json", lambda f: (f / "export.json").write_text("{")), "Expecting"),
                        (damaged("field", lambda f: (f / "export.json").write_text("{}")), "no 'model_file' field")):
        with pytest.raises(UserError, match=f"^{folder}: cannot load the ONNX export \\(.*{why}.*\\); export the model again$"):
            OnnxClassifier(folder)
    code, stdout, stderr = run_cli("predict", "--backend", "onnx", "--model", truncated, "a fine film")
    assert code == 2 and stdout == "" and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith(f"error: {truncated}: cannot load the ONNX export (")


def test_an_export_inside_the_run_it_reads_is_refused_as_compare_refuses_a_report(tiny_run, tmp_path):
    for output in (tiny_run / "model" / "onnx", tiny_run / "onnx"):  # it would then block the run's --overwrite
        code, _, stderr = run_cli("export", "onnx", "--model", tiny_run, "--output", output)
        assert code == 2 and stderr.strip().splitlines()[-1].startswith(f"error: --output {output}: inside the run "
                                                                         "folder") and not output.exists(), stderr
