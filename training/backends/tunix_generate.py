"""Generation for the `tunix` backend with Tunix's KV-cached `Sampler`, stopping at end-of-turn.

The path is either a run folder (its `run_config.json` names the preset, the base weights and LoRA;
the latest checkpoint in `checkpoints/` is restored over them) or a bare model folder (the preset is
inferred from the weight shapes). Prompts that are not already rendered chat prompts are rendered
with `training.render.render_prompt`, so callers may pass either the raw question or the rendered one.

Evaluation calls `generate` once per batch of items, so the loaded model and its compiled samplers are
kept for the most recent source and reused until that source gets a new checkpoint or new weights.

The model is loaded onto a mesh of every local device (`auto`, whatever mesh the run trained on: a
checkpoint restores onto any device count) and the sampler runs under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flax import nnx
from tunix.generate import sampler as sampler_lib
from tunix.generate import utils as sampler_utils
from tunix.sft import checkpoint_manager as tunix_checkpoints

from training import base_weights
from training.backends.tunix_models import (
    TOKENIZER_FILE,
    apply_lora,
    infer_preset,
    load_model,
    model_cache_shape,
)
from training.backends.tunix_tokenizer import SentencePieceTokenizer
from training.checkpoints import checkpoint_dir
from training.config import AUTO_MESH
from training.mesh import make_mesh
from training.render import START_OF_TURN, render_prompt
from training.run_files import RUN_CONFIG_FILE, read_json
from training.tokenizers import stop_ids

GENERATION_BATCH = 8  # prompts per sampler call; the last batch is padded so all calls share one compile


def load_for_generation(path: str | Path, mesh=None, models_dir: str | Path | None = None,
                        ) -> tuple[nnx.Module, SentencePieceTokenizer]:
    """(model, tokenizer) for a run folder's latest checkpoint or for a bare model folder, on `mesh`.
    A run's base weights are looked for in the run folder, then in `models_dir` (default: the
    TUNIXRT_MODELS_DIR folder), and must be the ones it was trained on (training.base_weights)."""
    root = Path(path).expanduser()
    if (root / RUN_CONFIG_FILE).exists():
        return _load_run(root, mesh, models_dir)
    preset = infer_preset(root)
    return load_model(root, preset, mesh), SentencePieceTokenizer(root / TOKENIZER_FILE)


def run_base_dir(out_dir: Path, run_config: dict, models_dir: str | Path | None = None) -> Path:
    """The run's base weights folder, checked against what the run recorded (weights and tokenizer)."""
    recorded = run_config.get("model_dir")
    model_dir = base_weights.locate(out_dir, recorded, models_dir)
    base_weights.verify(model_dir, run_config.get("base_weights"), Path(recorded).name)
    tokenizer_sha = (run_config.get("tokenizer") or {}).get("sha256")
    if tokenizer_sha and SentencePieceTokenizer(model_dir / TOKENIZER_FILE).sha256 != tokenizer_sha:
        raise base_weights.BaseWeightsChanged(
            f"The tokenizer in {Path(recorded).name!r} changed since this run was trained with it (sha256 "
            f"{tokenizer_sha[:12]}… recorded); put the original {TOKENIZER_FILE} back.")
    return model_dir


def _load_run(out_dir: Path, mesh=None, models_dir=None) -> tuple[nnx.Module, SentencePieceTokenizer]:
    model, tokenizer, _ = load_run_weights(out_dir, mesh, models_dir)
    return model, tokenizer


def run_model_spec(run_config: dict) -> dict:
    """{"model", "lora", "seed"}: how a tunix run builds its model. An SFT run's config says it; a GRPO
    run's config is a GRPOConfig, so it records its parent's under `tunix_model`."""
    spec = run_config.get("tunix_model") or run_config["config"]
    return {"model": spec["model"], "lora": spec.get("lora"), "seed": spec["seed"]}


def load_run_weights(out_dir: Path, mesh=None, models_dir=None, step: int | None = None,
                     ) -> tuple[nnx.Module, SentencePieceTokenizer, int]:
    """(model, tokenizer, step) of a tunix run folder at checkpoint `step` (its latest when None)."""
    run_config = read_json(out_dir / RUN_CONFIG_FILE)
    if run_config.get("backend") != "tunix":
        raise ValueError(f"{out_dir} holds a {run_config.get('backend')!r} run, not a tunix one.")
    spec = run_model_spec(run_config)
    model_dir = run_base_dir(out_dir, run_config, models_dir)
    model = load_model(model_dir, spec["model"], mesh)
    lora = spec["lora"]
    if lora:
        model = apply_lora(model, lora["rank"], lora["alpha"], spec["seed"], mesh)
    step = _restore(out_dir, model, lora_only=bool(lora), step=step)
    return model, SentencePieceTokenizer(model_dir / TOKENIZER_FILE), step


def _restore(out_dir: Path, model: nnx.Module, lora_only: bool, step: int | None = None) -> int:
    steps = checkpoint_steps(out_dir)
    if not steps:
        raise FileNotFoundError(f"No checkpoint to generate from in {checkpoint_dir(out_dir)}.")
    if step is not None and step not in steps:
        raise FileNotFoundError(f"No checkpoint at step {step} in {checkpoint_dir(out_dir)}; it has "
                                f"{', '.join(map(str, steps))}.")
    manager = tunix_checkpoints.CheckpointManager(str(checkpoint_dir(out_dir)))
    try:
        restored, _ = manager.maybe_restore(model, step=step, restore_only_lora_params=lora_only)
    finally:
        manager.close()
    if not restored:
        raise FileNotFoundError(f"No checkpoint to generate from in {checkpoint_dir(out_dir)}.")
    return restored


