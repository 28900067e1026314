import pytest


@pytest.fixture(autouse=True)
def data_dirs(settings, tmp_path):
    settings.DATASETS_DIR = tmp_path / "datasets"
    settings.RUNS_DIR = tmp_path / "runs"
    settings.MODELS_DIR = tmp_path / "models"
    return tmp_path
