"""Command line: `python -m training train|grpo|generate|evaluate|serve ...`, usable without any server.

`train`, `grpo` and `evaluate --events` print one JSON event per stdout line (training.protocol: `step`,
`checkpoint`, `samples`, `prediction`, `log`, then `done`, or `error`) so a parent process can follow
them. All stop cleanly between steps (train and grpo also checkpoint): with status "cancelled" when
`--cancel-file` appears, with status "interrupted" and exit code 75 on SIGTERM (the host is going away;
resume later). A run folder another trainer holds is refused with exit code 75 too. Input problems
(config, data, prompts, paths, an `--init` that is not a builtin run) print a clear message on stderr
and exit 2; a crash exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from training import protocol
from training.base_weights import BaseWeightsError
from training.config import ConfigError, TrainConfig
from training.data import DataError
from training.run_files import RunFolderBusy, RunMismatchError


class InputError(Exception):
    """Something the user passed is wrong; reported without a traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description="tunix-rt training toolkit")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train (or resume) a run into --out")
    train.add_argument("--config", required=True, help="YAML (or JSON) TrainConfig file")
    train.add_argument("--data", required=True, help="tunix_sft JSONL export")
    train.add_argument("--out", required=True, help="run folder (checkpoints, metrics.jsonl, manifest)")
    train.add_argument("--cancel-file", help="stop cleanly when this file exists")
    train.add_argument("--eval-data", help="held-out tunix_sft JSONL for eval_every losses")
    train.add_argument("--peak-flops", type=float, help="device peak FLOP/s for the MFU estimate")
    train.add_argument("--init", help="builtin run folder whose weights (and tokenizer) this run continues from")
    train.add_argument("--init-step", type=int, help="start from this checkpoint of --init (default: the latest)")
    train.add_argument("--parent-pid", type=int,
                       help="die with this process (a launcher): SIGKILL when it exits, on Linux")
    grpo = commands.add_parser("grpo", help="GRPO (or resume it) from a builtin run into --out")
    grpo.add_argument("--config", required=True, help="YAML (or .json) GRPOConfig file")
    grpo.add_argument("--prompts", required=True, help='JSONL of {"prompt", "expected_answer"} (eval items do)')
    grpo.add_argument("--init", required=True, help="builtin run folder whose weights GRPO starts from")
    grpo.add_argument("--init-step", type=int, help="start from this checkpoint of --init (default: the latest)")
    grpo.add_argument("--out", required=True, help="run folder (checkpoints, metrics.jsonl, samples.jsonl, manifest)")
    grpo.add_argument("--cancel-file", help="stop cleanly when this file exists")
    grpo.add_argument("--parent-pid", type=int, help="die with this process (see train --parent-pid)")
    gen = commands.add_parser("generate", help="generate from a trained run")
    gen.add_argument("--out", required=True, help="run folder to load")
    gen.add_argument("--prompt", required=True, action="append", help="user prompt (repeatable)")
    gen.add_argument("--max-new-tokens", type=int, default=256)
    gen.add_argument("--temperature", type=float, default=0.0)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--raw", action="store_true", help="feed the prompt as is, without the chat template")
    ev = commands.add_parser("evaluate", help="evaluate a trained run on an eval set")
    ev.add_argument("--out", required=True, help="run folder to evaluate")
    ev.add_argument("--eval", required=True, help="generator eval set name (eval-v1) or an items JSONL path")
    ev.add_argument("--section", help="only items of this section (e.g. in_distribution)")
    ev.add_argument("--limit", type=int, help="only the first N items")
    ev.add_argument("--max-new-tokens", type=int)
    ev.add_argument("--batch-size", type=int, default=16)
    ev.add_argument("--checkpoint-step", type=int, help="evaluate this checkpoint (default: the latest)")
    ev.add_argument("--events", action="store_true",
                    help="stream one JSON `prediction` event per item instead of writing files (for a launcher)")
    ev.add_argument("--cancel-file", help="with --events: stop after the current batch when this file exists")
    ev.add_argument("--parent-pid", type=int, help="die with this process (see train --parent-pid)")
    ev.add_argument("--models-dir", help="tunix runs: the folder holding the base weights the run names "
                                         "(default: $TUNIXRT_MODELS_DIR)")
    host = commands.add_parser("serve", help="keep models loaded and answer generation requests on stdin "
                                             "(one JSON object per line; see training.serve)")
    host.add_argument("--memory-budget-mb", type=int, default=2048,
                      help="parameters held at once; least recently used models are evicted beyond it")
    host.add_argument("--parent-pid", type=int, help="die with this process (see train --parent-pid)")
    return parser


