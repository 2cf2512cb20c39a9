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
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .locks import in_use, in_use_error, lock, release

MARKER = ".modernbert-glue.json"
FAILURE = "failure.json"  # written by a writer that stopped for good (OutputFolder.fail): why
CONTENTS = "contents"  # marker key: the files each listed folder held when its writer ended (finish or fail)
KINDS = ("run", "seeds", "report", "export", "submission", "sweep")
_TMP = ".tmp-"  # infix of temporary names: `.<name>.tmp-<pid>`


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{_TMP}{os.getpid()}")


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a temporary file beside it, flushed, then renamed over it."""
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk fails in write() with no file name: name the file it was writing
        if exc.filename is None or str(exc.filename) == str(tmp):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def read_marker(folder: Path) -> dict | None:
    """The folder's marker, or None when the folder is not one of ours (or has no readable marker). A marker
    edited by hand is read strictly: only `"complete": true` is finished (`"no"` is not), and `files` holds its
    strings only (a string in its place would otherwise be read, and removed, letter by letter)."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(marker, dict) or marker.get("kind") not in KINDS:
        return None
    files = marker.get("files")
    files = [name for name in files if isinstance(name, str)] if isinstance(files, list) else []
    return {**marker, "complete": marker.get("complete") is True, "files": files}


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
        hint = " (continue it with `train --resume`)" if marker["kind"] in ("run", "seeds") else ""
        raise UserError(f"{folder}: unfinished {marker['kind']} {what}: its writer is still running or "
                        f"stopped before the end{hint}")


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


def _protected(path: Path) -> str | None:
    """Why `path` may never be an output folder (None when it may)."""
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == Path(resolved.anchor):
        return "the root folder"
    if resolved == Path.home().resolve():
        return "your home folder"
    if resolved == cwd:
        return "the current folder"
    if resolved in cwd.parents:
        return "a folder above the current one"
    if (resolved / ".git").exists():
        return "a git repository"
    package_repo = _repository_root()
    if package_repo is not None and resolved == package_repo:
        return "this project's repository"
    return None


