"""Trace scoring becomes recorded work: `score_due_at` says when an unscored trace's scoring is due.

Traces stored before this migration that have no structural score (their scoring task was lost) are due
at once, so the reaper's first pass scores them."""

from django.db import migrations, models
from django.db.models import Exists, OuterRef
from django.utils import timezone

SCORER, SCORER_VERSION = "structural", "1"  # apps.traces.scoring at the time of this migration


def mark_unscored_due(apps, schema_editor):
    Trace = apps.get_model("traces", "Trace")
    TraceScore = apps.get_model("traces", "TraceScore")
    scored = TraceScore.objects.filter(trace=OuterRef("pk"), scorer=SCORER, scorer_version=SCORER_VERSION)
    Trace.objects.filter(~Exists(scored)).update(score_due_at=timezone.now())


class Migration(migrations.Migration):

    dependencies = [
        ('traces', '0005_one_score_per_version'),
    ]

    operations = [
        migrations.AddField(
            model_name='trace',
            name='score_due_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name='trace',
            index=models.Index(condition=models.Q(('score_due_at__isnull', False)), fields=['score_due_at'],
                               name='trace_score_due'),
        ),
        migrations.RunPython(mark_unscored_due, migrations.RunPython.noop),
    ]
