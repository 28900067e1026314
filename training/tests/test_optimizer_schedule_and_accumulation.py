import jax
import numpy as np
import pytest

from training.config import TrainConfig
from training.engine import train
from training.run_files import read_metrics
from training.tests.engine_helpers import arithmetic_traces, tiny_config, write_sft_file
from training.trainer import MIN_LR_RATIO, make_schedule


def lr_values(schedule: str, steps: int = 100, warmup: int = 10) -> list[float]:
    config = TrainConfig.from_dict({"learning_rate": 1e-3, "max_steps": steps, "warmup_steps": warmup,
                                    "schedule": schedule})
    schedule_fn = make_schedule(config)
    return [float(schedule_fn(count)) for count in range(steps)]


@pytest.mark.parametrize("schedule", ["cosine", "linear", "constant"])
def test_warmup_rises_linearly_to_the_peak(schedule):
    values = lr_values(schedule)
    assert values[0] == pytest.approx(1e-4) and values[9] == pytest.approx(1e-3)
    assert all(a < b for a, b in zip(values[:9], values[1:10], strict=True))


def test_cosine_and_linear_decay_to_a_tenth_and_constant_stays():
    for schedule in ("cosine", "linear"):
        values = lr_values(schedule)
        assert values[-1] == pytest.approx(1e-3 * MIN_LR_RATIO)
        assert all(a >= b for a, b in zip(values[10:], values[11:], strict=False))
    assert lr_values("constant")[10:] == pytest.approx([1e-3] * 90)


def test_zero_warmup_starts_at_the_peak():
    assert lr_values("cosine", warmup=0)[0] == pytest.approx(1e-3)


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    data = write_sft_file(tmp_path / "data.jsonl", arithmetic_traces(64, seed=9))
    big = train(tiny_config(max_steps=4, warmup_steps=1, batch_size=8, grad_accum=1), data, tmp_path / "big",
                peak_flops=1e11)
    accumulated = train(tiny_config(max_steps=4, warmup_steps=1, batch_size=4, grad_accum=2), data, tmp_path / "acc",
                        peak_flops=1e11)
    big_losses = [m["loss"] for m in read_metrics(big.metrics_path)]
    acc_losses = [m["loss"] for m in read_metrics(accumulated.metrics_path)]
    np.testing.assert_allclose(acc_losses, big_losses, rtol=1e-5)

    from training.generate import load_model

    big_params = jax.tree_util.tree_leaves(load_model(tmp_path / "big").params)
    acc_params = jax.tree_util.tree_leaves(load_model(tmp_path / "acc").params)
    for a, b in zip(big_params, acc_params, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_the_run_manifest_records_what_the_spec_asks_for(tmp_path):
    data = write_sft_file(tmp_path / "data.jsonl", arithmetic_traces(32, seed=4))
    result = train(tiny_config(max_steps=3, warmup_steps=1, checkpoint_every=0), data, tmp_path / "run",
                   peak_flops=2e11)
    manifest = result.manifest
    assert manifest["config"]["max_steps"] == 3 and len(manifest["config_hash"]) == 64
    assert manifest["data"]["sha256"] and manifest["data"]["examples"] == 32
    assert manifest["seed"] == 0 and manifest["backend"] == "builtin" and manifest["device"]["platform"] == "cpu"
    assert "training_package" in manifest["code_version"]
    assert manifest["model"]["param_count"] > manifest["model"]["matmul_param_count"] > 0
    assert manifest["final_metrics"]["loss"] == read_metrics(result.metrics_path)[-1]["loss"]
    mfu = manifest["throughput"]["mfu"]
    assert mfu["peak_flops"] == 2e11 and mfu["peak_flops_source"] == "given" and 0 < mfu["estimate"] < 1
    for line in read_metrics(result.metrics_path):
        assert {"step", "loss", "lr", "grad_norm", "tokens_per_s"} <= set(line)
