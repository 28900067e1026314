"""The artifact store at the library boundary, on a shared folder and on S3 (moto's emulator): atomic
writes, sizes, listings, server-side copies, keys that cannot leave their namespace, and an unreachable
store that is a 503, not a 500."""

import os
from pathlib import Path
from unittest import mock

import pytest

from apps.core.errors import Unavailable
from apps.core.store import ARTIFACT_MISSING, STORE_UNAVAILABLE, artifact_store


@pytest.fixture(params=["folder", "s3"])
def store(request, settings, tmp_path):
    """A shared store of each kind the product supports."""
    if request.param == "folder":
        settings.ARTIFACT_STORE_URL = f"file://{tmp_path / 'shared'}"
    else:
        settings.ARTIFACT_STORE_URL = request.getfixturevalue("s3_store_url")
    return artifact_store()


def _file(tmp_path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_file_goes_in_and_comes_back_out_byte_for_byte(store, tmp_path):
    source = _file(tmp_path, "weights.bin", os.urandom(3 << 20))  # bigger than one read chunk
    store.put("runs", "r1/out/checkpoints/10/weights.bin", source)
    assert store.shared and store.size("runs", "r1/out/checkpoints/10/weights.bin") == 3 << 20
    target = tmp_path / "elsewhere" / "weights.bin"
    store.get("runs", "r1/out/checkpoints/10/weights.bin", target)
    assert target.read_bytes() == source.read_bytes()
    assert [p.name for p in target.parent.iterdir()] == ["weights.bin"]  # no temporary name left behind


def test_a_listing_names_every_file_under_a_prefix_with_its_size(store, tmp_path):
    store.put("runs", "r1/out/metrics.jsonl", _file(tmp_path, "m", b"{}\n"))
    store.put("runs", "r1/out/checkpoints/5/x", _file(tmp_path, "x", b"12345"))
    store.put("runs", "r2/out/metrics.jsonl", _file(tmp_path, "o", b"other"))
    assert store.listing("runs", "r1/out") == {"metrics.jsonl": 3, "checkpoints/5/x": 5}
    assert store.listing("runs", "nothing-here") == {}


def test_a_copy_inside_the_store_needs_no_download(store, tmp_path):
    store.put("runs", "r1/out/tokenizer.model", _file(tmp_path, "t", b"tok"))
    with mock.patch.object(type(store.fs), "get_file", side_effect=AssertionError("downloaded")):
        store.copy(("runs", "r1/out/tokenizer.model"), ("registry", "blobs/ab/abc"))
    assert store.size("registry", "blobs/ab/abc") == 3


def test_deleting_a_tree_or_keys_leaves_the_rest(store, tmp_path):
    for key in ("r1/out/a", "r1/out/b", "r2/out/a"):
        store.put("runs", key, _file(tmp_path, "f", b"f"))
    store.delete("runs", ["r1/out/a", "r1/out/never-there"])
    assert store.listing("runs", "r1/out") == {"b": 1}
    store.delete_tree("runs", "r1")
    assert store.listing("runs", "r1") == {} and store.size("runs", "r2/out/a") == 1


def test_a_failed_upload_to_a_folder_leaves_neither_the_key_nor_a_partial(settings, tmp_path):
    settings.ARTIFACT_STORE_URL = str(tmp_path / "shared")
    store = artifact_store()

    def cut_off(source, partial, **kwargs):
        Path(partial).write_bytes(b"half")
        raise OSError("disk full")

    with mock.patch.object(type(store.fs), "put_file", side_effect=cut_off), pytest.raises(Unavailable):
        store.put("runs", "r1/out/x", _file(tmp_path, "x", b"whole"))
    assert store.size("runs", "r1/out/x") is None
    assert list((tmp_path / "shared").rglob("*.partial")) == []


@pytest.mark.parametrize("key", ["../secrets", "/etc/passwd", "r1/../../x", "r1//x", "", "r1/./x"])
def test_a_key_cannot_leave_its_namespace(store, key, tmp_path):
    with pytest.raises(ValueError, match="not a key"):
        store.put("runs", key, _file(tmp_path, "x", b"x"))


def test_a_link_out_of_a_folder_store_reads_as_absent(settings, tmp_path):
    settings.ARTIFACT_STORE_URL = str(tmp_path / "shared")
    outside = _file(tmp_path, "outside.txt", b"server secret")
    (tmp_path / "shared" / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "shared" / "runs" / "r1" / "leak").symlink_to(outside)
    store = artifact_store()
    assert store.size("runs", "r1/leak") is None
    with pytest.raises(Unavailable) as missing:
        store.require("runs", "r1/leak", 13, what="the leak")
    assert missing.value.code == ARTIFACT_MISSING


def test_a_short_file_is_refused_before_it_is_served(store, tmp_path):
    store.put("runs", "r1/out/x", _file(tmp_path, "x", b"1234"))
    store.require("runs", "r1/out/x", 4, what="x")
    with pytest.raises(Unavailable, match="holds 4 of the 10 bytes of x"):
        store.require("runs", "r1/out/x", 10, what="x")


def test_an_unreachable_store_is_unavailable_and_says_what_failed_not_where(settings, tmp_path):
    blocker = _file(tmp_path, "not-a-folder", b"")
    settings.ARTIFACT_STORE_URL = str(blocker)  # every key lies under a file: the folder store is broken
    with pytest.raises(Unavailable) as broken:
        artifact_store().put("runs", "r1/out/x", _file(tmp_path, "x", b"x"))
    assert broken.value.code == STORE_UNAVAILABLE and str(tmp_path) not in broken.value.message


def test_the_default_store_is_this_hosts_folders_and_copies_nothing(settings, tmp_path):
    settings.ARTIFACT_STORE_URL = ""
    store = artifact_store()
    own = settings.RUNS_DIR / "r1" / "out" / "x"
    own.parent.mkdir(parents=True)
    own.write_bytes(b"x")
    assert not store.shared and store.is_here("runs", "r1/out/x", own)
    with mock.patch.object(type(store.fs), "put_file", side_effect=AssertionError("copied")):
        store.put("runs", "r1/out/x", own)
