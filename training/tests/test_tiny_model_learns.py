"""The builtin `tiny` model really learns from generated traces with the product's recipe (a SentencePiece
tokenizer learned on the export, packed rows): its loss falls by more than 4× and it writes the full
`<reasoning>…</reasoning><answer>…</answer>` format for held-out prompts."""

import json

from training.engine import train
from training.evaluate import evaluate
from training.generators import generate
from training.judges import FORMAT_RE
from training.render import render_tunix_sft
from training.run_files import read_metrics
from training.tests.engine_helpers import tiny_config

HELD_OUT_PROMPTS = 40


def test_tiny_learns_the_format_and_to_stop(tmp_path):
    data = tmp_path / "dev.jsonl"
    with open(data, "w", encoding="utf-8") as handle:
        for index, trace in enumerate(generate("dev-reasoning-v1", count=600, seed=11).items):
            handle.write(json.dumps(render_tunix_sft(trace, f"dev-{index}")) + "\n")
    config = tiny_config(max_steps=150, batch_size=8, learning_rate=1e-2, warmup_steps=10, max_seq_len=256,
                         checkpoint_every=0, tokenizer="spm", packing=True)
    result = train(config, data, tmp_path / "run", peak_flops=1e11)
    assert result.status == "completed"

    losses = [line["loss"] for line in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < first / 4, f"mean loss went from {first:.3f} to only {last:.3f}"

    # eval-v1 prompts never appear in generated training data; in_distribution uses the same templates.
    in_distribution = [item for item in generate("eval-v1").items if item["section"] == "in_distribution"]
    held_out = in_distribution[:HELD_OUT_PROMPTS]
    report = evaluate(tmp_path / "run", held_out, max_new_tokens=200, batch_size=HELD_OUT_PROMPTS)
    outputs = [p["output"] for p in report["predictions"]]
    matching = sum(FORMAT_RE.fullmatch(output) is not None for output in outputs)
    assert matching >= 0.8 * len(outputs), f"only {matching}/{len(outputs)} match the format: {outputs[:3]}"
    assert report["summary"]["format_compliance"] == matching / len(outputs)
