"""Seed the built-in data: dev-reasoning-v1, dev-reasoning-v2 and golden-v1 traces and versions, and eval-v1.

Idempotent: traces are stored by content hash (duplicates are found, not stored twice), only traces
still `captured` are approved, a version rebuilt from the same traces is the same version, and the
eval set is rewritten only when absent. Running it twice changes nothing.
"""

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import Conflict, DomainError
from apps.datasets import services, storage
from apps.datasets.signals import eval_set_published
from apps.datasets.spec import parse_build_request
from training.generators import generate

SEED_REASON = "seeded by generator"
ACTOR = "seed_datasets"


class Command(BaseCommand):
    help = ("Generate and store dev-reasoning-v1, dev-reasoning-v2 and golden-v1 (traces + dataset versions) "
            "and the eval-v1 set.")

    def add_arguments(self, parser):
        parser.add_argument("--dev-count", type=int, default=None,
                            help="traces of each dev-reasoning version (default 2000)")
        parser.add_argument("--dev-seed", type=int, default=None, help="dev-reasoning generator seed (default 1)")
        parser.add_argument("--val-share", type=float, default=0.1, help="share of dev-reasoning in the val split")
        parser.add_argument("--skip-eval", action="store_true", help="do not write the eval-v1 files")

    def handle(self, *args, **options):
        try:
            devs = [generate(name, count=options["dev_count"], seed=options["dev_seed"])
                    for name in ("dev-reasoning-v1", "dev-reasoning-v2")]
            golden = generate("golden-v1")
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        val = options["val_share"]
        for dev in devs:
            self._seed_version(dev, split={"train": round(1 - val, 6), "val": val, "test": 0.0})
        self._seed_version(golden, split={"train": 1.0, "val": 0.0, "test": 0.0})
        if not options["skip_eval"]:
            self._seed_eval_set()

    def _seed_version(self, generated, split: dict) -> None:
        result = services.generated_traces_store(items=generated.items, approve_reason=SEED_REASON,
                                                 actor_label=ACTOR)
        self.stdout.write(f"{generated.name}: {len(result['created'])} traces stored, "
                          f"{len(result['duplicates'])} already present, {result['approved']} approved")
        manifest = generated.manifest
        request = {
            "dataset_name": manifest["name"], "dataset_version": manifest["version"],
            "filters": {"meta": _generator_meta(generated.name, manifest.get("seed"))},
            "selection_strategy": "all", "seed": manifest.get("seed") or 0, "split": split,
            "provenance": {"source": f"generator:{generated.name}", "generator_manifest": manifest},
        }
        try:
            version, created = services.dataset_version_build(spec=parse_build_request(request), actor_label=ACTOR)
        except Conflict as exc:
            self.stderr.write(f"{manifest['name']}-{manifest['version']}: left unchanged; {exc.message}")
            return
        state = "built" if created else "unchanged"
        self.stdout.write(f"dataset {version.pk}: {state}, {version.trace_count} traces, {version.content_hash}")

    def _seed_eval_set(self) -> None:
        generated = generate("eval-v1")
        dataset_id = f"{generated.manifest['name']}-{generated.manifest['version']}"
        try:
            folder, state = storage.write_eval_set(dataset_id=dataset_id, items=generated.items,
                                                   generator_manifest=generated.manifest)
        except FileExistsError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"eval set {dataset_id}: {state}, {len(generated.items)} items in {folder}")
        try:
            eval_set_published.send(sender=self.__class__, folder=folder)  # the evaluations app stores the items
        except DomainError as exc:
            raise CommandError(f"eval set {dataset_id}: {exc.message}") from exc



def _generator_meta(name: str, seed) -> dict:
    # Only the traces this generator made with this seed, whatever else is stored.
    return {"generator": name} if seed is None else {"generator": name, "seed": seed}
