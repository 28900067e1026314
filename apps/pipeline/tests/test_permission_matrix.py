"""The pipeline's endpoint (run import) gets the inherited checks of EndpointContract; the dataset a run
claims to have trained on is an object in the body: unknown, or out of the importer's reach (a contractor
may import but sees no one else's datasets), it is 404."""

import io
import json
import tarfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.testing import Endpoint, EndpointContract
from apps.runs.models import TrainingRun


def _archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("run_config.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    return buffer.getvalue()


def _parts(ids):
    run = {"dataset_id": ids["dataset"], "dataset_content_hash": ids["dataset_hash"], "steps_completed": 2,
           "config": {"backend": "builtin", "model": "tiny", "max_steps": 20, "max_seq_len": 128}}
    return {"run": json.dumps(run), "archive": SimpleUploadedFile("out.tar.gz", _archive())}


ENDPOINTS = [Endpoint("post", "/api/tunix/runs/import", write=True, actor="trainer", has_object=True,
                      format="multipart", body=_parts, outsider="contractor")]


@pytest.fixture
def known(dataset):
    return {"dataset": dataset.pk, "dataset_hash": dataset.content_hash}


@pytest.fixture
def unknown(known):
    return {**known, "dataset": "no-such-dataset-v1"}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
class TestImportEndpoint(EndpointContract):
    def state(self):
        return TrainingRun.objects.count()
