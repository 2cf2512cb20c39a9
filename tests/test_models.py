import re

import pytest

from modernbert_glue.errors import UserError
from modernbert_glue.hub import hub_available
from modernbert_glue.model_overrides import parse_overrides
from modernbert_glue.models import packaged_copy, resolve_model

from .conftest import MODERNBERT, run_cli


def test_offline_hub_id_resolves_to_the_packaged_copy():
    assert not hub_available()  # HF_HUB_OFFLINE=1 in the test session
    path = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert path == str(packaged_copy("sentence-transformers/all-MiniLM-L6-v2"))
    assert (packaged_copy("all-MiniLM-L6-v2") / "model.safetensors").is_file()
    assert resolve_model(str(MODERNBERT)) == str(MODERNBERT)


def test_unknown_model_offline_is_a_clear_error():
    with pytest.raises(UserError, match="Hub is not reachable and no local copy exists"):
        resolve_model("nobody/no-such-model")
    with pytest.raises(UserError, match="model folder not found"):
        resolve_model("./no/such/folder")


def test_parse_overrides():
    assert parse_overrides(["num_hidden_layers=2", "hidden_act=gelu", "x=1e-5", "flag=true"]) == {
        "num_hidden_layers": 2, "hidden_act": "gelu", "x": 1e-5, "flag": True}
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        parse_overrides(["num_hidden_layers"])


def test_hub_dataset_offline_points_to_data_dir(tmp_path):
    code, _, stderr = run_cli("train", "--output-dir", tmp_path / "o", env={"MODERNBERT_GLUE_DATA_DIR": ""})
    assert code == 2
    assert "Hub is not reachable to load nyu-mll/glue/sst2: pass --data-dir FOLDER" in stderr


def test_data_dir_from_environment(tmp_path):
    code, _, stderr = run_cli("train", "--output-dir", tmp_path / "o", env={"MODERNBERT_GLUE_DATA_DIR": str(tmp_path / "nope")})
    assert code == 2 and "nope: data folder not found" in stderr


def test_inference_settings_round_trip_default_and_refuse_a_newer_version(tmp_path, caplog):
    import json

    from modernbert_glue.inference_settings import SETTINGS_FILE, InferenceSettings

    InferenceSettings(task="sst2", max_length=96).save(tmp_path)
    assert InferenceSettings.load(tmp_path) == InferenceSettings(task="sst2", max_length=96)
    older = tmp_path / "older"
    older.mkdir()
    with caplog.at_level("WARNING"):
        assert InferenceSettings.load(older).max_length == 512  # today's default, with one warning line
    assert f"no {SETTINGS_FILE}" in caplog.text
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"version": 99, "max_length": 96}))
    with pytest.raises(UserError, match="settings version 99 is newer than this modernbert-glue reads"):
        InferenceSettings.load(tmp_path)
    for key, value, message in (  # a damaged value is named with its file, not as an option the user never gave
            ("task", 5, 'task must be one of "cola", "sst2", '), ("task", "sst3", "task must be one of"),
            ("regression", "no", 'regression must be one of true, false, got "no"'),
            ("version", True, "settings version True is newer"), ("text_columns", ["a", ""], "text_columns must"),
            ("input_path", "warp", 'input_path must be one of "auto", "padded", "dynamic", "grouped", "packed", got '
                                   '"warp"'),
            ("text_columns", "ab", "text_columns must name one text column or a pair, got 'ab'"),  # read as a, b
            ("max_length", True, "max_length must be a positive integer, got True"),
            ("label_column", 3, "label_column must be a column name or null, got 3")):
        (tmp_path / SETTINGS_FILE).write_text(json.dumps({"task": "sst2", key: value}))
        with pytest.raises(UserError, match=f"^{re.escape(str(tmp_path / SETTINGS_FILE))}: {re.escape(message)}"):
            InferenceSettings.load(tmp_path)


