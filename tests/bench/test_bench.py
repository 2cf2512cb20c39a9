import json

from modernbert_glue.bench.flops import FlopModel, flop_model, step_flops
from modernbert_glue.bench.lengths import first_fit_order
from modernbert_glue.bench.paths import make_batches
from modernbert_glue.models import build_classifier
from modernbert_glue.tasks import get_task

from ..conftest import MODERNBERT, TINY_ARGS, run_cli


def test_bench_train_writes_results_for_every_path(small_sst2, tmp_path):
    out = tmp_path / "bench.json"
    overrides = [a for a in TINY_ARGS]
    code, stdout, stderr = run_cli("bench", "train", "--model", MODERNBERT, *overrides, "--data-dir", small_sst2, "--batch-size", "16",
                                   "--steps", "1", "--repeats", "3", "--output", out)
    assert code == 0, stderr[-2000:]
    report = json.loads(out.read_text())
    assert [r["path"] for r in report["results"]] == ["padded", "dynamic", "grouped", "packed"]
    for r in report["results"]:
        assert r["real_tokens_per_s"] > 0 and r["sentences_per_s"] > 0 and r["peak_memory_mb"] > 0
        assert len(r["seconds_per_repeat"]) == 3
        assert 0 < r["mfu"] < 1 and r["warmup_seconds"] > 0 and r["compile"] is None
        assert not {k for k in r if "tokens_per_s" in k} - {"real_tokens_per_s"}  # one token-rate key only
    by = {r["path"]: r for r in report["results"]}
    assert by["packed"]["padding_fraction"] < by["dynamic"]["padding_fraction"]  # only row ends are padded
    assert by["padded"]["padding_fraction"] > by["dynamic"]["padding_fraction"] > by["grouped"]["padding_fraction"]
    assert report["command"] and report["versions"]["torch"] and report["hardware"]["cpu"] and report["date"]
    assert "packed/dynamic" in report["ratios_real_tokens_per_s"] and report["matmul"]["tflops"] > 0
    assert "grouped times length-grouped batches of other sentences" in stderr  # its sent/s is not comparable
    code, _, stderr = run_cli("bench", "train", "--model", MODERNBERT, *overrides, "--data-dir", small_sst2, "--output", out)
    assert code == 2 and "exists (results are not overwritten" in stderr


def test_dynamic_and_packed_draw_the_same_batches():
    lengths = [5 + (i * 7) % 40 for i in range(1000)]
    assert make_batches(lengths, "dynamic", 64, 5, 0) == make_batches(lengths, "packed", 64, 5, 0)
    grouped = make_batches(lengths, "grouped", 64, 5, 0)
    assert len(grouped) == 5 and all(len(b) == 64 for b in grouped)
    spread = lambda b: max(lengths[i] for i in b) - min(lengths[i] for i in b)  # noqa: E731
    assert sum(map(spread, grouped)) < sum(map(spread, make_batches(lengths, "dynamic", 64, 5, 0)))


def test_bench_infer_lengths_marks_unsupported(small_sst2, tmp_path):
    out = tmp_path / "lengths.json"
    code, stdout, stderr = run_cli("bench", "infer", "--model", MODERNBERT, *TINY_ARGS, "--model-override", "max_position_embeddings=256",
                                   "--data-dir", small_sst2, "--lengths", "64,128,512", "--steps", "1",
                                   "--repeats", "1", "--output", out)
    assert code == 0, stderr[-2000:]
    rows = {r["length"]: r for r in json.loads(out.read_text())["results"]}
    assert rows[64]["supported"] and rows[128]["supported"] and rows[128]["real_tokens_per_s"] > 0
    for row in (rows[64], rows[128]):  # the records the README lists: timed work, its FLOP rate and MFU
        assert row["warmup_seconds"] > 0 and row["model_tflops_per_s"] > 0 and 0 < row["mfu"]
    assert rows[512] == {"path": "fixed-512", "length": 512, "model_max_positions": 256, "supported": False,
                         "reason": "the model has 256 positions"}
    code, _, stderr = run_cli("bench", "train", "--model", MODERNBERT, "--lengths", "128", "--data-dir", small_sst2)
    assert code == 2 and "--lengths and --variable-means go with `bench infer`" in stderr
    code, _, stderr = run_cli("bench", "infer", "--model", MODERNBERT, "--lengths", "128", "--batch-size", "8", "--data-dir", small_sst2)
    assert code == 2 and "--batch-size goes with the input paths" in stderr  # not silently ignored


