from django.test import override_settings

from apps.core.checks import check_debug_outside_demo, check_rediai_settings, check_secret_key

DEMO_KEY = "insecure-demo-key-do-not-use-in-production"


@override_settings(SECRET_KEY=DEMO_KEY, DEMO_MODE=False)
def test_the_demo_secret_key_outside_demo_mode_is_an_error():
    assert [e.id for e in check_secret_key(None)] == ["tunixrt.E001"]


@override_settings(SECRET_KEY=DEMO_KEY, DEMO_MODE=True)
def test_the_demo_secret_key_is_fine_in_demo_mode():
    assert check_secret_key(None) == []


@override_settings(DEBUG=True, DEMO_MODE=False, DATABASE_URL="postgres://x/y")
def test_debug_with_a_production_database_warns():
    assert [e.id for e in check_debug_outside_demo(None)] == ["tunixrt.W001"]


@override_settings(REDIAI_MODE="real", REDIAI_BASE_URL="")
def test_real_rediai_without_a_url_is_an_error():
    assert [e.id for e in check_rediai_settings(None)] == ["tunixrt.E003"]
