"""Registry fixtures: the evaluations app's completed run (a real tiny checkpoint) and eval set."""

import pytest

from apps.evaluations.tests.conftest import (  # noqa: F401 - shared fixtures
    completed_run,
    data_dirs,
    small_set,
    trained_out,
)
from apps.registry.tests.factories import copy_of_run


@pytest.fixture
def another_run(completed_run, trained_out, settings):  # noqa: F811
    """A second completed run (same weights, another row): the next promotion."""
    return copy_of_run(completed_run, trained_out, settings.RUNS_DIR)
