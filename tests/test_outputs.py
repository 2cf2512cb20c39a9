"""Output folders: nothing of the user's is deleted, files appear whole or not at all, unfinished folders are
refused by readers."""

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modernbert_glue.errors import Terminated, UserError
from modernbert_glue.outputs import (
    MARKER,
    check_finished,
    check_output,
    in_use,
    open_output,
    read_marker,
)

from .conftest import MODERNBERT, REPO, TINY_ARGS, run_cli


def quick_train(data_dir, out, *extra):
    return run_cli("train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", data_dir,
                   "--max-train-samples", "32", "--max-eval-samples", "16", "--epochs", "1", "--batch-size", "32",
                   "--output-dir", out, *extra)


def test_overwrite_replaces_our_run_and_keeps_the_users_file(small_sst2, tmp_path):
    out = tmp_path / "run"
    code, _, stderr = quick_train(small_sst2, out)
    assert code == 0, stderr[-2000:]
    (out / "notes.txt").write_text("my notes")
    (out / "model" / "extra.txt").write_text("inside our model folder, but the user's")
    (out / "logs" / "mine").mkdir()
    (out / "logs" / "mine" / "plot.png").write_text("the user's too")
    before = json.loads((out / "run.json").read_text())["date"]
    code, _, stderr = quick_train(small_sst2, out)
    assert code == 2 and "output folder is not empty (pass --overwrite" in stderr
    code, _, stderr = quick_train(small_sst2, out, "--overwrite")  # it would go with model/: refused, kept
    assert code == 2 and stderr.strip().splitlines()[-1] == (
        f"error: {out / 'logs' / 'mine' / 'plot.png'} (and 1 more): not written by modernbert-glue, inside a "
        f"folder of {out} that --overwrite replaces; move it out first")
    assert (out / "model" / "extra.txt").is_file() and read_marker(out)["complete"] is True
    (out / "model" / "extra.txt").unlink()
    shutil.rmtree(out / "logs" / "mine")
    code, _, stderr = quick_train(small_sst2, out, "--overwrite")
    assert code == 0, stderr[-2000:]
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "model" / "model.safetensors").is_file()
    mask = os.umask(0)
    os.umask(mask)  # the weights are as readable as the rest (safetensors writes them 0600)
    assert {(f.stat().st_mode & 0o777) for f in (out / "model").iterdir()} == {0o666 & ~mask}
    marker = read_marker(out)
    assert marker["complete"] is True and "notes.txt" not in marker["files"] and "model" in marker["files"]
    assert json.loads((out / "run.json").read_text())["date"] >= before


def test_overwrite_refuses_to_remove_another_commands_output_inside_its_folders(tmp_path):
    """An export written into a run's model/ (or a seed's) is not the run's to remove: --overwrite is refused in
    one line and removes nothing."""
    for layout in ("run", "seeds"):
        out = tmp_path / layout
        run = out / "seed-1" if layout == "seeds" else out
        seeds = open_output(out, "seeds") if layout == "seeds" else None
        if seeds:
            seeds.claim("seed-1")
        folder = open_output(run, "run")
        folder.claim("model")
        (run / "model").mkdir()
        (run / "model" / "config.json").write_text("{}")
        folder.finish()
        if seeds:
            seeds.finish()
        export = open_output(run / "model" / "onnx", "export")
        export.write_text("model.onnx", "graph")
        export.finish()
        with pytest.raises(UserError, match=f"^{run / 'model' / 'onnx'}: an export folder inside {out}, in a folder "
                                            "--overwrite replaces; move it out first$"):
            open_output(out, layout, overwrite=True)
        assert (run / "model" / "onnx" / "model.onnx").read_text() == "graph"
        shutil.rmtree(run / "model" / "onnx")
        (run / "model" / "mine.txt").write_text("the user's")  # a file of the user's is not ours either
        with pytest.raises(UserError, match=f"^{run / 'model' / 'mine.txt'}: not written by modernbert-glue"):
            open_output(out, layout, overwrite=True)
        (run / "model" / "mine.txt").unlink()
        open_output(out, layout, overwrite=True).finish()  # once they are moved, the overwrite goes ahead
        assert not (run / "model").exists()


