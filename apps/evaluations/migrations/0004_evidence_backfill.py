"""Backfill what 0003 added: evaluations stored by the run import are `imported`, and an evaluation that
asked for "the latest checkpoint" records which step that was (a completed run's latest checkpoint no
longer changes, so it is the step its artifacts end with)."""

from django.db import migrations


def _latest_step(names) -> int | None:
    steps = [int(part) for part in (name.split("/")[1] for name in names if name.count("/") >= 2)
             if part.isascii() and part.isdigit()]
    return max(steps) if steps else None


def backfill(apps, schema_editor):
    Evaluation = apps.get_model("evaluations", "Evaluation")
    RunArtifact = apps.get_model("runs", "RunArtifact")
    Evaluation.objects.filter(worker="import", run__imported=True).update(source="imported")
    runs = Evaluation.objects.filter(checkpoint_step__isnull=True, run__isnull=False).values_list("run_id", flat=True)
    for run_id in set(runs):
        names = RunArtifact.objects.filter(run_id=run_id, kind="checkpoint").values_list("name", flat=True)
        step = _latest_step(names)
        if step is not None:
            Evaluation.objects.filter(run_id=run_id, checkpoint_step__isnull=True).update(checkpoint_step=step)


class Migration(migrations.Migration):
    dependencies = [("evaluations", "0003_evidence_rules"), ("runs", "0005_imported_runs")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
