import tomllib

import pytest

from modernbert_glue.config import SECTIONS, load_config, resolve_run_config
from modernbert_glue.recipes import list_presets
from modernbert_glue.errors import UserError

from .conftest import REPO, run_cli


def test_presets_ship_and_start_with_their_command():
    names = list_presets()
    assert {"paper", "seed-notebook", "cpu-sbert"} <= set(names)
    folder = REPO / "src" / "modernbert_glue" / "presets"
    for name in names:
        first = (folder / f"{name}.toml").read_text().splitlines()[0]
        assert first.startswith(f"# modernbert-glue train --preset {name}"), first


# The paper's Table 6 for base: (lr, published decoupled weight decay, epochs); torch's decay is wd / lr.
PAPER_TABLE = {"cola": (8e-5, 1e-6, 5), "sst2": (8e-5, 1e-5, 2), "mrpc": (5e-5, 5e-6, 10), "stsb": (8e-5, 5e-6, 10),
               "qqp": (5e-5, 5e-6, 10), "mnli": (5e-5, 5e-6, 1), "qnli": (8e-5, 5e-6, 2), "rte": (5e-5, 1e-5, 3)}


@pytest.mark.parametrize("task", sorted(PAPER_TABLE))
def test_paper_presets_are_the_papers_recipes_in_torch_terms(task):
    cfg = load_config(f"paper-{task}")
    lr, wd, epochs = PAPER_TABLE[task]
    t = cfg.train
    assert cfg.data.task == task and cfg.data.max_length == 256 and t.batch_size == 64
    assert (t.lr, t.epochs) == (lr, epochs)
    assert t.weight_decay == pytest.approx(wd / lr)  # e.g. SST-2: 1e-5 / 8e-5 = 0.125
    assert t.decay_norms_and_biases  # DecoupledAdamW(model.parameters()) in the reference
    assert (t.adam_beta1, t.adam_beta2, t.adam_epsilon, t.lr_scheduler, t.warmup_ratio) == (0.9, 0.98, 1e-6, "linear",
                                                                                          0.06)


def test_paper_preset_is_the_papers_sst2_recipe():
    assert load_config("paper").train == load_config("paper-sst2").train
    assert load_config("paper").train.weight_decay == pytest.approx(0.125)


def test_default_preset_is_paper():
    assert load_config(None).preset == "paper"
    assert load_config(None).train == load_config("paper").train


def test_a_task_without_a_preset_gets_the_papers_recipe_for_it():
    rte = load_config(None, {"data.task": "rte"})
    assert rte.preset == "paper-rte" and rte.train == load_config("paper-rte").train and rte.train.epochs == 3
    assert load_config(None, {"data.task": "custom"}).preset == "paper"  # no paper recipe: SST-2's
    assert load_config("cpu-sbert", {"data.task": "rte"}).preset == "cpu-sbert"  # a named preset wins
    assert load_config("paper-rte", {"data.task": "rte"}).train.epochs == 3
    with pytest.raises(UserError, match="--preset paper-cola is the paper's cola recipe, not rte's: pass --preset "
                                        "paper-rte$"):  # it trained RTE with CoLA's epochs, silently
        load_config("paper-cola", {"data.task": "rte"})
    with pytest.raises(UserError, match=r"not wnli's: pass --preset paper \(SST-2's recipe\) or your own .toml$"):
        load_config("paper-cola", {"data.task": "wnli"})


def test_overrides_parse_text_by_field_type():
    cfg = resolve_run_config("paper", {"train.epochs": 1.0}, ["train.lr=1e-4", "train.seed=7", "train.input_path=dynamic"])
    assert cfg.train.lr == 1e-4 and cfg.train.seed == 7 and cfg.train.input_path == "dynamic"
    assert cfg.train.epochs == 1.0


