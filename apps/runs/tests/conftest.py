"""Runs test fixtures: private data folders (the small dataset version is the root conftest's `dataset`)."""

import pytest

from apps.runs.testing import TINY, short_trace, tiny_config  # noqa: F401 - older imports of these names


@pytest.fixture(autouse=True)
def data_dirs(settings, tmp_path):
    settings.DATASETS_DIR = tmp_path / "datasets"
    settings.RUNS_DIR = tmp_path / "runs"
    settings.MODELS_DIR = tmp_path / "models"
    return tmp_path
