"""The protocol between a `python -m training` child and the process that follows it (the runs and
evaluations launchers, or anything else): one JSON event per stdout line, and what each exit code means.

Defined once here, so the CLI that speaks it and the launchers that read it cannot drift apart.

Events (`{"event": kind, ...}`):
- `step`: one training step's metrics (`step`, `loss`, `lr`, `grad_norm`, `tokens_per_s`, ...);
- `log`: a line for the run's log (`message`);
- `checkpoint`: a checkpoint of `step` is complete on disk (the launcher uploads it to a shared store);
- `prediction`: one judged eval item (`id`, `output`, `correct`, ...);
- `samples`: completions a GRPO step sampled, with their judges (`step`, `samples`: a list of `prompt`,
  `expected_answer`, `completion`, `stopped`, `reward`, `judges`, `advantage`), every `sample_every` steps;
- `done`: the command finished (`status`: completed | cancelled | interrupted, plus its summary);
- `error`: why it stopped (`kind`, `message`, `errors`), printed before a non-zero exit.

Stopping: a cancel file the child polls between steps means "the user cancelled"; SIGTERM means "this
host is going away": the child finishes its step, checkpoints and exits with `EXIT_INTERRUPTED`, so the
job is resumed elsewhere instead of being recorded as cancelled.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

STEP = "step"
LOG = "log"
CHECKPOINT = "checkpoint"
PREDICTION = "prediction"
SAMPLES = "samples"
DONE = "done"
ERROR = "error"

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_INPUT_ERROR = 2  # bad config, data or paths: retrying will not help
EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: stopped (SIGTERM) or refused (run folder busy) for now; resume later

CANCELLED = "cancelled"
INTERRUPTED = "interrupted"
COMPLETED = "completed"


def emit(kind: str, stream: TextIO | None = None, /, **fields) -> None:
    stream = stream or sys.stdout
    stream.write(json.dumps({**fields, "event": kind}, sort_keys=True) + "\n")
    stream.flush()


def parse(line: str) -> dict | None:
    """The event on one stdout line, or None for any other text."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("event"), str) else None
