"""Evaluation fixtures: the evaluation launcher writes under DATA_DIR, so these tests get a private one too
(the shared fixtures, small_set, trained_out and completed_run, are the root conftest's)."""

import pytest


@pytest.fixture(autouse=True)
def data_dirs(settings, tmp_path):
    settings.DATASETS_DIR = tmp_path / "datasets"
    settings.RUNS_DIR = tmp_path / "runs"
    settings.MODELS_DIR = tmp_path / "models"
    settings.DATA_DIR = tmp_path / "data"
    return tmp_path