def _repository_root() -> Path | None:
    here = Path(__file__).resolve().parent
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=here, capture_output=True, text=True,
                             timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(top).resolve() if top else None


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
        tmp = _tmp_name(target)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            yield tmp
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @contextlib.contextmanager
    def staged_files(self):
        """Yield a temporary folder to fill; on success each entry moves into this folder under its name."""
        tmp = self.file("staging")
        tmp = _tmp_name(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            yield tmp
            self.claim(*(entry.name for entry in tmp.iterdir()))
            for entry in tmp.iterdir():
                target = self.path / entry.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                os.replace(entry, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def fail(self, reason: str) -> None:
        """Record why this folder will not be finished (resuming would not help); it stays unfinished."""
        self.write_json(FAILURE, {"reason": reason})
        write_json(self.path / MARKER, {**self._marker(), CONTENTS: _contents(self.path, self._marker())})
        release(self.path)

    def finish(self) -> None:
        marker = self._marker()
        write_json(self.path / MARKER, {**marker, "complete": True, CONTENTS: _contents(self.path, marker)})
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
    if (why := _protected(out)) is not None:
        raise UserError(f"{out}: refusing to write into {why}; name a new folder for the output")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    nearest = next(p for p in [out, *out.absolute().parents] if p.exists())
    if not nearest.is_dir() or not os.access(nearest, os.W_OK | os.X_OK):
        raise UserError(f"{out}: cannot write there ({nearest} is not a writable folder)")
    if in_use(out):
        raise in_use_error(out)
    marker = read_marker(out) if out.is_dir() else None
    if resume:
        if marker is None or marker["kind"] != kind:
            raise UserError(f"{out}: not a {kind} folder written by modernbert-glue; nothing to resume")
        if (reason := failure(out)) is not None:  # stopped for good: resuming would repeat it
            raise UserError(f"{out}: {reason}")
        return marker
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            hint = "--resume to continue it, " if marker and not marker.get("complete") and kind in ("run", "seeds") else ""
            raise UserError(f"{out}: output folder is not empty (pass {hint}--overwrite to replace its contents)")
        if marker is None:
            raise UserError(f"{out}: not a folder modernbert-glue wrote (no {MARKER}); refusing to overwrite it")
        if marker["kind"] != kind:
            raise UserError(f"{out}: a {marker['kind']} folder, not a {kind} folder; refusing to overwrite it")
        for name in own_names(marker.get("files", [])):  # a seed's or a sweep's run, resumed by another process
            if in_use(out / name):
                raise in_use_error(out / name)
        if inside := _outputs_inside(out, marker):
            found = read_marker(inside[0])["kind"]
            raise UserError(f"{inside[0]}: a {found} folder inside {out}, in a folder --overwrite replaces; "
                            "move it out first")
        if foreign := _foreign_files(out, marker):
            more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
            raise UserError(f"{foreign[0]}{more}: not written by modernbert-glue, inside a folder of {out} that "
                            "--overwrite replaces; move it out first")
        if removed := [p for p in inputs if _removed_with(out, marker, Path(p))]:
            raise UserError(f"{removed[0]}: this command reads it, but --overwrite would remove it with the rest "
                            f"of {out}; name another output folder")
    return marker


def own_names(names: list[str]) -> list[str]:
    """A marker's names, but never one that reaches outside its folder (a marker edited by hand)."""
    return [n for n in names if "/" not in n and n not in ("", ".", "..")]


def _outputs_inside(out: Path, marker: dict) -> list[Path]:
    """Output folders of other commands written inside the folders `marker` lists (an `export onnx` into a
    run's model/, say): --overwrite would remove them with the folder they are in, though the user never
    asked for that. A seed's or a sweep's run folder is one of the listed names: its own marker says what
    is in it."""
    found = []
    for name in own_names(marker.get("files", [])):
        top = out / name
        if not top.is_dir() or top.is_symlink():
            continue
        if (own := read_marker(top)) is not None:
            found += _outputs_inside(top, own)
            continue
        for root, dirs, _ in os.walk(top):
            nested = [d for d in dirs if read_marker(Path(root, d)) is not None]
            found += [Path(root, d) for d in nested]
            dirs[:] = [d for d in dirs if d not in nested]
    return found


def _removed_with(out: Path, marker: dict, path: Path) -> bool:
    """Whether removing what `marker` lists in `out` removes `path` (or, through a symlink, its way there)."""
    if not path.exists():
        return False
    listed = [base / name for base in {Path(os.path.abspath(out)), out.resolve()}
              for name in own_names(marker.get("files", []))]
    return any(p == top or top in p.parents for p in {Path(os.path.abspath(path)), path.resolve()} for top in listed)


def _listed_folders(out: Path, marker: dict):
    """(name, path) of each folder the marker lists that is ours as a whole: not a symlink, not an output
    folder with a marker of its own (a seed's run: that marker lists what is in it)."""
    for name in own_names(marker.get("files", [])):
        top = out / name
        if top.is_dir() and not top.is_symlink() and read_marker(top) is None:
            yield name, top


def _files_under(top: Path) -> list[str]:
    """Every entry below `top` that is not a folder (files, symlinks), as relative paths."""
    found = []
    for root, dirs, files in os.walk(top):
        found += [str(Path(root, f).relative_to(top)) for f in files]
        found += [str(Path(root, d).relative_to(top)) for d in dirs if Path(root, d).is_symlink()]
    return sorted(found)


def _contents(out: Path, marker: dict) -> dict[str, list[str]]:
    return {name: _files_under(top) for name, top in _listed_folders(out, marker)}


def _foreign_files(out: Path, marker: dict) -> list[Path]:
    """Files that appeared inside the folders `marker` lists after their writer ended (a user's notes in a
    run's model/, say): --overwrite would remove them with the folder, though we never wrote them. A folder
    whose writer never ended (killed) has no record: what is in it is taken as ours. Seeds' and sweeps' runs
    are checked against their own markers."""
    found = []
    for name in own_names(marker.get("files", [])):
        if (out / name).is_dir() and not (out / name).is_symlink() and (own := read_marker(out / name)):
            found += _foreign_files(out / name, own)
    recorded = marker.get(CONTENTS)
    if not isinstance(recorded, dict):
        return found
    for name, top in _listed_folders(out, marker):
        ours = recorded.get(name)
        ours = set(ours) if isinstance(ours, list) else set()
        found += [top / rel for rel in _files_under(top) if rel not in ours]
    return found


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
        return OutputFolder(out, kind)
    if marker is not None:
        _remove_our_files(out, marker.get("files", []))
    try:
        write_json(out / MARKER, {"kind": kind, "complete": False, "files": []})
    except OSError as exc:
        release(out)
        raise UserError(f"{out}: cannot write there ({exc.strerror or exc})") from None
    return OutputFolder(out, kind)


def _remove_our_files(out: Path, names: list[str]) -> None:
    _remove(out, names, finished=True)
    (out / MARKER).unlink(missing_ok=True)


def _remove(out: Path, names: list[str], *, finished: bool) -> None:
    """Remove the temporary copies of `names` (`.<name>.tmp-<pid>`), and with `finished` the names too."""
    for name in own_names(names):
        for target in [out / name] * finished + [*out.glob(f".{name}{_TMP}*")]:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
