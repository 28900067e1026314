"""What a shared artifact store costs (issue #21): the same `small` run through the launcher and a real
worker with the default store (the worker's own folder: nothing copied) and with a shared store, in the
same process, alternately; and the upload throughput of each store.

- The shared folder is another folder on this machine's disk, as an NFS or GCS Fuse mount would be
  another folder on the worker's: the figure is what the product adds (snapshots, hashes, uploads each
  checkpoint, the final sync), not a network's latency.
- S3 is moto's emulator on this machine (labelled so): it measures the S3 code path's own cost.

The run's wall time is its row's started_at → finished_at: export, every checkpoint upload during the
run and the final sync of the outputs are inside it. QUICK=1 shrinks the run so `make test` checks this
still runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench._django import throwaway_database
from bench.bench_runs import DATA, ROOT, _env, _setup, _submit, _wait, use_broker
from bench.report import QUICK, compare, figure, quick

ISSUE = "#21 store"
STEPS = quick(300, 8)
REPEATS = quick(3, 1)
# Quick mode trains the tiny model: it checks the arms run, the small one's compile alone would be 15 s a run.
CONFIG = quick({"model": "small", "batch_size": 16, "max_seq_len": 256, "checkpoint_every": 50},
               {"model": "tiny", "checkpoint_every": 4, "warmup_steps": 2})
ARMS = quick(("default", "folder", "s3"), ("default", "folder"))
UPLOAD_BYTES = quick(256, 8) << 20
STORES = DATA / "stores"


def _worker(db_name: str, store_url: str, scratch: Path) -> subprocess.Popen:
    env = {**_env(db_name), "ARTIFACT_STORE_URL": store_url, "TUNIXRT_RUNS_DIR": str(scratch)}
    return subprocess.Popen([str(Path(sys.executable).with_name("celery")), "-A", "tunixrt", "worker", "-Q", "train",
                             "--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def timed_run(db_name: str, user, dataset, store_url: str, arm: str) -> dict:
    """One run on a fresh worker whose store is `store_url` and whose scratch folder is empty."""
    scratch = STORES / arm / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    worker = _worker(db_name, store_url, scratch)
    try:
        run = _wait(_submit(user, dataset, STEPS, config=CONFIG))
    finally:
        worker.terminate()
        worker.wait(timeout=120)
    if run.status != "completed":
        raise RuntimeError(f"{arm} run {run.status}: {run.error}")
    stored = sum(run.artifacts.values_list("size_bytes", flat=True))
    return {"arm": arm, "wall_s": round((run.finished_at - run.started_at).total_seconds(), 3),
            "artifact_bytes": stored, "run_id": str(run.pk)}


def upload_throughput(store_url: str) -> dict:
    """MB/s of one large file put into the store (and read back), in this process."""
    from django.test import override_settings

    from apps.core.store import artifact_store

    source = STORES / "upload.bin"
    source.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "wb") as handle:
        handle.write(os.urandom(UPLOAD_BYTES))
    with override_settings(ARTIFACT_STORE_URL=store_url):
        store = artifact_store()
        started = time.perf_counter()
        store.put("runs", "bench/upload.bin", source)
        put_s = time.perf_counter() - started
        started = time.perf_counter()
        store.get("runs", "bench/upload.bin", STORES / "download.bin")
        get_s = time.perf_counter() - started
        store.delete("runs", ["bench/upload.bin"])
    megabytes = UPLOAD_BYTES / 1e6
    return {"bytes": UPLOAD_BYTES, "put_mb_per_s": round(megabytes / put_s, 1),
            "get_mb_per_s": round(megabytes / get_s, 1)}


def _extra(runs: list[dict], arm: str) -> list[float] | None:
    """Each repeat's extra wall time of `arm` over the default-store run of the same repeat, in %."""
    default = [r["wall_s"] for r in runs if r["arm"] == "default"]
    other = [r["wall_s"] for r in runs if r["arm"] == arm]
    return [100 * (o / d - 1) for o, d in zip(other, default, strict=True)] if other else None


def _figures(runs: list[dict], folder: dict, s3: dict) -> list:
    default_walls = [r["wall_s"] for r in runs if r["arm"] == "default"]
    baseline = compare("the same run, default store (the worker's own folder)", default_walls, "s")
    return [
        figure(ISSUE, f"{CONFIG['model']} run ({STEPS} steps, a checkpoint every {CONFIG['checkpoint_every']}) with a "
               "shared-folder store, extra wall time", _extra(runs, "folder"), "%", target=("<", 5),
               comparison=baseline),
        figure(ISSUE, "the same run with the S3 store, extra wall time", _extra(runs, "s3"), "%",
               comparison=baseline, note="S3 is moto's emulator on this machine, not S3"
               + ("; not run in quick mode" if QUICK else "")),
        figure(ISSUE, f"upload to the shared-folder store ({UPLOAD_BYTES >> 20} MiB file)", folder["put_mb_per_s"],
               "MB/s", comparison=compare("download from it", folder["get_mb_per_s"], "MB/s")),
        figure(ISSUE, f"upload to the S3 store ({UPLOAD_BYTES >> 20} MiB file)", s3["put_mb_per_s"], "MB/s",
               comparison=compare("download from it", s3["get_mb_per_s"], "MB/s"),
               note="moto's emulator on this machine"),
    ]


@contextlib.contextmanager
def _s3_store():
    import s3fs

    from apps.core.testing import s3_emulator

    with s3_emulator() as env:
        os.environ.update(env)  # this process and the workers it starts
        s3fs.S3FileSystem().mkdir("bench-store")
        yield "s3://bench-store/tunixrt"


def main():
    shutil.rmtree(STORES, ignore_errors=True)
    use_broker("store")  # the runs are queued where this benchmark's workers listen
    with throwaway_database("store") as db_name, _s3_store() as s3_url:
        from django.core.cache import cache

        cache.clear()
        user, _, dataset = _setup()
        folder_url = str(STORES / "folder" / "shared")
        urls = {"default": "", "folder": folder_url, "s3": s3_url}
        if not QUICK:  # fills JAX's compilation cache, so the first arm measured does not pay for compiling
            timed_run(db_name, user, dataset, "", "warm-up")
        runs = []
        for repeat in range(REPEATS):  # alternated and rotated: a drift in the machine's speed hits every arm
            order = ARMS[repeat % len(ARMS):] + ARMS[:repeat % len(ARMS)]
            runs += [timed_run(db_name, user, dataset, urls[arm], arm) for arm in order]
        folder, s3 = upload_throughput(folder_url), upload_throughput(s3_url)
    print(json.dumps({"benchmark": "store", "quick": QUICK, "figures": _figures(runs, folder, s3), "runs": runs,
                      "upload_folder": folder, "upload_s3_emulator": s3}, indent=2, default=str))


if __name__ == "__main__":
    main()