def test_the_model_card_names_an_alias_by_its_hub_id_and_a_folder_by_none(tmp_path):
    from modernbert_glue.modelcard import _base_model

    assert _base_model("all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"  # not a Hub id itself
    assert _base_model("answerdotai/ModernBERT-base") == "answerdotai/ModernBERT-base"
    assert _base_model(str(tmp_path)) is None and _base_model("./local") is None


@pytest.mark.parametrize("override, message", [
    ({"hidden_size": -5}, "model override hidden_size=-5 (--model-override, or the preset's model.overrides): must be "
                          "at least 1"),  # torch's "negative dimension" traceback
    ({"num_attention_heads": 0}, "model override num_attention_heads=0 (--model-override, or the preset's "
                                 "model.overrides): must be at least 1"),  # ZeroDivisionError
    ({"global_attn_every_n_layers": 0}, "model overrides (--model-override, or the preset's model.overrides): invalid "
                                        "model config (integer modulo by zero)"),
    ({"num_labels": 3}, "model override num_labels (--model-override, or the preset's model.overrides): set from the "
                        "task's labels (--task, or --label-column for a custom task), not by an override"),
])
def test_an_override_transformers_or_torch_would_crash_on_is_one_line(override, message):
    from modernbert_glue.models import check_model
    from modernbert_glue.tasks import get_task

    with pytest.raises(UserError) as refused:
        check_model(str(MODERNBERT), get_task("sst2"), override)
    assert str(refused.value) == message


def test_a_pretrained_encoder_says_in_one_line_that_its_classification_layer_is_new(caplog):
    """transformers' LOAD REPORT table (MISSING beside the classification layer, which reads like an error) gives
    way to one line; weights other than that layer missing from the checkpoint are a warning."""
    import logging

    from modernbert_glue.models import _say_what_loaded, build_classifier
    from modernbert_glue.tasks import get_task

    reports = []
    handler = logging.Handler()
    handler.emit = reports.append
    transformers_log = logging.getLogger("transformers.modeling_utils")
    transformers_log.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="modernbert_glue.models"):
            build_classifier("sentence-transformers/all-MiniLM-L6-v2", get_task("sst2"))
    finally:
        transformers_log.removeHandler(handler)
    assert not [r for r in reports if "LOAD REPORT" in str(r.msg)]
    said = [r.getMessage() for r in caplog.records if r.name == "modernbert_glue.models"]
    assert [m for m in said if m.endswith(": a new classification layer (classifier.bias, classifier.weight), "
                                          "initialised at random for fine-tuning")], said
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "modernbert_glue.models"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="modernbert_glue.models"):
        _say_what_loaded("m", {"missing_keys": ["classifier.bias", "bert.pooler.dense.weight"],
                               "unexpected_keys": ["cls.predictions.bias"],
                               "mismatched_keys": [("classifier.weight", (3, 8), (2, 8))]})  # 3 labels, now 2
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "m: a new classification layer (classifier.bias, classifier.weight), initialised at random for "
                 "fine-tuning"),
        ("WARNING", "m: weights the checkpoint lacks start random: bert.pooler.dense.weight"),
        ("INFO", "m: checkpoint weights the classifier does not use: cls.predictions.bias")]
    misshapen = {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [("bert.x.weight", (3, 8), (2, 8))]}
    with pytest.raises(UserError, match=r"^m: weights of other shapes than its config.json makes "
                       r"\(bert.x.weight \[3, 8\] there, \[2, 8\] here\)$"):
        _say_what_loaded("m", misshapen)
    with pytest.raises(UserError, match=r"than its config.json with the model overrides \(--model-override, or "):
        _say_what_loaded("m", misshapen, {"hidden_size": 8})  # the override made them so, not the file


def test_an_override_that_resizes_the_weights_to_load_is_one_line_at_check_and_at_the_run(rte_run, tmp_path):
    """--init-from (or a --model with weights) and a --model-override that changes a weight's shape: `--check`
    refuses it from the weights file's header, and so does the warm start itself (load_state_dict raised a
    RuntimeError); random weights (--random-init) load nothing, so any override is theirs."""
    from modernbert_glue.models import build_classifier
    from modernbert_glue.tasks import get_task

    from .conftest import TINY, TINY_ARGS, glue_folder

    model = rte_run / "model"
    line = (f"--init-from {model}: weights of other shapes than its config.json with the model overrides "
            "(--model-override, or the preset's model.overrides) makes (head.dense.weight [64, 64] there, "
            "[128, 128] here, ")
    with pytest.raises(UserError, match="^" + re.escape(line)):
        build_classifier("unused", get_task("mrpc"), overrides=parse_overrides([*TINY, "hidden_size=128"]),
                         init_from=str(model))
    data = glue_folder(tmp_path, "mrpc", 16, 8)
    code, _, stderr = run_cli("train", "--task", "mrpc", "--data-dir", data, "--init-from", model, *TINY_ARGS,
                              "--model-override", "hidden_size=128", "-o", tmp_path / "run", "--check")
    assert code == 2 and stderr.strip().splitlines()[-1].startswith(f"error: {line}"), stderr[-2000:]
    code, _, stderr = run_cli("train", "--task", "mrpc", "--data-dir", data, "--model", "all-MiniLM-L6-v2",
                              "--model-override", "intermediate_size=64", "--check")
    assert code == 2 and "weights of other shapes than its config.json with the model overrides" in stderr, stderr
    code, _, stderr = run_cli("train", "--task", "mrpc", "--data-dir", data, "--model", "all-MiniLM-L6-v2",
                              "--model-override", "intermediate_size=64", "--random-init", "--check")
    assert code == 0, stderr[-2000:]


