"""Eight callers asking one version at once are served by one loaded copy, batched, and each gets the
answer it would have got alone."""

import threading

import pytest
from django.db import connection

from apps.core.testing import key_client
from apps.serving.host import model_host

PROMPTS = [f"What is {10 + i} + {3 + i}? (#{i})" for i in range(8)]


def _body(prompt):
    return {"model": "reasoner:v1", "messages": [{"role": "user", "content": prompt}], "max_tokens": 32,
            "temperature": 0}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_eight_parallel_requests_share_one_loaded_copy_and_answer_as_alone(trainer, version):
    client = key_client(trainer)
    alone = {p: client.post("/v1/chat/completions", _body(p), format="json").json()["choices"][0]["message"]
             for p in PROMPTS}
    before = model_host().stats()
    together: dict = {}

    def ask(prompt):
        try:
            response = key_client(trainer).post("/v1/chat/completions", _body(prompt), format="json")
            together[prompt] = response.json()["choices"][0]["message"]
        finally:
            connection.close()  # each thread has its own; the test database is dropped at the end

    threads = [threading.Thread(target=ask, args=(p,)) for p in PROMPTS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = model_host().stats()
    assert together == alone
    assert after["loads"] == before["loads"]  # loaded once, by the first request
    batched = {int(size): count - before["batches"].get(size, 0) for size, count in after["batches"].items()}
    assert max(size for size, count in batched.items() if count > 0) > 1, after["batches"]
    assert after["served"] - before["served"] == len(PROMPTS)
