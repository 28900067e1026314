"""`python -m training.checkpoint_check --out RUN_FOLDER --step N`: does this checkpoint load?

A folder named `checkpoints/20/` proves nothing (an imported archive can hold any bytes there). This
loads the step the way generation does: for a builtin run, the params restored into the shapes of the
model its run_config.json describes, with its tokenizer; for a tunix run, the base weights with the
checkpoint restored over them. Every parameter must be finite. It prints one JSON line,
`{"ok": true, "step", "backend", "parameters"}` (exit 0) or `{"ok": false, "error"}` (exit 2). Messages
name files relative to the run folder, never the server path it lives at.

It runs in a fresh process because loading needs JAX, which a web worker must not import.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_NOT_LOADABLE = 2


def check(out_dir: Path, step: int, models_dir: Path | None = None) -> dict:
    from training.run_files import RUN_CONFIG_FILE, read_json

    config_path = out_dir / RUN_CONFIG_FILE
    if not config_path.is_file():
        raise ValueError(f"{RUN_CONFIG_FILE} is missing: the archive is no run folder")
    run_config = read_json(config_path)
    backend = run_config.get("backend") if isinstance(run_config, dict) else None
    if backend == "builtin":
        params = _builtin_params(out_dir, step)
    elif backend == "tunix":
        params = _tunix_params(out_dir, step, run_config, models_dir)
    else:
        raise ValueError(f"{RUN_CONFIG_FILE} names backend {backend!r}; expected 'builtin' or 'tunix'")
    return {"ok": True, "step": step, "backend": backend, "parameters": _finite_parameter_count(params)}


def _builtin_params(out_dir: Path, step: int):
    from training.generate import load_model

    return load_model(out_dir, step).params


def _tunix_params(out_dir: Path, step: int, run_config: dict, models_dir: Path | None):
    from flax import nnx

    from training.backends.tunix_generate import load_for_generation
    from training.checkpoints import CheckpointStore

    # With models_dir, base weights are looked for only in the run folder and that folder (never at a path
    # run_config.json names), and they must be the ones the run recorded (training.base_weights).
    latest = CheckpointStore(out_dir, read_only=True).latest_step()
    if latest != step:
        raise ValueError(f"a tunix run loads its latest checkpoint ({latest}), not step {step}")
    model, _ = load_for_generation(out_dir, models_dir=models_dir)
    return nnx.state(model, nnx.Param)


def _finite_parameter_count(params) -> int:
    import jax
    import numpy as np

    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError("the checkpoint holds no parameters")
    count = 0
    for leaf in leaves:
        values = np.asarray(leaf)
        if not np.isfinite(values.astype(np.float32)).all():
            raise ValueError("the checkpoint holds non-finite parameters (NaN or inf)")
        count += int(values.size)
    return count


def _message(exc: BaseException, out_dir: Path) -> str:
    text = f"{type(exc).__name__}: {exc}"
    for prefix in {str(out_dir.resolve()), str(out_dir)}:
        text = text.replace(prefix + "/", "").replace(prefix, "the run folder")
    return text.splitlines()[0][:500] if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.checkpoint_check", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the run folder (run_config.json, checkpoints/)")
    parser.add_argument("--step", required=True, type=int, help="the checkpoint step to load")
    parser.add_argument("--models-dir", help="tunix runs: base weights must live inside this folder")
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    try:
        result = check(out_dir, args.step, Path(args.models_dir) if args.models_dir else None)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the answer, reported as such
        print(json.dumps({"ok": False, "error": _message(exc, out_dir)}))
        return EXIT_NOT_LOADABLE
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