@pytest.mark.parametrize(
    "sets, message",
    [
        (["train.learning_rate=1"], "unknown config key 'train.learning_rate'"),
        (["optim.lr=1"], "unknown config key 'optim.lr'"),
        (["train.seed=seven"], "'train.seed' must be int"),
        (["train.lr"], "expected SECTION.KEY=VALUE"),
    ],
)
def test_bad_overrides_are_refused(sets, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_run_config("paper", {}, sets)


def test_preset_file_with_unknown_key_or_wrong_type(tmp_path):
    bad_key = tmp_path / "bad_key.toml"
    bad_key.write_text("[train]\nlearning_rate = 1e-4\n")
    with pytest.raises(UserError, match=r"bad_key.toml: unknown config key 'train.learning_rate'"):
        load_config(str(bad_key))
    bad_type = tmp_path / "bad_type.toml"
    bad_type.write_text('[train]\nlr = "fast"\n')
    with pytest.raises(UserError, match=r"bad_type.toml: 'train.lr' must be float, got 'fast'"):
        load_config(str(bad_type))
    bad_section = tmp_path / "bad_section.toml"
    bad_section.write_text("[optimizer]\nlr = 1.0\n")
    with pytest.raises(UserError, match=r"unknown section \[optimizer\]"):
        load_config(str(bad_section))
    bad_section.write_text("lr = 1e-4\n[train]\nepochs = 1\n")  # was "unknown section [lr]"
    with pytest.raises(UserError, match=r"bad_section.toml: key 'lr' is outside any \[section\]; it is \[train\]'s$"):
        load_config(str(bad_section))
    with pytest.raises(UserError, match="unknown preset 'nope'"):
        load_config("nope")
    bad_value = tmp_path / "bad_value.toml"
    bad_value.write_text("[train]\nlr = nan\n")  # valid TOML, a value out of range: the file is named
    with pytest.raises(UserError, match=r"bad_value.toml: 'train.lr' must be a finite number"):
        load_config(str(bad_value))


def test_int_in_toml_accepted_for_float_but_bool_not_for_int(tmp_path):
    ok = tmp_path / "ok.toml"
    ok.write_text("[train]\nepochs = 3\n")
    assert load_config(str(ok)).train.epochs == 3.0
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nseed = true\n")
    with pytest.raises(UserError, match="'train.seed' must be int"):
        load_config(str(bad))


def test_every_field_is_documented():
    import dataclasses

    undocumented = [f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)
                    if not f.metadata.get("doc")]
    assert not undocumented, undocumented


def test_version_is_the_installed_packages():
    """`--version` prints the version pip installed (pyproject reads it from the package: one home)."""
    from importlib import metadata

    import modernbert_glue

    code, stdout, stderr = run_cli("--version")
    assert code == 0 and stderr == "", stderr
    assert stdout == f"modernbert-glue {modernbert_glue.__version__}\n"
    assert metadata.version("modernbert-glue") == modernbert_glue.__version__
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "modernbert_glue.__version__"}


def test_data_dir_from_the_environment_is_the_configs(monkeypatch, tmp_path):
    """$MODERNBERT_GLUE_DATA_DIR was read where the data loads: run.json's config said data_dir null, and a
    resume read whatever the variable named then. Now it fills data.data_dir of a new run's config, the one saved;
    --data-dir still wins, and a resumed run keeps its saved folder."""
    monkeypatch.setenv("MODERNBERT_GLUE_DATA_DIR", str(tmp_path / "from-env"))
    cfg = resolve_run_config(None, {})
    assert cfg.data.data_dir == str(tmp_path / "from-env") and cfg.to_dict()["data"]["data_dir"] == cfg.data.data_dir
    assert resolve_run_config(None, {"data.data_dir": "given"}).data.data_dir == "given"
    saved = resolve_run_config(None, {"data.data_dir": "saved"})
    assert resolve_run_config(None, {}, base=saved).data.data_dir == "saved"
    monkeypatch.setenv("MODERNBERT_GLUE_DATA_DIR", "")
    assert resolve_run_config(None, {}).data.data_dir is None


def test_a_new_runs_local_paths_are_recorded_absolute(monkeypatch, tmp_path):
    """run.json held --data-dir as typed ("data"): resumed from another folder, the run read another "data"
    there and reported metrics of other files. Hub ids and paths that do not exist stay as given."""
    (tmp_path / "data").mkdir()
    (tmp_path / "runs" / "mnli" / "seed-1" / "model").mkdir(parents=True)
    (tmp_path / "train.tsv").write_text("sentence\tlabel\n")
    monkeypatch.chdir(tmp_path)
    cfg = resolve_run_config(None, {"data.data_dir": "data", "data.train_file": "train.tsv",
                                    "data.validation_file": "nowhere.tsv", "model.name": "answerdotai/ModernBERT-base",
                                    "model.init_from": "runs/mnli/seed-{seed}/model"})
    assert cfg.data.data_dir == str(tmp_path / "data") and cfg.data.train_file == str(tmp_path / "train.tsv")
    assert cfg.data.validation_file == "nowhere.tsv" and cfg.model.name == "answerdotai/ModernBERT-base"
    assert cfg.model.init_from == str(tmp_path / "runs" / "mnli" / "seed-{seed}" / "model")
    saved = resolve_run_config(None, {"data.data_dir": "data"})
    monkeypatch.chdir(tmp_path / "runs")  # a resume keeps what was saved
    assert resolve_run_config(None, {}, base=saved).data.data_dir == str(tmp_path / "data")


