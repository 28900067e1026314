"""Loading a checkpoint before it becomes a model version: `python -m training.checkpoint_check` in a
fresh process (loading needs JAX, which the web process never imports), with a time limit."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from apps.core.errors import Conflict

logger = logging.getLogger(__name__)


def checkpoint_load_check(out_dir: Path, step: int) -> dict:
    """The checker's report for `out_dir`'s checkpoint at `step`; a checkpoint that does not load is a
    409 naming why (relative to the run folder, never the server path)."""
    command = [sys.executable, "-m", "training.checkpoint_check", "--out", str(out_dir), "--step", str(step),
               "--models-dir", str(settings.MODELS_DIR)]
    try:
        result = subprocess.run(command, cwd=settings.BASE_DIR, capture_output=True, text=True,
                                timeout=settings.CHECKPOINT_CHECK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise Conflict(f"The checkpoint at step {step} did not load within {settings.CHECKPOINT_CHECK_TIMEOUT_S} s.",
                       code="checkpoint_not_loadable") from None
    report = _last_json_line(result.stdout)
    if result.returncode == 0 and report.get("ok") is True:
        return report
    if report.get("ok") is False:
        raise Conflict(f"The checkpoint at step {step} does not load: {report.get('error')}",
                       code="checkpoint_not_loadable", extra={"step": step})
    logger.error("checkpoint check of %s crashed (exit %s): %s", out_dir, result.returncode, result.stderr[-4000:])
    raise Conflict(f"The checkpoint at step {step} could not be checked (the loader crashed).",
                   code="checkpoint_not_loadable", extra={"step": step})


def _last_json_line(text: str) -> dict:
    for line in reversed(text.splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}
