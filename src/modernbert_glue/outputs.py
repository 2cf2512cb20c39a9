"""Output folders this project writes (runs, seed sets, reports, exports): ownership, atomic files, completeness.

Every output folder carries a marker file, `.modernbert-glue.json`: what kind of folder it is, whether its
writer finished, and every name the writer put there. The marker is what lets `--overwrite` remove only our
own files (a user's file left in a run folder survives) and lets readers refuse a folder whose writer died.
Names are recorded in the marker *before* they are written, so even a crash mid-write leaves nothing behind
that a later `--overwrite` would not clean up.

Every file goes to a temporary name beside its target and is renamed into place (atomic on POSIX), so a
reader sees either the old file, the new file or none, never half of one.

One process writes a folder at a time (locks.py): `open_output` takes the folder's lock, `finish` or `fail`
releases it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import Terminated, UserError, naming
from .locks import before_release, in_use, in_use_error, lock, release
from .ownership import (CONTENTS, MARKER, TMP, check_overwrite, contents, own_names, protected, read_marker,
                        with_article)

FAILURE = "failure.json"  # written by a writer that stopped for good (OutputFolder.fail): why
STAGING = "staging"  # staged_files' temporary folder: .staging.tmp-<pid>, removed as a temporary name of ours
REPLACING = "replacing"  # in a marker: an --overwrite began removing the folder's files and has not ended


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP}{os.getpid()}")


def write_bytes(path: Path, data: bytes, *, new: bool = False) -> None:
    """Write `data` to `path` atomically: a temporary file beside it, flushed, then renamed over it (`new`: only
    when no file has that name by then, else FileExistsError)."""
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path) if new else os.replace(tmp, path)  # link: FileExistsError rather than replace a file
    except FileExistsError:
        raise
    except OSError as exc:  # a full disk fails in write() with no file name: name the file it was writing
        if exc.filename is None or str(exc.filename) == str(tmp):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str, *, new: bool = False) -> None:
    write_bytes(path, text.encode("utf-8"), new=new)


def write_json(path: Path, obj, *, new: bool = False) -> None:
    write_text(path, json.dumps(obj, indent=2, default=str) + "\n", new=new)


def failure(folder: Path) -> str | None:
    """Why the writer of an unfinished `folder` stopped for good (OutputFolder.fail), or None."""
    marker = read_marker(folder)
    if marker is None or marker.get("complete") or FAILURE not in marker.get("files", []):
        return None
    try:
        return str(json.loads((Path(folder) / FAILURE).read_text(encoding="utf-8"))["reason"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_finished(folder: Path, what: str = "folder") -> None:
    """Readers call this: a folder whose writer has not finished (still running, or killed) is refused.
    Folders without a marker (written by older versions, or by hand) are accepted as they are."""
    marker = read_marker(folder)
    if marker is not None and not marker.get("complete", False):
        if in_use(folder):
            raise UserError(f"{folder}: unfinished {marker['kind']} {what}: another process is writing it now")
        if (reason := failure(folder)) is not None:
            raise UserError(f"{folder}: unfinished {marker['kind']} {what}: {reason}")
        if marker.get(REPLACING):
            raise UserError(f"{folder}: unfinished {marker['kind']} {what}: an --overwrite of it was cut short "
                            "(run that command again)")
        hint = " (continue it with `train --resume`)" if resumable(folder, marker) else ""
        raise UserError(f"{folder}: unfinished {marker['kind']} {what}: its writer is still running or "
                        f"stopped before the end{hint}")


def resumable(folder: Path, marker: dict | None) -> bool:
    """Whether `train --resume` can continue `folder`: an unfinished run or seed set that recorded its config
    (run.json, written before training starts; a baseline writes it last, and has no --resume)."""
    return (marker is not None and marker["kind"] in ("run", "seeds") and not marker.get("complete")
            and not marker.get(REPLACING) and (folder / "run.json").is_file())


def check_model_finished(folder: str | Path) -> None:
    """A model (or export) folder, and the run folder around it, must be finished to be read."""
    for path in (Path(folder), Path(folder).parent):
        check_finished(path)


def model_folder(folder: str) -> str:
    """The model a folder names: a run folder (`train`'s or a baseline's) names its model/ subfolder, so either
    can be passed; any other folder (a model, an export, a --seeds set) is returned as given."""
    path = Path(folder)
    marker = read_marker(path)
    run = marker is None or marker["kind"] == "run"
    if run and (path / "model").is_dir() and not (path / "config.json").exists():
        return str(path / "model")
    return folder


def _usual_modes(folder: Path) -> None:
    """Give the files under `folder` the mode a new file gets (0666 less the umask): safetensors writes its weights
    readable by their owner alone (0600), so a model saved for a team could not be loaded by the others."""
    mask = os.umask(0)
    os.umask(mask)
    for root, _, files in os.walk(folder):
        for name in files:
            if not (path := Path(root, name)).is_symlink():
                with contextlib.suppress(OSError):  # a mount without POSIX modes (SMB, some FUSE): its own rules
                    os.chmod(path, 0o666 & ~mask)


@dataclass
class OutputFolder:
    """A folder this process writes; create with `open_output`, finish with `finish()`."""

    path: Path
    kind: str

    def _marker(self) -> dict:
        return read_marker(self.path) or {"kind": self.kind, "complete": False, "files": []}

    def claim(self, *names: str) -> None:
        """Record names in the marker before writing them (see the module docstring)."""
        marker = self._marker()
        new = [n for n in names if n not in marker["files"]]
        if new or marker.get("complete"):
            marker.update(files=marker["files"] + new, complete=False)
            marker.pop(CONTENTS, None)  # written again from here on: the last finish's record no longer holds
            write_json(self.path / MARKER, marker)

    def file(self, name: str) -> Path:
        self.claim(name)
        return self.path / name

    def write_json(self, name: str, obj) -> None:
        write_json(self.file(name), obj)

    def write_text(self, name: str, text: str) -> None:
        write_text(self.file(name), text)

    def write_bytes(self, name: str, data: bytes) -> None:
        write_bytes(self.file(name), data)

    @contextlib.contextmanager
    def staged_dir(self, name: str):
        """Yield a temporary folder to fill; on success it replaces `name` as a whole."""
        target = self.file(name)

        def replace(tmp: Path) -> None:
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)

        with self._staging(target, replace) as tmp:
            yield tmp

    @contextlib.contextmanager
    def staged_files(self):
        """Yield a temporary folder to fill; on success each entry moves into this folder under its name."""
        def move(tmp: Path) -> None:
            self.claim(*(entry.name for entry in tmp.iterdir()))
            for entry in tmp.iterdir():
                target = self.path / entry.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                os.replace(entry, target)

        with self._staging(self.path / STAGING, move) as tmp:  # STAGING: never a name of ours (not claimed)
            yield tmp

    @contextlib.contextmanager
    def _staging(self, target: Path, finish):
        """A fresh temporary folder beside `target` for the caller to fill; on success `finish(it)` moves what it
        holds into place; it is removed in the end, whatever happened."""
        tmp = _tmp_name(target)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            with naming(self.path):
                yield tmp
            _usual_modes(tmp)
            finish(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def record_contents(self, **changes) -> None:
        """Record what the listed folders hold now that this writer ends (finish, fail, or stopped by an error or a
        signal): a file added to them later is the user's, and --overwrite will not remove it."""
        marker = self._marker()
        write_json(self.path / MARKER, {**marker, **changes, CONTENTS: contents(self.path, marker)})

    def fail(self, reason: str) -> None:
        """Record why this folder will not be finished (resuming would not help); it stays unfinished."""
        self.write_json(FAILURE, {"reason": reason})
        self.record_contents()
        release(self.path)

    def finish(self) -> None:
        self.record_contents(complete=True)
        release(self.path)

    @property
    def complete(self) -> bool:
        return bool(self._marker().get("complete"))