def test_what_an_unfinished_writer_left_in_its_folders_is_its_own(tmp_path):
    """Only a writer that ended recorded what its folders hold: a killed run's checkpoints and logs, still being
    written, go with --overwrite; and a finished folder written again loses its old record."""
    folder = open_output(tmp_path / "run", "run")
    folder.claim("logs")
    (tmp_path / "run" / "logs").mkdir()
    folder.finish()
    assert read_marker(tmp_path / "run")["contents"] == {"logs": []}
    folder = open_output(tmp_path / "run", "run", resume=True)
    folder.claim("checkpoints")
    assert "contents" not in read_marker(tmp_path / "run")
    (tmp_path / "run" / "logs" / "events.1").write_text("written after the resume")
    release_lock = open_output(tmp_path / "run", "run", overwrite=True)  # killed: no record, all of it ours
    assert not (tmp_path / "run" / "logs").exists()
    release_lock.finish()


@pytest.mark.parametrize("error, recorded", [(UserError("stopped by SIGTERM"), True), (RuntimeError("a bug"), False),
                                             (Terminated(), True)])
def test_a_writer_ended_by_our_own_error_records_its_folders_and_a_resume_forgets_them(tmp_path, error, recorded):
    """A run stopped by a signal (or a full disk) ended as cleanly as a finished one: a file added to its logs/ after
    it is the user's. After a bug's exception nothing is recorded, and a resumed writer drops the old record."""
    from modernbert_glue.locks import releases_on_error

    out = tmp_path / "run"

    @releases_on_error
    def write_then_stop():
        folder = open_output(out, "run")
        folder.claim("logs")
        (out / "logs").mkdir()
        (out / "logs" / "events.1").write_text("ours")
        raise error

    with pytest.raises(type(error)):
        write_then_stop()
    assert ("contents" in read_marker(out)) is recorded and not in_use(out)
    (out / "logs" / "plot.png").write_text("the user's")
    if recorded:
        with pytest.raises(UserError, match="plot.png: not written by modernbert-glue"):
            check_output(out, "run", overwrite=True)
    else:
        check_output(out, "run", overwrite=True)
    (out / "logs" / "plot.png").unlink()
    open_output(out, "run", resume=True)
    assert "contents" not in read_marker(out)
    (out / "logs" / "events.2").write_text("written by the resumed run, then killed")
    check_output(out, "run", overwrite=True)


def test_a_seeds_own_folder_is_checked_too_and_a_bad_record_is_no_traceback(tmp_path):
    """A seed's run goes whole with the set: what a user put at its top, beside the files it lists, stops the
    --overwrite (the set's own top level is left alone, as a single run's is)."""
    seeds = open_output(tmp_path / "set", "seeds")
    seeds.claim("seed-1")
    run = open_output(tmp_path / "set" / "seed-1", "run")
    run.write_text("metrics.json", "{}")
    run.finish()
    seeds.finish()
    (tmp_path / "set" / "notes.txt").write_text("beside the seeds: kept")
    check_output(tmp_path / "set", "seeds", overwrite=True)
    for unlisted in ("notes.txt", "plots/a.png"):
        (tmp_path / "set" / "seed-1" / unlisted).parent.mkdir(exist_ok=True)
        (tmp_path / "set" / "seed-1" / unlisted).write_text("the user's")
        with pytest.raises(UserError, match=f"seed-1/{unlisted.split('/')[0]}: not written by modernbert-glue"):
            check_output(tmp_path / "set", "seeds", overwrite=True)
        shutil.rmtree(tmp_path / "set" / "seed-1" / "plots", ignore_errors=True)
        (tmp_path / "set" / "seed-1" / "notes.txt").unlink(missing_ok=True)
    export = open_output(tmp_path / "set" / "seed-1" / "onnx", "export")
    export.finish()
    with pytest.raises(UserError, match="seed-1/onnx: an export folder inside"):
        check_output(tmp_path / "set", "seeds", overwrite=True)
    marker = json.loads((tmp_path / "set" / "seed-1" / MARKER).read_text())
    (tmp_path / "set" / "seed-1" / MARKER).write_text(json.dumps({**marker, "contents": {"model": [{"x": 1}]}}))
    assert read_marker(tmp_path / "set" / "seed-1")["contents"] == {"model": []}


