"""Dataset test fixtures: a private DATASETS_DIR and a builder client."""

import pytest

from apps.core.testing import key_client


@pytest.fixture(autouse=True)
def datasets_dir(settings, tmp_path):
    """Builds write under a temporary folder, never into the repository's datasets/."""
    settings.DATASETS_DIR = tmp_path / "datasets"
    return settings.DATASETS_DIR


@pytest.fixture
def builder(curator):
    """A curator's write key: curators may build datasets and see every trace."""
    return key_client(curator, "write")
