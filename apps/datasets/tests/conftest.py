"""Dataset test fixtures: a private DATASETS_DIR and the trainer/viewer personas."""

import pytest
from django.contrib.auth.models import Group, User

from conftest import key_client


@pytest.fixture(autouse=True)
def datasets_dir(settings, tmp_path):
    """Builds write under a temporary folder, never into the repository's datasets/."""
    settings.DATASETS_DIR = tmp_path / "datasets"
    # Personas get passwords; a fast hasher keeps that from dominating these tests' set-up.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings.DATASETS_DIR


def _member(username, group, **extra):
    user = User.objects.create_user(username=username, password="pw-" + username, **extra)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def trainer(db):
    return _member("trainer", "trainer")


@pytest.fixture
def viewer(db):
    return _member("viewer", "viewer", is_staff=True)


@pytest.fixture
def builder(curator):
    """A curator's write key: curators may build datasets and see every trace."""
    return key_client(curator, "write")