def test_step_flops_counts_weights_and_attention():
    fm = FlopModel(encoder_params=1000, head_params=10, hidden=4, global_layers=1, local_layers=2, local_keys=3)
    # 5 tokens: 1 global layer sees 5 keys per token, 2 local layers 3 keys per token
    pairs = 5 * 5 + 2 * 5 * 3
    assert step_flops(fm, [5], train=True) == 6 * (1000 * 5 + 10) + 12 * 4 * pairs
    assert step_flops(fm, [5], train=False) == 2 * (1000 * 5 + 10) + 4 * 4 * pairs


def test_flop_model_of_a_modernbert_config():
    model, _ = build_classifier(str(MODERNBERT), get_task("sst2"), random_init=True,
                                overrides=dict(num_hidden_layers=3, hidden_size=64, intermediate_size=128,
                                               num_attention_heads=2))
    fm = flop_model(model)
    assert (fm.global_layers, fm.local_layers) == (1, 2)  # global every 3rd layer, from layer 0
    assert fm.local_keys == 2 * model.config.sliding_window + 1
    embedding = model.get_input_embeddings().weight.numel()
    assert fm.encoder_params + fm.head_params < sum(p.numel() for p in model.parameters()) - embedding + 1
    assert fm.head_params > 0 and fm.hidden == 64


def test_bench_infer_variable_lengths_pack_without_padding(small_sst2, tmp_path):
    out = tmp_path / "table2.json"
    code, _, stderr = run_cli("bench", "infer", "--model", MODERNBERT, *TINY_ARGS, "--data-dir", small_sst2, "--variable-means", "64",
                              "--lengths", "128", "--steps", "1", "--repeats", "1", "--output", out)
    assert code == 0, stderr[-2000:]
    rows = {r["path"]: r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {"fixed-128", "variable-64-padded", "variable-64-packed"}
    assert rows["variable-64-packed"]["padding_fraction"] < rows["variable-64-padded"]["padding_fraction"]
    assert rows["variable-64-packed"]["batch_size"] == rows["variable-64-padded"]["batch_size"] > 1


def test_first_fit_order_packs_rows_tightly():
    from modernbert_glue.packing import pack

    lengths = [300, 250, 200, 260, 210, 290]
    order = first_fit_order(lengths, 512)
    assert sorted(order) == list(range(6))
    batch = pack([[1] * lengths[i] for i in order], row_tokens=512)
    assert batch.input_ids.shape[0] == 3  # 300+210, 290+200, 260+250; in the given order, 4 rows
    assert pack([[1] * n for n in lengths], row_tokens=512).input_ids.shape[0] == 4


def test_bench_defaults_to_the_hub_model_not_a_path_beside_the_repository(small_sst2, tmp_path):
    """The default was ../shared/models/modernbert-base, relative to wherever the command ran; now ModernBERT-base's
    Hub id, which offline asks for a local folder in one line."""
    code, stdout, stderr = run_cli("bench", "train", "--data-dir", small_sst2, "--steps", "1", "--repeats", "1",
                                   env={"HF_HOME": str(tmp_path / "hf")}, separate=True)  # an empty cache (read at import)
    assert code == 2 and stdout == "" and "Traceback" not in stderr, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith(
        "error: model 'answerdotai/ModernBERT-base': the Hugging Face Hub is not reachable and no local copy exists")


def test_results_never_replace_a_file_that_took_their_name_while_the_benchmark_ran(tmp_path, caplog):
    from modernbert_glue.bench import _write_new

    out = tmp_path / "results.json"
    out.write_text('{"mine": 1}')  # written by the user after bench checked the name was free
    _write_new(out, {"results": []})
    _write_new(out, {"results": [2]})
    assert json.loads(out.read_text()) == {"mine": 1}
    assert json.loads((tmp_path / "results-1.json").read_text()) == {"results": []}
    assert json.loads((tmp_path / "results-2.json").read_text()) == {"results": [2]}
    assert "results.json appeared while the benchmark ran; results written to" in caplog.text
