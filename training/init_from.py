"""Starting a run from another builtin run's weights (`init_from`), for SFT and GRPO alike.

The parent folder is read, never written: its checkpoint gives the first weights, its tokenizer file is copied
into the new run (the ids the weights were trained on), and the new run's run_config.json records which
parent and step it started from. A resumed run reads that step back, so it restarts from the same weights
whatever checkpoints the parent gained since. Importing this module does not import JAX.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from training.run_files import RUN_CONFIG_FILE, read_json
from training.tokenizers import TOKENIZER_FILE
from training.trace_schema import canonical_json


class InitRunError(ValueError):
    """The folder a run starts from is not a builtin run (or lacks the checkpoint asked for), or its model
    is not the one the run was configured with."""


def recorded_init_step(out_dir: Path, init_step: int | None) -> int | None:
    """The parent step a resumed run started from (what its run_config.json recorded), else `init_step`."""
    if init_step is None and (out_dir / RUN_CONFIG_FILE).exists():
        return read_json(out_dir / RUN_CONFIG_FILE).get("init_from", {}).get("step")
    return init_step


def parent_backend(init_dir: Path) -> str | None:
    """The backend the parent run folder trained with (None when it has no readable run_config.json)."""
    try:
        return read_json(Path(init_dir) / RUN_CONFIG_FILE).get("backend")
    except (OSError, ValueError, AttributeError):
        return None


def load_init(init_dir: Path, step: int | None):
    """The parent's weights (training.generate.LoadedModel) at `step` (its latest when None)."""
    from training.generate import load_model

    try:
        return load_model(init_dir, step)
    except (FileNotFoundError, ValueError) as exc:
        at = f" at step {step}" if step is not None else ""
        raise InitRunError(f"Cannot start from {str(init_dir)!r}{at}: {exc}") from exc


def init_record(init_dir: Path, loaded) -> dict:
    """What a run keeps of its parent: the folder's name (not where this machine keeps it), the step, and
    what the parent was."""
    return parent_record_of(init_dir, loaded.run_config, loaded.step)


def parent_record_of(init_dir: Path, source: dict, step: int) -> dict:
    """`init_record` from the parent's run_config.json and step (for a parent not loaded through
    training.generate, such as a tunix run)."""
    return {"folder": Path(init_dir).name, "step": step, "config_hash": source.get("config_hash"),
            "data_hash": source.get("data_hash"), "algorithm": source.get("algorithm", "sft")}


def identity_hash(algorithm: str, config: dict, init: dict) -> str:
    """A started-from run's config hash: its config and where it started, the parent's config hash and step
    (the same config from other weights is another run). The server computes the same from its rows."""
    identity = {"algorithm": algorithm, "config": config,
                "init_from": {"config_hash": init["config_hash"], "step": init["step"]}}
    return hashlib.sha256(canonical_json(identity).encode("utf-8")).hexdigest()


def copy_tokenizer(init_dir: Path, out_dir: Path) -> None:
    """The parent's learned tokenizer into the new run folder (byte-tokenizer runs have none)."""
    source, target = init_dir / TOKENIZER_FILE, out_dir / TOKENIZER_FILE
    if source.exists() and not target.exists():
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)  # a run killed mid-copy never leaves half a tokenizer behind
