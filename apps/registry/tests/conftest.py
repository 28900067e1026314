"""Registry fixtures: a second completed run beside the root conftest's `completed_run`."""

import pytest

from apps.registry.tests.factories import copy_of_run


@pytest.fixture
def another_run(completed_run, trained_out, settings):
    """A second completed run (same weights, another row): the next promotion."""
    return copy_of_run(completed_run, trained_out, settings.RUNS_DIR)
