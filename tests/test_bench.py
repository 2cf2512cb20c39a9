import json

from modernbert_glue.bench import make_batches

from .conftest import TINY_ARGS, run_cli


def test_bench_train_writes_results_for_every_path(small_sst2, tmp_path):
    out = tmp_path / "bench.json"
    overrides = [a for a in TINY_ARGS]
    code, stdout, stderr = run_cli("bench", "train", *overrides, "--data-dir", small_sst2, "--batch-size", "16",
                                   "--steps", "1", "--repeats", "3", "--output", out)
    assert code == 0, stderr[-2000:]
    report = json.loads(out.read_text())
    assert [r["path"] for r in report["results"]] == ["padded-128", "dynamic", "grouped", "packed"]
    for r in report["results"]:
        assert r["real_tokens_per_s"] > 0 and r["sentences_per_s"] > 0 and r["peak_memory_mb"] > 0
        assert len(r["seconds_per_repeat"]) == 3
        assert not {k for k in r if "tokens_per_s" in k} - {"real_tokens_per_s"}  # one token-rate key only
    by = {r["path"]: r for r in report["results"]}
    assert by["packed"]["padding_fraction"] < by["dynamic"]["padding_fraction"]  # only row ends are padded
    assert by["padded-128"]["padding_fraction"] > by["dynamic"]["padding_fraction"] > by["grouped"]["padding_fraction"]
    assert report["command"] and report["versions"]["torch"] and report["hardware"]["cpu"] and report["date"]
    assert "packed/dynamic" in report["ratios_real_tokens_per_s"]
    code, _, stderr = run_cli("bench", "train", *overrides, "--data-dir", small_sst2, "--output", out)
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
    code, stdout, stderr = run_cli("bench", "infer", *TINY_ARGS, "--model-override", "max_position_embeddings=256",
                                   "--data-dir", small_sst2, "--lengths", "64,128,512", "--steps", "1",
                                   "--repeats", "1", "--output", out)
    assert code == 0, stderr[-2000:]
    rows = {r["length"]: r for r in json.loads(out.read_text())["results"]}
    assert rows[64]["supported"] and rows[128]["supported"] and rows[128]["real_tokens_per_s"] > 0
    assert rows[512] == {"path": "fixed-512", "length": 512, "model_max_positions": 256, "supported": False,
                         "reason": "the model has 256 positions"}
    code, _, stderr = run_cli("bench", "train", "--lengths", "128", "--data-dir", small_sst2)
    assert code == 2 and "--lengths goes with `bench infer`" in stderr