def test_overwrite_never_removes_what_the_command_reads(small_sst2, tmp_path):
    """`train --overwrite -o X --init-from X/model` would delete the model it starts from before reading it: refused
    in one line (and by --check), nothing removed."""
    out = tmp_path / "run"
    code, _, stderr = quick_train(small_sst2, out)
    assert code == 0, stderr[-2000:]
    for extra in ([], ["--check"]):
        code, _, stderr = quick_train(small_sst2, out, "--overwrite", "--init-from", out / "model", *extra)
        assert code == 2 and stderr.strip().splitlines()[-1] == (
            f"error: {out / 'model'}: this command reads it, but --overwrite would remove it with the rest of {out}; "
            "name another output folder")
    assert read_marker(out)["complete"] is True and (out / "model" / "model.safetensors").is_file()


def test_inputs_inside_a_seed_set_or_behind_a_symlink_are_seen(tmp_path):
    seeds = open_output(tmp_path / "set", "seeds")
    seeds.claim("seed-1", "seeds.json")
    (tmp_path / "set" / "seed-1" / "model").mkdir(parents=True)
    (tmp_path / "set" / "mine.tsv").write_text("a user's file: --overwrite keeps it")
    seeds.finish()
    (tmp_path / "link").symlink_to(tmp_path / "set" / "seed-1")
    for read in ("set/seed-1/model", "link/model"):
        with pytest.raises(UserError, match="this command reads it, but --overwrite would remove it"):
            check_output(tmp_path / "set", "seeds", overwrite=True, inputs=[tmp_path / read])
    check_output(tmp_path / "set", "seeds", overwrite=True, inputs=[tmp_path / "set" / "mine.tsv", tmp_path / "set"])


@pytest.mark.parametrize("where", ["output", "input"])
def test_a_name_too_long_is_one_line(small_sst2, tmp_path, where):
    long = tmp_path / ("n" * 300)
    extra = ["--output-dir", long] if where == "output" else ["--output-dir", tmp_path / "o", "--train-file", long]
    code, _, stderr = run_cli("train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", small_sst2,
                              *extra)
    assert code == 2, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]  # the path as the call that failed had it (a probe of long/.git, say)
    assert last.startswith(f"error: {long}") and last.endswith(": File name too long (a file or folder name is "
                                                               "limited to 255 bytes)")