def check_output(path: str | Path, kind: str, *, overwrite: bool = False, resume: bool = False,
                 inputs: Iterable[str | Path] = ()) -> dict | None:
    """Refuse, before any slow work, an output folder that `open_output` would refuse; returns its marker.

    A non-empty folder is refused unless it is ours and `overwrite` (or `resume`) is given. The root, home
    and current folders, the folders above the current one and git repositories are always refused. So is an
    --overwrite that would remove one of the command's own `inputs` (the files and folders it reads).
    """
    out = Path(path)
    if (why := protected(out)) is not None:
        raise UserError(f"{out}: refusing to write into {why}; name a new folder for the output")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if out.is_symlink() and not out.exists():  # mkdir would say "File exists", after the slow work
        raise UserError(f"{out}: a link to {os.readlink(out)}, which does not exist; create that folder or name "
                        "another")
    nearest = next(p for p in [out, *out.absolute().parents] if p.exists())
    if not nearest.is_dir() or not os.access(nearest, os.W_OK | os.X_OK):
        raise UserError(f"{out}: cannot write there ({nearest} is not a writable folder)")
    if in_use(out):
        raise in_use_error(out)
    marker = read_marker(out) if out.is_dir() else None
    if resume:
        if marker is None or marker["kind"] != kind:
            raise UserError(f"{out}: not {with_article(kind)} folder written by modernbert-glue; nothing to resume")
        if marker.get(REPLACING):
            raise UserError(f"{out}: an --overwrite of it was cut short; nothing to resume (pass --overwrite)")
        if (reason := failure(out)) is not None:  # stopped for good: resuming would repeat it
            raise UserError(f"{out}: {reason}")
        return marker
    if out.is_dir() and any(p for p in out.iterdir() if not _stale_marker(p)):
        if marker is None or marker["kind"] != kind:  # not ours to replace: --overwrite is not offered either
            what = (f"not a folder modernbert-glue wrote (no {MARKER})" if marker is None else
                    f"{with_article(marker['kind'])} folder, not {with_article(kind)} folder")
            raise UserError(f"{out}: {what}; " + ("refusing to overwrite it" if overwrite else
                                                  "output folder is not empty: name a new folder"))
        if not overwrite:
            hint = "--resume to continue it, " if resumable(out, marker) else ""
            raise UserError(f"{out}: output folder is not empty (pass {hint}--overwrite to replace its contents)")
        check_overwrite(out, marker, inputs)
    return marker