def _print_json(value: dict) -> None:
    sys.stdout.write(json.dumps(value, sort_keys=True) + "\n")
    sys.stdout.flush()


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL us when our parent exits (Linux PR_SET_PDEATHSIG), so a launcher that
    is killed never leaves a trainer behind writing into a run folder its retry will use."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        raise SystemExit(f"parent process {parent_pid} is gone; not training")


def command_train(args) -> int:
    from training.engine import train
    from training.hooks import JsonEventHooks
    from training.init_from import InitRunError

    if args.parent_pid:
        die_with_parent(args.parent_pid)
    if not Path(args.data).is_file():
        raise InputError(f"--data {args.data!r} is not a file.")
    config = TrainConfig.from_yaml(args.config)
    hooks = JsonEventHooks(cancel_file=args.cancel_file)
    hooks.install_sigterm_handler()
    try:
        result = train(config, args.data, args.out, hooks, eval_data_path=args.eval_data,
                       peak_flops=args.peak_flops, init_dir=args.init, init_step=args.init_step)
    except InitRunError as exc:
        raise InputError(f"--init: {exc}") from exc
    return _done(hooks, result)


def _done(hooks, result, **extra) -> int:
    hooks.emit(
        protocol.DONE, status=result.status, steps_completed=result.steps_completed, final_loss=result.final_loss,
        cancel_reason=result.manifest.get("cancel_reason"), manifest_path=result.manifest_path,
        metrics_path=result.metrics_path, checkpoint_dir=result.checkpoint_dir, **extra,
    )
    return protocol.EXIT_INTERRUPTED if result.status == protocol.INTERRUPTED else protocol.EXIT_OK


def command_grpo(args) -> int:
    from training.grpo.config import SAMPLES_FILE, GRPOConfig, read_prompts
    from training.grpo.trainer import grpo_train
    from training.hooks import JsonEventHooks
    from training.init_from import InitRunError

    if args.parent_pid:
        die_with_parent(args.parent_pid)
    if not Path(args.prompts).is_file():
        raise InputError(f"--prompts {args.prompts!r} is not a file.")
    config = GRPOConfig.from_file(args.config)
    prompts = read_prompts(args.prompts)
    hooks = JsonEventHooks(cancel_file=args.cancel_file)
    hooks.install_sigterm_handler()
    try:
        result = grpo_train(config, prompts, args.init, args.out, hooks, init_step=args.init_step)
    except InitRunError as exc:
        raise InputError(f"--init: {exc}") from exc
    return _done(hooks, result, samples_path=str(Path(args.out) / SAMPLES_FILE),
                 reward_mean_last_10=result.manifest["final_rewards"]["reward_mean_last_10"])


def command_generate(args) -> int:
    from training.generate import generate, load_model
    from training.render import render_prompt

    loaded = _load(args.out, load_model)
    prompts = args.prompt if args.raw else [render_prompt(p) for p in args.prompt]
    generations = generate(loaded, prompts, args.max_new_tokens, args.temperature, args.seed)
    for prompt, generation in zip(args.prompt, generations, strict=True):
        _print_json({"prompt": prompt, "output": generation.text, "stopped": generation.stopped,
                     "tokens": len(generation.token_ids)})
    return 0


