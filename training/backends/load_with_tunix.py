"""Load a merged tunix-rt Gemma checkpoint with Tunix's own Gemma code, and generate from it.

This file is copied into every merged model folder (next to `state/`, `tokenizer.model` and `model.json`)
and needs nothing of tunix-rt: google-tunix, flax, orbax, jax and sentencepiece only.

    python load_with_tunix.py --prompt "What is 12 + 30?"          # from inside the folder's parent or anywhere

or, in Python, `model, tokenizer, mesh = load(folder)` then `generate(model, tokenizer, mesh, ["..."])`.

`state/` is an Orbax checkpoint (StandardCheckpointer) of the NNX state of Tunix's Gemma model, the layout
Tunix itself caches converted checkpoints in: restore it into the state of `Gemma3(config)` (or `Gemma`
for Gemma 2) built with `nnx.eval_shape` and merge. LoRA adapters are already added into the weights.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
import sentencepiece as spm
from flax import nnx
from tunix.generate import sampler as sampler_lib

HERE = Path(__file__).resolve().parent
CHAT_TEMPLATE = "<start_of_turn>user\n{}<end_of_turn>\n<start_of_turn>model\n"


def model_class_and_config(info: dict):
    """Tunix's model class and ModelConfig for the folder's model.json."""
    if info["family"] == "gemma3":
        from tunix.models.gemma3 import model as model_lib

        model_class = model_lib.Gemma3
    else:
        from tunix.models.gemma import model as model_lib

        model_class = model_lib.Gemma
    if info.get("factory"):  # a released Gemma: Tunix has its config, e.g. ModelConfig.gemma3_1b_it()
        config = getattr(model_lib.ModelConfig, info["factory"])()
        # Tunix's Gemma 2 loader sizes the embedding by the checkpoint (256000 rows, not the config's 256128).
        return model_class, dataclasses.replace(config, **info.get("overrides", {}))
    kwargs = dict(info["kwargs"])
    kwargs["param_dtype"] = jnp.dtype(kwargs["param_dtype"])
    return model_class, model_lib.ModelConfig(**kwargs)


def load(folder: str | Path = HERE):
    """(model, tokenizer, mesh): the model restored onto a mesh of every local device."""
    folder = Path(folder).resolve()
    info = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    model_class, config = model_class_and_config(info)
    abstract = nnx.eval_shape(lambda: model_class(config, rngs=nnx.Rngs(params=0)))
    graphdef, state = nnx.split(abstract)
    mesh = jax.make_mesh((jax.device_count(), 1), ("fsdp", "tp"),
                         axis_types=(jax.sharding.AxisType.Auto,) * 2)
    target = jax.tree.map(lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
                          state, nnx.get_named_sharding(state, mesh))
    state = ocp.StandardCheckpointer().restore(folder / "state", target)
    tokenizer = spm.SentencePieceProcessor()
    tokenizer.LoadFromSerializedProto((folder / "tokenizer.model").read_bytes())
    return nnx.merge(graphdef, state), tokenizer, mesh


def generate(model, tokenizer, mesh, prompts: list[str], max_new_tokens: int = 64) -> list[str]:
    """Greedy completions of the user prompts (rendered with Gemma's chat template), up to <end_of_turn>."""
    chat = [CHAT_TEMPLATE.format(prompt) for prompt in prompts]
    longest = max(len(tokenizer.EncodeAsIds(text)) for text in chat) + 1  # + the BOS the sampler adds
    prompt_length = 1 << (longest - 1).bit_length()
    cfg = model.config
    cache = sampler_lib.CacheConfig(cache_size=prompt_length + max_new_tokens, num_layers=cfg.num_layers,
                                    num_kv_heads=cfg.num_kv_heads, head_dim=cfg.head_dim)
    stops = [tokenizer.eos_id(), tokenizer.PieceToId("<end_of_turn>")]
    with mesh:
        sampler = sampler_lib.Sampler(model, tokenizer, cache)
        result = sampler(chat, max_generation_steps=max_new_tokens, max_prompt_length=prompt_length,
                         eos_tokens=stops)
    return list(result.text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=str(HERE), help="the merged model folder (default: this file's)")
    parser.add_argument("--prompt", action="append", required=True, help="a user prompt (repeatable)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    model, tokenizer, mesh = load(args.folder)
    for prompt, text in zip(args.prompt, generate(model, tokenizer, mesh, args.prompt, args.max_new_tokens),
                            strict=True):
        print(json.dumps({"prompt": prompt, "output": text}))


if __name__ == "__main__":
    main()