def _stale_marker(path: Path) -> bool:
    """A marker's temporary copy left by a writer killed while creating the folder: not a reason to refuse it."""
    return path.name.startswith(f".{MARKER}{TMP}")


def open_output(path: str | Path, kind: str, *, overwrite: bool = False, resume: bool = False) -> OutputFolder:
    """Create an output folder (with `overwrite`, first remove the names our marker lists there, and only
    those; with `resume`, reopen it as it is). Refusals as `check_output`."""
    out = Path(path)
    marker = check_output(out, kind, overwrite=overwrite, resume=resume)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out}: cannot write there ({exc.strerror or exc})") from None
    if not lock(out):
        raise in_use_error(out)
    marker = check_output(out, kind, overwrite=overwrite, resume=resume)  # again: another writer may have just ended
    if resume:  # what a killed writer left half-written goes; what it finished stays
        _remove(out, (marker or {}).get("files", []), finished=False)
        folder = OutputFolder(out, kind)
        if marker is not None and CONTENTS in marker:  # written again from here on: the old record no longer holds
            write_json(out / MARKER, {k: v for k, v in folder._marker().items() if k != CONTENTS})
        return folder
    try:
        if marker is not None:  # first marked unfinished (REPLACING): a removal cut short (a kill, a file we may not
            # remove) leaves no half-emptied folder that says it is finished; --overwrite again ends it
            write_json(out / MARKER, {"kind": kind, "complete": False, REPLACING: True, "files": marker["files"]})
            _remove(out, marker["files"], finished=True)
        for stale in filter(_stale_marker, out.iterdir()):
            stale.unlink(missing_ok=True)
        write_json(out / MARKER, {"kind": kind, "complete": False, "files": []})
    except OSError as exc:
        release(out)
        raise UserError(f"{out}: cannot {'replace' if marker else 'write'} it ({os.fsdecode(exc.filename or '')}: "
                        f"{exc.strerror or exc}); fix that and run the command again") from None
    return OutputFolder(out, kind)


def _remove(out: Path, names: list[str], *, finished: bool) -> None:
    """Remove the temporary copies of `names` (`.<name>.tmp-<pid>`) and of staged_files' folder, and with
    `finished` the names too."""
    for target in [*(out / name for name in own_names(names) if finished), *out.glob(f".{STAGING}{TMP}*"),
                   *(t for name in own_names(names) for t in out.glob(f".{name}{TMP}*"))]:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def _record_on_error(folder: Path, error: BaseException) -> None:
    """locks.releases_on_error's hook: an unfinished folder of ours that one of our own errors ends (a stop by a
    signal, a full disk: UserError; SIGTERM outside training: Terminated) records what its folders hold, as finish
    does. After any other exception (a bug) nothing is recorded: all that is in the folders stays ours to remove.
    Never masks the error itself."""
    marker = read_marker(folder)
    if not isinstance(error, (UserError, Terminated)) or marker is None or marker.get("complete"):
        return
    try:
        OutputFolder(folder, marker["kind"]).record_contents()
    except OSError:
        pass


before_release(_record_on_error)