def test_overwrite_refuses_a_folder_we_did_not_write(small_sst2, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    code, stdout, stderr = quick_train(small_sst2, out, "--overwrite")
    assert code == 2 and stdout == ""
    assert stderr.strip().splitlines()[-1] == (
        f"error: {out}: not a folder modernbert-glue wrote (no {MARKER}); refusing to overwrite it")
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


def test_overwrite_of_the_current_folder_is_refused_and_deletes_nothing(small_sst2, tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    (tmp_path / MARKER).write_text(json.dumps({"kind": "run", "complete": True, "files": ["keep.txt"]}))
    proc = subprocess.run([sys.executable, "-m", "modernbert_glue.cli", "train", "--output-dir", ".", "--overwrite",
                           "--data-dir", str(small_sst2)], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: .: refusing to write into the current folder; name a new folder for the output"]
    assert (tmp_path / "keep.txt").read_text() == "x"


@pytest.mark.parametrize("where, why", [
    (lambda tmp: Path("/"), "the root folder"),
    (lambda tmp: Path.home(), "your home folder"),
    (lambda tmp: Path.cwd(), "the current folder"),
    (lambda tmp: Path.cwd().parent, "a folder above the current one"),
    (lambda tmp: REPO, "a git repository"),
])
def test_protected_folders_are_refused_even_with_overwrite(tmp_path, monkeypatch, where, why):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=f"refusing to write into {why}"):
        check_output(where(tmp_path), "run", overwrite=True)


def test_kinds_are_not_mixed_and_our_temporary_files_go_too(tmp_path):
    folder = open_output(tmp_path / "r", "report")
    folder.write_text("report.md", "# hi")
    (tmp_path / "r" / f".report.md.tmp-{os.getpid() + 1}").write_text("left by a killed writer")
    folder.finish()
    with pytest.raises(UserError, match="a report folder, not a run folder; refusing to overwrite it"):
        check_output(tmp_path / "r", "run", overwrite=True)
    (tmp_path / "r" / "mine.md").write_text("user")
    open_output(tmp_path / "r", "report", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [MARKER, "mine.md"]


def test_resuming_removes_what_a_killed_writer_left_half_written(tmp_path):
    """A run killed while staging model/ leaves `.model.tmp-PID/`; resuming removes it (and keeps the rest)."""
    folder = open_output(tmp_path / "r", "run")
    folder.write_text("run.json", "{}")
    with pytest.raises(KeyboardInterrupt):
        with folder.staged_dir("model") as staged:
            (staged / "weights").write_text("half")
            shutil.copytree(staged, tmp_path / "r" / f".model.tmp-{os.getpid() + 1}")  # as if another process died
            raise KeyboardInterrupt
    (tmp_path / "r" / "notes.txt").write_text("the user's")
    assert (tmp_path / "r" / f".model.tmp-{os.getpid() + 1}").is_dir()
    open_output(tmp_path / "r", "run", resume=True)
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [MARKER, "notes.txt", "run.json"]


def test_a_writer_killed_before_the_rename_leaves_the_old_file_whole(tmp_path):
    """SIGKILL a writer after it wrote the temporary file, before the rename: the target keeps its old text."""
    target = tmp_path / "metrics.json"
    target.write_text('{"old": true}\n')
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from modernbert_glue import outputs\n"
        "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        "outputs.write_json(Path(sys.argv[1]), {'new': 'x' * 100000})\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    assert json.loads(target.read_text()) == {"old": True}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "metrics.json"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".metrics.json.tmp-")  # hidden, cleaned by --overwrite


def test_readers_refuse_an_unfinished_folder(tiny_run, tmp_path):
    """A run folder whose writer has not finished: evaluate, predict, serve and export refuse it in one line."""
    import shutil

    run = tmp_path / "unfinished"
    shutil.copytree(tiny_run, run)
    marker = json.loads((run / MARKER).read_text())
    (run / MARKER).write_text(json.dumps({**marker, "complete": False}))
    with pytest.raises(UserError, match="unfinished run folder"):
        check_finished(run)
    expected = (f"error: {run}: unfinished run folder: its writer is still running or stopped before the end "
                "(continue it with `train --resume`)")
    for args in (["evaluate", "--model", run / "model", "--file", run / "predictions_dev.tsv"],
                 ["predict", "--model", run / "model", "fine"],
                 ["serve", "--model", run / "model", "--port", "1"],
                 ["export", "onnx", "--model", run / "model", "--output", tmp_path / "onnx"]):
        code, stdout, stderr = run_cli(*args)
        assert code == 2 and stdout == "", args
        assert stderr.strip().splitlines()[-1] == expected, args
    assert not (tmp_path / "onnx").exists()


@contextlib.contextmanager
def writer_in_another_process(path: Path, kind: str):
    """Another process that opened `path` as a `kind` folder and is still writing it (until the block ends)."""
    script = ("import sys\n"
              "from modernbert_glue.outputs import open_output\n"
              "open_output(sys.argv[1], sys.argv[2], overwrite=True).write_text('part.txt', 'being written')\n"
              "print('writing', flush=True)\n"
              "sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(path), kind], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "writing\n"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=60)


def test_a_folder_another_process_is_writing_is_refused_until_it_dies(small_sst2, tmp_path):
    """A second writer (--overwrite, --resume, a sweep started twice) is refused in one line while the first
    writes; once the first is killed, nothing is left to clear by hand."""
    out = tmp_path / "run"
    with writer_in_another_process(out, "run") as first:
        code, stdout, stderr = quick_train(small_sst2, out, "--overwrite")
        assert code == 2 and stdout == ""
        assert stderr.strip().splitlines()[-1] == (
            f"error: {out}: another modernbert-glue process is writing this folder now; wait for it to end, "
            "or name another folder")
        assert (out / "part.txt").read_text() == "being written"  # the overwrite removed nothing
        for call in (lambda: open_output(out, "run", resume=True), lambda: check_output(out, "run", resume=True)):
            with pytest.raises(UserError, match="another modernbert-glue process is writing this folder now"):
                call()
        with pytest.raises(UserError, match="unfinished run folder: another process is writing it now"):
            check_finished(out)
        first.kill()
        first.wait(timeout=60)
        assert check_output(out, "run", resume=True)["complete"] is False  # the kernel dropped the lock
        with pytest.raises(UserError, match="stopped before the end"):
            check_finished(out)


def test_a_finished_folder_is_free_and_this_process_may_reopen_its_own(tmp_path):
    folder = open_output(tmp_path / "seeds", "seeds")
    open_output(tmp_path / "seeds", "seeds", resume=True)  # the same process: a seed set reopened by its writer
    folder.finish()  # released: another process may write it now
    with writer_in_another_process(tmp_path / "seeds", "seeds"):
        assert in_use(tmp_path / "seeds")
    assert not in_use(tmp_path / "seeds")


def test_the_cli_frees_the_folders_of_a_failed_command(tiny_run, tmp_path, monkeypatch):
    """main runs in-process in tests and notebooks: a command that failed after opening its folder must not keep
    it from the next process (here, an export whose writing fails)."""
    from modernbert_glue.inference import export

    def fail(*args, **kwargs):
        raise UserError("disk full")

    monkeypatch.setattr(export, "_write_export", fail)
    code, _, stderr = run_cli("export", "onnx", "--model", tiny_run / "model", "--output", tmp_path / "onnx")
    assert code == 2 and stderr.strip().splitlines()[-1] == "error: disk full"
    assert read_marker(tmp_path / "onnx")["complete"] is False
    probe = subprocess.run([sys.executable, "-c", "import sys; from modernbert_glue.outputs import in_use; "
                            "print(in_use(sys.argv[1]))", str(tmp_path / "onnx")],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout == "False\n", probe.stderr


def test_a_full_disk_is_one_line_naming_the_file_and_the_run_resumes(small_sst2, tmp_path, monkeypatch):
    """The disk fills up while metrics.json is written (after training): exit code 1 and one line naming the
    file, no half-written file left, the folder unfinished; once there is room, --resume finishes the run."""
    import builtins
    import errno

    from modernbert_glue import outputs

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")  # as write() raises it: no file name

    def open_on_a_full_disk(path, *args, **kwargs):
        handle = builtins.open(path, *args, **kwargs)
        return FullDisk(handle) if Path(path).name.startswith(".metrics.json") else handle

    out = tmp_path / "run"
    monkeypatch.setattr(outputs, "open", open_on_a_full_disk, raising=False)
    code, stdout, stderr = quick_train(small_sst2, out)
    assert code == 1 and stdout == ""
    assert stderr.strip().splitlines()[-1] == (
        f"error: {out / 'metrics.json'}: No space left on device; make room and run the command again "
        "(`train --resume` continues a run; --overwrite replaces what another command left)")
    assert not list(out.glob(".metrics.json*")) and not (out / "metrics.json").exists()
    with pytest.raises(UserError, match="unfinished run folder"):
        check_finished(out)
    monkeypatch.undo()
    code, _, stderr = run_cli("train", "--resume", out)
    assert code == 0, stderr[-2000:]
    assert read_marker(out)["complete"] and json.loads((out / "metrics.json").read_text())["resumed_from_step"]


def test_an_oserror_that_is_not_the_disks_is_still_a_bug_with_its_traceback():
    from modernbert_glue.errors import MachineError, as_user_error

    assert isinstance(as_user_error(OSError(28, "No space left on device", "/x")), MachineError)
    with pytest.raises(ConnectionResetError):
        as_user_error(ConnectionResetError(104, "Connection reset by peer"))
    # tensorboard's event writer gives its path as bytes: shown as a path, not as b'...'
    assert str(as_user_error(OSError(30, "Read-only file system", b"run/logs/events"))) == (
        "run/logs/events: Read-only file system; the file system refused it: fix it, or use another folder")
    # a file the user's permissions keep from us: their input, one line (it was a traceback)
    denied = as_user_error(PermissionError(13, "Permission denied", "data/dev.tsv"))
    assert type(denied) is UserError and str(denied) == (
        "data/dev.tsv: Permission denied: give this user access to it, or name another")


def test_an_overwrite_cut_short_leaves_an_unfinished_folder_and_overwrite_again_ends_it(tmp_path, monkeypatch):
    out = open_output(tmp_path / "report", "report")
    for name in ("a.png", "b.png", "report.md"):
        out.write_text(name, "ours")
    out.finish()
    calls = []

    def unlink_then_fail(path, *args, **kwargs):  # the second removal fails (a permission, or a kill)
        calls.append(path)
        if len(calls) == 2:
            raise PermissionError(13, "Permission denied", str(path))
        return real_unlink(path, *args, **kwargs)

    real_unlink = Path.unlink
    monkeypatch.setattr(Path, "unlink", unlink_then_fail)
    with pytest.raises(UserError, match=r"report: cannot replace it \(.*: Permission denied\); fix that and run"):
        open_output(tmp_path / "report", "report", overwrite=True)
    monkeypatch.setattr(Path, "unlink", real_unlink)
    marker = read_marker(tmp_path / "report")
    assert marker["complete"] is False and marker["replacing"] is True  # not "finished" with half its files
    with pytest.raises(UserError, match="an --overwrite of it was cut short \\(run that command again\\)"):
        check_finished(tmp_path / "report")
    with pytest.raises(UserError, match="an --overwrite of it was cut short; nothing to resume"):
        check_output(tmp_path / "report", "report", resume=True)
    with pytest.raises(UserError, match=r"not empty \(pass --overwrite to replace its contents\)"):
        check_output(tmp_path / "report", "report")  # no --resume offered
    again = open_output(tmp_path / "report", "report", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [MARKER]
    again.finish()


def test_staging_and_a_killed_markers_copy_are_never_the_users_names(tmp_path):
    out = open_output(tmp_path / "export", "export")
    with out.staged_files() as staged:
        (staged / "model.onnx").write_text("ours")
    out.finish()
    (tmp_path / "export" / "staging").write_text("the user's file, named as our temporary folder")
    open_output(tmp_path / "export", "export", overwrite=True).finish()
    assert (tmp_path / "export" / "staging").is_file()
    killed = tmp_path / "killed"  # a writer killed before its first marker's rename left only the copy
    killed.mkdir()
    (killed / f".{MARKER}.tmp-123").write_text("{}")  # _tmp_name's form
    open_output(killed, "report").finish()
    assert sorted(p.name for p in killed.iterdir()) == [MARKER]


def test_a_folder_not_ours_is_not_offered_overwrite_nor_a_baseline_resume(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match=r"not a folder modernbert-glue wrote \(no .modernbert-glue.json\); output "
                                        "folder is not empty: name a new folder$"):
        check_output(mine, "report")
    open_output(tmp_path / "killed-baseline", "run")  # killed before its run.json: no `train --resume` for it
    with pytest.raises(UserError, match="stopped before the end$"):
        check_finished(tmp_path / "killed-baseline")


def test_a_write_error_without_a_file_name_names_the_folder_being_filled(tmp_path):
    """onnx's writer fails on a full disk with a bare "File too large": the line says which output it was."""
    import errno

    from modernbert_glue.errors import as_user_error
    from modernbert_glue.outputs import open_output

    folder = open_output(tmp_path / "export", "export")
    with pytest.raises(OSError) as caught, folder.staged_files():
        raise OSError(errno.EFBIG, "File too large")
    assert str(as_user_error(caught.value)).startswith(f"{tmp_path / 'export'}: File too large; make room")
    with pytest.raises(OSError) as caught, folder.staged_dir("model"):
        raise OSError(errno.ENOSPC, "No space left on device", "model/x.bin")
    assert caught.value.filename == "model/x.bin"  # a name the error has is kept


def test_a_background_threads_disk_error_is_one_line_and_a_bug_keeps_its_traceback(capsys):
    """tensorboard's writer thread failing on a full disk printed a thread traceback before the command's line."""
    import threading

    from modernbert_glue.cli_main import thread_error

    def fail(exc: Exception) -> None:
        thread = threading.Thread(target=lambda: (_ for _ in ()).throw(exc), name="EventWriter")
        previous, threading.excepthook = threading.excepthook, thread_error
        try:
            thread.start()
            thread.join()
        finally:
            threading.excepthook = previous

    fail(OSError(28, "No space left on device", "run/logs/events"))
    assert capsys.readouterr().err == ("warning: thread EventWriter stopped: run/logs/events: No space left on device; "
                                       "make room and run the command again (`train --resume` continues a run; "
                                       "--overwrite replaces what another command left)\n")
    fail(KeyError("a bug"))
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError: 'a bug'" in err


@pytest.mark.parametrize("limit_kb, where", [(5000, "safetensors"), (20000, "torch.save")])
def test_a_file_size_limit_in_the_big_writes_is_one_line(small_sst2, tmp_path, limit_kb, where):
    """The biggest writes are not ours: a checkpoint's weights (safetensors, ~13 MB here) and its optimizer state
    (torch.save, ~26 MB) fail with their own errors when the disk gives out (here a file size limit: EFBIG)."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_kb * 1024, limit_kb * 1024))

    out = tmp_path / "run"
    args = ["train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", small_sst2,
            "--max-train-samples", "32", "--max-eval-samples", "16", "--epochs", "1", "--batch-size", "32",
            "--output-dir", out]
    proc = subprocess.run([sys.executable, "-m", "modernbert_glue.cli", *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300, preexec_fn=limit)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    checkpoints = out / "checkpoints"  # named: safetensors' and torch.save's own errors name no file
    if where == "safetensors":
        assert last.startswith(f"error: {checkpoints}: File too large; make room"), last
    else:
        assert last.startswith(f"error: {checkpoints}: torch could not write a file (") and "disk full?" in last, last
    assert read_marker(out)["complete"] is False


def test_overwrite_refuses_a_seed_set_whose_seed_another_process_writes(tmp_path):
    seeds = open_output(tmp_path / "seeds", "seeds")
    seeds.claim("seed-1")
    seeds.finish()
    with writer_in_another_process(tmp_path / "seeds" / "seed-1", "run"):
        with pytest.raises(UserError, match="seed-1: another modernbert-glue process is writing this folder now"):
            check_output(tmp_path / "seeds", "seeds", overwrite=True)
        assert (tmp_path / "seeds" / "seed-1" / "part.txt").is_file()


def test_a_library_call_that_fails_releases_its_folder(tiny_run, tmp_path, monkeypatch):
    """Through the library (a notebook), not the CLI: the failed export's folder is free for another process."""
    from modernbert_glue.inference import export

    monkeypatch.setattr(export, "_write_export", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        export.export_onnx(str(tiny_run / "model"), str(tmp_path / "onnx"))
    probe = subprocess.run([sys.executable, "-c", "import sys; from modernbert_glue.outputs import in_use; "
                            "print(in_use(sys.argv[1]))", str(tmp_path / "onnx")],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout == "False\n", probe.stderr


@pytest.mark.parametrize("complete, files", [("no", ["a.txt"]), (1, ["a.txt"]), (True, "a.txt"),
                                             (True, ["a.txt", 3, None])])
def test_a_marker_edited_by_hand_is_read_strictly(tmp_path, complete, files):
    """`"complete": "no"` counted as finished (any truthy value did), and a string as `files` was removed letter
    by letter by --overwrite (a file named `a` beside it went)."""
    out = tmp_path / "r"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"kind": "report", "complete": complete, "files": files}))
    for name in ("a.txt", "a", "keep.md"):
        (out / name).write_text(name)
    marker = read_marker(out)
    assert marker["complete"] is (complete is True)
    assert marker["files"] == (["a.txt"] if isinstance(files, list) else [])
    if complete is not True:
        with pytest.raises(UserError, match="unfinished report folder"):
            check_finished(out)
    open_output(out, "report", overwrite=True).finish()
    left = sorted(p.name for p in out.iterdir())
    assert "a" in left and "keep.md" in left and ("a.txt" in left) == (not isinstance(files, list))


def test_a_mount_without_file_modes_still_gets_the_folder(tmp_path, monkeypatch):
    """chmod refused (an SMB share, some FUSE mounts): the files are written all the same, under the mount's rules."""
    def refuse(path, mode):
        raise PermissionError(1, "Operation not permitted", str(path))

    folder = open_output(tmp_path / "out", "run")
    monkeypatch.setattr(os, "chmod", refuse)
    with folder.staged_dir("model") as tmp:
        (tmp / "weights.bin").write_bytes(b"w")
    monkeypatch.undo()
    assert (tmp_path / "out" / "model" / "weights.bin").read_bytes() == b"w"


def test_a_dangling_link_as_the_output_folder_is_named_before_the_work(tmp_path):
    """It was "cannot write there (File exists)", from mkdir, after the data and model had loaded."""
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UserError, match=rf"^{tmp_path}/link: a link to {tmp_path}/nowhere, which does not exist; "):
        check_output(tmp_path / "link", "run")
    (tmp_path / "nowhere").mkdir()
    assert check_output(tmp_path / "link", "run") is None  # the folder it leads to: an empty one, fine


def test_the_commit_is_this_checkouts_and_none_for_a_copy_inside_another_repository(tmp_path):
    """An installed copy in a user's project (its .venv inside their git repository) recorded their HEAD."""
    from modernbert_glue.provenance import git_commit, source_checkout

    assert source_checkout() == REPO and git_commit().split("+")[0] == subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    project, site = tmp_path / "project", tmp_path / "project" / ".venv" / "site-packages"
    shutil.copytree(REPO / "src" / "modernbert_glue", site / "modernbert_glue",
                    ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-c", "user.name=u", "-c", "user.email=u@x", "-C", str(project)]
    for step in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "theirs"]):
        subprocess.run([*git, *step], check=True, capture_output=True)
    probe = ("from modernbert_glue import provenance, ownership; "
             "print(provenance.git_commit(), ownership.source_checkout())")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(site)}).stdout.split()
    assert out == ["None", "None"]


