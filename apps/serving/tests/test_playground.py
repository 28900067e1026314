"""The admin playground on a version's page: a curator asks a question and sees the reasoning, the answer,
the judges' verdicts and the timing; a bad form is an error on the page; a version out of reach is 404."""

import re

import pytest
from django.test import Client

from apps.core.testing import browser_shot

QUESTION = "What is 12 + 5? (#3)"


def _url(version):
    return f"/admin/registry/modelversion/{version.pk}/playground/"


def _client(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_version_page_links_to_its_playground(superuser, version):
    page = _client(superuser).get(f"/admin/registry/modelversion/{version.pk}/change/")
    assert _url(version) in page.content.decode()


@pytest.mark.django_db
def test_a_question_shows_answer_verdicts_and_timing(superuser, version):
    page = _client(superuser).post(_url(version), {"prompt": QUESTION, "expected_answer": "17", "max_tokens": 48,
                                                   "temperature": 0, "seed": 0})
    html = page.content.decode()
    assert page.status_code == 200 and 'id="playground-result"' in html
    assert "answer_exact:" in html and "reasoning_checks:" in html
    assert re.search(r"\d+ prompt \+ \d+ completion tokens", html) and "tokens/s" in html


@pytest.mark.django_db
def test_max_tokens_over_the_context_is_a_form_error_and_asks_nothing(superuser, version):
    page = _client(superuser).post(_url(version), {"prompt": QUESTION, "max_tokens": 10_000, "temperature": 0,
                                                   "seed": 0})
    html = page.content.decode()
    assert page.status_code == 200 and "playground-result" not in html
    assert "less than or equal to 128" in html


@pytest.mark.django_db
def test_a_version_out_of_a_staff_users_reach_is_404(curator, version):
    assert _client(curator).get(_url(version)).status_code == 404


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_playground_in_the_browser(live_server, superuser, version, browser_page):
    page = browser_page
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-admin")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}{_url(version)}")
    page.fill("textarea[name=prompt]", QUESTION)
    page.fill("input[name=expected_answer]", "17")
    page.fill("input[name=max_tokens]", "48")
    page.click("input[value=Ask]")
    page.wait_for_selector("#playground-result")
    assert "tokens/s" in page.inner_text("#playground-timing")
    assert "answer_exact" in page.inner_text("#playground-verdicts")
    browser_shot(page, "11-playground")
