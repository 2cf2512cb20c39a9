"""Model folders that cannot be used, refused by every command that reads one (predict, evaluate, export, serve)
in one `error:` line and exit code 2, before any output is written: damaged weights (missing, unexpected,
misshapen, NaN), a folder of runs instead of a model, a broken settings file; and `serve`'s address, checked
before the model loads."""

import json
import shutil
import socket

import pytest

from modernbert_glue.inference.launch import free_port
from modernbert_glue.outputs import open_output

from ..conftest import SST2, run_cli
from .conftest import HANG_GUARD_S


@pytest.fixture(scope="module")
def damaged(tiny_run, tmp_path_factory):
    """Copies of the tiny model, each damaged one way, and folders that hold no model."""
    import torch
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("damaged")
    weights = load_file(tiny_run / "model" / "model.safetensors")

    def copy(name: str, tensors: dict | None = None):
        folder = root / name
        shutil.copytree(tiny_run / "model", folder)
        if tensors is not None:
            save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
        return folder

    folders = {
        "missing": copy("missing", {k: v for k, v in weights.items() if not k.startswith("classifier.")}),
        "unexpected": copy("unexpected", {**weights, "bogus.weight": torch.zeros(2, 2)}),
        "misshapen": copy("misshapen", {**weights, "classifier.weight": torch.zeros(3, weights["classifier.weight"].shape[1])}),
        "nan": copy("nan", {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                            for k, v in weights.items()}),
        "settings": copy("settings"),
        "empty": root / "empty",
        "no_settings": root / "run" / "model",  # in its run folder, whose record lists the file
    }
    shutil.copytree(tiny_run, root / "run")
    (folders["no_settings"] / "inference.json").unlink()
    (folders["settings"] / "inference.json").write_text("garbage{")
    folders["empty"].mkdir()
    for kind, runs in (("seeds", ["seed-1", "seed-2"]), ("sweep", ["lr-0.001-seed-7"])):
        # what `train --seeds` and `sweep` leave: a marker of their kind, a run folder per name it lists
        folder = open_output(root / kind, kind)
        folder.claim("run.json", *runs)
        for run in runs:
            (root / kind / run).mkdir()
        (root / kind / "run.json").write_text("{}")
        folder.finish()
        folders[kind] = root / kind
    return folders


WEIGHTS = [
    ("missing", "its weights do not fit its config.json (missing: classifier.bias, classifier.weight)"),
    ("unexpected", "its weights do not fit its config.json (unexpected: bogus.weight)"),
    ("misshapen", "its weights do not fit its config.json (wrong shape: classifier.weight)"),
]
FOLDERS = [
    ("seeds", "seeds: a --seeds folder, not a model; pass one of its runs, e.g. {seeds}/seed-1"),
    ("sweep", "sweep: a sweep folder, not a model; pass one of its runs, e.g. {sweep}/lr-0.001-seed-7"),
    ("empty", "empty: not a model folder (no config.json)"),
    ("no_settings", "model/inference.json: missing, though the command that wrote this folder wrote it"),
]


def commands(folder, out):
    return {"predict": ["predict", "--model", folder, "a fine film"],
            "evaluate": ["evaluate", "--model", folder, "--data-dir", SST2, "--max-eval-samples", 8],
            "export": ["export", "onnx", "--model", folder, "--output", out],
            "glue-submission": ["glue-submission", folder, "--output", out, "--data-root", SST2.parent]}


def assert_refused(argv, message: str, out, separate: bool = False):
    code, stdout, stderr = run_cli(*argv, separate=separate, timeout=HANG_GUARD_S)
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    assert code == 2 and stdout == "" and "Traceback" not in stderr, (argv, code, stdout, stderr[-2000:])
    assert last.startswith("error: ") and message in last, (argv, last)
    assert not out.exists(), f"{argv}: left {sorted(p.name for p in out.iterdir())} in its output folder"
    return stderr


@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
@pytest.mark.parametrize("name, message", WEIGHTS + FOLDERS)
def test_a_damaged_model_or_a_folder_of_runs_is_refused_in_one_line(damaged, tmp_path, command, name, message):
    """transformers loads a weights file that lacks a weight (or has one too many) with random values in its
    place, and says so only in a logged report; a --seeds or sweep folder was "Unrecognized model"."""
    out = tmp_path / "out"
    assert_refused(commands(damaged[name], out)[command], message.format(**damaged), out)


def test_transformers_load_report_is_left_out(damaged, tmp_path):
    """transformers logs a table of the missing keys (its own handler writes to the process's stderr: a
    process of its own sees it) before the line that says the same."""
    stderr = assert_refused(commands(damaged["missing"], tmp_path / "out")["predict"], "missing: classifier.bias",
                            tmp_path / "out", separate=True)
    assert "LOAD REPORT" not in stderr


@pytest.mark.parametrize("command", ["predict", "evaluate", "export", "glue-submission"])
def test_nan_weights_are_refused_not_printed_as_nan(damaged, tmp_path, command):
    """NaN weights gave `"score": NaN` (not JSON) from predict, `"ece": NaN` from evaluate, and label 0 for every
    row from glue-submission (the argmax of NaN)."""
    out = tmp_path / "out"
    assert_refused(commands(damaged["nan"], out)[command], "the model gave non-finite scores (NaN or infinity)", out)


