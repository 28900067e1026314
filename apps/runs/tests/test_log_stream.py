"""The run log endpoint: the JSON polling form, and the SSE stream under ASGI (async, woken by
pub/sub) reading history and closing at the final state."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.utils import timezone

from apps.core.notify import Follower, notify
from apps.core.services import api_key_create
from apps.core.testing import key_client, tasks_not_sent
from apps.runs.api.logstream import parse_last_event_id
from apps.runs.models import RunLogLine, RunMetric, TrainingRun
from apps.runs.services import training_run_plan, training_run_submit
from apps.runs.testing import tiny_config


def _finished_run(user, dataset, lines=7, steps=5) -> TrainingRun:
    plan, _ = training_run_plan(data={"dataset_id": dataset.pk, "config": tiny_config()}, user=user)
    with tasks_not_sent():  # stored only: no trainer in these tests
        run = training_run_submit(plan=plan, user=user)
    now = timezone.now()
    RunLogLine.objects.bulk_create([RunLogLine(run=run, seq=i, stream="trainer", text=f"line {i}", at=now)
                                    for i in range(1, lines + 1)])
    RunMetric.objects.bulk_create([RunMetric(run=run, step=i, loss=1.0 / i, lr=0.1, at=now)
                                   for i in range(1, steps + 1)])
    TrainingRun.objects.filter(pk=run.pk).update(status="completed", finished_at=now)
    return run


@pytest.mark.django_db
def test_the_json_form_pages_through_lines_and_metrics(viewer, trainer, dataset):
    run = _finished_run(trainer, dataset)
    client = key_client(viewer)
    page = client.get(f"/api/tunix/runs/{run.pk}/logs?format=json&limit=3").json()
    assert [line["seq"] for line in page["lines"]] == [1, 2, 3] and page["more"] is True
    rest = client.get(f"/api/tunix/runs/{run.pk}/logs?format=json&since_seq=3&since_step=5").json()
    assert [line["seq"] for line in rest["lines"]] == [4, 5, 6, 7] and rest["metrics"] == []
    assert rest["status"]["status"] == "completed" and rest["next_seq"] == 7


@pytest.mark.django_db
def test_bad_log_parameters_are_400(viewer, trainer, dataset):
    run = _finished_run(trainer, dataset)
    response = key_client(viewer).get(f"/api/tunix/runs/{run.pk}/logs?format=json&since_seq=-1")
    assert response.status_code == 400 and "since_seq" in response.json()["detail"]


def test_last_event_id_parsing():
    assert parse_last_event_id("12.40") == (12, 40)
    assert parse_last_event_id("12") == (12, 0)
    assert parse_last_event_id("x.1") is None and parse_last_event_id("") is None


def _sse_blocks(body: str) -> list[dict]:
    blocks = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            blocks.append(fields)
    return blocks


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_under_asgi_the_stream_sends_history_from_last_event_id_and_closes(trainer, dataset):
    run = _finished_run(trainer, dataset)
    _, token = api_key_create(user=trainer, name="sse", scope="read")

    async def read():
        response = await AsyncClient().get(f"/api/tunix/runs/{run.pk}/logs",
                                           headers={"Authorization": f"Bearer {token}", "Last-Event-ID": "2.3"})
        assert response.status_code == 200, (response.status_code, response.data)
        return "".join([chunk.decode() async for chunk in response.streaming_content])

    blocks = _sse_blocks(async_to_sync(read)())
    logs = [json.loads(b["data"])["seq"] for b in blocks if b["event"] == "log"]
    steps = [json.loads(b["data"])["step"] for b in blocks if b["event"] == "metric"]
    assert logs == [3, 4, 5, 6, 7] and steps == [4, 5]
    assert blocks[-1]["event"] == "status" and json.loads(blocks[-1]["data"])["status"] == "completed"
    assert blocks[-1]["id"] == "7.5"


def test_a_notification_wakes_a_follower_at_once():
    async def follow():
        async with Follower("run:test-wakeup") as follower:
            await asyncio.sleep(0.3)  # let the pattern subscription start
            asyncio.get_running_loop().call_later(0.1, notify, "run:test-wakeup")
            woke = await follower.wait(10)
            quiet = await follower.wait(0.2)
        return woke, quiet

    assert asyncio.run(follow()) == (True, False)
