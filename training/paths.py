"""Folders a run names stay inside the folders they are allowed in: the one check of every client-named
path (a run's Gemma `model_dir`, the base weights an archive's run_config.json points at). Pure Python, so
the server (apps.core.paths) and the training tools use the same rule; messages name what was given,
never where a root lives."""

from __future__ import annotations

from pathlib import Path, PurePosixPath


def folder_problem(root: Path, name, *, what: str) -> str | None:
    """Why `name` is not a folder inside `root` (None when it is); `what` names the root for the reader,
    e.g. "the server's models folder". A relative name only: no absolute path, `..`, `~` or backslash, and
    no symlink that leads out of the root."""
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


def inside_any(path: Path, roots: list[Path]) -> bool:
    """Whether `path`, symlinks resolved, lies inside one of `roots`."""
    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(Path(root).resolve()) for root in roots)
