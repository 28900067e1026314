"""The model host (training.serve) without the server: requests and replies as JSON lines, greedy callers
batched with answers equal to their solo ones, one load per folder, eviction by the memory budget, and
a bad request answered, never fatal."""

import io
import json
import shutil

import pytest

from training.engine import train
from training.generate import generate_batch, load_model
from training.render import render_prompt
from training.serve import Host, params_bytes
from training.tests.engine_helpers import arithmetic_traces, tiny_config, write_sft_file

PROMPTS = [render_prompt(f"What is {a} + {b}?") for a, b in ((3, 4), (12, 30), (7, 19))]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    data = write_sft_file(root / "data.jsonl", arithmetic_traces(64, seed=2))
    train(tiny_config(max_steps=20), data, root / "a", peak_flops=1e11)
    shutil.copytree(root / "a", root / "b")
    return str(root / "a"), str(root / "b")


def _serve(host: Host, requests: list[dict]) -> dict:
    host.run(io.StringIO("".join(json.dumps(r) + "\n" for r in requests)))
    return {reply["id"]: reply for reply in map(json.loads, host.out.getvalue().splitlines())}


def _request(rid, folder, prompt, **extra):
    return {"id": rid, "folder": folder, "backend": "builtin", "prompt": prompt, "n": 1, "max_tokens": 24,
            "temperature": 0.0, "top_p": 1.0, "seed": 0, **extra}


def test_greedy_callers_waiting_together_are_one_batch_with_their_solo_answers(folders):
    host = Host(1 << 30, out=io.StringIO())
    replies = _serve(host, [_request(str(i), folders[0], p) for i, p in enumerate(PROMPTS)])
    solo = generate_batch(load_model(folders[0]), PROMPTS, 24)
    assert [replies[str(i)]["choices"][0]["text"] for i in range(3)] == [g.text for g in solo]
    assert {replies[str(i)]["batch_size"] for i in range(3)} == {3}
    assert host.stats()["loads"] == 1 and host.stats()["batches"] == {"3": 1}


def test_the_budget_evicts_the_least_recently_used_model(folders):
    size = params_bytes(load_model(folders[0]).params)
    host = Host(size + size // 2, out=io.StringIO())  # room for one
    _serve(host, [_request("a", folders[0], PROMPTS[0])])
    host.out = io.StringIO()
    _serve(host, [_request("b", folders[1], PROMPTS[0])])
    stats = host.stats()
    assert stats["loads"] == 2 and stats["evictions"] == 1 and stats["loaded"] == [folders[1]]


def test_a_too_long_prompt_fails_alone_and_a_bad_line_is_answered(folders):
    host = Host(1 << 30, out=io.StringIO())
    host.run(io.StringIO(json.dumps(_request("long", folders[0], "x " * 400)) + "\n" + "not json\n"
                         + json.dumps(_request("ok", folders[0], PROMPTS[0])) + "\n"))
    replies = [json.loads(line) for line in host.out.getvalue().splitlines()]
    by_id = {r["id"]: r for r in replies}
    assert by_id["long"]["error"] == "context_length_exceeded" and by_id["ok"]["ok"] is True
    assert by_id[None]["error"] == "bad_request"


def test_sampling_runs_alone_with_n_rows_and_its_seed(folders):
    host = Host(1 << 30, out=io.StringIO())
    replies = _serve(host, [_request("s1", folders[0], PROMPTS[0], n=3, temperature=1.0, seed=5),
                            _request("s2", folders[0], PROMPTS[0], n=3, temperature=1.0, seed=5)])
    assert len(replies["s1"]["choices"]) == 3 and replies["s1"]["choices"] == replies["s2"]["choices"]
    assert host.stats()["batches"] == {"3": 2}
