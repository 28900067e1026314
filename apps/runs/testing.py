"""Test builders for runs (imported by any app's tests; fixtures that use them live in conftest.py)."""

from apps.datasets.services import dataset_version_build
from apps.datasets.spec import parse_build_request
from apps.traces.models import Trace
from apps.traces.services import trace_batch_create

TINY = {"backend": "builtin", "model": "tiny", "max_steps": 12, "batch_size": 4, "learning_rate": 3e-3,
        "warmup_steps": 2, "max_seq_len": 128, "checkpoint_every": 6, "seed": 0}


def tiny_config(**overrides) -> dict:
    return {**TINY, **overrides}


def short_trace(i: int) -> dict:
    """A trace short enough for the tiny model's rows (its length must not depend on other tests)."""
    a, b = 10 + i % 40, 3 + i % 7
    return {"prompt": f"What is {a} + {b}? (#{i})", "final_answer": str(a + b),
            "steps": [{"i": 0, "type": "compute", "content": f"{a} + {b} = {a + b}"}],
            "meta": {"source": "runs-test", "category": "arithmetic"}}


def make_dataset(name: str = "runs", count: int = 24):
    """An approved dataset version `{name}-v1` of `count` short traces, three quarters of them to train on."""
    trace_batch_create(items=[short_trace(i) for i in range(count)])
    Trace.objects.update(status="approved")
    version, _ = dataset_version_build(spec=parse_build_request(
        {"dataset_name": name, "dataset_version": "v1", "seed": 1, "split": {"train": 0.75, "val": 0.25}}))
    return version
