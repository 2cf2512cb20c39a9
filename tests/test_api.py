"""The Python API (api.py, handed out by the package): the commands' work as functions, writing the run folder the
CLI reads, agreeing with the CLI's predictions, and refusing what the CLI refuses with its line."""

import json
import subprocess
import sys

import pytest

import modernbert_glue as mg

from .conftest import MODERNBERT, PROB_ATOL, REPO, TINY, run_cli

TINY_OVERRIDES = {key: int(value) for key, value in (item.split("=") for item in TINY)}


def tiny_settings(data_dir, **more) -> dict:
    return {"model.name": str(MODERNBERT), "model.random_init": True, "data.data_dir": str(data_dir),
            "data.max_train_samples": 64, "data.max_length": 64, "train.epochs": 1, "train.batch_size": 16,
            "train.lr": 1e-3, **more}


def test_importing_the_package_loads_no_torch_and_hands_out_the_api():
    code = ("import sys, modernbert_glue as mg; before = 'torch' in sys.modules; f = mg.train; "
            "print(before, f.__module__, 'torch' in sys.modules, sorted(mg.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 3)
    assert out[:3] == ["False", "modernbert_glue.api", "False"]  # torch loads when a function runs, not before
    assert all(callable(getattr(mg, name)) for name in mg.__all__) and set(mg.__all__) <= set(dir(mg))
    # a module of the package's own named as a function would replace it once imported (sweep.py did)
    package = REPO / "src" / "modernbert_glue"
    assert not [name for name in mg.__all__ if (package / f"{name}.py").exists() or (package / name).is_dir()]
    assert "paper-sst2" in mg.list_presets() and mg.show_preset("paper-sst2")["train"]["lr"] == 8e-5
    with pytest.raises(mg.UserError, match="no-such-preset"):
        mg.show_preset("no-such-preset")
    with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):
        mg.no_such_thing  # noqa: B018