def test_sigterm_outside_training_is_one_line_exit_143_and_leaves_no_temporary_folder(tmp_path):
    """SIGTERM killed baseline, export or compare at once: no line, and a half-filled `.NAME.tmp-PID` folder left in
    the output folder. Now (cli_main.terminated_on_sigterm) it unwinds as Ctrl-C does: the staging folder goes,
    the unfinished folder records what it holds, one line, exit code 143."""
    script = (
        "import os, signal, typer\n"
        "from modernbert_glue.cli_main import run_app\n"
        "from modernbert_glue.locks import releases_on_error\n"
        "from modernbert_glue.outputs import open_output\n"
        "app = typer.Typer()\n"
        "@app.command()\n"
        "@releases_on_error\n"
        "def write(out: str):\n"
        "    folder = open_output(out, 'export')\n"
        "    with folder.staged_dir('model') as tmp:\n"
        "        (tmp / 'weights').write_text('half')\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        [0 for _ in range(10**6)]  # the handler runs between bytecodes\n"
        "        print('not stopped')\n"
        "run_app(app)\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 143 and proc.stderr.strip().splitlines()[-1] == "error: stopped by SIGTERM", proc.stderr
    assert "not stopped" not in proc.stdout and "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [".modernbert-glue.json"]  # no .model.tmp-PID
    marker = read_marker(out)
    assert marker["complete"] is False and "contents" in marker and not in_use(out)


def test_a_sigterm_after_the_command_finished_does_not_fail_it_and_a_non_utf8_argument_is_one_line():
    """A SIGTERM while the interpreter tears down (after the output was written) ended the command with 143 and no
    line: a finished run counted as failed. And a path whose bytes are not UTF-8 trained a whole run, then failed
    writing the model card, for good."""
    script = ("import atexit, os, runpy, signal, sys\n"
              "sys.argv = ['modernbert-glue', 'presets', 'list']\n"
              "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGTERM), print('torn down', flush=True)))\n"
              "runpy.run_module('modernbert_glue.cli', run_name='__main__', alter_sys=True)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("torn down"), (proc.returncode, proc.stderr[-500:])
    assert "paper-sst2" in proc.stdout
    code, stdout, stderr = run_cli("train", "--train-file", "bad\udcffname.tsv", "-o", "x", "--check")
    assert code == 2 and stderr.strip() == r"error: 'bad\udcffname.tsv': not valid UTF-8; give paths and texts in UTF-8"
