"""Client-named folders stay inside the server's folders, and messages never show where those live.

`folder_problem` is the one check every path a client can name goes through (a run's `model_dir` from a
direct request, a sweep, an import or the run config inside an uploaded archive): a relative name inside
the root, no `..`, no symlink out of it. Its messages name what the client gave, never the resolved server
path; `scrub_server_paths` does the same for errors that come back from a child process.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from django.conf import settings


def folder_problem(root: Path, name, *, what: str) -> str | None:
    """Why `name` is not a folder inside `root` (None when it is); `what` names the root for the user,
    e.g. "the server's models folder"."""
    if not isinstance(name, str) or not name.strip():
        return f"Give the name of a folder inside {what}."
    candidate = PurePosixPath(name)
    if candidate.is_absolute() or ".." in candidate.parts or "\\" in name or name.startswith("~"):
        return f"Must be a folder name inside {what}, not a path."
    root = Path(root).resolve()
    resolved = (root / candidate).resolve()
    if resolved == root or not resolved.is_relative_to(root):
        return f"Must name a folder inside {what}."
    if not resolved.is_dir():
        return f"No folder {name!r} in {what}."
    return None


def resolve_inside(root: Path, name: str) -> Path:
    """The folder a name that passed `folder_problem` stands for."""
    return (Path(root).resolve() / name).resolve()


def scrub_server_paths(text: str) -> str:
    """Replace this server's folders in a message (a trainer's error, say) with neutral names."""
    folders = {str(Path(settings.MODELS_DIR).resolve()): "<models>", str(Path(settings.RUNS_DIR).resolve()): "<runs>",
               str(Path(settings.DATASETS_DIR).resolve()): "<datasets>",
               str(Path(settings.DATA_DIR).resolve()): "<data>", str(Path(settings.BASE_DIR).resolve()): "<app>"}
    for folder in sorted(folders, key=len, reverse=True):  # the deepest first: runs lives inside data
        text = text.replace(folder, folders[folder])
    return text