def test_type_checkers_see_every_name_the_package_hands_out():
    """Editors and type checkers read the package statically (py.typed): its TYPE_CHECKING imports name every lazy
    function, each from the module that defines it."""
    import ast

    tree = ast.parse((REPO / "src" / "modernbert_glue" / "__init__.py").read_text())
    guarded = [node for node in tree.body if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"]
    assert len(guarded) == 1, "one `if TYPE_CHECKING:` block"
    names = {alias.name: node.module for node in guarded[0].body if isinstance(node, ast.ImportFrom)
             for alias in node.names}
    assert set(names) == set(mg.__all__) - {"UserError"} and set(names.values()) == {"api"}
    assert (REPO / "src" / "modernbert_glue" / "py.typed").is_file()


def test_train_in_python_writes_the_run_folder_the_commands_read(small_sst2, tmp_path):
    out = tmp_path / "run"
    metrics = mg.train(out, settings=tiny_settings(small_sst2), model_overrides=TINY_OVERRIDES)
    saved = json.loads((out / "metrics.json").read_text())
    assert metrics["eval_accuracy"] == saved["eval_accuracy"] and saved["train_samples"] == 64
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["train"]["lr"] == 1e-3 and config["model"]["overrides"] == TINY_OVERRIDES

    texts = ["a gripping , funny and moving film", "dull , flat and far too long", "it is a film"]
    model = mg.load_model(out / "model")
    records = mg.predict(model, texts)
    assert [r["text"] for r in records] == texts
    assert records == mg.predict(str(out / "model"), texts)  # a folder is loaded as load_model loads it
    code, stdout, stderr = run_cli("predict", "--model", str(out / "model"), *texts)
    assert code == 0, stderr
    cli = [json.loads(line) for line in stdout.splitlines()]
    for ours, theirs in zip(records, cli, strict=True):
        assert ours["score"] == pytest.approx(theirs["score"], abs=PROB_ATOL)
        if ours["score"] > 0.5 + PROB_ATOL:  # a label, where the two classes are not tied
            assert ours["label"] == theirs["label"]

    evaluation = mg.evaluate(out, data_dir=small_sst2)  # a run folder names its model/, as --model takes it
    assert evaluation["n"] == 160  # the best checkpoint is the model saved: its dev accuracy is the run's
    assert evaluation["accuracy"] == pytest.approx(saved["eval_accuracy"], abs=1.5 / 160)


def test_mistakes_raise_the_commands_line_and_write_nothing(small_sst2, tiny_run, tmp_path):
    with pytest.raises(mg.UserError, match="unknown config key 'train.lrr'"):
        mg.train(tmp_path / "a", settings={"train.lrr": 1e-4})
    with pytest.raises(mg.UserError, match="--seeds gives each run its seed"):
        mg.train(tmp_path / "b", seeds=[1, 2], settings={"train.seed": 3})
    with pytest.raises(mg.UserError, match="'train.epochs' must be more than 0"):
        mg.train(tmp_path / "c", settings={**tiny_settings(small_sst2), "train.epochs": "0"})  # text parses as --set
    with pytest.raises(mg.UserError, match="'train.lr': a baseline takes only the data.\\* settings"):
        mg.baseline("majority", tmp_path / "e", settings={"data.data_dir": str(small_sst2), "train.lr": 1e-4})
    with pytest.raises(mg.UserError, match="got one string"):
        mg.predict(tiny_run / "model", "one sentence is a list of letters")
    with pytest.raises(mg.UserError, match="finished already"):
        mg.resume(tiny_run)
    with pytest.raises(mg.UserError, match="seeds: a list of integers, got int"):
        mg.train(tmp_path / "f", seeds=42)
    with pytest.raises(mg.UserError, match="seeds: a list of integers, got one string"):
        mg.train(tmp_path / "g", seeds="12")
    with pytest.raises(mg.UserError, match="--seeds must be integers, got 1.5"):
        mg.train(tmp_path / "g", seeds=[1, 1.5])
    with pytest.raises(mg.UserError, match="settings: a dict of dotted keys"):
        mg.train(tmp_path / "h", settings=["train.lr=1e-4"])
    with pytest.raises(mg.UserError, match="runs: a list of folders, got one path"):
        mg.compare(tiny_run, tmp_path / "report")
    with pytest.raises(mg.UserError, match="batchsize: not an option of a model"):
        mg.load_model(tiny_run, batchsize=8)
    with pytest.raises(mg.UserError, match="--input-path and --bf16 go with --backend torch"):
        mg.load_model(tiny_run, backend="onnx", bf16=True)
    with pytest.raises(mg.UserError, match="sweep: --lr needs positive values"):
        mg.sweep(tmp_path / "i", lr=[-1.0], seeds=[1])
    with pytest.raises(mg.UserError, match="sweep: --epochs needs positive values, got \\['2'\\]"):
        mg.sweep(tmp_path / "j", lr=[1e-4], epochs=["2"], seeds=[1])
    with pytest.raises(mg.UserError, match="text_columns: a list of column names, got one string"):
        mg.evaluate(tiny_run, file=small_sst2 / "dev.tsv", text_columns="sentence")
    with pytest.raises(mg.UserError, match="--seed must be integers, got '42'"):
        mg.baseline("majority", tmp_path / "k", settings={"data.data_dir": small_sst2}, seed="42")
    for call, what, got in (  # os.fspath's TypeError before
            (lambda: mg.load_model(5), "folder", "5"), (lambda: mg.resume(None), "run_dir", "None"),
            (lambda: mg.evaluate(tiny_run, data_dir=5), "data_dir", "5"),
            (lambda: mg.train(123, check=True), "output_dir", "123"), (lambda: mg.show_preset(3), "name", "3")):
        with pytest.raises(mg.UserError, match=f"^{what}: expected a path \\(str or os.PathLike\\), got {got}$"):
            call()
    with pytest.raises(mg.UserError, match="texts: a list of sentences \\(or pairs\\), got dict"):
        mg.predict(tiny_run, {"a fine film": 1})  # its keys were classified
    with pytest.raises(mg.UserError, match="^model: a model folder or a model from load_model, got 5$"):
        mg.predict(5, ["a fine film"])  # an AttributeError before
    assert len(mg.predict(tiny_run, {"a fine film": 1}.keys())) == 1  # a dict's keys have an order: taken
    with pytest.raises(mg.UserError, match="texts: a list of sentences \\(or pairs\\), got set"):
        mg.predict(tiny_run, {"a fine film"})
    with pytest.raises(mg.UserError, match="input 2: .* classifies single sentences, got 3$"):
        mg.predict(tiny_run, ["a fine film", 3])
    for text, line in (("\u3000", "the text is empty or only whitespace"), ("\ud800", "not valid Unicode")):
        with pytest.raises(mg.UserError, match=f"^input 2: {line}"):  # as the commands and the server refuse them
            mg.predict(tiny_run, ["a fine film", text])
    with pytest.raises(mg.UserError, match="^model_dir: expected a path \\(str or os.PathLike\\), got a "):
        mg.evaluate(mg.load_model(tiny_run), file=small_sst2 / "dev.tsv")  # its repr was 50 lines
    with pytest.raises(mg.UserError, match="^text_columns: column names are strings, got 1$"):
        mg.evaluate(tiny_run, file=small_sst2 / "dev.tsv", text_columns=[1])  # a TypeError in the error's own line
    for options, line in (({"seeds": None}, "seeds: a list of integers, got NoneType"),
                          ({"seeds": [1], "parallel": "2"}, "--parallel must be a whole number of at least 1, got '2'"),
                          ({"seeds": [1], "memory_per_run_gb": "4"}, "--memory-per-run-gb must be a number")):
        with pytest.raises(mg.UserError, match=line):  # TypeErrors before
            mg.sweep(tmp_path / "l", lr=[1e-4], **options)
    with pytest.raises(mg.UserError, match="^model: a model folder or a model from load_model, got a list$"):
        mg.predict(list(range(100)), ["a fine film"])  # its repr was the whole list
    with pytest.raises(mg.UserError, match=r"^sweep: `train --check` with the runs' options printed no config"):
        mg.sweep(tmp_path / "n", lr=[1e-4], seeds=[1], train_args=["--help"])  # help, exit 0: a JSONDecodeError
    for call in (mg.compare, mg.glue_submission):
        with pytest.raises(mg.UserError, match="^runs: give at least one run folder$"):  # compare: an IndexError
            call([], tmp_path / "m")
    checked = mg.train(tmp_path / "d", settings=tiny_settings(small_sst2, **{"train.lr": "5e-4"}),
                       model_overrides=TINY_OVERRIDES, check=True)
    assert checked["check"] == "ok" and checked["config"]["train"]["lr"] == 5e-4
    assert not any(tmp_path.iterdir())


def test_a_baseline_in_python_is_the_commands_run_folder(small_sst2, tmp_path):
    metrics = mg.baseline("majority", tmp_path / "floor", settings={"data.data_dir": small_sst2})
    saved = json.loads((tmp_path / "floor" / "metrics.json").read_text())
    assert metrics["eval_accuracy"] == saved["eval_accuracy"] and saved["eval_samples"] == 160
    code, stdout, stderr = run_cli("evaluate", "--model", str(tmp_path / "floor"), "--data-dir", str(small_sst2))
    assert code == 0, stderr
    assert json.loads(stdout)["accuracy"] == pytest.approx(saved["eval_accuracy"])


def test_a_pair_model_takes_pairs_and_refuses_anything_else(rte_run):
    model = mg.load_model(rte_run / "model")
    records = mg.predict(model, [("A man plays a guitar.", "A man plays an instrument."), ["It rains.", "It is dry."]])
    assert [(r["text"], r["text_pair"]) for r in records] == [
        ("A man plays a guitar.", "A man plays an instrument."), ("It rains.", "It is dry.")]
    for bad in ("one sentence", ("a", "b", "c"), ("a", 1), 5):
        with pytest.raises(mg.UserError, match="input 2: the model classifies sentence pairs"):
            mg.predict(model, [("a", "b"), bad])
    with pytest.raises(mg.UserError, match=r"input 2: the model classifies sentence pairs: give each as \(first, "
                                           r"second\), got \('a', 1\)$"):
        mg.predict(model, [("a", "b"), ("a", 1)])


def test_a_sweep_in_python_gives_its_runs_the_settings(small_sst2, tmp_path):
    settings = tiny_settings(small_sst2, **{"data.text_columns": ["sentence"], "train.bf16": "off"})
    with pytest.raises(mg.UserError, match=r"^sweep: --set train.lr \(--lr is in the grid\) gives each run its "
                                           "value: leave out --set train.lr$"):  # the grid's won without a word
        mg.sweep(tmp_path / "sweep", lr=(1e-3,), seeds=[7], settings=settings)
    del settings["train.lr"]
    result = mg.sweep(tmp_path / "sweep", lr=(1e-3,), seeds=[7], settings=settings, model_overrides=TINY_OVERRIDES)
    [run_json] = (tmp_path / "sweep").glob("*seed-7/run.json")
    run = json.loads(run_json.read_text())["config"]
    assert (run["train"]["lr"], run["train"]["seed"], run["train"]["bf16"]) == (1e-3, 7, "off")
    assert run["model"]["overrides"] == TINY_OVERRIDES and run["data"]["text_columns"] == ["sentence"]
    assert result["chosen"]["name"] == "lr=0.001"


def test_the_readmes_example_calls_the_api_as_it_is():
    """Every `mg.NAME(...)` in the README's Python API example names a function of the API and only parameters it
    has (the example itself trains for minutes: it ran by hand, not here)."""
    import ast
    import inspect

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    example = readme.split("### Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    calls = [node for node in ast.walk(ast.parse(example)) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "mg"]
    assert len(calls) >= 7
    for call in calls:
        assert call.func.attr in mg.__all__, call.func.attr
        inspect.signature(getattr(mg, call.func.attr)).bind(*call.args, **{k.arg: None for k in call.keywords})


def test_a_benchmark_in_python_times_the_paths_it_is_given(small_sst2, tmp_path):
    report = mg.benchmark("infer", model=MODERNBERT, model_overrides=TINY_OVERRIDES, data_dir=small_sst2,
                          paths=("padded", "packed"), steps=1, repeats=1, bf16=False, output=tmp_path / "bench.json")
    assert [r["path"] for r in report["results"]] == ["padded", "packed"] and report["config"]["bf16"] is False
    assert json.loads((tmp_path / "bench.json").read_text())["results"] == report["results"]
    with pytest.raises(mg.UserError, match="--lengths and --variable-means go with `bench infer`"):
        mg.benchmark("train", model=MODERNBERT, lengths=[128])
    with pytest.raises(mg.UserError, match="paths: a list of input paths, got one string"):
        mg.benchmark("infer", model=MODERNBERT, paths="padded,packed")
    with pytest.raises(mg.UserError, match=r"--variable-means are whole numbers of tokens, got \['128'\]"):
        mg.benchmark("infer", model=MODERNBERT, lengths=["128"])
    with pytest.raises(mg.UserError, match="--bf16 must be auto, fast, on or off"):
        mg.benchmark("infer", model=MODERNBERT, bf16="sometimes")