def checkpoint_steps(out_dir: Path) -> list[int]:
    """Finished checkpoint steps; Orbax names a step's folder by its number once the save completed."""
    folder = checkpoint_dir(out_dir)
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isascii() and p.name.isdigit())


def _source_key(path: str | Path) -> tuple:
    """Changes whenever what load_for_generation would load changes: a run's latest checkpoint, or the
    weight and tokenizer files of its base folder (so replaced base weights are checked again)."""
    root = Path(path).expanduser().resolve()
    if (root / RUN_CONFIG_FILE).exists():
        base = base_weights.locate(root, read_json(root / RUN_CONFIG_FILE).get("model_dir"))
        files = [checkpoint_dir(root) / str(step) for step in checkpoint_steps(root)[-1:]]
    else:
        base, files = root, []
    files += sorted(base.glob("*.safetensors")) + [base / TOKENIZER_FILE]
    return (str(root),) + tuple((str(p), p.stat().st_mtime_ns, p.stat().st_ino) for p in files if p.exists())


@dataclass
class _Loaded:
    model: nnx.Module
    tokenizer: SentencePieceTokenizer
    mesh: object
    samplers: dict = field(default_factory=dict)  # KV-cache size -> Sampler (each holds its compiled steps)


_LOADED: dict[tuple, _Loaded] = {}  # at most one entry: a second model would double the memory held


def _cached_load(path: str | Path) -> _Loaded:
    key = _source_key(path)
    if key not in _LOADED:
        _LOADED.clear()
        mesh = make_mesh(AUTO_MESH)
        with mesh:
            _LOADED[key] = _Loaded(*load_for_generation(path, mesh), mesh=mesh)
    return _LOADED[key]


def loaded_tokenizer(path: str | Path) -> SentencePieceTokenizer:
    """The tokenizer of the model `generate` uses for `path` (loading it if it is not loaded)."""
    return _cached_load(path).tokenizer


def release() -> None:
    """Drop the cached model (and its samplers), e.g. before loading another copy of a big one."""
    _LOADED.clear()


def as_chat_prompt(prompt: str) -> str:
    return prompt if prompt.startswith(START_OF_TURN) else render_prompt(prompt)


@dataclass
class Generation:
    text: str  # the completion before the stop token, which is not included
    token_ids: list[int]
    stopped: bool  # True when it ended on <end_of_turn>/eos, False when max_new_tokens cut it off


def generate(path: str | Path, prompts: list[str], max_new_tokens: int, temperature: float = 0.0,
             seed: int = 0) -> list[str]:
    """One completion per prompt (the text before `<end_of_turn>`/eos); greedy when temperature is 0."""
    return [g.text for g in generate_details(path, prompts, max_new_tokens, temperature, seed)]


def generate_details(path: str | Path, prompts: list[str], max_new_tokens: int, temperature: float = 0.0,
                     seed: int = 0) -> list[Generation]:
    """Like `generate`, with the generated ids and whether each completion stopped by itself."""
    if not prompts:
        return []
    loaded = _cached_load(path)
    with loaded.mesh:
        return sample(loaded, prompts, max_new_tokens, temperature, seed)


def _sampler(loaded: _Loaded, cache_size: int) -> sampler_lib.Sampler:
    if cache_size not in loaded.samplers:
        num_layers, num_kv_heads, head_dim = model_cache_shape(loaded.model)
        cache = sampler_lib.CacheConfig(cache_size, num_layers, num_kv_heads, head_dim)
        loaded.samplers[cache_size] = sampler_lib.Sampler(loaded.model, loaded.tokenizer.processor, cache)
    return loaded.samplers[cache_size]


def sample(loaded: _Loaded, prompts: list[str], max_new_tokens: int, temperature: float = 0.0,
           seed: int = 0) -> list[Generation]:
    tokenizer = loaded.tokenizer
    chat_prompts = [as_chat_prompt(p) for p in prompts]
    # +1 for the BOS the sampler prepends; one prompt length for every batch means one compile.
    longest = max(len(tokenizer.encode(p)) + 1 for p in chat_prompts)
    prompt_length = sampler_utils.next_power_of_2(longest)
    sampler = _sampler(loaded, prompt_length + max_new_tokens)
    sampling = {"temperature": temperature, "top_p": 1.0} if temperature > 0 else {}
    outputs: list[Generation] = []
    for start in range(0, len(chat_prompts), GENERATION_BATCH):
        batch = chat_prompts[start:start + GENERATION_BATCH]
        padded = batch + [batch[-1]] * (GENERATION_BATCH - len(batch))
        result = sampler(padded, max_generation_steps=max_new_tokens, max_prompt_length=prompt_length,
                         eos_tokens=list(stop_ids(tokenizer)), seed=seed + start, **sampling)
        for text, ids in zip(result.text[:len(batch)], result.tokens[:len(batch)], strict=True):
            # The sampler cuts each output just before its first stop id, so a short one stopped.
            outputs.append(Generation(text, [int(i) for i in ids], stopped=len(ids) < max_new_tokens))
    return outputs