def test_a_classifier_of_another_label_count_fine_tunes_from_its_encoder_with_a_fresh_layer(tmp_path, caplog):
    """--model a three-class model's folder for SST-2: its encoder's weights, a new two-class classification layer
    (transformers would have raised on the shapes, its report then hidden)."""
    import logging

    import torch

    from modernbert_glue.models import build_classifier
    from modernbert_glue.tasks import get_task

    from .conftest import TINY

    overrides = parse_overrides(TINY)
    three, tokenizer = build_classifier(str(MODERNBERT), get_task("mnli"), random_init=True, overrides=overrides)
    three.save_pretrained(tmp_path / "mnli")
    tokenizer.save_pretrained(tmp_path / "mnli")
    with caplog.at_level(logging.INFO, logger="modernbert_glue.models"):
        two, _ = build_classifier(str(tmp_path / "mnli"), get_task("sst2"))
    assert two.classifier.weight.shape == (2, 64) and three.classifier.weight.shape == (3, 64)
    kept = [k for k in three.state_dict() if not k.startswith("classifier.")]
    assert kept and all(torch.equal(three.state_dict()[k], two.state_dict()[k]) for k in kept)
    assert any("a new classification layer (classifier.bias, classifier.weight)" in r.getMessage()
               for r in caplog.records)


def test_an_override_that_leaves_an_embedding_table_too_small_is_refused_by_its_field():
    """Learned positions: BERT's from 0, RoBERTa's after the padding id (two more rows); ModernBERT's rotary
    positions have no table, its vocabulary is `tok_embeddings`. The model's own sizes are not second-guessed."""
    import torch
    from transformers import AutoConfig, AutoModel, RobertaConfig, RobertaModel

    from modernbert_glue.models import check_fits, load_tokenizer

    tokenizer = load_tokenizer(str(MODERNBERT))  # 50368 ids, cut at 128 below
    with torch.device("meta"):
        roberta = RobertaModel(RobertaConfig(vocab_size=50368, hidden_size=32, num_hidden_layers=1, intermediate_size=64,
                                             num_attention_heads=2, max_position_embeddings=129, pad_token_id=1))
        tiny = dict(num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=2)
        modernbert = AutoModel.from_config(AutoConfig.from_pretrained(MODERNBERT, vocab_size=50300,
                                                                      max_position_embeddings=8, **tiny))
    with pytest.raises(UserError, match=r"^model override max_position_embeddings=129 .* is too small: inputs are cut "
                                        r"at 128 tokens and positions start at 2; it must be at least 130 \(or lower"):
        check_fits(roberta, tokenizer, 128, pair=False, overrides={"max_position_embeddings": 129})
    check_fits(roberta, tokenizer, 128, pair=False, overrides={})  # its own size: its weights'
    check_fits(roberta, tokenizer, 127, pair=True, overrides={"max_position_embeddings": 129})  # no token types
    with pytest.raises(UserError, match="vocab_size=50300 .* is too small: the tokenizer has 50368 ids"):
        check_fits(modernbert, tokenizer, 128, pair=False, overrides={"vocab_size": 50300})
    check_fits(modernbert, tokenizer, 128, pair=False, overrides={"max_position_embeddings": 8})  # rotary


def test_an_override_equal_to_the_models_own_size_names_no_other_system():
    """num_hidden_layers=22 on modernbert-base is modernbert-base: it was a system of its own in compare."""
    from modernbert_glue.config import ModelConfig
    from modernbert_glue.training.lifecycle import base_model

    cfg = ModelConfig(name=str(MODERNBERT), random_init=True,
                      overrides={"num_hidden_layers": 22, "hidden_size": 64, "hidden_dropout": 0.2})
    assert base_model(cfg) == (str(MODERNBERT), True, {"hidden_size": 64})
    unread = ModelConfig(name="nobody/no-such-model", overrides={"num_hidden_layers": 22})
    assert base_model(unread)[2] == {"num_hidden_layers": 22}  # its own count unknown: recorded as given
