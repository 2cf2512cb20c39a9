"""`train --check` refuses, in one line, what the run itself would refuse: settings, the model's overrides and the
architecture they make (built on the meta device), the --init-from folder, the token budget for the input path
the run would take. A sweep checks its runs this way before starting them."""

import pytest

from ..conftest import run_cli, tiny_train_args

CASES = [
    (["--set", "train.bf16=maybe"], "train.bf16 must be auto, fast, on or off"),
    (["--token-budget", "100", "--input-path", "packed"], "train.packed_token_budget must be a multiple of 256"),
    (["--token-budget", "256", "--input-path", "padded"], "train.packed_token_budget needs the packed input path"),
    (["--init-from", "/nonexistent/model"], "/nonexistent/model: model folder not found"),
    (["--init-from", "runs/nope"], "--init-from runs/nope: model folder not found"),  # was "the Hub is not reachable"
    (["--model-override", "nosuch_field=1"], "the 'modernbert' config has no field 'nosuch_field'"),
    (["--model-override", "vocab_size=10"], "invalid model config (Padding_idx must be within num_embeddings)"),
    (["--model-override", "num_hidden_layers=two"],  # the field and what is wrong with it, on one line
     "invalid model config (Validation error for field 'num_hidden_layers': TypeError: Field 'num_hidden_layers' "
     "expected int, got str (value: 'two'))"),
    (["--batch-size", "99999999999999999999"], "'train.batch_size' must be at least 1 and at most 1048576"),
    (["--set", "train.threads=100000"], "'train.threads' must be at least 0 and at most 4096"),
]


@pytest.mark.parametrize("extra, message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_check_refuses_what_the_run_would(small_sst2, tmp_path, extra, message):
    code, stdout, stderr = run_cli(*tiny_train_args(small_sst2, tmp_path / "run", "--check", *extra))
    assert code == 2 and stdout == "", stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, last
    assert not (tmp_path / "run").exists()


def test_check_passes_a_sound_run_and_writes_nothing(small_sst2, tmp_path):
    code, stdout, stderr = run_cli(*tiny_train_args(small_sst2, tmp_path / "run", "--check",
                                                    "--token-budget", "512", "--input-path", "packed"))
    assert code == 0, stderr[-2000:]
    assert '"check": "ok"' in stdout and not (tmp_path / "run").exists()


def test_only_schedules_that_run_as_configured_are_accepted():
    """reduce_lr_on_plateau lowered the rate as accuracy rose (torch's mode "min") and skipped the warmup;
    cosine_with_min_lr passed the check, then was a traceback mid-run (it needs min_lr, which no option passes)."""
    from modernbert_glue.config import load_config
    from modernbert_glue.errors import UserError
    from modernbert_glue.training.dispatch import check_settings

    for name in ("reduce_lr_on_plateau", "greedy", "cosine_with_min_lr", "warmup_stable_decay"):
        cfg = load_config("paper", {"train.lr_scheduler": name})
        with pytest.raises(UserError, match=f"train.lr_scheduler must be one of linear, cosine, .*got '{name}'"):
            check_settings(cfg, "cpu")
    assert check_settings(load_config("paper", {"train.lr_scheduler": "cosine"}), "cpu") == "auto"


def test_label_smoothing_on_a_regression_is_refused_by_the_check_every_path_runs():
    """train --check said ok, and --seeds opened its folder before the run refused it (a rerun then met the folder)."""
    from modernbert_glue.config import load_config
    from modernbert_glue.errors import UserError
    from modernbert_glue.training.dispatch import check_settings

    for data in ({"data.task": "stsb"}, {"data.task": "custom", "data.regression": True}):
        with pytest.raises(UserError, match="train.label_smoothing applies to classes; task .* is a regression"):
            check_settings(load_config("paper", {**data, "train.label_smoothing": 0.1}), "cpu")
    assert check_settings(load_config("paper", {"data.task": "stsb"}), "cpu") == "auto"


def test_a_paper_round_2_preset_without_the_mnli_model_says_so(tmp_path, tiny_run):
    from ..conftest import MODERNBERT, SHARED, TINY_ARGS

    args = ["train", "--preset", "paper-rte", "--model", MODERNBERT, "--random-init", *TINY_ARGS,
            "--data-dir", SHARED / "data" / "rte", "-o", tmp_path / "rte", "--check"]
    code, _, stderr = run_cli(*args)
    assert code == 0 and "preset paper-rte: the paper starts rte from the mnli model (--init-from " \
                         "'runs/paper-mnli/seed-{seed}/model'); this run starts from" in stderr, stderr[-2000:]
    code, _, stderr = run_cli(*args, "--init-from", tiny_run / "model")  # the tiny run stands in for MNLI's
    assert code == 0 and "the paper starts" not in stderr, stderr[-2000:]