def test_each_presets_header_command_checks_out_here(monkeypatch):
    """The command heading each preset passes `train --check` as written, from the repository's folder: its data
    folder exists beside the repo (or it takes the task from the Hub), its options parse and hold together. The
    Hub's ModernBERT is stood in by the tiny one from its real config; the MNLI model a round-2 preset starts
    from is named as the MNLI preset's own command writes it."""
    import shlex

    from .conftest import MODERNBERT, TINY_ARGS

    monkeypatch.chdir(REPO)
    folder = REPO / "src" / "modernbert_glue" / "presets"
    mnli_out = _option(shlex.split((folder / "paper-mnli.toml").read_text().splitlines()[0][2:]), "--output-dir")
    checked = []
    for name in list_presets():
        args = shlex.split((folder / f"{name}.toml").read_text().splitlines()[0][2:])[1:]
        if (init_from := _option(args, "--init-from")) and name.startswith("paper-"):
            assert init_from == f"{mnli_out}/seed-{{seed}}/model", name
        if (data_dir := _option(args, "--data-dir")) is None:
            continue  # the Hub's copy: not reachable here
        assert (REPO / data_dir).is_dir(), f"{name}: {data_dir}"
        args = _without(args, "--init-from", "--output-dir")
        if _option(args, "--model") == "answerdotai/ModernBERT-base":
            args = [*_without(args, "--model"), "--model", str(MODERNBERT), "--random-init", *TINY_ARGS]
        code, stdout, stderr = run_cli(*args, "--output-dir", "runs/never-written", "--check")
        assert code == 0 and '"check": "ok"' in stdout, f"{name}: {stderr[-1500:]}"
        checked.append(name)
    assert {"cpu-sbert", "paper-rte", "paper-cola", "paper-sst2"} <= set(checked)
    assert not (REPO / "runs" / "never-written").exists()


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def _without(args: list[str], *names: str) -> list[str]:
    out = list(args)
    for name in names:
        if name in out:
            del out[out.index(name):out.index(name) + 2]
    return out


def test_presets_show_refuses_a_value_train_would(tmp_path):
    for line, message in (('input_path = "bogus"', "train.input_path must be one of auto, padded"),
                          ('bf16 = "maybe"', "train.bf16 must be auto, fast, on or off"),
                          ('lr_scheduler = "bogus"', "train.lr_scheduler must be one of linear")):
        preset = tmp_path / "mine.toml"
        preset.write_text(f"[train]\n{line}\n")
        code, stdout, stderr = run_cli("presets", "show", str(preset))
        assert code == 2 and stdout == "" and message in stderr.strip().splitlines()[-1], stderr


def test_another_lr_on_a_paper_preset_says_what_becomes_of_its_decay(caplog):
    cfg = load_config("paper-rte", {"train.lr": "1e-5"})
    assert cfg.train.weight_decay == pytest.approx(0.2)  # the preset's value stays, as asked
    assert "its weight decay 0.2 is torch's value for lr 5e-05 (the paper's decoupled 1e-05); at lr 1e-05 it is a " \
           "decoupled 2e-06: pass --weight-decay 1 to keep the paper's" in caplog.text
    caplog.clear()
    load_config("paper-rte", {"train.lr": "1e-5", "train.weight_decay": "1.0"})
    load_config("cpu-sbert", {"train.lr": "1e-5"})  # torch's decay chosen for it, no paper value
    assert "weight decay" not in caplog.text
    code, _, stderr = run_cli("train", "--lr", "nan", "--check")  # refused: no advice on its decay first
    assert code == 2 and "weight decay" not in stderr and "'train.lr' must be a finite number" in stderr, stderr


@pytest.mark.parametrize("command", [["train"], ["sweep"], ["bench"], ["baseline"], ["export", "onnx"]])
def test_flags_are_shown_as_flags_in_help(command):
    """`--overwrite <bool>` read as an option taking a value, and `--overwrite true` fails."""
    code, stdout, _ = run_cli(*command, "--help", env={"COLUMNS": "200"})
    flags = [line for line in stdout.splitlines() if any(f"--{name} " in line for name in (
        "overwrite", "random-init", "check", "regression", "decoupled-weight-decay"))]
    assert code == 0 and flags and not any("<bool>" in line for line in flags), flags


