"""What in an output folder is ours to remove: its marker (`.modernbert-glue.json`: kind, complete, the names
its writer put there, and the files each of those folders held when the writer ended), and the refusals that keep
--overwrite from removing anything else: folders that must never be outputs, other commands' outputs and the
user's files inside our folders, and what the command itself reads."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from .errors import UserError
from .locks import in_use, in_use_error
from .provenance import source_checkout

MARKER = ".modernbert-glue.json"
CONTENTS = "contents"  # marker key: the files each listed folder held when its writer ended (finish or fail)
TMP = ".tmp-"  # infix of temporary names: `.<name>.tmp-<pid>`
KINDS = ("run", "seeds", "report", "export", "submission", "sweep")


def with_article(kind: str) -> str:
    """A folder kind with its article, for messages: "a run", "an export"."""
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def read_marker(folder: Path) -> dict | None:
    """The folder's marker, or None when the folder is not one of ours (or has no readable marker). A marker
    edited by hand is read strictly: only `"complete": true` is finished (`"no"` is not), and `files` and each
    list of `contents` hold their strings only (a string in its place would otherwise be read, and removed,
    letter by letter)."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(marker, dict) or marker.get("kind") not in KINDS:
        return None
    strings = lambda names: [n for n in names if isinstance(n, str)] if isinstance(names, list) else []  # noqa: E731
    marker = {**marker, "complete": marker.get("complete") is True, "files": strings(marker.get("files"))}
    if isinstance(recorded := marker.pop(CONTENTS, None), dict):
        marker[CONTENTS] = {name: strings(rels) for name, rels in recorded.items()}
    return marker


def protected(path: Path) -> str | None:
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
    package_repo = source_checkout()
    if package_repo is not None and resolved == package_repo:
        return "this project's repository"
    return None


def check_outside(output_dir: str | Path, folders, what: str) -> None:
    """An output written inside a folder it reads (a run, its model) would change that folder and block its
    `train --overwrite`: refused in one line (`what`: report, submission)."""
    out = Path(output_dir).resolve()
    for folder in folders:
        if Path(folder).is_dir() and Path(folder).resolve() in (out, *out.parents):
            raise UserError(f"--output {output_dir}: inside the run folder {folder}; write the {what} beside the runs")


def run_around(model: Path) -> Path | None:
    """The run folder a model folder is in (a model given as runs/x/model reads runs/x too), or None."""
    marker = read_marker(model.parent)
    return model.parent if marker is not None and marker["kind"] == "run" else None


def check_overwrite(out: Path, marker: dict, inputs: Iterable[str | Path] = ()) -> None:
    """Refuse an --overwrite of our folder `out` that would remove what is not ours to remove, or one of the
    command's own `inputs` (the files and folders it reads)."""
    for name in own_names(marker.get("files", [])):  # a seed's or a sweep's run, resumed by another process
        if in_use(out / name):
            raise in_use_error(out / name)
    if inside := _outputs_inside(out, marker):
        found = read_marker(inside[0])["kind"]
        raise UserError(f"{inside[0]}: {with_article(found)} folder inside {out}, in a folder --overwrite replaces; "
                        "move it out first")
    if foreign := _foreign_files(out, marker):
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise UserError(f"{foreign[0]}{more}: not written by modernbert-glue, inside a folder of {out} that "
                        "--overwrite replaces; move it out first")
    if removed := [p for p in inputs if _removed_with(out, marker, Path(p))]:
        raise UserError(f"{removed[0]}: this command reads it, but --overwrite would remove it with the rest "
                        f"of {out}; name another output folder")

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
            found += [p for p in _unlisted(top, own) if p.is_dir() and not p.is_symlink() and read_marker(p)]
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


def contents(out: Path, marker: dict) -> dict[str, list[str]]:
    return {name: _files_under(top) for name, top in _listed_folders(out, marker)}


def _foreign_files(out: Path, marker: dict) -> list[Path]:
    """Files that appeared inside the folders `marker` lists after their writer ended (a user's notes in a
    run's model/, say): --overwrite would remove them with the folder, though we never wrote them. A folder
    whose writer never ended (killed) has no record: what is in it is taken as ours. Seeds' and sweeps' runs
    are checked against their own markers."""
    found = []
    for name in own_names(marker.get("files", [])):
        if (out / name).is_dir() and not (out / name).is_symlink() and (own := read_marker(out / name)):
            found += _unlisted(out / name, own) + _foreign_files(out / name, own)
    recorded = marker.get(CONTENTS)
    if not isinstance(recorded, dict):
        return found
    for name, top in _listed_folders(out, marker):
        ours = set(recorded.get(name, []))
        found += [top / rel for rel in _files_under(top) if rel not in ours]
    return found


def _unlisted(top: Path, own: dict) -> list[Path]:
    """What lies at the top of a nested output folder (a seed's run) that its own marker does not list: unlike
    the folder --overwrite is given, a nested one goes whole, with whatever a user put in it."""
    names = own_names(own.get("files", []))
    ours = {MARKER, *names}
    return sorted(p for p in top.iterdir()
                  if p.name not in ours and not any(p.name.startswith(f".{n}{TMP}") for n in names))