def _load(out_dir: str, loader):
    try:
        return loader(out_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(str(exc)) from exc


def load_eval_items(name_or_path: str) -> list[dict]:
    path = Path(name_or_path)
    if path.suffix in (".jsonl", ".json") or path.exists():
        if not path.is_file():
            raise InputError(f"--eval {name_or_path!r} is not a file.")
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    from training.generators import generate as generate_set

    try:
        return list(generate_set(name_or_path).items)
    except (KeyError, ValueError) as exc:
        raise InputError(f"Unknown eval set {name_or_path!r}: {exc}") from exc


def command_evaluate(args) -> int:
    from training.evaluate import evaluate
    from training.run_files import write_json_atomic

    items = load_eval_items(args.eval)
    if args.section:
        items = [item for item in items if item.get("section") == args.section]
    items = items[: args.limit] if args.limit else items
    if not items:
        raise InputError("No eval items left after --section/--limit.")
    if not (Path(args.out) / "run_config.json").exists():
        raise InputError(f"--out {args.out!r} is not a training run folder.")
    if args.parent_pid:
        die_with_parent(args.parent_pid)
    if args.models_dir:
        from training.base_weights import MODELS_DIR_ENV

        os.environ[MODELS_DIR_ENV] = str(Path(args.models_dir).resolve())
    if args.events:
        return _evaluate_events(args, items)
    report = evaluate(args.out, items, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                      step=args.checkpoint_step)
    out = Path(args.out)
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for prediction in report["predictions"]:
            handle.write(json.dumps(prediction, sort_keys=True) + "\n")
    write_json_atomic(out / "eval_summary.json", report["summary"])
    _print_json(report["summary"])
    return 0


def _evaluate_events(args, items: list[dict]) -> int:
    from training.evaluate import evaluate_stream
    from training.hooks import StopSignals

    stop = StopSignals(args.cancel_file)
    stop.install_sigterm_handler()
    protocol.emit(protocol.LOG, message=f"evaluating {len(items)} items")
    count, status = 0, protocol.COMPLETED
    try:
        for batch in evaluate_stream(args.out, items, max_new_tokens=args.max_new_tokens,
                                     batch_size=args.batch_size, step=args.checkpoint_step):
            for prediction in batch:
                protocol.emit(protocol.PREDICTION, **prediction)
            count += len(batch)
            if stop.should_stop():
                status = stop.status()
                break
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(str(exc)) from exc
    protocol.emit(protocol.DONE, status=status, predictions=count)
    return protocol.EXIT_INTERRUPTED if status == protocol.INTERRUPTED else protocol.EXIT_OK


def command_serve(args) -> int:
    from training.serve import serve

    if args.parent_pid:
        die_with_parent(args.parent_pid)
    return serve(args.memory_budget_mb)


COMMANDS = {"train": command_train, "grpo": command_grpo, "generate": command_generate, "evaluate": command_evaluate,
            "serve": command_serve}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        return _input_error("config error", exc, errors=exc.errors)
    except (DataError, RunMismatchError, InputError, BaseWeightsError) as exc:
        return _input_error("input error", exc)
    except RunFolderBusy as exc:
        sys.stderr.write(f"busy: {exc}\n")
        protocol.emit(protocol.ERROR, kind="busy", message=str(exc), errors={})
        return protocol.EXIT_INTERRUPTED
    except Exception as exc:
        # A parent process reading events learns why the run died; the traceback still goes to stderr.
        message = f"{type(exc).__name__}: {exc}"
        protocol.emit(protocol.ERROR, kind="crash", message=message, errors={})
        raise


def _input_error(kind: str, exc: Exception, errors: dict | None = None) -> int:
    if errors:
        lines = "\n".join(f"  {key}: {' '.join(messages)}" for key, messages in errors.items())
        sys.stderr.write(f"{kind}:\n{lines}\n")
    else:
        sys.stderr.write(f"{kind}: {exc}\n")
    protocol.emit(protocol.ERROR, kind=kind.replace(" ", "_"), message=str(exc), errors=errors or {})
    return protocol.EXIT_INPUT_ERROR


if __name__ == "__main__":
    sys.exit(main())
