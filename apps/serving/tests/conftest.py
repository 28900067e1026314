"""A promoted `reasoner v1` (the session's tiny checkpoint) and the model host stopped after the session."""

import pytest

from apps.registry.models import ModelAlias, RegisteredModel
from apps.registry.services import model_version_promote
from apps.serving.host import model_host


@pytest.fixture(scope="session", autouse=True)
def _stop_the_model_host():
    yield
    model_host().stop()


@pytest.fixture
def reasoner(trainer):
    return RegisteredModel.objects.create(name="reasoner", created_by=trainer)


@pytest.fixture
def version(reasoner, completed_run, trainer):
    version, _ = model_version_promote(model=reasoner, data={"run_id": str(completed_run.pk)}, user=trainer)
    return version


@pytest.fixture
def champion(version):
    ModelAlias.objects.create(model=version.model, name="champion", version=version)
    return version
