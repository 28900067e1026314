from apps.evaluations.tests.conftest import (  # noqa: F401 - shared fixtures
    completed_run,
    data_dirs,
    small_set,
    trained_out,
)
