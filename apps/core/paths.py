"""Client-named folders stay inside the server's folders, and messages never show where those live.

`folder_problem` (training.paths, shared with the training tools) is the one check every path a client can
name goes through: a run's `model_dir` from a direct request, a sweep or an import, and the base weights the
run_config.json inside an uploaded archive points at. Its messages name what the client gave, never the
resolved server path; `scrub_server_paths` does the same for errors that come back from a child process.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from training.paths import folder_problem, resolve_inside  # noqa: F401 - the one rule, re-exported for the apps


def scrub_server_paths(text: str) -> str:
    """Replace this server's folders in a message (a trainer's error, say) with neutral names."""
    folders = {str(Path(settings.MODELS_DIR).resolve()): "<models>", str(Path(settings.RUNS_DIR).resolve()): "<runs>",
               str(Path(settings.DATASETS_DIR).resolve()): "<datasets>",
               str(Path(settings.DATA_DIR).resolve()): "<data>", str(Path(settings.BASE_DIR).resolve()): "<app>"}
    for folder in sorted(folders, key=len, reverse=True):  # the deepest first: runs lives inside data
        text = text.replace(folder, folders[folder])
    return text