def test_a_train_runs_folder_is_a_preset_that_trains_it_again(tiny_run, tmp_path, monkeypatch, caplog):
    """`--preset RUN` (or RUN/run.json): the config the run resolved, named by the run's own preset; options go on
    top. Another kind of folder, a baseline's run, a damaged run.json are one line each; a shipped name wins over a
    folder of that name in the current directory."""
    import json
    import shutil

    saved = json.loads((tiny_run / "run.json").read_text())["config"]
    assert load_config(str(tiny_run)).to_dict() == saved and saved["preset"] == "paper"
    code, stdout, stderr = run_cli("train", "--preset", tiny_run / "run.json", "--seed", "7", "-o", tmp_path / "again",
                                   "--check")
    assert code == 0, stderr[-2000:]
    checked = json.loads(stdout)["config"]
    assert checked["train"].pop("seed") == 7 and saved["train"].pop("seed") != 7 and checked == saved
    assert not (tmp_path / "again").exists()

    seeds = tmp_path / "seeds"  # a --seeds folder: its runs' config, and a line naming the seeds it trained
    seeds.mkdir()
    (seeds / ".modernbert-glue.json").write_text('{"kind": "seeds", "complete": true, "files": ["run.json"]}')
    (seeds / "run.json").write_text(json.dumps({"config": {**saved, "preset": "cpu-sbert"}, "seeds": [1, 2]}))
    with caplog.at_level("INFO", logger="modernbert_glue.recipes"):
        assert load_config(str(seeds)).preset == "cpu-sbert"
    assert "it trained seeds 1,2 (--seeds trains them again)" in caplog.text

    (seeds / "run.json").write_text('{"config": ')
    with pytest.raises(UserError, match=r"seeds/run.json: not a run's readable config \(JSONDecodeError\)$"):
        load_config(str(seeds))
    (seeds / "run.json").write_text(json.dumps({"config": {"baseline": {"name": "tfidf"}, "data": saved["data"]}}))
    with pytest.raises(UserError, match=r"seeds: a baseline's run \(`modernbert-glue baseline` fits it again\)"):
        load_config(str(seeds))
    (seeds / ".modernbert-glue.json").write_text('{"kind": "sweep", "complete": true, "files": []}')
    with pytest.raises(UserError, match=r"seeds: a sweep folder; a preset is a shipped preset's name, a \.toml file "
                                        r"or the folder of a `train` run$"):
        load_config(str(seeds))
    with pytest.raises(UserError, match=r"a folder modernbert-glue did not write"):
        load_config(str(tmp_path))

    shutil.copytree(tiny_run, tmp_path / "paper-rte", ignore=shutil.ignore_patterns("model", "logs"))
    monkeypatch.chdir(tmp_path)
    assert load_config("paper-rte").data.task == "rte" and load_config("./paper-rte").data.task == "sst2"
    with pytest.raises(UserError, match=r"^nope/run.json: not found$"):
        load_config("nope/run.json")

    # a paper-rte run (its lr and decay the paper's), warm-started from seed 3's MNLI model by a sweep's 2 threads
    rte = tmp_path / "rte"
    rte.mkdir()
    (rte / ".modernbert-glue.json").write_text('{"kind": "run", "complete": true, "files": ["run.json"]}')
    config = {**saved, "preset": "paper-rte", "data": {**saved["data"], "task": "rte"},
              "model": {**saved["model"], "init_from": "/runs/mnli/seed-3/model"},
              "train": {**saved["train"], "seed": 3, "lr": 5e-5, "weight_decay": 0.2, "threads": 2}}
    (rte / "run.json").write_text(json.dumps({"config": config}))
    cfg = load_config(str(rte))  # another --seed starts from its own seed's model, with this machine's threads
    assert cfg.model.init_from == "/runs/mnli/seed-{seed}/model" and cfg.train.threads == 0
    with pytest.raises(UserError, match="--preset paper-rte is the paper's rte recipe, not mrpc's"):
        load_config(str(rte), {"data.task": "mrpc"})
    caplog.clear()
    with caplog.at_level("WARNING", logger="modernbert_glue.recipes"):
        load_config(str(rte), {"train.lr": "1e-5"})
        assert "preset paper-rte: its weight decay 0.2 is torch's value for lr 5e-05" in caplog.text
        caplog.clear()
        config["train"]["lr"] = 3e-5  # a sweep's run of paper-rte at another lr: its decay is not the paper's
        (rte / "run.json").write_text(json.dumps({"config": config}))
        load_config(str(rte), {"train.lr": "1e-5"})
        assert "weight decay" not in caplog.text
