"""`python -m training generate|evaluate` work on a run folder without any server."""

import json
import subprocess
import sys

import pytest

from training.engine import train
from training.tests.engine_helpers import arithmetic_traces, tiny_config, write_sft_file


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = write_sft_file(root / "data.jsonl", arithmetic_traces(100, seed=2))
    train(tiny_config(max_steps=30), data, root / "run", peak_flops=1e11)
    return root / "run"


def test_generate_prints_one_json_line_per_prompt(run_dir):
    result = run_cli("generate", "--out", str(run_dir), "--prompt", "What is 2 + 3?", "--prompt", "What is 9 + 9?",
                     "--max-new-tokens", "24")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["prompt"] for line in lines] == ["What is 2 + 3?", "What is 9 + 9?"]
    assert all(isinstance(line["output"], str) and 0 < line["tokens"] <= 24 for line in lines)


def test_evaluate_writes_predictions_and_a_summary(run_dir, tmp_path):
    items = tmp_path / "items.jsonl"
    rows = [{"id": f"e{i}", "prompt": f"What is {i} + 1?", "expected_answer": str(i + 1), "category": "add",
             "difficulty": "easy", "section": "in_distribution"} for i in range(5)]
    items.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = run_cli("evaluate", "--out", str(run_dir), "--eval", str(items), "--max-new-tokens", "32",
                     "--batch-size", "4")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["count"] == 5 and set(summary["by_category"]) == {"add"}
    predictions = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in predictions] == [f"e{i}" for i in range(5)]
    assert {"output", "extracted_answer", "correct", "format_ok", "tokens", "latency_s"} <= set(predictions[0])
    assert json.loads((run_dir / "eval_summary.json").read_text())["count"] == 5


def test_evaluate_on_a_folder_that_is_not_a_run_exits_2(tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"id": "x", "prompt": "p", "expected_answer": "1"}) + "\n")
    result = run_cli("evaluate", "--out", str(tmp_path / "nothing"), "--eval", str(items))
    assert result.returncode == 2 and "not a training run folder" in result.stderr
    assert "Traceback" not in result.stderr