def test_a_refused_export_leaves_no_output_folder(damaged, tmp_path):
    """A settings file that cannot be read was found after the export folder was opened: an unfinished export
    ({"complete": false, "files": ["staging"]}) was left behind."""
    out = tmp_path / "out"
    assert_refused(["export", "onnx", "--model", damaged["settings"], "--output", out],
                   "inference.json: not a readable settings file", out)


@pytest.mark.parametrize("name, message", [
    ("missing", "its weights do not fit its config.json (missing: classifier.bias, classifier.weight)"),
    ("settings", "inference.json: not a readable settings file"),
    ("seeds", "a --seeds folder, not a model"),
    ("nan", "the model gave non-finite scores"),  # it started, said it was ready, and failed every request
    ("no_settings", "inference.json: missing"),  # it served a pair model as a single-sentence one
])
def test_serve_refuses_a_model_it_cannot_load_in_one_line(damaged, tmp_path, name, message):
    """The model loaded inside uvicorn's start-up: its error came as uvicorn's logged traceback, "Application
    startup failed", exit code 3. In a process of its own: a server that did start would not return."""
    assert_refused(["serve", "--model", damaged[name], "--port", free_port()], message, tmp_path / "none",
                   separate=True)


def test_serve_checks_its_address_before_loading_the_model(damaged, tmp_path):
    """A port in use, or an address not this machine's, was uvicorn's "[Errno 98]" log line and exit code 3, after
    the model had loaded. The address comes first: with a damaged model too, the port is what is named."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_refused(["serve", "--model", damaged["missing"], "--port", port],
                       f"--port {port}: address already in use on 127.0.0.1", tmp_path / "none", separate=True)
    assert_refused(["serve", "--model", damaged["missing"], "--host", "192.0.2.1", "--port", free_port()],
                   "--host 192.0.2.1 --port", tmp_path / "none", separate=True)  # TEST-NET-1: never this machine's


def test_served_nan_scores_are_a_json_error(damaged):
    """A model whose scores turn NaN once served (a start-up with NaN weights is refused, above): the server
    answered 500 "Internal Server Error" as plain text (NaN is no JSON number); now TEI's backend error, 424 with
    the JSON error body, on both routes."""
    from fastapi.testclient import TestClient

    from modernbert_glue.inference.backends import load_model
    from modernbert_glue.inference.serve import ServeConfig, create_app

    cfg = ServeConfig(model=str(damaged["nan"]))
    with TestClient(create_app(cfg, load_model(cfg.model, "torch"))) as client:
        for route, body in (("/v1/classify", {"texts": ["a fine film"]}), ("/predict", {"inputs": "a fine film"})):
            r = client.post(route, json=body)
            assert r.status_code == 424 and r.headers["content-type"] == "application/json", (route, r.text)
            kind = "Backend" if route == "/predict" else "backend"  # TEI's route spells TEI's names
            assert r.json()["error_type"] == kind and "non-finite scores" in r.json()["error"]
        assert client.get("/readyz").status_code == 200  # the server itself is fine


def test_good_model_loads_with_every_weight(tiny_run):
    """The strict loader accepts what `train` saved (every weight there, none extra)."""
    code, stdout, stderr = run_cli("predict", "--model", tiny_run, "a fine film")
    assert code == 0, stderr[-2000:]
    assert json.loads(stdout)["label"] in ("negative", "positive")


def test_two_servers_on_one_port_the_second_is_refused_before_its_model_loads():
    """The sockets were bound but not listening until uvicorn started: with SO_REUSEADDR a second server bound
    the same port too, and failed only inside uvicorn (exit code 3) after loading its model."""
    from modernbert_glue.errors import UserError
    from modernbert_glue.inference.sockets import listen_sockets

    port = int(free_port())
    first = listen_sockets("127.0.0.1", port)
    try:
        with pytest.raises(UserError, match=f"--port {port}: address already in use on 127.0.0.1"):
            listen_sockets("127.0.0.1", port)
    finally:
        for sock in first:
            sock.close()


def test_an_address_family_the_machine_lacks_is_skipped_as_asyncio_does(monkeypatch):
    """A kernel without IPv6 refuses to create the socket for localhost's ::1 (EAFNOSUPPORT): a traceback,
    where asyncio binds 127.0.0.1 alone."""
    import errno

    from modernbert_glue.inference.sockets import listen_sockets

    port = int(free_port())
    real_socket, real_getaddrinfo = socket.socket, socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                *real_getaddrinfo("127.0.0.1", *args, **kwargs)]

    def no_ipv6(family=socket.AF_INET, *args, **kwargs):
        if family == socket.AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return real_socket(family, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "socket", no_ipv6)
    sockets = listen_sockets("localhost", port)
    try:
        assert [s.getsockname()[:2] for s in sockets] == [("127.0.0.1", port)]
    finally:
        for sock in sockets:
            sock.close()


def test_check_finite_of_no_inputs_is_no_inputs():
    """An empty batch (the Python API's predict([])) gave numpy's "cannot reshape array of size 0"."""
    import numpy as np

    from modernbert_glue.inference.classifier import check_finite

    assert check_finite(np.zeros((0, 2)), "m").shape == (0, 2)
