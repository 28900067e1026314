"""The pages people look at, in a real browser (Debian's chromium driven by Playwright), against a live
server and a real Celery worker: log in, approve traces with a reason, build a dataset from the
selection, compare two traces, start a tiny run and watch its log and chart update, open the
leaderboard and follow a row's lineage to a trace and back. One screenshot per page goes to
var/test-artifacts/ (the README's walk-through shows them)."""

import re

import pytest

from apps.core.testing import SHOTS, browser_shot, celery_worker, wait_for
from apps.evaluations.models import Evaluation
from apps.evaluations.testing import make_eval_set
from apps.registry.models import RegisteredModel
from apps.registry.services import model_version_promote
from apps.runs.models import TrainingRun
from apps.runs.testing import short_trace
from apps.traces.services import trace_batch_create


def _select_all_and_act(page, action: str) -> None:
    page.check("#action-toggle")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_curator_trains_and_follows_lineage_in_the_browser(live_server, superuser, browser_page, settings):
    page, url = browser_page, live_server.url
    trace_batch_create(items=[short_trace(i) for i in range(16)])
    make_eval_set()

    page.goto(f"{url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-admin")
    page.click("input[type=submit]")
    page.wait_for_selector("#tunixrt-dashboard")
    browser_shot(page, "01-dashboard")

    page.goto(f"{url}/admin/traces/trace/")
    _select_all_and_act(page, "approve")
    page.fill("textarea[name=reason]", "steps recomputed by hand")
    page.click("input[value=Apply]")
    page.wait_for_selector("text=16 trace(s) now approved")
    browser_shot(page, "02-traces-approved")

    _select_all_and_act(page, "build_dataset_from_selection")
    page.fill("input[name=dataset_name]", "browser")
    page.fill("input[name=dataset_version]", "v1")
    page.fill("input[name=train]", "1")
    page.fill("input[name=val]", "0")
    page.click("input[value=Build]")
    page.click("text=browser-v1")
    page.wait_for_selector("text=Show the 16 traces of browser-v1")
    browser_shot(page, "03-dataset-version")

    page.goto(f"{url}/admin/traces/trace/")
    page.locator("input.action-select").nth(0).check()
    page.locator("input.action-select").nth(1).check()
    page.select_option("select[name=action]", "compare_two")
    page.click("button[name=index]")
    page.wait_for_selector("text=Compare traces")
    browser_shot(page, "04-compare")

    with celery_worker("train,eval,default", env={"AUTO_EVAL_SET": "small-v1"}) as worker:
        page.goto(f"{url}/admin/runs/trainingrun/start/")
        page.select_option("select[name=dataset]", "browser-v1")
        page.select_option("select[name=model]", "tiny")
        for name, value in (("max_steps", "300"), ("batch_size", "4"), ("warmup_steps", "5"),
                            ("max_seq_len", "128"), ("checkpoint_every", "150")):
            page.fill(f"input[name={name}]", value)
        page.click("input[name=check]")
        page.wait_for_selector("#run-plan")
        page.click("input[name=start]")
        page.wait_for_url(re.compile(r".*/admin/runs/trainingrun/[0-9a-f-]+/change/"))
        try:
            page.wait_for_function("document.querySelector('#run-log').textContent.includes('trainer started')",
                                   timeout=120_000)
            page.wait_for_function("[...document.querySelectorAll('#run-charts path')].some(p => "
                                   "p.getAttribute('d').split('L').length > 5)", timeout=120_000)
        except Exception:
            pytest.fail("the run page did not update:\n" + worker.output())
        browser_shot(page, "05-run-live")
        run = TrainingRun.objects.get()
        wait_for(lambda: Evaluation.objects.filter(run=run, status="completed").exists(), timeout=240, interval=1)
    # The header's fields follow the run as it ends (then the page reloads with what was recorded).
    page.wait_for_function("document.querySelector('.field-status .readonly') && "
                           "document.querySelector('.field-status .readonly').textContent.includes('completed')",
                           timeout=30_000)
    page.wait_for_selector("#run-live", state="detached", timeout=30_000)  # reloaded: no longer live
    assert "300 / 300" in page.locator(".field-steps .readonly").text_content()
    browser_shot(page, "06-run-completed")

    model = RegisteredModel.objects.create(name="reasoner")
    model_version_promote(model=model, data={"run_id": str(run.pk)})
    page.goto(f"{url}/admin/evaluations/evaluation/leaderboard/")
    page.wait_for_selector("svg")
    browser_shot(page, "07-leaderboard")
    page.click(".lineage-link")
    page.wait_for_selector("text=trained by run")
    browser_shot(page, "08-lineage")
    lineage_url = page.url
    page.locator("a.trace-link").first.click()
    page.wait_for_selector("text=steps (rendered)")
    browser_shot(page, "09-trace")
    page.go_back()
    assert page.url == lineage_url and page.is_visible("text=trained by run")

    evaluation = Evaluation.objects.get(run=run)
    page.goto(f"{url}/admin/evaluations/evaluation/{evaluation.pk}/change/")
    page.wait_for_selector("text=the wrong ones")
    browser_shot(page, "10-evaluation")
    page.goto(f"{url}/admin/")
    browser_shot(page, "11-dashboard-after")
    assert {p.name for p in SHOTS.glob("*.png")} >= {f"{n}.png" for n in (
        "01-dashboard", "02-traces-approved", "03-dataset-version", "04-compare", "05-run-live", "06-run-completed",
        "07-leaderboard", "08-lineage", "09-trace", "10-evaluation")}
